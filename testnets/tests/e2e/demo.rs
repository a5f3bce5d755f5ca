//! End-to-end: the README's run command. `distpos demo --once` is what
//! `cargo run --release` runs, minus waiting for Ctrl-C: it must bring up `duo`,
//! deliver a transfer each way, bounce and refund the oversized one, and stop every
//! node it started.

use std::process::Command;

#[test]
fn the_demo_shows_deliveries_both_ways_and_a_refund_then_stops() {
    let _serial = crate::support::serial();
    let dir = tempfile::Builder::new()
        .prefix("distpos-demo-")
        .tempdir()
        .unwrap();
    let net_dir = dir.path().join("duo");
    let base = distpos_testnets::launcher::free_port_range(100).unwrap();
    let out = Command::new(crate::support::distpos_exe())
        .args(["demo", "--once", "--base-port", &base.to_string(), "--dir"])
        .arg(&net_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Whatever happened, nothing may be left running.
    let pids = std::fs::read_to_string(net_dir.join("pids")).unwrap_or_default();
    assert!(pids.trim().is_empty(), "processes left behind: {pids}");
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .matches("delivered (and settled at the source)")
            .count(),
        2,
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("refunded to the sender").count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains("bounced at the destination (insufficient_collateral)"),
        "the source says why: {stdout}"
    );
    assert!(
        stdout.contains("status low"),
        "the bounce left the account low: {stdout}"
    );
    assert!(stdout.contains("stopped 6 processes"), "{stdout}");
    for k in 0..3u16 {
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok(),
            "port {} still in use",
            base + k
        );
    }
}
