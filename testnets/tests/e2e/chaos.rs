//! End-to-end: the crash soaks, small enough for the quick suite (the full figures
//! come from `distpos bench chaos|crash-restart|outage`, see the README). Each runs
//! real processes with a seed from the clock (printed; `DISTPOS_TEST_SEED` replays
//! it) and must end with no transfer lost or doubled, one branch per chain, and
//! supply holding.

use std::process::Command;

fn seed() -> String {
    let s = std::env::var("DISTPOS_TEST_SEED").unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string()
    });
    eprintln!("seed {s} (DISTPOS_TEST_SEED={s} replays it)");
    s
}

/// Runs `distpos bench <args>` and returns its JSON line.
fn soak(args: &[&str]) -> serde_json::Value {
    let out = Command::new(crate::support::distpos_exe())
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench {args:?} failed:\n{stderr}");
    let line = stdout.lines().last().unwrap_or_default();
    eprintln!("{line}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

#[test]
fn chaos_loses_and_doubles_nothing() {
    let _serial = crate::support::serial();
    let seed = seed();
    let r = soak(&[
        "chaos",
        "--transfers",
        "200",
        "--senders",
        "8",
        "--fault-secs",
        "45",
        "--seed",
        &seed,
    ]);
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["doubled"], 0, "{r}");
    assert_eq!(r["diverged_chains"], 0, "{r}");
    assert_eq!(r["supply_holds"], true, "{r}");
    assert_eq!(r["not_included"], 0, "{r}");
    assert_eq!(r["included"], 200, "{r}");
    // Both ways of ending happened (every tenth transfer's deadline has passed).
    assert!(r["delivered"].as_u64().unwrap() > 0, "{r}");
    assert!(r["refunded"].as_u64().unwrap() > 0, "{r}");
    let f = &r["faults"];
    let injected = f["node_kills"].as_u64().unwrap()
        + f["node_pauses"].as_u64().unwrap()
        + f["chain_crashes"].as_u64().unwrap();
    assert!(injected > 0, "faults were injected: {r}");
    assert!(
        f["chain_crashes"].as_u64().unwrap() >= 1,
        "a whole chain crashed: {r}"
    );
}

#[test]
fn full_crashes_converge_and_transfers_settle() {
    let _serial = crate::support::serial();
    let seed = seed();
    let r = soak(&["crash-restart", "--runs", "3", "--seed", &seed]);
    assert_eq!(r["converged"], r["runs"], "{r}");
    assert_eq!(r["transfers_settled"], r["transfers_sent"], "{r}");
    assert!(r["transfers_sent"].as_u64().unwrap() > 0, "{r}");
}
