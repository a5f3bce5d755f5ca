//! The `distpos` command's own surface: help, and clear errors for bad invocations
//! (the end-to-end suite in `testnets/tests/e2e` runs this binary against real
//! networks).

use std::process::Command;

fn distpos(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_distpos"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run distpos: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_the_commands() {
    let (ok, out, _) = distpos(&["--help"]);
    assert!(ok);
    for cmd in ["node", "tx", "testnet", "bench", "demo", "keys"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}

#[test]
fn a_missing_config_is_a_clear_error() {
    let (ok, _, err) = distpos(&["node", "--config", "/nonexistent/distpos.toml"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/distpos.toml"), "{err}");
}

#[test]
fn an_unknown_benchmark_is_refused_with_the_choices() {
    let (ok, _, err) = distpos(&["bench", "nonsense"]);
    assert!(!ok);
    assert!(err.contains("chaos") && err.contains("local"), "{err}");
}
