//! End-to-end: an anonymous flood at the HTTP edge of a producing node (issue 14).
//! Thousands of connections that never send a request and hundreds of requests that
//! trickle their body leave the node producing, in step with its chain's other node
//! and answering `/v1/status` within a second, during the flood and after it; a 32 MiB
//! body of `[0,0,…]` is refused without the node's memory growing by 100 MB.

use crate::support::*;
use distpos_chain::ChainParams;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

/// A node's resident memory and its peak so far, in kB (`/proc/<pid>/status`).
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// How many file descriptors this process may open (the soft limit).
fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// One `GET /v1/status` on a fresh connection: its latency, or why it failed.
async fn status_latency(http: &reqwest::Client, url: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let r = http
        .get(format!("{url}/v1/status"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("status {}", r.status()));
    }
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok(t.elapsed())
}

/// Whether the server closed `s` (end of stream or reset), without waiting.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match s.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Runs the futures at once, their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_slow_bodies_and_a_huge_body_leaves_the_node_producing() {
    let _serial = crate::support::serial();
    let net = Net::start(0xf100d, 2, 250, ChainParams::default()).await;
    let url = net.url(0).to_string();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let pid = net.nodes[0].pid().unwrap();
    // Every probe on a connection of its own: the flood may close idle ones.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    net.wait_for("blocks on both nodes", 20, || async {
        net.head(0).await >= 4 && net.head(1).await >= 4
    })
    .await;
    let (idle_kb, _) = memory_kb(pid);
    let head_before = net.head(0).await;

    // What this process may open, with room left for the probes and the runtime.
    let budget = fd_limit().saturating_sub(300);
    let half_open_n = 2_000.min(budget * 3 / 4);
    let slow_n = 300.min(budget / 8);
    let started = Instant::now();
    let mut half_open = Vec::with_capacity(half_open_n);
    for _ in 0..half_open_n {
        if let Ok(s) = TcpStream::connect(addr).await {
            half_open.push(s);
        }
    }
    // Slow bodies: headers announcing 10 MB, then a byte every half second.
    let mut slow = Vec::new();
    for _ in 0..slow_n {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            continue;
        };
        slow.push(tokio::spawn(async move {
            let head = "POST /v1/txs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                        content-length: 10000000\r\n\r\n[";
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let until = Instant::now() + Duration::from_secs(13);
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if s.write_all(b"0,").await.is_err() {
                    return;
                }
            }
        }));
    }
    let opened = started.elapsed();

    // During the flood: the status answers within a second, every time. It lasts until
    // the last silent connection opened has passed the header-read timeout (10 s), so
    // that every one of them has been closed by then, however slowly they were opened.
    let mut during = Vec::new();
    let probe_until = Duration::from_secs(12).max(opened + Duration::from_secs(11));
    while started.elapsed() < probe_until {
        let l = status_latency(&probe, &url).await;
        during.push(l.unwrap_or_else(|e| panic!("status during the flood: {e}")));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let head_during = net.head(0).await;
    // The silent connections were closed by the node: to make room for others, or at
    // the header-read timeout (10 s).
    let closed = half_open.iter().filter(|s| closed_by_server(s)).count();
    drop(half_open);
    for t in slow {
        let _ = t.await;
    }
    let flood_end = Instant::now();
    let after = status_latency(&probe, &url)
        .await
        .unwrap_or_else(|e| panic!("status after the flood: {e}"));
    let since_end = flood_end.elapsed();
    let (head0, head1) = (net.head(0).await, net.head(1).await);

    // A 32 MiB body of zeros, the node's whole body limit.
    let limit = distpos_gateway::config::NodeConfig::default()
        .http
        .body_limit_bytes;
    let mut zeros = Vec::with_capacity(limit);
    zeros.push(b'[');
    while zeros.len() + 4 <= limit {
        zeros.extend_from_slice(b"0,");
    }
    zeros.push(b'0');
    zeros.push(b']');
    let (before_kb, _) = memory_kb(pid);
    // Four at once (this took a node to 1.2 GB before the limit was counted while
    // reading).
    let t = Instant::now();
    let posts = (0..4).map(|_| {
        net.http
            .post(format!("{url}/v1/txs"))
            .header("content-type", "application/json")
            .body(zeros.clone())
            .send()
    });
    let mut answers = Vec::new();
    for r in futures_join_all(posts).await {
        let r = r.unwrap();
        let status = r.status().as_u16();
        answers.push((
            status,
            r.json::<serde_json::Value>().await.unwrap_or_default(),
        ));
    }
    let huge_ms = t.elapsed().as_millis();
    let huge_status = answers[0].0;
    let (after_kb, peak_kb) = memory_kb(pid);

    println!(
        "{{\"test\":\"flood\",\"half_open\":{half_open_n},\"slow_bodies\":{slow_n},\"opened_ms\":{},\
         \"half_open_closed_by_node\":{closed},\"status_probes\":{},\"status_max_ms_during\":{},\
         \"status_ms_after\":{},\"status_answered_ms_after_end\":{},\"head_before\":{head_before},\
         \"head_after_flood\":{head_during},\"heads_after\":[{head0},{head1}],\"huge_status\":{huge_status},\
         \"huge_ms\":{huge_ms},\"rss_idle_kb\":{idle_kb},\"rss_before_huge_kb\":{before_kb},\
         \"rss_after_huge_kb\":{after_kb},\"rss_peak_kb\":{peak_kb},\"limit_kb\":102400}}",
        opened.as_millis(),
        during.len(),
        during.iter().max().unwrap().as_millis(),
        after.as_millis(),
        since_end.as_millis(),
    );
    let slowest = *during.iter().max().unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "status took {slowest:?} during the flood"
    );
    assert!(
        since_end < Duration::from_secs(1),
        "status after the flood in {since_end:?}"
    );
    if half_open_n + slow_n > 1_024 {
        assert!(
            net.log(0).contains("connection cap reached"),
            "the flood went past the cap of 1,024 connections"
        );
    }
    assert!(
        closed * 100 >= half_open_n * 95,
        "only {closed} of {half_open_n} silent connections were closed by the node"
    );
    // 250 ms blocks from two producers: ~48 in 12 s; more than half of them made.
    assert!(
        head_during >= head_before + 24,
        "the head went from {head_before} to {head_during} during the flood"
    );
    assert!(
        head0.abs_diff(head1) <= 2,
        "the nodes drifted apart: {head0} vs {head1}"
    );
    for (status, body) in &answers {
        assert!(
            *status == 400 && body["error"]["code"] == "batch_too_large",
            "32 MiB of zeros: {status} {body}"
        );
    }
    assert!(
        after_kb.saturating_sub(idle_kb) < 100 * 1024
            && peak_kb.saturating_sub(idle_kb) < 100 * 1024,
        "memory grew from {idle_kb} kB idle to {after_kb} kB (peak {peak_kb} kB)"
    );
    net.wait_for("a block after the huge bodies", 5, || async {
        net.head(0).await > head0
    })
    .await;
}
