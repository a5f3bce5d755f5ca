//! End-to-end: the operator's command line against a running node.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use std::process::Command;

/// The passphrase of the keystores these tests write (given to every command through
/// the environment, as an operator's service would).
const PASS: &str = "correct horse battery staple";

fn distpos(args: &[&str]) -> (bool, String, String) {
    distpos_with(args, &[])
}

/// Runs `distpos` with `args` and these environment variables (and no
/// `DISTPOS_NODE` or `DISTPOS_TOKEN` of the caller's).
fn distpos_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(crate::support::distpos_exe())
        .args(args)
        .env("DISTPOS_KEY_PASSPHRASE", PASS)
        .env_remove("DISTPOS_NODE")
        .env_remove("DISTPOS_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_keys_transfer_stake_and_metrics() {
    let _serial = crate::support::serial();
    let net = Net::start(0xc11, 1, 250, ChainParams::default()).await;
    let dir = net.dir.path();
    let faucet = dir.join("keys/faucet.json");
    let new_key = dir.join("keys/alice.json");

    let (ok, out, err) = distpos(&["keys", "new", "--out", new_key.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("V3 keystore"), "{out}");
    assert!(keyfile::is_keystore_file(&new_key));
    let alice = keyfile::read_with(&new_key, Some(PASS)).unwrap();
    let alice_addr = keyfile::address(&alice).to_string();
    assert!(out.contains(&alice_addr), "{out}");
    let (ok, _, err) = distpos(&["keys", "new", "--out", new_key.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "refuses to overwrite: {err}");

    let url = net.url(0).to_string();
    let (ok, out, err) = distpos(&[
        "tx",
        "--node",
        &url,
        "--key",
        faucet.to_str().unwrap(),
        "--wait",
        "transfer",
        "--to",
        &alice_addr,
        "--amount",
        "5000",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"applied\""), "{out}");
    assert_eq!(net.balance(0, &keyfile::address(&alice)).await, 5000);

    let (ok, out, err) = distpos(&[
        "tx",
        "--node",
        &url,
        "--key",
        new_key.to_str().unwrap(),
        "--wait",
        "stake",
        "--amount",
        "1000",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"applied\""), "{out}");
    let acct = net.get(0, &format!("/v1/accounts/{alice_addr}")).await;
    assert_eq!(acct["stake"], "1000");

    // Refusals are clear and exit non-zero.
    let (ok, _, err) = distpos(&[
        "tx",
        "--node",
        &url,
        "--key",
        new_key.to_str().unwrap(),
        "transfer",
        "--to",
        "e2e4x63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1ab",
        "--amount",
        "1",
    ]);
    assert!(!ok && err.contains("unknown_peer"), "{err}");
    let (ok, _, err) = distpos(&[
        "tx",
        "--node",
        &url,
        "--key",
        new_key.to_str().unwrap(),
        "transfer",
        "--to",
        "0x1234",
        "--amount",
        "1",
    ]);
    assert!(!ok && err.contains("--to"), "{err}");

    // Metrics with stable names.
    let text = net
        .http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "distpos_head_height",
        "distpos_lib_height",
        "distpos_mempool_txs",
        "distpos_txs_applied_total",
        "distpos_missed_slots",
        "distpos_block_apply_seconds",
    ] {
        assert!(text.contains(name), "metric {name} missing:\n{text}");
    }
    let applied: f64 = text
        .lines()
        .find(|l| l.starts_with("distpos_txs_applied_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert!(applied >= 2.0, "{text}");
}

#[test]
fn bad_config_names_the_field() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:1\"\n[mempool]\nmax_txs = \"many\"\n",
    )
    .unwrap();
    let (ok, _, err) = distpos(&["node", "--config", cfg.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("max_txs"), "{err}");
    std::fs::write(&cfg, "genesis = \"missing.json\"\n").unwrap();
    let (ok, _, err) = distpos(&["node", "--config", cfg.to_str().unwrap()]);
    assert!(!ok && err.contains("missing.json"), "{err}");
}

/// `distpos config check` passes a config `testnet init` wrote, and lists every problem
/// of a broken one with its field (a misspelt log level, a zero limit, a missing
/// genesis); `node` refuses an invalid log filter at start instead of going silent.
#[test]
fn config_check_lists_every_problem_and_bad_log_filters_stop_the_node() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = distpos(&[
        "testnet",
        "init",
        "--dir",
        dir.path().to_str().unwrap(),
        "--chain",
        "c0c",
        "--producers",
        "1",
    ]);
    assert!(ok, "{err}");
    let good = dir.path().join("node-0.toml");
    let (ok, out, err) = distpos(&["config", "check", good.to_str().unwrap()]);
    assert!(ok, "{err}\n{out}");
    assert!(out.contains("chain c0c") && out.contains(": ok"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "log = \"inf\"\ngenesis = \"missing.json\"\n[mempool]\nmax_txs = 0\n",
    )
    .unwrap();
    let (ok, out, _) = distpos(&["config", "check", bad.to_str().unwrap()]);
    assert!(!ok);
    for field in [
        "problem: log:",
        "problem: mempool.max_txs",
        "problem: genesis:",
    ] {
        assert!(out.contains(field), "{field} in {out}");
    }
    let (ok, _, err) = distpos(&["node", "--config", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("log:"), "{err}");
    // RUST_LOG is checked the same way.
    let out = std::process::Command::new(crate::support::distpos_exe())
        .args(["node", "--config", good.to_str().unwrap()])
        .env("RUST_LOG", "verbose")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("RUST_LOG is not a valid log filter"),
        "{err}"
    );
    let (ok, script, _) = distpos(&["completions", "bash"]);
    assert!(ok && script.contains("distpos"), "completions");
    let (ok, version, _) = distpos(&["--version"]);
    assert!(ok && version.contains("(git "), "{version}");
}

/// Keys: the known test key imports from hex to its known address, as an encrypted
/// keystore; that keystore imports again (and shows) with its passphrase and not with
/// another; a wrong hex is refused with the reason.
#[test]
fn keys_import_hex_and_keystores() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    std::fs::write(
        path("test.hex"),
        "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
    )
    .unwrap();
    let (ok, out, err) = distpos(&[
        "keys",
        "import",
        "--hex",
        &path("test.hex"),
        "--out",
        &path("test.json"),
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"),
        "{out}"
    );
    let (ok, out, err) = distpos(&["keys", "show", &path("test.json")]);
    assert!(
        ok && out.contains("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"),
        "{err}"
    );
    assert!(out.contains("V3 keystore"), "{out}");
    // The keystore is a standard one: it imports again under its passphrase.
    let (ok, out, err) = distpos(&[
        "keys",
        "import",
        "--keystore",
        &path("test.json"),
        "--out",
        &path("again.json"),
    ]);
    assert!(
        ok && out.contains("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"),
        "{err}"
    );
    std::fs::write(path("wrong.pass"), "not it\n").unwrap();
    let (ok, _, err) = distpos(&[
        "keys",
        "show",
        &path("test.json"),
        "--passphrase-file",
        &path("wrong.pass"),
    ]);
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    std::fs::write(path("short.hex"), "0x1234").unwrap();
    let (ok, _, err) = distpos(&[
        "keys",
        "import",
        "--hex",
        &path("short.hex"),
        "--out",
        &path("short.json"),
    ]);
    assert!(!ok && err.contains("32 bytes"), "{err}");
    // A dev key stays plaintext when asked, marked as such.
    let (ok, out, _) = distpos(&["keys", "new", "--plaintext", "--out", &path("dev.json")]);
    assert!(ok && out.contains("unencrypted dev key"), "{out}");
    let text = std::fs::read_to_string(path("dev.json")).unwrap();
    assert!(text.contains(keyfile::DEV_NOTE), "{text}");
}

/// Runs a console command that must succeed; returns its stdout.
fn console(args: &[&str], env: &[(&str, &str)]) -> String {
    let (ok, out, err) = distpos_with(args, env);
    assert!(ok, "distpos {args:?} failed: {err}\n{out}");
    out
}

/// Runs a console command with `--json`; returns the parsed output.
fn console_json(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = console(&args, env);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("distpos {args:?}: not JSON ({e}):\n{out}"))
}

/// The value after `key` on the `key  value` line of `out`.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).filter(|r| r.starts_with("  ")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key:?} line in\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_console_views_of_a_running_duo() {
    let _serial = crate::support::serial();
    let (a, mut b) = Net::start_pair(0xc31, 0xc32, 1, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    let (url_a, url_b) = (a.url(0).to_string(), b.url(0).to_string());
    let token = [("DISTPOS_TOKEN", crate::support::TOKEN)];
    let bob = keyfile::address(&distpos_proofs::SecretKey::from_seed(b"bob"));
    deposit(&b, ca, 100_000).await;
    let delivered = send_cross(&a, cb, bob, 50).await;
    let bounced = send_cross(&a, cb, bob, 200_000).await;
    wait_stage(&a, &delivered, "settled_delivered", 120).await;
    wait_stage(&a, &bounced, "refunded", 120).await;

    // status: the verdict and the head, from DISTPOS_NODE.
    let before = a.head(0).await;
    let out = console(&["status"], &[("DISTPOS_NODE", &url_a)]);
    let after = a.head(0).await;
    assert!(field(&out, "health").starts_with("producing: "), "{out}");
    let head: u64 = field(&out, "head")
        .split_whitespace()
        .next()
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no head in\n{out}"));
    assert!(
        (before..=after).contains(&head),
        "{before} <= {head} <= {after}\n{out}"
    );
    assert!(
        field(&out, "peers").contains(&format!("1 chain: {cb} ")),
        "{out}"
    );
    assert!(out.contains(&format!("(chain {ca}, version ")), "{out}");
    let v = console_json(&["status", "--node", &url_a], &[]);
    assert_eq!(v["verdict"]["health"], "producing", "{v}");
    assert!(v["verdict"]["why"].as_str().is_some_and(|w| !w.is_empty()));
    assert_eq!(v["node"], url_a.as_str());
    assert_eq!(v["status"]["chain_id"], ca.to_string());
    assert!(v["status"]["head"]["height"].as_u64().is_some(), "{v}");

    // producers and an account.
    let producers = a.get(0, "/v1/producers").await;
    let producer = producers["producers"][0]["account"]
        .as_str()
        .unwrap()
        .to_string();
    let out = console(&["producers", "--node", &url_a], &[]);
    let row = out
        .lines()
        .find(|l| l.starts_with(&producer))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains(" active "), "{row}");
    assert_eq!(
        console_json(&["producers", "--node", &url_a], &[])["producers"][0]["account"],
        producer
    );
    let faucet = keyfile::address(&a.faucet).to_string();
    let out = console(&["account", &faucet, "--node", &url_a], &[]);
    assert_eq!(
        field(&out, "balance"),
        a.balance(0, &keyfile::address(&a.faucet)).await.to_string(),
        "{out}"
    );
    assert_eq!(
        console_json(&["account", &faucet, "--node", &url_a], &[])["address"],
        faucet
    );

    // peers: B holds A's collateral, less what was delivered.
    let out = console(&["peers", "--node", &url_b], &[]);
    let row = out
        .lines()
        .find(|l| l.starts_with(&ca.to_string()))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(" ok ") && row.contains(" 99950 ") && row.contains(" 1/1 "),
        "{row}"
    );
    let v = console_json(&["peers", "--node", &url_b], &[]);
    assert_eq!(v["correspondents"][0]["available"], "99950", "{v}");

    // routes: A's static route to B.
    let out = console(&["routes", "--node", &url_a], &[]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&cb.to_string()) && l.contains(&url_b) && l.contains("config")),
        "{out}"
    );
    assert!(console_json(&["routes", "--node", &url_a], &[])["routes"].is_array());

    // transfer: the lifecycle on both chains, with the bounce reason.
    let h = delivered.to_string();
    let out = console(&["transfer", &h, "--node", &url_a], &[]);
    assert!(
        field(&out, "stage").starts_with("settled_delivered: "),
        "{out}"
    );
    assert!(
        out.contains(&format!("on {cb} (the destination), asked at {url_b}:")),
        "{out}"
    );
    assert!(
        out.contains("delivered: credited to the recipient here"),
        "{out}"
    );
    let v = console_json(&["transfer", &h, "--node", &url_a], &[]);
    assert_eq!(
        v["node"]["answer"]["cross_chain"]["stage"], "settled_delivered",
        "{v}"
    );
    assert_eq!(
        v["peer"]["answer"]["cross_chain"]["stage"], "delivered",
        "{v}"
    );
    let out = console(&["transfer", &bounced.to_string(), "--node", &url_a], &[]);
    assert!(field(&out, "stage").starts_with("refunded: "), "{out}");
    assert_eq!(
        out.matches("bounce reason  insufficient_collateral")
            .count(),
        2,
        "both chains say why:\n{out}"
    );

    // The queue is the operator's.
    let (ok, _, err) = distpos(&["queue", "--node", &url_a]);
    assert!(
        !ok && err.contains("the queue needs the operator token (--token or DISTPOS_TOKEN)"),
        "{err}"
    );
    let mut items = Vec::new();
    for t in [&delivered, &bounced] {
        let st = a.get(0, &format!("/v1/txs/{t}")).await;
        items.push(
            st["cross_chain"]["relay"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    items.dedup();
    let out = console(&["queue", "--node", &url_a], &token);
    for id in &items {
        assert!(
            out.lines().any(|l| l.starts_with(id.as_str())),
            "{id} in\n{out}"
        );
    }
    assert!(
        out.lines()
            .last()
            .is_some_and(|l| l.starts_with(&format!("-- {} items: ", items.len()))),
        "{out}"
    );
    let v = console_json(&["queue", "--node", &url_a], &token);
    assert_eq!(
        v["items"].as_array().map(Vec::len),
        Some(items.len()),
        "{v}"
    );

    // With B down, a transfer waits in A's queue: held, it is not sent when B is back
    // until released; an item the relay may be sending is not deleted.
    b.nodes[0].kill();
    let waiting = send_cross(&a, cb, bob, 7).await;
    let path = format!("/v1/txs/{waiting}");
    a.wait_for("the transfer's relay item to fail once", 60, || async {
        matches!(a.try_get(0, &path).await, Ok((200, v)) if v["cross_chain"]["relay"]["attempts"].as_u64() >= Some(1))
    })
    .await;
    let id = a.get(0, &path).await["cross_chain"]["relay"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = console(&["transfer", &waiting.to_string(), "--node", &url_a], &[]);
    assert!(field(&out, "stage").starts_with("forwarding: "), "{out}");
    assert!(
        out.contains(&format!("on {cb} (the destination): could not ask: ")),
        "{out}"
    );
    let (ok, _, err) = distpos_with(&["queue", "delete", &id, "--node", &url_a], &token);
    assert!(
        !ok && err.contains("409") && err.contains("hold it first"),
        "{err}"
    );
    let out = console(&["queue", "hold", &id, "--node", &url_a], &token);
    assert!(
        out.starts_with(&format!("held {id} (queued, held, ")),
        "{out}"
    );
    let out = console(&["queue", "--node", &url_a], &token);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id) && l.contains("queued, held")),
        "{out}"
    );
    b.restart(0).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let st = a.get(0, &path).await;
    assert_eq!(
        st["cross_chain"]["stage"], "forwarding",
        "held, not sent: {st}"
    );
    let out = console(&["queue", "release", "all", "--node", &url_a], &token);
    assert_eq!(
        out,
        format!("release all: 1 items changed, {} unchanged\n", items.len())
    );
    console(&["queue", "retry", &id, "--node", &url_a], &token);
    wait_stage(&a, &waiting, "settled_delivered", 120).await;

    // Deleting a settled transfer's item changes nothing of the transfer.
    let (ok, _, err) = distpos_with(&["queue", "delete", "all", "--node", &url_a], &token);
    assert!(!ok && err.contains("pass --yes to confirm"), "{err}");
    console(&["queue", "hold", &id, "--node", &url_a], &token);
    let out = console(&["queue", "delete", &id, "--node", &url_a], &token);
    assert!(
        out.starts_with(&format!(
            "deleted {id} from this node's relay queue. No money moved"
        )),
        "{out}"
    );
    let out = console(&["transfer", &waiting.to_string(), "--node", &url_a], &[]);
    assert!(
        field(&out, "stage").starts_with("settled_delivered: "),
        "{out}"
    );
    a.assert_supply_settled().await;
}
