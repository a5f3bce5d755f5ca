//! The HTTP API without a socket: every route class driven through
//! `tower::ServiceExt::oneshot` on [`distpos_gateway::api::app`], bad input first.
//! A client's mistake is a 4xx with `{"error": {"code", "message"}}`, never a 500,
//! and changes nothing.
// The helpers below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::{
    body::{to_bytes, Body},
    http::{header, Method, Request, StatusCode},
    Router,
};
use distpos_chain::testkit::TestChain;
use distpos_gateway::{api, config::NodeConfig, runtime};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "test-operator-token-0123456789";

/// A node's router on a fresh one-producer chain in a temporary folder (no port, no
/// background task). The folder lives as long as the returned guard.
fn node() -> (Router, tempfile::TempDir) {
    node_with(|_| {})
}

/// [`node`] with its config changed by `tweak` first.
fn node_with(tweak: impl FnOnce(&mut NodeConfig)) -> (Router, tempfile::TempDir) {
    let (config, dir) = config_with(tweak);
    let state = runtime::open(config).unwrap();
    (api::app(state), dir)
}

/// The config [`node_with`] opens, in a new temporary folder (with the genesis file).
fn config_with(tweak: impl FnOnce(&mut NodeConfig)) -> (NodeConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(0xa91, 1, 1, TestChain::dev_params());
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&chain.genesis).unwrap()).unwrap();
    let mut config = NodeConfig {
        data_dir: dir.path().join("data"),
        genesis,
        api_token: Some(TOKEN.into()),
        ..Default::default()
    };
    config.routing.dns = Some(distpos_routing::DnsConfig {
        zone: "chains.invalid".into(),
        resolver: "127.0.0.1:9".parse().unwrap(),
        timeout_ms: 200,
    });
    tweak(&mut config);
    (config, dir)
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 16 << 20).await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A client error: the status, and the error body's code.
fn assert_client_error(got: &(StatusCode, Value), status: StatusCode, what: &str) {
    assert_eq!(got.0, status, "{what}: {}", got.1);
    assert!(
        got.1["error"]["code"].is_string() && got.1["error"]["message"].is_string(),
        "{what}: error body {}",
        got.1
    );
}

#[tokio::test]
async fn chain_views_answer_and_refuse_bad_paths() {
    let (app, _dir) = node();
    let (s, v) = call(&app, get("/v1/status")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["chain_id"], "a91");
    assert_eq!(v["head"]["height"], 0);
    for (path, status) in [
        ("/v1/blocks/abc", StatusCode::BAD_REQUEST),
        ("/v1/blocks/99", StatusCode::NOT_FOUND),
        ("/v1/accounts/not-an-address", StatusCode::BAD_REQUEST),
        ("/v1/txs/0xzz", StatusCode::BAD_REQUEST),
        (
            "/v1/txs/0x0000000000000000000000000000000000000000000000000000000000000001",
            StatusCode::NOT_FOUND,
        ),
        ("/v1/headers?from=x", StatusCode::BAD_REQUEST),
        (
            "/v1/proofs/tx/0x0000000000000000000000000000000000000000000000000000000000000001",
            StatusCode::NOT_FOUND,
        ),
        ("/v1/correspondents/not-hex", StatusCode::BAD_REQUEST),
        ("/v1/routes/not-hex", StatusCode::BAD_REQUEST),
        ("/v1/no-such-route", StatusCode::NOT_FOUND),
    ] {
        assert_client_error(&call(&app, get(path)).await, status, path);
    }
    // Not a peer and no configured route: a 404, and no SRV look-up. Only its
    // forwarding route (TXT `via=`) is asked of DNS, once: the resolver configured
    // here does not even exist, and the failure is remembered, so asking again, or
    // a hundred times, asks DNS no more.
    for _ in 0..100 {
        let (s404, v) = call(&app, get("/v1/routes/c0ffee")).await;
        assert_eq!(s404, StatusCode::NOT_FOUND, "{v}");
    }
    let (_, routes) = call(&app, get("/v1/routes")).await;
    assert_eq!(routes["dns"]["lookups"], 1, "{routes}");
    let wrong_method = Request::delete("/v1/status").body(Body::empty()).unwrap();
    assert_client_error(
        &call(&app, wrong_method).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "DELETE /v1/status",
    );
    for path in [
        "/v1/producers",
        "/v1/supply",
        "/v1/correspondents",
        "/v1/routes",
    ] {
        let (s, v) = call(&app, get(path)).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
    let (s, v) = call(&app, get("/v1/supply")).await;
    assert_eq!(
        (s, v["holds"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
}

#[tokio::test]
async fn transactions_refuse_malformed_bodies_and_change_nothing() {
    let (app, _dir) = node();
    // A batch answers per item: each bad one gets its own error.
    let (s, v) = call(&app, post_json("/v1/txs", "[1, 2, 3]")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert!(
        answers
            .iter()
            .all(|a| a["error"]["code"] == "invalid_transaction" && a["hash"].is_null()),
        "{v}"
    );
    for (body, what) in [
        ("{", "truncated JSON"),
        (r#"{"chain_id": "a91"}"#, "missing fields"),
        ("", "empty body"),
    ] {
        let got = call(&app, post_json("/v1/txs", body)).await;
        assert!(got.0.is_client_error(), "{what}: {} {}", got.0, got.1);
        assert!(got.1["error"]["code"].is_string(), "{what}: {}", got.1);
    }
    let no_type = Request::post("/v1/txs").body(Body::from("[]")).unwrap();
    assert!(call(&app, no_type).await.0.is_client_error());
    let (_, v) = call(&app, get("/v1/status")).await;
    assert_eq!(v["mempool_txs"], 0, "nothing was admitted: {v}");
}

#[tokio::test]
async fn the_peer_protocol_refuses_malformed_batches_and_retired_v1_items() {
    let (app, _dir) = node();
    for path in ["/v1/relay/v2/deliveries", "/v1/relay/v2/receipts"] {
        for body in ["{", "{}", "[{}]", "null"] {
            let got = call(&app, post_json(path, body)).await;
            assert!(
                got.0.is_client_error(),
                "{path} {body}: {} {}",
                got.0,
                got.1
            );
        }
    }
    // Interchain v1 is retired: its routes say so (410, a stable code), whatever the
    // body, so an old relayer stops instead of retrying forever.
    for path in [
        "/v1/relay/deliveries",
        "/v1/relay/receipts",
        "/v1/relay/deliveries/batch",
        "/v1/relay/receipts/batch",
    ] {
        for body in ["{", "{}", "[{}]", "null"] {
            let (status, v) = call(&app, post_json(path, body)).await;
            assert_eq!(status, StatusCode::GONE, "{path} {body}: {v}");
            assert_eq!(v["error"]["code"], "protocol_v1_retired", "{v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("/v1/relay/v2/deliveries"),
                "the error names what to use instead: {v}"
            );
        }
    }
    let (s, _) = call(&app, get("/v1/headers?from=1&to=5")).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn operator_routes_need_the_token() {
    let (app, _dir) = node();
    let put_route = |auth: Option<&str>| {
        let mut b = Request::builder()
            .method(Method::PUT)
            .uri("/v1/routes/b2")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::from(
            r#"[{"url": "http://127.0.0.1:1", "priority": 1, "weight": 1}]"#,
        ))
        .unwrap()
    };
    assert_client_error(
        &call(&app, put_route(None)).await,
        StatusCode::UNAUTHORIZED,
        "no token",
    );
    assert_client_error(
        &call(&app, put_route(Some("Bearer wrong-token-wrong-token-0000"))).await,
        StatusCode::UNAUTHORIZED,
        "wrong token",
    );
    let (s, v) = call(&app, put_route(Some(&format!("Bearer {TOKEN}")))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let retry = |auth: Option<&str>| {
        let mut b = Request::post("/v1/relay/queue/delivery-nothing/retry");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_client_error(
        &call(&app, retry(None)).await,
        StatusCode::UNAUTHORIZED,
        "queue action without a token",
    );
    assert_client_error(
        &call(&app, retry(Some(&format!("Bearer {TOKEN}")))).await,
        StatusCode::NOT_FOUND,
        "queue action on an unknown item",
    );
    // The queue listing is the operator's too, a page at a time.
    let list = |auth: Option<&str>, query: &str| {
        let mut b = Request::get(format!("/v1/relay/queue{query}"));
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_client_error(
        &call(&app, list(None, "")).await,
        StatusCode::UNAUTHORIZED,
        "queue listing without a token",
    );
    let bearer = format!("Bearer {TOKEN}");
    assert_client_error(
        &call(&app, list(Some(&bearer), "?limit=lots")).await,
        StatusCode::BAD_REQUEST,
        "queue listing with a bad limit",
    );
    let (s, v) = call(&app, list(Some(&bearer), "?limit=5")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"], serde_json::json!([]), "{v}");
    assert!(v["next"].is_null(), "{v}");
}

/// A relay item delivering one transfer of chain a91 to chain b, from block `height`.
fn delivery_item(height: u64) -> distpos_gateway::queue::QueueItem {
    let mut c = TestChain::new(0xa91, 1, 1, TestChain::dev_params());
    let key = c.users[0].clone();
    let tx = c.tx(
        &key,
        1,
        distpos_chain::Body::Transfer {
            to: distpos_chain::QualifiedAddress::new(
                distpos_proofs::ChainId(0xb),
                distpos_chain::Address::ZERO,
            ),
            amount: 5,
            memo: vec![],
            deliver_by: height,
            fast_fee: 0,
            via: None,
        },
    );
    let d = distpos_adapters::BatchDelivery {
        source_chain: distpos_proofs::ChainId(0xa91),
        height,
        transfers: vec![tx],
        indices: vec![0],
        proof: distpos_proofs::multiproof::MultiProof { siblings: vec![] },
        headers: vec![],
    };
    distpos_gateway::queue::QueueItem::batch_delivery(d, distpos_proofs::ChainId(0xb), 0)
}

#[tokio::test]
async fn the_operator_holds_releases_and_deletes_relay_items_one_or_all() {
    let (config, _dir) = config_with(|_| {});
    let state = runtime::open(config).unwrap();
    let (a, b) = (delivery_item(1), delivery_item(2));
    state.queue.enqueue(&[a.clone(), b.clone()], 0).unwrap();
    let app = api::app(state);
    let bearer = format!("Bearer {TOKEN}");
    let act = |auth: Option<&str>, id: &str, action: &str| {
        let mut r = Request::post(format!("/v1/relay/queue/{id}/{action}"));
        if let Some(a) = auth {
            r = r.header(header::AUTHORIZATION, a);
        }
        r.body(Body::empty()).unwrap()
    };
    let ok = |auth: &str, id: &str, action: &str| {
        let (req, what) = (act(Some(auth), id, action), format!("{action} {id}"));
        let app = app.clone();
        async move {
            let (s, v) = call(&app, req).await;
            assert_eq!(s, StatusCode::OK, "{what}: {v}");
            v
        }
    };
    for action in ["delete", "hold"] {
        assert_client_error(
            &call(&app, act(None, &a.id, action)).await,
            StatusCode::UNAUTHORIZED,
            &format!("{action} without a token"),
        );
        assert_client_error(
            &call(&app, act(None, "all", action)).await,
            StatusCode::UNAUTHORIZED,
            &format!("{action} all without a token"),
        );
    }
    assert_client_error(
        &call(&app, act(Some(&bearer), "v2-delivery-b-9-0", "delete")).await,
        StatusCode::NOT_FOUND,
        "delete of an unknown item",
    );
    // Queued and not held: the relay may be sending it, so it stays.
    let refused = call(&app, act(Some(&bearer), &a.id, "delete")).await;
    assert_client_error(&refused, StatusCode::CONFLICT, "delete of a queued item");
    assert_eq!(refused.1["error"]["code"], "queue_item_active");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("hold it first")),
        "{}",
        refused.1
    );
    let v = ok(&bearer, &a.id, "hold").await;
    assert_eq!(
        (v["item"]["held"].as_bool(), v["changed"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    let v = ok(&bearer, &a.id, "hold").await;
    assert_eq!(v["changed"], false, "held already: {v}");
    let v = ok(&bearer, &a.id, "delete").await;
    assert_eq!(
        (v["deleted"].as_bool(), v["item"]["id"].as_str()),
        (Some(true), Some(a.id.as_str())),
        "{v}"
    );
    assert!(
        v["note"].as_str().is_some_and(|n| n.contains("in flight")),
        "{v}"
    );
    assert_client_error(
        &call(&app, act(Some(&bearer), &a.id, "delete")).await,
        StatusCode::NOT_FOUND,
        "deleted already",
    );
    let list = Request::get("/v1/relay/queue")
        .header(header::AUTHORIZATION, &bearer)
        .body(Body::empty())
        .unwrap();
    let (_, v) = call(&app, list).await;
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, vec![b.id.as_str()], "{v}");

    // Every item at once: `all`.
    let v = ok(&bearer, "all", "delete").await;
    assert_eq!(
        (v["all"]["changed"].as_u64(), v["all"]["refused"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let v = ok(&bearer, "all", "hold").await;
    assert_eq!(
        (v["all"]["action"].as_str(), v["all"]["changed"].as_u64()),
        (Some("hold"), Some(1)),
        "{v}"
    );
    let v = ok(&bearer, "all", "release").await;
    assert_eq!(v["all"]["changed"], 1, "{v}");
    let v = ok(&bearer, "all", "retry").await;
    assert_eq!(v["all"]["changed"], 1, "{v}");
    assert_client_error(
        &call(&app, act(Some(&bearer), "all", "explode")).await,
        StatusCode::BAD_REQUEST,
        "an unknown action on all",
    );
    ok(&bearer, "all", "hold").await;
    let v = ok(&bearer, "all", "delete").await;
    assert_eq!(
        (v["all"]["changed"].as_u64(), v["all"]["refused"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
}

#[tokio::test]
async fn metrics_and_the_openapi_document_are_served() {
    let (app, _dir) = node();
    let resp = app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        distpos_gateway::metrics::CONTENT_TYPE,
        "what the encoder writes: OpenMetrics"
    );
    let text = to_bytes(resp.into_body(), 16 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("distpos_head_height{chain=\"a91\"}"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (s, v) = call(&app, get("/v1/openapi.yaml")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.as_str().is_some_and(|t| t.contains("openapi")), "{v}");
}

/// A request body that records whether anything read it.
struct Untouched {
    left: usize,
    read: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl axum::body::HttpBody for Untouched {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.read.store(true, std::sync::atomic::Ordering::SeqCst);
        let n = self.left.min(1 << 20);
        self.left -= n;
        std::task::Poll::Ready((n > 0).then(|| Ok(hyper::body::Frame::data(vec![b'x'; n].into()))))
    }
}

#[tokio::test]
async fn every_operator_route_refuses_a_bad_token_before_reading_the_body() {
    let (app, _dir) = node();
    let bearer = format!("Bearer {TOKEN}");
    let short = &bearer[..bearer.len() - 1];
    let long = format!("{bearer}0");
    let flipped = bearer.replace("test", "TEST");
    let bad: [Option<&str>; 7] = [
        None,
        Some("Bearer wrong-token-wrong-token-0000"),
        Some(short),
        Some(&long),
        Some(&flipped),
        Some("Bearer "),
        Some(TOKEN),
    ];
    let request = |method: Method, path: &str, auth: Option<&str>, body: Body| {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(body).unwrap()
    };
    let route = r#"[{"url": "http://127.0.0.1:1", "priority": 1, "weight": 1}]"#;
    // A route set by the operator, which the refused calls below must leave alone.
    let (s, v) = call(
        &app,
        request(
            Method::PUT,
            "/v1/routes/b3",
            Some(&bearer),
            Body::from(route),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let routes_before = call(&app, get("/v1/routes")).await.1;
    let operator_routes = [
        (Method::GET, "/v1/relay/queue"),
        (Method::POST, "/v1/relay/queue/delivery-nothing/retry"),
        (Method::POST, "/v1/relay/queue/delivery-nothing/hold"),
        (Method::POST, "/v1/relay/queue/delivery-nothing/delete"),
        (Method::POST, "/v1/relay/queue/all/delete"),
        (Method::PUT, "/v1/routes/b2"),
        (Method::DELETE, "/v1/routes/b3"),
    ];
    for (method, path) in &operator_routes {
        for auth in bad {
            let what = format!("{method} {path} with {auth:?}");
            let got = call(&app, request(method.clone(), path, auth, Body::from(route))).await;
            assert_client_error(&got, StatusCode::UNAUTHORIZED, &what);
            assert_eq!(got.1["error"]["code"], "unauthorized", "{what}");
        }
        // A body far above the limit, never read: 401, not 413.
        let read = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let huge = Body::new(Untouched {
            left: 64 << 20,
            read: read.clone(),
        });
        let got = call(&app, request(method.clone(), path, None, huge)).await;
        assert_client_error(
            &got,
            StatusCode::UNAUTHORIZED,
            &format!("{method} {path} huge"),
        );
        assert!(
            !read.load(std::sync::atomic::Ordering::SeqCst),
            "{method} {path} read the body"
        );
    }
    assert_eq!(
        call(&app, get("/v1/routes")).await.1,
        routes_before,
        "no route was added or removed"
    );
    // The right token gets to the handlers (here: an unknown item, a wrong action).
    for (method, path, status) in [
        (
            Method::POST,
            "/v1/relay/queue/delivery-nothing/retry",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/relay/queue/delivery-nothing/explode",
            StatusCode::BAD_REQUEST,
        ),
        (Method::DELETE, "/v1/routes/b3", StatusCode::OK),
    ] {
        let got = call(
            &app,
            request(method.clone(), path, Some(&bearer), Body::empty()),
        )
        .await;
        assert_eq!(got.0, status, "{method} {path}: {}", got.1);
    }
    // The public route on the same path as two operator ones needs no token.
    let (s, v) = call(&app, get("/v1/routes/b2")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not a peer, no route: {v}");
}

#[tokio::test]
async fn route_overrides_are_per_node_and_survive_reopening_the_node() {
    let (config, _dir) = config_with(|c| {
        c.routing.static_routes.insert(
            "b5".into(),
            vec![distpos_routing::StaticEndpoint {
                url: "http://127.0.0.1:5".into(),
                priority: 10,
                weight: 1,
            }],
        );
    });
    let operator = |method: Method, path: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let route = r#"[{"url": "http://127.0.0.1:2", "priority": 1, "weight": 3}]"#;
    {
        let app = api::app(runtime::open(config.clone()).unwrap());
        let (s, v) = call(&app, operator(Method::PUT, "/v1/routes/b2", route)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (&v["scope"], &v["persisted"]),
            (&"node".into(), &true.into())
        );
        assert!(
            v["note"].as_str().unwrap().contains("this node only"),
            "{v}"
        );
        let ep = &v["route"]["endpoints"][0];
        assert_eq!(
            (&ep["origin"], &ep["scope"]),
            (&"override".into(), &"node".into())
        );
        // Our own chain, or a URL the node cannot use: refused, nothing stored.
        for (path, body) in [
            ("/v1/routes/a91", route),
            ("/v1/routes/b3", r#"[{"url": "ftp://x"}]"#),
        ] {
            let got = call(&app, operator(Method::PUT, path, body)).await;
            assert_client_error(&got, StatusCode::BAD_REQUEST, path);
            assert_eq!(got.1["error"]["code"], "invalid_route", "{path}");
        }
        // The listing: each endpoint's origin; this node's stored overrides.
        let (_, routes) = call(&app, get("/v1/routes")).await;
        assert_eq!(routes["overrides"]["scope"], "node", "{routes}");
        assert_eq!(routes["overrides"]["stored"], 1, "{routes}");
        let b5 = &routes["routes"][1];
        assert_eq!(b5["chain"], "b5", "{routes}");
        assert_eq!(b5["endpoints"][0]["origin"], "config", "{routes}");
        assert_eq!(b5["endpoints"][0]["source"], "static", "{routes}");
        assert!(b5["endpoints"][0].get("scope").is_none(), "{routes}");
    }
    // Opened again on the same folder (a restart): the override is back.
    {
        let app = api::app(runtime::open(config.clone()).unwrap());
        let (s, v) = call(&app, get("/v1/routes/b2")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let ep = &v["endpoints"][0];
        assert_eq!(ep["url"], "http://127.0.0.1:2", "{v}");
        assert_eq!((&ep["priority"], &ep["weight"]), (&1.into(), &3.into()));
        assert_eq!(
            (&ep["origin"], &ep["source"]),
            (&"override".into(), &"override".into())
        );
        let (s, v) = call(&app, operator(Method::DELETE, "/v1/routes/b2", "")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!((&v["removed"], &v["scope"]), (&true.into(), &"node".into()));
    }
    // And once removed, it stays removed.
    let app = api::app(runtime::open(config).unwrap());
    let (s, v) = call(&app, get("/v1/routes/b2")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (_, routes) = call(&app, get("/v1/routes")).await;
    assert_eq!(routes["overrides"]["stored"], 0, "{routes}");
}

#[tokio::test]
async fn a_node_without_a_token_refuses_every_operator_route() {
    let (app, _dir) = node_with(|c| c.api_token = None);
    for (method, path) in [
        (Method::GET, "/v1/relay/queue"),
        (Method::POST, "/v1/relay/queue/x/retry"),
        (Method::PUT, "/v1/routes/b2"),
        (Method::DELETE, "/v1/routes/b2"),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from("[]"))
            .unwrap();
        let got = call(&app, req).await;
        assert_client_error(&got, StatusCode::FORBIDDEN, path);
        assert_eq!(
            got.1["error"]["code"], "operator_disabled",
            "{method} {path}"
        );
    }
}

/// `[0,0,…]` of `n` items.
fn zeros(n: usize) -> String {
    let mut s = String::with_capacity(2 * n + 1);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('0');
    }
    s.push(']');
    s
}

#[tokio::test]
async fn a_transaction_batch_is_counted_while_it_is_parsed() {
    let (app, _dir) = node();
    // At the limit: one answer per item.
    let (s, v) = call(&app, post_json("/v1/txs", &zeros(api::MAX_TX_BATCH))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(api::MAX_TX_BATCH));
    // One more: refused, naming the limit.
    let got = call(&app, post_json("/v1/txs", &zeros(api::MAX_TX_BATCH + 1))).await;
    assert_client_error(&got, StatusCode::BAD_REQUEST, "limit + 1");
    assert_eq!(got.1["error"]["code"], "batch_too_large");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&api::MAX_TX_BATCH.to_string())),
        "{}",
        got.1
    );
    // A body just under the 32 MiB limit of zeros: refused the same way, at once.
    let limit = NodeConfig::default().http.body_limit_bytes;
    let body = zeros((limit - 2) / 2);
    assert!(body.len() <= limit);
    let got = call(&app, post_json("/v1/txs", &body)).await;
    assert_client_error(&got, StatusCode::BAD_REQUEST, "32 MiB of zeros");
    assert_eq!(got.1["error"]["code"], "batch_too_large");
    // Above the body limit: 413.
    let got = call(&app, post_json("/v1/txs", &zeros(limit / 2 + 8))).await;
    assert_client_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "above the body limit");
    assert_eq!(got.1["error"]["code"], "body_too_large");
    let (_, v) = call(&app, get("/v1/status")).await;
    assert_eq!(v["mempool_txs"], 0, "{v}");
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_and_others_do_not() {
    let (app, _dir) = node_with(|c| {
        c.http.rate_limit_per_s = 1;
        c.http.rate_limit_burst = 3;
    });
    let from = |ip: [u8; 4]| {
        let mut req = get("/v1/status");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                ip, 40_000,
            ))));
        req
    };
    for i in 0..3 {
        let (s, v) = call(&app, from([10, 0, 0, 1])).await;
        assert_eq!(s, StatusCode::OK, "request {i}: {v}");
    }
    let resp = app.clone().oneshot(from([10, 0, 0, 1])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    let body: Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Another client, and the node's own in-process calls, are not affected.
    let (s, _) = call(&app, from([10, 0, 0, 2])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, get("/v1/status")).await;
    assert_eq!(s, StatusCode::OK);
}

/// Arbitrary bytes, and arbitrary JSON built from the field names the decoders know,
/// posted to every route that reads a body: always an answer below 500 in the error
/// shape (or a success that changed nothing it should not), never a panic, and nothing
/// admitted from garbage.
mod decoders {
    use super::*;
    use proptest::prelude::*;

    const FIELDS: &[&str] = &[
        "chain_id",
        "nonce",
        "fee",
        "ref_block_num",
        "ref_block_prefix",
        "expiration",
        "body",
        "transfer",
        "to",
        "amount",
        "memo",
        "deliver_by",
        "pubkey",
        "signature",
        "source_chain",
        "receipt_chain",
        "height",
        "transfers",
        "receipts",
        "indices",
        "proof",
        "siblings",
        "headers",
        "header",
        "txs",
        "url",
        "priority",
        "weight",
        "tx_hash",
        "outcome",
        "inbound_batch",
        "results",
        "source_tx",
    ];

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(|n| Value::String(n.to_string())),
            "0x[0-9a-f]{0,80}".prop_map(Value::String),
            "[a-z0-9]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        ]
    }

    const ROUTES: &[(&str, &str)] = &[
        ("POST", "/v1/txs"),
        ("POST", "/v1/blocks"),
        ("POST", "/v1/relay/v2/deliveries"),
        ("POST", "/v1/relay/v2/receipts"),
        ("PUT", "/v1/routes/b2"),
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn no_body_gets_a_server_error_or_changes_anything(body in body(), route in 0..ROUTES.len()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (app, _dir) = node();
                let (method, path) = ROUTES[route];
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                    .body(Body::from(body))
                    .unwrap();
                let (status, v) = call(&app, req).await;
                assert!(status.as_u16() < 500, "{method} {path}: {status} {v}");
                if !status.is_success() {
                    assert!(v["error"]["code"].is_string(), "{method} {path}: {v}");
                }
                let (_, st) = call(&app, get("/v1/status")).await;
                assert_eq!(st["mempool_txs"], 0, "{method} {path} admitted garbage: {v}");
                assert_eq!(st["head"]["height"], 0, "{method} {path} moved the head: {v}");
            });
        }
    }
}
