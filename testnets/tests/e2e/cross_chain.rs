//! End-to-end: two chains of three producers each exchange transfers both ways,
//! proven by light clients and admitted against correspondent collateral.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_both_ways_are_delivered_and_settled() {
    let _serial = crate::support::serial();
    let (a, b) = Net::start_pair(0xa, 0xb, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 1_000_000).await; // B holds collateral for A's transfers
    deposit(&a, cb, 500_000).await;

    let bob = keyfile::address(&SecretKey::from_seed(b"bob"));
    let alice = keyfile::address(&SecretKey::from_seed(b"alice"));
    let a_faucet = keyfile::address(&a.faucet);
    let before = a.balance(0, &a_faucet).await;

    let h1 = send_cross(&a, cb, bob, 12_345).await;
    let st = wait_stage(&a, &h1, "settled_delivered", 120).await;
    assert_eq!(
        st["cross_chain"]["settled"]["bounced"],
        serde_json::Value::Null,
        "{st}"
    );
    assert_eq!(
        st["cross_chain"]["bounce_reason"],
        serde_json::Value::Null,
        "{st}"
    );
    assert_eq!(b.balance(0, &bob).await, 12_345);
    // Sender paid amount + fee once.
    assert_eq!(
        a.balance(0, &a_faucet).await,
        before - 12_345 - 1,
        "amount plus one fee, once"
    );
    // Correspondent accounts as DESIGN §6 says.
    assert_eq!(int(&corr(&b, ca).await["collateral"]), 1_000_000 - 12_345);
    assert_eq!(int(&corr(&a, cb).await["collateral"]), 500_000 + 12_345);
    // The destination shows the inbound record, with the sender's return path.
    let inbound = b.get(0, &format!("/v1/txs/{h1}")).await;
    assert_eq!(inbound["cross_chain"]["stage"], "delivered", "{inbound}");
    assert_eq!(
        inbound["cross_chain"]["inbound"]["sender"],
        format!("ax{}", a_faucet.to_checksum_hex().trim_start_matches("0x"))
    );

    // And back: B → A.
    let h2 = send_cross(&b, ca, alice, 777).await;
    wait_stage(&b, &h2, "settled_delivered", 120).await;
    assert_eq!(a.balance(0, &alice).await, 777);
    assert_eq!(
        int(&corr(&a, cb).await["collateral"]),
        500_000 + 12_345 - 777
    );
    assert_eq!(
        int(&corr(&b, ca).await["collateral"]),
        1_000_000 - 12_345 + 777
    );

    for net in [&a, &b] {
        let s = net.get(0, "/v1/supply").await;
        assert_eq!(s["holds"], true, "{s}");
        assert_eq!(s["in_flight"], "0", "nothing left in flight: {s}");
    }
}
