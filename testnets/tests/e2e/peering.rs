//! End-to-end: linking and unlinking chains through the command line (DESIGN §14).
//! Three chains that know nothing of each other (only routes): A (two producers) and
//! B register each other from their trust anchors with `distpos peer propose --from`
//! and approvals, put up collateral, and a transfer goes each way. B then registers C
//! from an anchor that is not C's: B's light client of C cannot advance and is shown
//! stalled with the reason, until governance resets it with `distpos peer reset`, and
//! C's waiting transfer is delivered. Finally B removes C: refused while collateral is
//! held, done once it is withdrawn.

use crate::support::*;
use distpos_chain::Body;
use distpos_gateway::keyfile;
use distpos_proofs::{ChainId, SecretKey};
use serde_json::Value;

fn key(net: &Net, name: &str) -> String {
    net.dir
        .path()
        .join(format!("keys/{name}.json"))
        .to_string_lossy()
        .into()
}

fn faucet_address(net: &Net) -> String {
    keyfile::address(&net.faucet).to_string()
}

/// `distpos peer propose --from` (the peer's node) on `net`'s node 0, by producer 0,
/// owned by `net`'s faucet.
fn propose_peer(net: &Net, peer: &Net, identity: &str) -> String {
    let (ok, out, err) = distpos_cli(&[
        "peer",
        "propose",
        "--from",
        peer.url(0),
        "--identity",
        identity,
        "--node",
        net.url(0),
        "--key",
        &key(net, "producer-0"),
        "--owner",
        &faucet_address(net),
        "--low-watermark",
        "100",
    ]);
    assert!(ok, "peer propose failed: {err}\n{out}");
    out
}

async fn identity(net: &Net) -> String {
    net.status(0).await["identity"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_lib(net: &Net, above: u64) {
    net.wait_for("the chain to finalise blocks", 30, || async {
        net.lib(0).await > above
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_are_linked_from_nothing_repaired_and_unlinked() {
    let _serial = serial();
    let nets = Net::start_routed(&[(0x1a1, 2), (0x1b2, 1), (0x1c3, 1)], 300).await;
    let (a, b, c) = (&nets[0], &nets[1], &nets[2]);
    for n in &nets {
        wait_lib(n, 2).await;
    }

    // A (two producers) registers B: a proposal, then the second producer's approval.
    let b_identity = identity(b).await;
    let out = propose_peer(a, b, &b_identity);
    assert!(out.contains("is the expected one"), "{out}");
    assert!(
        out.contains("follow from it"),
        "the anchor is checked: {out}"
    );
    assert!(out.contains("proposal 0 (register chain 1b2"), "{out}");
    assert!(out.contains("1 of 2 approvals"), "{out}");
    let (ok, listing, err) = distpos_cli(&["proposals", "--node", a.url(0)]);
    assert!(ok, "{err}");
    assert!(listing.contains("register_peer 1b2"), "{listing}");
    assert!(listing.contains("1/2"), "{listing}");
    // A wrong expected identity is refused before anything is signed.
    let (ok, _, err) = distpos_cli(&[
        "peer",
        "propose",
        "--from",
        b.url(0),
        "--identity",
        &format!("0x{}", "11".repeat(32)),
        "--node",
        a.url(0),
        "--key",
        &key(a, "producer-0"),
        "--owner",
        &faucet_address(a),
    ]);
    assert!(!ok && err.contains("not the expected"), "{err}");
    let (ok, out, err) = distpos_cli(&[
        "tx",
        "--node",
        a.url(1),
        "--key",
        &key(a, "producer-1"),
        "--wait",
        "approve",
        "--proposal",
        "0",
    ]);
    assert!(ok && out.contains("\"executed\": true"), "{err}\n{out}");
    let (ok, listing, _) = distpos_cli(&["proposals", "--node", a.url(0)]);
    assert!(ok && listing.contains("no open proposals"), "{listing}");

    // B (one producer) registers A: executed at once.
    let a_identity = identity(a).await;
    let out = propose_peer(b, a, &a_identity);
    assert!(out.contains("approved and executed"), "{out}");

    // Collateral both ways; a transfer each way is delivered and settled.
    let (ca, cb, cc) = (a.chain, b.chain, c.chain);
    deposit(a, cb, 10_000).await;
    deposit(b, ca, 10_000).await;
    let to = keyfile::address(&SecretKey::from_seed(b"peering"));
    let ab = send_cross(a, cb, to, 100).await;
    let ba = send_cross(b, ca, to, 200).await;
    wait_stage(a, &ab, "settled_delivered", 60).await;
    wait_stage(b, &ba, "settled_delivered", 60).await;
    assert_eq!(b.balance(0, &to).await, 100);
    assert_eq!(a.balance(0, &to).await, 200);

    // B registers C from an anchor whose schedule is not C's (as when the schedule a
    // peer's status shows is registered with an older checkpoint).
    let (ok, anchor, err) = distpos_cli(&["peer", "anchor", "--from", c.url(0)]);
    assert!(ok, "{err}");
    let mut anchor: Value = serde_json::from_str(&anchor).unwrap();
    let stale_height = anchor["anchor"]["consensus"]["height"].as_u64().unwrap();
    anchor["anchor"]["consensus"]["active"]["producers"] =
        serde_json::json!([SecretKey::from_seed(b"not c's producer").public_key()]);
    let bad = b.dir.path().join("c-anchor.json");
    std::fs::write(&bad, anchor.to_string()).unwrap();
    let (ok, out, err) = distpos_cli(&[
        "peer",
        "propose",
        "--anchor-file",
        bad.to_str().unwrap(),
        "--node",
        b.url(0),
        "--key",
        &key(b, "producer-0"),
        "--owner",
        &faucet_address(b),
    ]);
    assert!(ok && out.contains("approved and executed"), "{err}\n{out}");
    let b_identity = identity(b).await;
    propose_peer(c, b, &b_identity);
    deposit(b, cc, 10_000).await;
    // Sent a few blocks above the stale checkpoint, so that a reset can start below it.
    c.wait_for("C to move on", 30, || async {
        c.head(0).await > stale_height + 3
    })
    .await;
    let cb_tx = send_cross(c, cb, to, 300).await;
    b.wait_for("B to show its light client of C stalled", 40, || async {
        corr(b, cc).await["status"] == "stalled"
    })
    .await;
    let view = corr(b, cc).await;
    let reason = view["light_client"]["stalled"]["reason"].as_str().unwrap();
    assert!(reason.contains("not scheduled"), "{view}");
    assert_eq!(view["light_client"]["head"], stale_height, "{view}");
    let metrics = b.http.get(format!("{}/metrics", b.url(0))).send().await;
    let metrics = metrics.unwrap().text().await.unwrap();
    let stalled = distpos_testnets::metrics_text::samples(&metrics)
        .into_iter()
        .find(|s| s.name == "distpos_peer_stalled" && s.labels.contains("peer=\"1c3\""))
        .map(|s| s.value);
    assert_eq!(stalled, Some(1.0), "{metrics}");
    assert!(
        b.log(0).contains("cannot advance: stalled"),
        "a WARN line says so"
    );
    // Not delivered meanwhile.
    let st = c.get(0, &format!("/v1/txs/{cb_tx}")).await;
    assert_ne!(st["cross_chain"]["stage"], "settled_delivered", "{st}");

    // Governance resets B's light client of C to a checkpoint of C's own, below the
    // waiting transfer's block; it is then delivered.
    let height = st["height"].as_u64().unwrap();
    let c_identity = identity(c).await;
    let (ok, out, err) = distpos_cli(&[
        "peer",
        "reset",
        "--from",
        c.url(0),
        "--height",
        &(height - 1).to_string(),
        "--identity",
        &c_identity,
        "--node",
        b.url(0),
        "--key",
        &key(b, "producer-0"),
    ]);
    assert!(ok && out.contains("approved and executed"), "{err}\n{out}");
    wait_stage(c, &cb_tx, "settled_delivered", 60).await;
    b.wait_for("B to show C no longer stalled", 20, || async {
        corr(b, cc).await["status"] == "ok"
    })
    .await;
    assert_eq!(b.balance(0, &to).await, 400);

    // Removing C from B: refused while its account holds collateral, with the reason.
    let remove = |net: &Net, chain: ChainId| {
        distpos_cli(&[
            "peer",
            "remove",
            &chain.to_string(),
            "--node",
            net.url(0),
            "--key",
            &key(net, "producer-0"),
        ])
    };
    let (ok, _, err) = remove(b, cc);
    assert!(!ok && err.contains("holds 9700"), "{err}");
    let tx = b
        .tx(
            0,
            &b.faucet,
            Body::WithdrawCollateral {
                peer: cc,
                amount: 9_700,
            },
        )
        .await;
    let h = b.submit(0, &tx).await;
    b.wait_irreversible(0, &h, 30).await;
    let (ok, out, err) = remove(b, cc);
    assert!(ok && out.contains("approved and executed"), "{err}\n{out}");
    let (status, _) = b
        .try_get(0, &format!("/v1/correspondents/{cc}"))
        .await
        .unwrap();
    assert_eq!(status, 404);
    b.assert_supply_settled().await;
    c.assert_supply_settled().await;
}
