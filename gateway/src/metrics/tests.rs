//! The exposition as Prometheus reads it: names, types, labels, and what a node and a
//! scrape set.

use super::*;
use crate::{
    api::{scrape::observe, views::transfers::correspondent},
    interchain::stall::PeerWatch,
    node::{transfer_log::tests::round_trip, Node},
    queue::Backlog,
    store::Store,
};
use distpos_chain::testkit::TestChain;
use std::collections::BTreeMap;

/// The value of the one sample of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = text.lines().filter_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (set, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse::<f64>().ok())?
    });
    let first = found.next();
    assert!(found.next().is_none(), "{name} {labels:?}: more than one");
    first
}

/// A node following `chain`'s blocks, exporting as a node of `chain` does.
fn follower(chain: &TestChain) -> Node {
    let metrics = Metrics::for_chain(chain.chain_id());
    let mut node = Node::open(
        chain.genesis.clone(),
        Store::in_memory(),
        None,
        100,
        metrics,
    )
    .expect("open");
    for b in &chain.blocks {
        node.on_block(b.clone(), b.header.header.timestamp_ms)
            .expect("block");
    }
    node
}

#[test]
fn metrics_are_openmetrics_with_counters_in_total_and_the_chain_on_every_series() {
    let m = Metrics::for_chain(ChainId(0xa1));
    m.txs_applied.inc_by(3);
    m.set_peer_stalled(ChainId(0xb2), true);
    Metrics::set_total(&m.dns_lookups, 7);
    Metrics::set_total(&m.dns_lookups, 5);
    let text = m.render();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        sample(&text, "distpos_txs_applied_total", &[("chain", "a1")]),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "distpos_dns_lookups_total", &[]),
        Some(7.0),
        "a running total never goes back"
    );
    assert_eq!(
        sample(
            &text,
            "distpos_peer_stalled",
            &[("chain", "a1"), ("peer", "b2")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "distpos_build_info",
            &[
                ("chain", "a1"),
                ("version", crate::build_info::VERSION),
                ("git", crate::build_info::GIT_REVISION)
            ]
        ),
        Some(1.0)
    );
    // Counts are counters (the encoder adds `_total`); none was a gauge.
    let types: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    for counter in [
        "distpos_missed_slots",
        "distpos_txs_applied",
        "distpos_blocks_applied",
        "distpos_reorgs",
        "distpos_transfers",
        "distpos_relay_attempts",
        "distpos_relay_failures",
        "distpos_dns_lookups",
        "distpos_dns_failures",
        "distpos_gossip_dropped",
        "distpos_peer_stalls",
    ] {
        assert_eq!(types.get(counter), Some(&"counter"), "{counter}");
    }
    assert_eq!(types.get("distpos_block_apply_seconds"), Some(&"histogram"));
    assert!(
        types.keys().all(|n| !n.ends_with("_total")),
        "a counter registered with its suffix: {types:?}"
    );
    // Every sample has the chain label.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("{chain=\"a1\""), "{line}");
    }
}

#[test]
fn metrics_count_each_transfer_a_committed_block_decides() {
    let t = round_trip();
    let (ca, cb) = (t.a.chain_id(), t.b.chain_id());
    let dest = follower(&t.b).metrics.render();
    let peer = ca.to_string();
    let count = |text: &str, peer: &str, outcome: &str, reason: &str| {
        sample(
            text,
            "distpos_transfers_total",
            &[("peer", peer), ("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(count(&dest, &peer, "delivered", ""), Some(1.0), "{dest}");
    assert_eq!(
        count(&dest, &peer, "bounced", "insufficient_collateral"),
        Some(1.0),
        "{dest}"
    );
    let source = follower(&t.a).metrics.render();
    let peer = cb.to_string();
    assert_eq!(
        count(&source, &peer, "acknowledged", ""),
        Some(1.0),
        "{source}"
    );
    assert_eq!(
        count(&source, &peer, "refunded", "insufficient_collateral"),
        Some(1.0),
        "{source}"
    );
    assert_eq!(count(&source, &peer, "delivered", ""), None);
}

#[test]
fn metrics_read_at_scrape_time_match_the_views() {
    let t = round_trip();
    let node = follower(&t.b);
    let snap = node.reads().latest();
    let m = node.metrics.clone();
    let watch = PeerWatch::default();
    let peer = t.a.chain_id();
    let now = t.b.head_time() + 4_500;
    let mut backlog = BTreeMap::new();
    backlog.insert(
        peer,
        Backlog {
            items: 2,
            oldest_created_ms: now - 7_250,
        },
    );
    // A destination that is no registered peer: its queue still shows.
    let other = ChainId(0xeee);
    backlog.insert(
        other,
        Backlog {
            items: 1,
            oldest_created_ms: now,
        },
    );
    observe(&m, &snap, &watch, &backlog, now);
    let text = m.render();
    let view = correspondent(&snap, &watch, peer, now)
        .expect("view")
        .expect("registered");
    let p = peer.to_string();
    let of_peer = [("peer", p.as_str())];
    assert_eq!(
        sample(&text, "distpos_correspondent_available", &of_peer),
        Some(view.available as f64),
        "{text}"
    );
    assert_eq!(
        view.status.as_str(),
        "low",
        "40 left under a watermark of 100"
    );
    for s in ["ok", "low", "exhausted", "suspended", "stalled"] {
        let want = if s == "low" { 1.0 } else { 0.0 };
        assert_eq!(
            sample(
                &text,
                "distpos_correspondent_status",
                &[("peer", &p), ("status", s)]
            ),
            Some(want),
            "{s}"
        );
    }
    assert_eq!(
        sample(&text, "distpos_light_client_head_height", &of_peer),
        Some(view.light_client.head as f64)
    );
    let age_ms = view.light_client.head_age_ms.expect("a head header");
    assert_eq!(
        sample(&text, "distpos_light_client_lag_seconds", &of_peer),
        Some(age_ms as f64 / 1000.0)
    );
    assert_eq!(sample(&text, "distpos_peer_stalled", &of_peer), Some(0.0));
    assert_eq!(
        sample(&text, "distpos_peer_stalls_total", &of_peer),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "distpos_transfers_total",
            &[("peer", &p), ("outcome", "refunded"), ("reason", "expired")]
        ),
        Some(0.0),
        "every series of a registered peer exists from the start"
    );
    let of_dest = [("destination", p.as_str())];
    assert_eq!(
        sample(&text, "distpos_relay_queue_depth", &of_dest),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "distpos_relay_queue_oldest_age_seconds", &of_dest),
        Some(7.25)
    );
    let o = other.to_string();
    assert_eq!(
        sample(&text, "distpos_relay_queue_depth", &[("destination", &o)]),
        Some(1.0)
    );
    let producer = distpos_chain::ledger::producer_list(&snap.state).expect("producers");
    assert_eq!(producer.len(), 1);
    assert!(
        sample(
            &text,
            "distpos_missed_slots_total",
            &[("producer", &producer[0].to_string())]
        )
        .is_some(),
        "{text}"
    );
    let percent = crate::api::views::participation_now(&snap, now).percent();
    assert_eq!(
        sample(&text, "distpos_participation_percent", &[]),
        Some(f64::from(percent))
    );

    // The queue to the other chain empties: the registered peer's series stay (at
    // zero), the other's go.
    observe(&m, &snap, &watch, &BTreeMap::new(), now);
    let text = m.render();
    assert_eq!(
        sample(&text, "distpos_relay_queue_depth", &of_dest),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "distpos_relay_queue_oldest_age_seconds", &of_dest),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "distpos_relay_queue_depth", &[("destination", &o)]),
        None
    );
}
