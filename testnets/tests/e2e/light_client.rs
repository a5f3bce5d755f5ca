//! End-to-end: a light client syncs a real 3-producer chain over `/v1/headers`, across
//! a schedule change, reaches the same LIB as the chain's nodes, and accepts the
//! chain's own transaction and receipt proofs from `/v1/proofs/tx/{hash}`.

use crate::support::*;
use distpos_chain::{Body, ChainParams};
use distpos_gateway::keyfile;
use distpos_proofs::{
    light_client::{
        Checkpoint, Commitment, LightClientWithWindow, ProofBundle, TrustAnchor, Verdict,
    },
    ChainId, Hash32, ProducerSchedule, SignedHeader, SlotClock,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_client_follows_a_real_chain_across_a_schedule_change() {
    let _serial = crate::support::serial();
    let net = Net::start(0x11c, 3, 250, ChainParams::default()).await;
    let st = net.status(0).await;
    let schedule: ProducerSchedule = serde_json::from_value(st["schedule"].clone()).unwrap();
    assert_eq!(schedule.version, 0);
    let anchor = TrustAnchor {
        chain_id: ChainId(0x11c),
        identity: st["identity"].as_str().unwrap().parse().unwrap(),
        clock: SlotClock {
            genesis_time_ms: st["genesis_time_ms"].as_u64().unwrap(),
            interval_ms: st["block_interval_ms"].as_u64().unwrap(),
        },
        max_drift_ms: 1_000,
        checkpoint: Checkpoint::genesis(schedule).unwrap(),
    };
    let mut lc = LightClientWithWindow::new(&anchor, 100_000).unwrap();

    // A transfer to prove later.
    let to = keyfile::address(&distpos_proofs::SecretKey::from_seed(b"lc"));
    let tx = net.tx(0, &net.faucet, transfer(to, 777)).await;
    let hash = net.submit(0, &tx).await;
    net.wait_irreversible(0, &hash, 30).await;

    // Producer 2 withdraws: the next election drops it (schedule version 1).
    let p2 = keyfile::read(&net.dir.path().join("keys/producer-2.json")).unwrap();
    let unreg = net.tx(0, &p2, Body::UnregisterProducer).await;
    let h = net.submit(0, &unreg).await;
    net.wait_irreversible(0, &h, 30).await;
    net.wait_for("schedule version 1 in force", 60, || async {
        net.status(0).await["schedule"]["version"] == 1
    })
    .await;
    let lib_after_change = net.lib(0).await;
    net.wait_for("LIB to move under the new schedule", 60, || async {
        net.lib(0).await > lib_after_change + 3
    })
    .await;

    // Sync the light client over the peer protocol, in pages.
    let mut next = 1u64;
    let (mut node_head, mut node_lib);
    loop {
        let page = net
            .get(0, &format!("/v1/headers?from={next}&to={}", next + 99))
            .await;
        node_head = page["head"].as_u64().unwrap();
        node_lib = page["lib"].as_u64().unwrap();
        let headers: Vec<SignedHeader> = serde_json::from_value(page["headers"].clone()).unwrap();
        if headers.is_empty() {
            break;
        }
        next = headers.last().unwrap().header.height + 1;
        match lc.submit(&headers, now_ms()) {
            Verdict::Accepted(_) => {}
            other => panic!("light client refused the chain's headers: {other:?}"),
        }
        if next > node_head {
            break;
        }
    }
    assert_eq!(lc.client.head(), node_head);
    assert_eq!(
        lc.client.lib(),
        node_lib,
        "same LIB as the node at that head"
    );
    assert_eq!(
        lc.client.head_state().active.version,
        1,
        "schedule change followed"
    );
    assert_eq!(lc.client.head_state().active.producers.len(), 2);

    // The node's proofs of the transfer verify; tampered ones do not.
    let proof = net.get(0, &format!("/v1/proofs/tx/{hash}")).await;
    assert_eq!(proof["irreversible"], true);
    let tx_bundle: ProofBundle = serde_json::from_value(proof["tx"].clone()).unwrap();
    let r_bundle: ProofBundle = serde_json::from_value(proof["receipt"].clone()).unwrap();
    assert_eq!(
        lc.verify(&tx_bundle, Commitment::Transactions),
        Verdict::Accepted(())
    );
    assert_eq!(
        lc.verify(&r_bundle, Commitment::Receipts),
        Verdict::Accepted(())
    );
    assert_eq!(
        distpos_chain::Transaction::decode(&tx_bundle.item)
            .unwrap()
            .hash(),
        hash
    );
    let mut forged = tx_bundle.clone();
    forged.item[10] ^= 1;
    assert!(matches!(
        lc.verify(&forged, Commitment::Transactions),
        Verdict::Rejected(_)
    ));
    assert!(matches!(
        lc.verify(&tx_bundle, Commitment::Receipts),
        Verdict::Rejected(_)
    ));

    // Bad ranges are refused clearly.
    let (s, v) = net.try_get(0, "/v1/headers?from=5&to=4").await.unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_range"))
    );
    let (s, v) = net
        .try_get(0, "/v1/headers?from=1&to=100000")
        .await
        .unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("range_too_large"))
    );
    let (s, _) = net
        .try_get(0, &format!("/v1/proofs/tx/{}", Hash32([3; 32])))
        .await
        .unwrap();
    assert_eq!(s, 404);
}
