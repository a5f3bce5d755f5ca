//! End-to-end: three producer processes make one chain.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_producers_take_turns_and_agree() {
    let _serial = crate::support::serial();
    let net = Net::start(0xe2e4, 3, 250, ChainParams::default()).await;
    net.wait_for("LIB to pass 6 on node 0", 60, || async {
        net.lib(0).await >= 6
    })
    .await;

    // Every producer made blocks, in turn.
    let producers = net.get(0, "/v1/producers").await;
    for p in producers["producers"].as_array().unwrap() {
        assert!(
            p["produced"].as_u64().unwrap() >= 1,
            "producer {} made no block: {producers}",
            p["account"]
        );
    }

    // A transfer sent to node 1 becomes irreversible and reads the same everywhere.
    let to = keyfile::address(&SecretKey::from_seed(b"recipient"));
    let tx = net.tx(1, &net.faucet, transfer(to, 12_345)).await;
    let hash = net.submit(1, &tx).await;
    let at1 = net.wait_irreversible(1, &hash, 30).await;
    for i in [0, 2] {
        let at = net.wait_irreversible(i, &hash, 30).await;
        assert_eq!(
            at["block_id"], at1["block_id"],
            "node {i} included it in another block"
        );
        assert_eq!(at["receipt"], at1["receipt"]);
        assert_eq!(net.balance(i, &to).await, 12_345);
    }

    // Same state at the same height on all three.
    let h = at1["height"].as_u64().unwrap();
    let ids: Vec<_> = futures_blocks(&net, h).await;
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree at height {h}: {ids:?}"
    );

    // Two of the three producers gone: node 0 still makes its own blocks, but its LIB
    // cannot follow. `distpos status` says stalled, why, and exits 1.
    let mut net = net;
    net.nodes[1].kill();
    net.nodes[2].kill();
    let url = net.url(0).to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (mut stalled, mut last) = (false, String::new());
    while !stalled && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let url = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(distpos_exe())
                .args(["status", "--json", "--node", &url])
                .output()
                .expect("run distpos status")
        })
        .await
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        stalled = !out.status.success()
            && v["verdict"]["health"] == "stalled"
            && v["verdict"]["why"]
                .as_str()
                .is_some_and(|w| w.contains("LIB"));
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(stalled, "never stalled with 2 of 3 producers gone:\n{last}");
}

async fn futures_blocks(net: &Net, h: u64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..net.nodes.len() {
        let b = net.get(i, &format!("/v1/blocks/{h}")).await;
        out.push((
            b["id"].as_str().unwrap().to_string(),
            b["block"]["header"]["header"]["state_digest"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let _serial = crate::support::serial();
    let net = Net::start(0xbad, 1, 250, ChainParams::default()).await;
    net.wait_for("first blocks", 30, || async { net.head(0).await >= 2 })
        .await;
    let faucet = keyfile::address(&net.faucet);
    let before = net.balance(0, &faucet).await;
    let to = keyfile::address(&SecretKey::from_seed(b"x"));

    let expect = |status: u16, v: &serde_json::Value, code: &str, what: &str| {
        assert!((400..500).contains(&status), "{what}: status {status}: {v}");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert!(
            !v["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{what}: no message: {v}"
        );
    };

    // Malformed JSON and a well-formed non-transaction.
    let r = net
        .http
        .post(format!("{}/v1/txs", net.url(0)))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    expect(
        status,
        &r.json().await.unwrap(),
        "invalid_json",
        "malformed json",
    );
    let (s, v) = net
        .post(0, "/v1/txs", &serde_json::json!({"hello": "world"}))
        .await;
    expect(s, &v, "invalid_transaction", "not a transaction");

    // Unknown route and wrong method.
    let (s, v) = net.try_get(0, "/v1/nothing-here").await.unwrap();
    expect(s, &v, "not_found", "unknown route");
    let r = net
        .http
        .delete(format!("{}/v1/status", net.url(0)))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    expect(
        status,
        &r.json().await.unwrap(),
        "method_not_allowed",
        "wrong method",
    );

    // Oversized body (the default limit is 32 MiB).
    // Sent on its own connection: after a 413 the server closes it without reading the
    // rest, and a pooled client would otherwise reuse the dead connection.
    let big = vec![b'a'; 33 * 1024 * 1024];
    let lone = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = lone
        .post(format!("{}/v1/txs", net.url(0)))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        // The server may close the connection before the whole body is sent.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }

    // Bad signature.
    let mut tx = net.tx(0, &net.faucet, transfer(to, 5)).await;
    tx.signature.0[7] ^= 1;
    let (s, v) = net
        .post(0, "/v1/txs", &serde_json::to_value(&tx).unwrap())
        .await;
    expect(s, &v, "bad_signature", "bad signature");

    // Wrong chain id.
    let mut tx = net.tx(0, &net.faucet, transfer(to, 5)).await;
    tx.chain_id = distpos_proofs::ChainId(0xbae);
    let tx = resign(tx, &net.faucet);
    let (s, v) = net
        .post(0, "/v1/txs", &serde_json::to_value(&tx).unwrap())
        .await;
    expect(s, &v, "wrong_chain", "wrong chain");

    // Stale / wrong TaPoS.
    let mut tx = net.tx(0, &net.faucet, transfer(to, 5)).await;
    tx.ref_block_prefix ^= 0xdead;
    let tx = resign(tx, &net.faucet);
    let (s, v) = net
        .post(0, "/v1/txs", &serde_json::to_value(&tx).unwrap())
        .await;
    expect(s, &v, "tapos", "stale tapos");

    // Bad addresses in a transfer and in a path.
    let good = serde_json::to_value(net.tx(0, &net.faucet, transfer(to, 5)).await).unwrap();
    for bad in [
        "e2e4x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1", // 39 hex
        "e2e4x63ea7F78107dF4C6fd8b17e7b05b1b3D41a5B1aB", // bad checksum
        "zz12x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1ab",
        "123456789x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1ab",
        " e2e4x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1ab",
    ] {
        let mut v = good.clone();
        v["body"]["transfer"]["to"] = serde_json::json!(bad);
        let (s, body) = net.post(0, "/v1/txs", &v).await;
        expect(s, &body, "invalid_transaction", &format!("address {bad:?}"));
    }
    let (s, v) = net.try_get(0, "/v1/accounts/0x1234").await.unwrap();
    expect(s, &v, "invalid_address", "short address");
    let (s, v) = net.try_get(0, "/v1/txs/0xzz").await.unwrap();
    expect(s, &v, "invalid_hash", "bad hash");
    let (s, v) = net.try_get(0, "/v1/blocks/minus-one").await.unwrap();
    expect(s, &v, "invalid_height", "bad height");
    let (s, v) = net.try_get(0, "/v1/blocks?from=abc").await.unwrap();
    expect(s, &v, "invalid_query", "bad query");

    // Amounts must be decimal strings; insufficient funds is refused.
    let mut v = good.clone();
    v["body"]["transfer"]["amount"] = serde_json::json!(5);
    let (s, body) = net.post(0, "/v1/txs", &v).await;
    expect(s, &body, "invalid_transaction", "numeric amount");
    let tx = net.tx(0, &net.faucet, transfer(to, u128::MAX / 2)).await;
    let (s, v) = net
        .post(0, "/v1/txs", &serde_json::to_value(&tx).unwrap())
        .await;
    expect(s, &v, "insufficient_funds", "too much");

    // A forged block pushed by a "peer".
    let mut b = net.get(0, "/v1/blocks/head").await["block"].clone();
    b["header"]["header"]["height"] = serde_json::json!(999);
    let (s, v) = net.post(0, "/v1/blocks", &b).await;
    assert!((400..500).contains(&s), "forged block: {s} {v}");

    // Nothing changed: no transfer happened, the node still produces.
    let h = net.head(0).await;
    net.wait_for("more blocks", 20, || async { net.head(0).await > h + 2 })
        .await;
    assert_eq!(net.balance(0, &faucet).await, before);
    assert_eq!(net.balance(0, &to).await, 0);
}

fn resign(tx: distpos_chain::Transaction, key: &SecretKey) -> distpos_chain::Transaction {
    distpos_chain::UnsignedTx {
        chain_id: tx.chain_id,
        nonce: tx.nonce,
        fee: tx.fee,
        ref_block_num: tx.ref_block_num,
        ref_block_prefix: tx.ref_block_prefix,
        expiration: tx.expiration,
        body: tx.body,
    }
    .sign(key)
}
