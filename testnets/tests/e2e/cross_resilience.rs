//! End-to-end: 50 transfers in a row while a producer of the destination chain is
//! killed and restarted. Every one ends delivered or refunded; none is lost or
//! doubled.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_transfers_survive_a_destination_producer_restart() {
    let _serial = crate::support::serial();
    let (a, mut b) = Net::start_pair(0xa3, 0xb3, 3, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    deposit(&b, ca, 10_000_000).await;
    let recipients: Vec<_> = (0..50u32)
        .map(|i| {
            keyfile::address(&SecretKey::from_seed(
                &[b"r".as_slice(), &i.to_be_bytes()].concat(),
            ))
        })
        .collect();
    let mut hashes = Vec::new();
    for (i, to) in recipients.iter().enumerate() {
        hashes.push(send_cross(&a, cb, *to, 100 + i as u128).await);
        if i == 15 {
            b.nodes[1].kill();
        }
        if i == 35 {
            b.restart(1).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut delivered = 0u128;
    let mut refunded = 0;
    for (i, h) in hashes.iter().enumerate() {
        let path = format!("/v1/txs/{h}");
        a.wait_for(&format!("transfer {i} to end"), 240, || async {
            matches!(a.try_get(0, &path).await, Ok((200, v))
                if v["cross_chain"]["stage"] == "settled_delivered" || v["cross_chain"]["stage"] == "refunded")
        })
        .await;
        let v = a.get(0, &path).await;
        let got = b.balance(0, &recipients[i]).await;
        if v["cross_chain"]["stage"] == "settled_delivered" {
            assert_eq!(got, 100 + i as u128, "transfer {i} delivered exactly once");
            delivered += got;
        } else {
            assert_eq!(got, 0, "transfer {i} refunded, so never delivered");
            refunded += 1;
        }
    }
    // With ample collateral nothing should bounce.
    assert_eq!(refunded, 0);
    assert_eq!(
        int(&corr(&b, ca).await["collateral"]),
        10_000_000 - delivered as i128
    );
    assert_eq!(int(&corr(&a, cb).await["collateral"]), delivered as i128);
    for net in [&a, &b] {
        net.assert_supply_settled().await;
    }
    // The restarted node agrees with the others.
    let lib = b.lib(0).await;
    b.wait_for("restarted node past the LIB", 60, || async {
        b.lib(1).await >= lib
    })
    .await;
    let x = b.get(0, &format!("/v1/blocks/{lib}")).await;
    let y = b.get(1, &format!("/v1/blocks/{lib}")).await;
    assert_eq!(x["id"], y["id"]);
}
