//! End-to-end: the metrics an operator alerts on. Two linked chains exchange a
//! delivered and a bounced transfer; then every metric that the shipped alert rules
//! (`docs/prometheus-alerts.yml`) and Grafana dashboard (`docs/grafana-dashboard.json`)
//! name is in both chains' `/metrics`, served as OpenMetrics, and the transfers, the
//! correspondent status and the light clients show in it as the JSON API shows them.

use crate::support::*;
use distpos_chain::ChainParams;
use distpos_gateway::keyfile;
use distpos_proofs::SecretKey;
use distpos_testnets::metrics_text::{names, samples};
use std::collections::BTreeSet;

const ALERTS: &str = include_str!("../../../docs/prometheus-alerts.yml");
const DASHBOARD: &str = include_str!("../../../docs/grafana-dashboard.json");

/// A histogram's series beside its name.
const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// Every `distpos_[a-z_]+` in `text` (expressions, and metrics named in descriptions),
/// a histogram's suffix dropped.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("distpos_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.insert(strip_histogram(&tail[..len]).to_string());
        }
        rest = &tail[len..];
    }
    out
}

fn strip_histogram(name: &str) -> &str {
    HISTOGRAM_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// `GET /metrics` of node 0: its content type and text.
async fn scrape(net: &Net) -> (String, String) {
    let r = net
        .http
        .get(format!("{}/metrics", net.url(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, r.text().await.unwrap())
}

/// The value of the one series of `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
        })
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

#[test]
fn names_are_read_from_expressions_and_histograms_lose_their_suffix() {
    let got = metric_names_in(
        "histogram_quantile(0.9, rate(distpos_block_apply_seconds_bucket[5m])) \
         / up{job=\"distpos\"} + distpos_transfers_total{outcome=\"bounced\"} mydistpos_x",
    );
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        ["distpos_block_apply_seconds", "distpos_transfers_total"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_alert_rules_and_the_dashboard_is_exported() {
    let _serial = crate::support::serial();
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard JSON");
    assert!(dashboard["panels"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    let mut wanted = metric_names_in(ALERTS);
    let in_alerts = wanted.len();
    wanted.extend(metric_names_in(DASHBOARD));
    assert!(
        in_alerts >= 15 && wanted.len() >= 20,
        "the docs name what an operator watches: {wanted:?}"
    );

    let (a, b) = Net::start_pair(0xac, 0xbc, 1, 500, ChainParams::default()).await;
    let (ca, cb) = (a.chain, b.chain);
    // 1,500 of 2,000 delivered leaves 500: below the low watermark (1,000), and too
    // little for 800, which bounces.
    deposit(&b, ca, 2_000).await;
    let bob = keyfile::address(&SecretKey::from_seed(b"bob"));
    let h1 = send_cross(&a, cb, bob, 1_500).await;
    wait_stage(&a, &h1, "settled_delivered", 120).await;
    let h2 = send_cross(&a, cb, bob, 800).await;
    wait_stage(&a, &h2, "refunded", 120).await;

    for (net, peer) in [(&a, cb), (&b, ca)] {
        let (content_type, text) = scrape(net).await;
        assert_eq!(
            content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "the type of what the encoder writes"
        );
        assert!(text.ends_with("# EOF\n"));
        let exported: BTreeSet<String> = names(&text)
            .iter()
            .map(|n| strip_histogram(n).to_string())
            .collect();
        let missing: Vec<&String> = wanted.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "chain {}: named in docs/ but not exported: {missing:?}\n{text}",
            net.chain
        );
        // Every series is labelled with the chain.
        let chain = net.chain.to_string();
        for s in samples(&text) {
            assert!(s.labels.contains(&format!("chain=\"{chain}\"")), "{s:?}");
        }
        // The peer's standing and light client, as the JSON API has them.
        let view = corr(net, peer).await;
        let p = peer.to_string();
        let status = view["status"].as_str().unwrap();
        for s in ["ok", "low", "exhausted", "suspended", "stalled"] {
            assert_eq!(
                value(
                    &text,
                    "distpos_correspondent_status",
                    &[("peer", &p), ("status", s)]
                ),
                Some(if s == status { 1.0 } else { 0.0 }),
                "{s} {view}"
            );
        }
        let head = value(&text, "distpos_light_client_head_height", &[("peer", &p)]);
        let head = head.unwrap() as u64;
        assert!(head >= 1, "{text}");
        assert!(view["light_client"]["head"].as_u64().unwrap() >= head);
        let lag = value(&text, "distpos_light_client_lag_seconds", &[("peer", &p)]);
        assert!(lag.is_some_and(|l| (0.0..120.0).contains(&l)), "{lag:?}");
        assert_eq!(
            value(&text, "distpos_peer_stalled", &[("peer", &p)]),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "distpos_relay_queue_depth", &[("destination", &p)]).map(|d| d >= 0.0),
            Some(true)
        );
    }

    // The transfers, counted where each chain's blocks decided them.
    let (_, at_b) = scrape(&b).await;
    let from_a = ca.to_string();
    let transfers = |text: &str, peer: &str, outcome: &str, reason: &str| {
        value(
            text,
            "distpos_transfers_total",
            &[("peer", peer), ("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(transfers(&at_b, &from_a, "delivered", ""), Some(1.0));
    assert_eq!(
        transfers(&at_b, &from_a, "bounced", "insufficient_collateral"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &at_b,
            "distpos_correspondent_status",
            &[("peer", &from_a), ("status", "low")]
        ),
        Some(1.0),
        "500 left under a watermark of 1,000"
    );
    let (_, at_a) = scrape(&a).await;
    let to_b = cb.to_string();
    assert_eq!(transfers(&at_a, &to_b, "acknowledged", ""), Some(1.0));
    assert_eq!(
        transfers(&at_a, &to_b, "refunded", "insufficient_collateral"),
        Some(1.0)
    );
    assert_eq!(transfers(&at_a, &to_b, "delivered", ""), Some(0.0));
}
