//! End-to-end: the `trio` network (three chains) finds its routes through DNS — SRV and
//! TXT records served by a real dnsmasq on loopback — and transfers cross between all
//! of them.

use distpos_adapters::Client;
use distpos_chain::{Body, QualifiedAddress};
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use distpos_testnets::launcher;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trio_routes_through_dns_and_delivers_between_all_chains() {
    let _serial = crate::support::serial();
    let trio = crate::support::SpecNet::start("trio").await;
    let net = &trio.net;
    assert!(net.dns.is_some());
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

    // Every chain funds every other chain's correspondent account.
    let mut deposits = Vec::new();
    for (i, c) in net.chains.iter().enumerate() {
        for other in net.chains.iter().filter(|o| o.chain != c.chain) {
            deposits.push((
                i,
                clients[i]
                    .send(
                        &keys[i],
                        Body::DepositCollateral {
                            peer: other.chain,
                            amount: 10_000,
                        },
                        None,
                    )
                    .await
                    .unwrap(),
            ));
        }
    }
    for (i, h) in deposits {
        clients[i].wait(&h, Duration::from_secs(60)).await.unwrap();
    }

    // A transfer along every edge: 0→1, 1→2, 2→0.
    let mut sent = Vec::new();
    for i in 0..3 {
        let j = (i + 1) % 3;
        let to = keyfile::address(&SecretKey::from_seed(&[b't', i as u8]));
        let body = Body::Transfer {
            to: QualifiedAddress::new(net.chains[j].chain, to),
            amount: 100 + i as u128,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        };
        sent.push((
            i,
            j,
            to,
            clients[i].send(&keys[i], body, None).await.unwrap(),
        ));
    }
    for (i, j, to, h) in sent {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let v: serde_json::Value = clients[i].get_json(&format!("/v1/txs/{h}")).await.unwrap();
            if v["cross_chain"]["stage"] == "settled_delivered" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "transfer {i}→{j} did not settle: {v}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let acct: serde_json::Value = clients[j]
            .get_json(&format!("/v1/accounts/{to}"))
            .await
            .unwrap();
        assert_eq!(acct["balance"], (100 + i).to_string());
        // The route came from DNS.
        let route: serde_json::Value = clients[i]
            .get_json(&format!("/v1/routes/{}", net.chains[j].chain))
            .await
            .unwrap();
        assert_eq!(route["endpoints"][0]["source"], "dns", "{route}");
        assert!(route["dns_ttl_left_ms"].as_u64().is_some(), "{route}");
    }
    // A chain the zone does not know is refused as no such chain.
    let r = reqwest::get(format!("{}/v1/routes/dead", net.chains[0].urls[0]))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
