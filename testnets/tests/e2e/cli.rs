//! End-to-end: the operator's command line against a running node.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use std::process::Command;

/// The passphrase of the keystores these tests write (given to every command through
/// the environment, as an operator's service would).
const PASS: &str = "correct horse battery staple";

fn distpos(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(crate::support::distpos_exe())
        .args(args)
        .env("DISTPOS_KEY_PASSPHRASE", PASS)
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
