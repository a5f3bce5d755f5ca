//! End-to-end: forwarding through correspondents (DESIGN §12) on the `mesh` network —
//! six chains in a ring, each related to its two neighbours only, endpoints from DNS
//! SRV, forwarding routes partly from the node configs and partly from DNS TXT `via=`.
//! A transfer between every ordered pair of chains (30, up to three hops) is delivered
//! once, less one transit fee per chain in the middle; one whose second hop lacks
//! collateral is refunded at the origin, once, with the reason and the chain that
//! bounced it; one into a loop of routes bounces instead of circulating; supply holds
//! on every chain.

use distpos_adapters::Client;
use distpos_chain::{Address, Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::{ChainId, Hash32, SecretKey};
use distpos_testnets::launcher;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Collateral each chain holds for each neighbour (but see [`SHORT`]).
const COLLATERAL: u128 = 10_000_000;
/// a3 holds only this for a2: a transfer through a2 larger than it bounces at a3.
const SHORT: u128 = 1_000_000;
/// Every chain's transit fee (the mesh spec's).
const FEE: u128 = 1;

async fn get(c: &Client, path: &str) -> Value {
    c.get_json(path).await.unwrap()
}

async fn balance(c: &Client, a: &Address) -> u128 {
    get(c, &format!("/v1/accounts/{a}")).await["balance"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until `hash` on `c` has left the stages of a transfer on its way.
async fn settled(c: &Client, hash: &Hash32, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = get(c, &format!("/v1/txs/{hash}")).await;
        let stage = v["cross_chain"]["stage"].as_str().unwrap_or("").to_string();
        if stage == "settled_delivered" || stage == "refunded" {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not settle: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_cross_the_mesh_through_correspondents() {
    let _serial = crate::support::serial();
    let mesh = crate::support::SpecNet::start("mesh").await;
    let net = &mesh.net;
    let n = net.chains.len();
    assert_eq!(n, 6);
    let ids: Vec<ChainId> = net.chains.iter().map(|c| c.chain).collect();
    let clients: Vec<Client> = net
        .chains
        .iter()
        .map(|c| Client::new(&c.urls[0]).unwrap())
        .collect();
    let keys: Vec<SecretKey> = net
        .chains
        .iter()
        .map(|c| launcher::faucet(c).unwrap())
        .collect();
    let neighbours = |i: usize, j: usize| (i + 1) % n == j || (j + 1) % n == i;

    // Each chain funds its two neighbours' correspondent accounts; a3 (2) only a
    // little for a2 (1).
    let mut deposits = Vec::new();
    for i in 0..n {
        for j in (0..n).filter(|&j| neighbours(i, j)) {
            let amount = if (i, j) == (2, 1) { SHORT } else { COLLATERAL };
            let body = Body::DepositCollateral {
                peer: ids[j],
                amount,
            };
            deposits.push((i, clients[i].send(&keys[i], body, None).await.unwrap()));
        }
    }
    for (i, h) in deposits {
        clients[i].wait(&h, Duration::from_secs(60)).await.unwrap();
    }

    // One transfer between every ordered pair. Those from a1 go through the command
    // line, which finds the first hop from the node's routes; the others name it
    // from `GET /v1/routes/{chain}` (its `via`) themselves.
    let mut sent = Vec::new();
    for i in 0..n {
        for j in (0..n).filter(|&j| j != i) {
            let to = keyfile::address(&SecretKey::from_seed(&[b'm', i as u8, j as u8]));
            let amount = 1_000 + 10 * i as u128 + j as u128;
            let hash = if i == 0 {
                let out = std::process::Command::new(crate::support::distpos_exe())
                    .args([
                        "tx",
                        "--node",
                        &net.chains[0].urls[0],
                        "--key",
                        &net.chains[0].faucet_key.to_string_lossy(),
                        "transfer",
                        "--to",
                        &QualifiedAddress::new(ids[j], to).to_string(),
                        "--amount",
                        &amount.to_string(),
                    ])
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "{stderr}");
                if !neighbours(0, j) {
                    assert!(stderr.contains("is reached through chain"), "{stderr}");
                }
                stdout.trim().parse::<Hash32>().unwrap()
            } else {
                let via = if neighbours(i, j) {
                    None
                } else {
                    let route = get(&clients[i], &format!("/v1/routes/{}", ids[j])).await;
                    Some(ChainId::parse(route["via"].as_str().expect("a via route")).unwrap())
                };
                let body = Body::Transfer {
                    to: QualifiedAddress::new(ids[j], to),
                    amount,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via,
                };
                clients[i].send(&keys[i], body, None).await.unwrap()
            };
            sent.push((i, j, to, amount, hash));
        }
    }
    for (i, j, to, amount, hash) in &sent {
        let v = settled(&clients[*i], hash, &format!("transfer {i}→{j}")).await;
        assert_eq!(
            v["cross_chain"]["stage"], "settled_delivered",
            "{i}→{j}: {v}"
        );
        // Hops on the ring: the shorter way round; one fee per chain in the middle.
        let d = (j + n - i) % n;
        let hops = d.min(n - d) as u128;
        assert_eq!(
            balance(&clients[*j], to).await,
            amount - FEE * (hops - 1),
            "{i}→{j}"
        );
    }

    // The second hop lacks collateral: a1 → a3 through a2, more than a3 holds for a2.
    let to = keyfile::address(&SecretKey::from_seed(b"too big"));
    let a1_before = balance(&clients[0], &keyfile::address(&keys[0])).await;
    let big = Body::Transfer {
        to: QualifiedAddress::new(ids[2], to),
        amount: 2 * SHORT,
        memo: vec![],
        deliver_by: 0,
        fast_fee: 0,
        via: Some(ids[1]),
    };
    let h = clients[0].send(&keys[0], big, None).await.unwrap();
    let v = settled(&clients[0], &h, "the big transfer").await;
    assert_eq!(v["cross_chain"]["stage"], "refunded", "{v}");
    assert_eq!(
        v["cross_chain"]["bounce_reason"], "insufficient_collateral",
        "{v}"
    );
    assert_eq!(v["cross_chain"]["bounced_by"], ids[2].to_string(), "{v}");
    // Refunded once: the sender lost the transaction fee only (the chain's minimum,
    // 1, which the client pays when none is given).
    assert_eq!(
        balance(&clients[0], &keyfile::address(&keys[0])).await,
        a1_before - 1
    );
    assert_eq!(balance(&clients[2], &to).await, 0);

    // A loop in the routes: a1 and a2 each say the other forwards to a7.
    let lost = keyfile::address(&SecretKey::from_seed(b"loop"));
    let looped = Body::Transfer {
        to: QualifiedAddress::new(ChainId(0xa7), lost),
        amount: 500,
        memo: vec![],
        deliver_by: 0,
        fast_fee: 0,
        via: Some(ids[1]),
    };
    let h = clients[0].send(&keys[0], looped, None).await.unwrap();
    let v = settled(&clients[0], &h, "the looped transfer").await;
    assert_eq!(v["cross_chain"]["stage"], "refunded", "{v}");
    assert_eq!(v["cross_chain"]["bounce_reason"], "loop", "{v}");
    assert_eq!(v["cross_chain"]["bounced_by"], ids[1].to_string(), "{v}");

    // Nothing lost or made: supply holds on every chain, and nothing is in flight or
    // held anywhere once the receipts have come back.
    for (i, c) in clients.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = get(c, "/v1/supply").await;
            assert_eq!(s["holds"], true, "chain {i}: {s}");
            if s["in_flight"] == "0" && s["held"] == "0" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chain {i} still has work out: {s}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
