//! End-to-end: stake and votes elect a fourth candidate, whose own node then produces;
//! withdrawing the votes removes it again.

use crate::support::*;
use distpos_chain::{Body, ChainParams};
use distpos_gateway::keyfile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_elect_a_fourth_producer_and_unvoting_removes_it() {
    let _serial = crate::support::serial();
    let mut net = Net::start(0xe1ec, 3, 500, ChainParams::default()).await;
    net.wait_for("first blocks", 30, || async { net.head(0).await >= 2 })
        .await;

    // The candidate: funded, staked, registered, with its own node.
    let key_path = net.dir.path().join("keys").join("candidate.json");
    let candidate = keyfile::generate().unwrap();
    keyfile::write(&key_path, &candidate).unwrap();
    let cand_addr = keyfile::address(&candidate);
    let fund = net.tx(0, &net.faucet, transfer(cand_addr, 2_000_000)).await;
    let h = net.submit(0, &fund).await;
    net.wait_irreversible(0, &h, 30).await;
    for body in [
        Body::Stake { amount: 1_000_000 },
        Body::RegisterProducer {
            signing_key: candidate.public_key(),
            url: String::new(),
        },
    ] {
        let tx = net.tx(0, &candidate, body).await;
        let h = net.submit(0, &tx).await;
        net.wait_irreversible(0, &h, 30).await;
    }
    let peers: Vec<String> = (0..3).map(|i| net.url(i).to_string()).collect();
    let cand_node = net.add_node(Some(&key_path), peers);
    net.wait_ready(cand_node).await;

    // Registered but unvoted: not elected.
    let producers = net.get(0, "/v1/producers").await;
    let key_hex = candidate.public_key().to_string();
    assert!(!producers["schedule"]["producers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == key_hex.as_str()));

    // The faucet stakes and votes for the candidate (and one genesis producer).
    let genesis_producer = producers["producers"][0]["account"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for body in [
        Body::Stake { amount: 10_000_000 },
        Body::Vote {
            producers: vec![cand_addr, genesis_producer],
        },
    ] {
        let tx = net.tx(0, &net.faucet, body).await;
        let h = net.submit(0, &tx).await;
        net.wait_irreversible(0, &h, 30).await;
    }
    let in_schedule = |v: &serde_json::Value| {
        v["schedule"]["producers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == key_hex.as_str())
    };
    net.wait_for("candidate in the active schedule", 60, || async {
        in_schedule(&net.get(0, "/v1/producers").await)
    })
    .await;
    net.wait_for("candidate's node to produce blocks", 60, || async {
        let v = net.get(0, &format!("/v1/accounts/{cand_addr}")).await;
        v["producer"]["produced"].as_u64().unwrap_or(0) >= 2
    })
    .await;

    // Unvote: the candidate has no approval left and leaves at the next election.
    let tx = net
        .tx(
            0,
            &net.faucet,
            Body::Vote {
                producers: vec![genesis_producer],
            },
        )
        .await;
    let h = net.submit(0, &tx).await;
    net.wait_irreversible(0, &h, 30).await;
    net.wait_for("candidate out of the active schedule", 60, || async {
        !in_schedule(&net.get(0, "/v1/producers").await)
    })
    .await;
    // The chain goes on without it.
    let lib = net.lib(0).await;
    net.wait_for("LIB to advance after the change", 30, || async {
        net.lib(0).await > lib + 2
    })
    .await;
}
