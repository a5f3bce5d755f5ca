//! End-to-end: a node whose background task fails stops, loudly, instead of serving
//! HTTP while it no longer produces or relays.

use crate::support::*;
use distpos_chain::ChainParams;
use std::time::Duration;

#[test]
fn a_failed_relay_task_takes_the_node_down_with_the_reason() {
    let _serial = crate::support::serial();
    let (dir, files) = Net::write(0x5e1, 1, 250, ChainParams::default());
    let log = dir.path().join("node-0.log");
    let mut node = NodeProc::spawn_with_env(
        &files.configs[0],
        &files.urls[0],
        &log,
        &[],
        &[("DISTPOS_FAULT", "relay")],
    );
    let status = node.wait_exit(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("the node kept running:\n{}", tail(&text, 20)));
    assert!(!status.success(), "exit status {status}");
    assert!(
        text.contains("stopping the node") && text.contains("fault injected into the relay task"),
        "the log says which task failed and why:\n{}",
        tail(&text, 20)
    );
}

#[test]
fn without_a_fault_the_same_node_keeps_running() {
    let _serial = crate::support::serial();
    let (dir, files) = Net::write(0x5e2, 1, 250, ChainParams::default());
    let log = dir.path().join("node-0.log");
    let mut node = NodeProc::spawn(&files.configs[0], &files.urls[0], &log, &[]);
    assert!(
        node.wait_exit(Duration::from_secs(4)).is_none(),
        "{}",
        tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20)
    );
    node.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_port_zero_reports_its_url_in_the_ready_file() {
    let _serial = crate::support::serial();
    let (dir, files) = Net::write(0x5e3, 1, 250, ChainParams::default());
    let log = dir.path().join("node-0.log");
    let ready = dir.path().join("node-0.ready");
    let ready_arg = ready.to_string_lossy().to_string();
    let mut node = NodeProc::spawn(
        &files.configs[0],
        &files.urls[0],
        &log,
        &["--listen", "127.0.0.1:0", "--ready-file", &ready_arg],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            break text.trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline && node.running(),
            "no ready file:\n{}",
            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("ready file holds {url:?}"));
    assert_ne!(port, 0, "the bound port, not the one asked for");
    let status: serde_json::Value = reqwest::get(format!("{url}/v1/status"))
        .await
        .expect("the node answers at the URL of its ready file")
        .json()
        .await
        .expect("a JSON status");
    assert!(
        status["head"]["height"].is_u64() && status["identity"].is_string(),
        "{status}"
    );
    node.kill();
}
