//! End-to-end: a route override set over HTTP with the operator token survives a
//! `kill -9` and restart of its node (the override is flushed before the PUT is
//! answered), stays gone once removed, and belongs to that node only.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_proofs::ChainId;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_override_survives_a_restart_and_stays_gone_once_removed() {
    let _serial = crate::support::serial();
    let mut net = Net::start(0xa7e5, 2, 500, ChainParams::default()).await;
    let other = ChainId(0xbeef);
    let path = format!("/v1/routes/{other}");
    let endpoints = json!([
        {"url": "http://127.0.0.1:9", "priority": 1, "weight": 2},
        {"url": "http://127.0.0.1:10", "priority": 5, "weight": 1},
    ]);

    let (s, v) = net
        .operator(0, Method::PUT, &path, Some(endpoints.clone()))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "node", "{v}");
    assert_eq!(v["persisted"], true, "{v}");
    // Per node: the chain's other node has no route to that chain.
    let (s, v) = net.try_get(1, &path).await.unwrap();
    assert_eq!(s, 404, "node 1 got node 0's override: {v}");

    // kill -9 right after the answer, then the same config and data folder.
    net.restart(0).await;
    let route = net.get(0, &path).await;
    let eps = route["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2, "{route}");
    for (ep, want) in eps.iter().zip(endpoints.as_array().unwrap()) {
        assert_eq!(ep["url"], want["url"], "{route}");
        assert_eq!(ep["priority"], want["priority"], "{route}");
        assert_eq!(ep["weight"], want["weight"], "{route}");
        assert_eq!(ep["origin"], "override", "{route}");
        assert_eq!(ep["source"], "override", "{route}");
        assert_eq!(ep["scope"], "node", "{route}");
    }
    let routes = net.get(0, "/v1/routes").await;
    assert_eq!(routes["overrides"]["stored"], 1, "{routes}");
    assert_eq!(routes["overrides"]["scope"], "node", "{routes}");

    let (s, v) = net.operator(0, Method::DELETE, &path, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["removed"], true, "{v}");
    net.restart(0).await;
    let (s, v) = net.try_get(0, &path).await.unwrap();
    assert_eq!(s, 404, "the removed override came back: {v}");
    let routes = net.get(0, "/v1/routes").await;
    assert_eq!(routes["overrides"]["stored"], 0, "{routes}");
    // The first restart restored one override; the second had none to restore.
    assert_eq!(
        net.log(0)
            .matches("route overrides of this node restored")
            .count(),
        1,
        "{}",
        tail(&net.log(0), 40)
    );
}
