//! The newcomer's first run (`cargo run --release`, `distpos demo`): brings up the
//! `duo` network on loopback, sends transfers both ways — one of them bouncing on
//! exhausted collateral and refunded — prints what happened and the commands to look
//! around, and keeps the network running until Ctrl-C.

use crate::launcher;
use distpos_adapters::Client;
use distpos_gateway::{keyfile, runtime};

/// Prints a line to stdout; exits quietly if stdout is gone.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}
use distpos_chain::{Body, QualifiedAddress};
use distpos_proofs::{ChainId, Hash32, SecretKey};
use std::{path::Path, time::Instant};

/// Runs the demo in `dir` with ports from `base_port`. With `keep_running`, the
/// network stays up until Ctrl-C; otherwise (`--once`) it is stopped at the end, also
/// when the scenario failed, and an unexpected outcome is an error.
pub async fn run(dir: &Path, base_port: u16, keep_running: bool) -> anyhow::Result<()> {
    let result = scenario(dir, base_port, keep_running).await;
    if !keep_running {
        let n = launcher::stop(dir)?;
        say!("stopped {n} processes");
    }
    result
}

async fn scenario(dir: &Path, base_port: u16, keep_running: bool) -> anyhow::Result<()> {
    let spec = launcher::builtin("duo")?;
    say!(
        "distpos demo: two chains of three producers each, on 127.0.0.1 (folder {})",
        dir.display()
    );
    let net = launcher::prepare(&spec, dir, base_port, runtime::now_ms())?;
    launcher::start(&net, dir).await?;
    let (a, b) = (&net.chains[0], &net.chains[1]);
    for c in [a, b] {
        say!("  chain {:>5}: {}", c.chain.to_string(), c.urls.join("  "));
    }
    let (ka, kb) = (launcher::faucet(a)?, launcher::faucet(b)?);
    let (ca, cb) = (Client::new(&a.urls[0])?, Client::new(&b.urls[0])?);

    say!("\n1. collateral: each chain funds the other's correspondent account with 1000");
    let d1 = cb
        .send(
            &kb,
            Body::DepositCollateral {
                peer: a.chain,
                amount: 1_000,
            },
            None,
        )
        .await?;
    let d2 = ca
        .send(
            &ka,
            Body::DepositCollateral {
                peer: b.chain,
                amount: 1_000,
            },
            None,
        )
        .await?;
    cb.wait(&d1, std::time::Duration::from_secs(60)).await?;
    ca.wait(&d2, std::time::Duration::from_secs(60)).await?;

    let bob = keyfile::address(&SecretKey::from_seed(b"demo bob"));
    let alice = keyfile::address(&SecretKey::from_seed(b"demo alice"));
    say!("2. transfers:");
    let t1 = transfer(&ca, &ka, b.chain, bob, 300).await?;
    let t2 = transfer(&cb, &kb, a.chain, alice, 200).await?;
    let available: serde_json::Value = cb
        .get_json(&format!("/v1/correspondents/{}", a.chain))
        .await?;
    let avail: i128 = available["available"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let too_much = (avail.max(0) as u128) + 500;
    let t3 = transfer(&ca, &ka, b.chain, bob, too_much).await?;
    let mut outcomes = Vec::new();
    for (label, client, hash, started) in [
        (
            format!("{} → {}  300 to {bob}", a.chain, b.chain),
            &ca,
            t1.0,
            t1.1,
        ),
        (
            format!("{} → {}  200 to {alice}", b.chain, a.chain),
            &cb,
            t2.0,
            t2.1,
        ),
        (
            format!(
                "{} → {}  {too_much} (more than the collateral left)",
                a.chain, b.chain
            ),
            &ca,
            t3.0,
            t3.1,
        ),
    ] {
        let stage = wait_final(client, &hash).await?;
        outcomes.push(stage.starts_with("delivered"));
        say!(
            "   {label}\n      {stage} after {} ms   (tx {hash})",
            started.elapsed().as_millis()
        );
    }

    if outcomes != [true, true, false] {
        anyhow::bail!(
            "unexpected outcomes (delivered?) {outcomes:?}; expected two deliveries and one bounce"
        );
    }
    say!("\n3. correspondent accounts now:");
    for (client, peer, on) in [(&cb, a.chain, b.chain), (&ca, b.chain, a.chain)] {
        let v: serde_json::Value = client
            .get_json(&format!("/v1/correspondents/{peer}"))
            .await?;
        say!(
            "   on {on}: account of {peer}: collateral {} available {} status {} (delivered {}, bounced {})",
            v["collateral"].as_str().unwrap_or("?"),
            v["available"].as_str().unwrap_or("?"),
            v["status"].as_str().unwrap_or("?"),
            v["delivered_in"],
            v["bounced_in"],
        );
    }

    let (ua, ub) = (&a.urls[0], &b.urls[0]);
    say!(
        "\n4. look around (the network keeps running{}):",
        if keep_running {
            "; Ctrl-C stops it"
        } else {
            ""
        }
    );
    say!("   distpos status --node {ua}");
    say!("   distpos routes --node {ua}");
    say!("   distpos peers --node {ub}");
    say!(
        "   distpos transfer {} --node {ua}   # both chains' view of it",
        t1.0
    );
    say!("   distpos queue --node {ua} --token <api_token of node-0.toml>");
    say!("   open {ua}/ in a browser (the live dashboard); metrics at {ua}/metrics");
    say!(
        "   faucet keys: {} and {}",
        a.faucet_key.display(),
        b.faucet_key.display()
    );
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "distpos".into());
    say!(
        "   send one yourself: {exe} tx --node {ua} --key {} --wait transfer --to {}x{} --amount 5",
        a.faucet_key.display(),
        b.chain,
        bob.to_checksum_hex().trim_start_matches("0x")
    );
    if keep_running {
        runtime::shutdown_signal().await;
        let n = launcher::stop(dir)?;
        say!("stopped {n} processes");
    }
    Ok(())
}

async fn transfer(
    client: &Client,
    key: &SecretKey,
    chain: ChainId,
    to: distpos_chain::Address,
    amount: u128,
) -> anyhow::Result<(Hash32, Instant)> {
    let started = Instant::now();
    let body = Body::Transfer {
        to: QualifiedAddress::new(chain, to),
        amount,
        memo: b"demo".to_vec(),
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    };
    Ok((client.send(key, body, None).await?, started))
}

async fn wait_final(client: &Client, hash: &Hash32) -> anyhow::Result<String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(v) = client
            .get_json::<serde_json::Value>(&format!("/v1/txs/{hash}"))
            .await
        {
            let stage = v["cross_chain"]["stage"].as_str().unwrap_or("").to_string();
            match stage.as_str() {
                "settled_delivered" => return Ok("delivered (and settled at the source)".into()),
                "refunded" => {
                    // The reason as the source knows it, from the destination's receipt.
                    let reason = v["cross_chain"]["bounce_reason"]
                        .as_str()
                        .unwrap_or("reason unknown");
                    return Ok(format!(
                        "bounced at the destination ({reason}), refunded to the sender"
                    ));
                }
                _ => {}
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("transfer {hash} did not finish within 120 s");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
