//! The console's views on JSON as nodes serve it.

use super::super::health::{Health, Verdict};
use super::*;
use serde_json::json;

const NOW: u64 = 1_796_218_460_000;

#[test]
fn status_shows_the_verdict_and_the_figures() {
    let st = json!({
        "chain_id": "e2e4", "version": "0.1.0",
        "head": {"height": 62, "id": "0xe572521441792199e7a996c0b4de183a074a004bed237d97693bcda57a25c50d"},
        "lib": {"height": 60},
        "schedule": {"version": 0, "producers": ["0x03b1", "0x03e7", "0x02de"]},
        "pending_schedule": null,
        "participation": {"filled": 128, "window": 128, "percent": 100},
        "mempool_txs": 4, "producer_key": null, "block_interval_ms": 500, "min_fee": "1"
    });
    let peers = json!({"correspondents": [{"chain": "d157", "status": "ok"}, {"chain": "b2", "status": "stalled"}]});
    let v = Verdict {
        health: Health::Producing,
        why: "last block 300 ms ago".into(),
    };
    let out = status("http://n", &st, &v, Some(NOW - 300), Some(&peers), NOW);
    for want in [
        "health          producing: last block 300 ms ago",
        "head            62  0xe57252…c50d  (300 ms ago)",
        "LIB             60 (2 blocks behind the head)",
        "participation   100% (128 of the last 128 slots filled)",
        "producers       3 in schedule v0\n",
        "mempool         4 transactions",
        "peers           2 chains: d157 ok, b2 stalled",
        "(chain e2e4, version 0.1.0)",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    // Nothing usable: no panic, dashes.
    let out = status("http://n", &json!([]), &v, None, None, NOW);
    assert!(out.contains("head            —  —\n"), "{out}");
    assert!(out.contains("peers           ? (not available)"), "{out}");
}

#[test]
fn producers_come_most_voted_first() {
    let v = json!({
        "schedule": {"version": 2, "producers": ["a"]},
        "participation": {"filled": 3, "window": 4, "percent": 75},
        "producers": [
            {"account": "0xLow", "total_votes": "5", "produced": 1, "missed": 2, "active": false, "registered": true, "slashed": false, "last_block_height": 3, "signing_key": "0x02de960e373f44db8c32007163d87790fa1304b9643f4cc4b3573ad2f52b17e5a5", "url": "http://b"},
            {"account": "0xHigh", "total_votes": "1000000", "produced": 20, "missed": 0, "active": true, "registered": true, "slashed": false, "last_block_height": 60, "signing_key": "0x03", "url": "http://a"}
        ]
    });
    let out = producers(&v);
    assert!(
        out.starts_with("schedule v2: 1 producers; participation 75%"),
        "{out}"
    );
    let high = out.find("0xHigh").unwrap();
    let low = out.find("0xLow").unwrap();
    assert!(high < low, "{out}");
    assert!(
        out.contains("0xHigh   active   1000000        20       0          60"),
        "{out}"
    );
    assert!(out.contains("standby"), "{out}");
    assert!(producers(&json!({})).contains("no producer registered"));
}

#[test]
fn an_account_reads_as_fields() {
    let v = json!({"address": "0xA", "balance": "1000201", "stake": "1000000", "unbonding": "0",
        "nonce": 0, "next_nonce": 1, "votes": ["0xA"], "proxy": null, "proxied_weight": "0",
        "delegators": 0, "producer": {"registered": true, "slashed": false, "total_votes": "7",
        "produced": 20, "missed": 1, "last_block_height": 60, "signing_key": "0x03", "url": "http://a"}});
    let out = account(&v);
    for want in [
        "balance        1000201",
        "nonce          0 (the next transaction takes 1)",
        "votes for      0xA",
        "proxy          — (votes directly)",
        "producer       registered: 7 votes, 20 produced, 1 missed, last block 60",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    assert!(!account(&json!({"votes": []})).contains("producer "));
}

#[test]
fn peers_show_collateral_light_clients_and_why_one_stalled() {
    let v = json!({"correspondents": [{
        "chain": "d157", "status": "stalled", "available": "99995", "collateral": "100000",
        "reserved": "5", "credit_limit": "0", "delivered_in": 3, "bounced_in": 1,
        "sent_out": 4, "acked_out": 4, "refunded_out": 0, "reputation": 47,
        "bounces": {"insufficient_collateral": 1}, "refused_proofs": 0, "equivocations": 1,
        "policy": {"policy": {"max_transfer": "5000", "rate_capacity": "1000", "rate_per_s": "10",
            "delay_above": "0", "delay_ms": 0, "min_reputation": 60, "below_reputation": "refuse"},
            "level": "-200", "level_at_ms": 1, "delayed": 2, "refused": 1},
        "light_client": {"head": 35, "lib": 33, "head_age_ms": 13782,
            "stalled": {"reason": "header 36 is not signed by the schedule", "since_ms": NOW - 65_000}},
        "relay_duty": {"holder": "0x02de960e373f44db8c32007163d87790fa1304b9643f4cc4b3573ad2f52b17e5a5", "ours": false}
    }]});
    let out = peers(&v, NOW);
    assert!(out.contains("d157   stalled   47"), "{out}");
    assert!(
        out.contains("d157 reputation 47: bounced insufficient_collateral 1; equivocations 1"),
        "{out}"
    );
    assert!(
        out.contains("d157 policy: max 5000, rate 1000 at 10/s (level -200), reputation below 60: refuse; delayed 2, refused 1"),
        "{out}"
    );
    assert!(out.contains("99995"), "{out}");
    assert!(out.contains("3/1") && out.contains("4/4/0"), "{out}");
    assert!(out.contains("13 s ago"), "{out}");
    assert!(out.contains("0x02de96…e5a5"), "{out}");
    assert!(
        out.contains("d157 stalled (seen 1 min 5 s ago): header 36 is not signed by the schedule"),
        "{out}"
    );
    assert!(peers(&json!({"correspondents": []}), NOW).contains("no peer chain"));
}

#[test]
fn routes_show_each_endpoint_with_its_origin_and_health() {
    let v = json!({
        "routes": [{"chain": "d157", "negative": false, "dns_ttl_left_ms": null, "endpoints": [
            {"url": "http://127.0.0.1:27710", "origin": "config", "health": "up", "priority": 10, "weight": 1,
             "latency_ms": 12, "last_success_ms": NOW - 5_000, "last_failure_ms": null, "failures": 0, "retry_at_ms": null},
            {"url": "http://10.0.0.9:7700", "origin": "override", "scope": "node", "health": "down", "priority": 1, "weight": 1,
             "latency_ms": null, "last_success_ms": null, "last_failure_ms": NOW - 1_000, "failures": 3, "retry_at_ms": NOW + 4_000}
        ]}],
        "dns": {"lookups": 2, "failures": 1},
        "overrides": {"scope": "node", "stored": 1, "limit": 1024}
    });
    let out = routes(&v, NOW);
    assert!(
        out.contains("d157   http://127.0.0.1:27710  config"),
        "{out}"
    );
    assert!(
        out.contains("override (this node)  down (retry in 4.0 s)"),
        "{out}"
    );
    assert!(out.contains("12 ms  5.0 s ago"), "{out}");
    assert!(
        out.contains("overrides: 1 stored on this node (at most 1024)"),
        "{out}"
    );
    assert!(out.contains("dns: 2 lookups, 1 failures"), "{out}");
}

fn delivery(id: &str, state: &str, held: bool, created: u64) -> Value {
    json!({"id": id, "destination": "d157", "state": state, "held": held, "attempts": 2,
        "created_ms": created, "next_attempt_ms": NOW + 3_000, "last_error": null,
        "last_endpoint": "http://127.0.0.1:27710",
        "payload": {"delivery_batch": {"transfers": [{}, {}]}}})
}

#[test]
fn the_queue_reads_like_mailq() {
    let receipts = json!({"id": "v2-receipts-e2e4-33", "destination": "e2e4", "state": "done",
        "held": false, "attempts": 1, "created_ms": NOW - 10_000, "next_attempt_ms": 0,
        "last_error": "HTTP 503: busy, try again later",
        "payload": {"receipt_batch": {"receipts": [{"outcome": {"inbound_batch": {"results": [{}, {}, {}]}}}]}}});
    let items = vec![
        delivery("v2-delivery-d157-30-0", "queued", false, NOW - 65_000),
        delivery("v2-delivery-d157-31-0", "queued", true, NOW - 1_000),
        receipts,
    ];
    let out = queue(&items, NOW);
    assert!(
        out.contains("v2-delivery-d157-30-0  delivery  d157          2  queued"),
        "{out}"
    );
    assert!(out.contains("1 min 5 s  in 3.0 s"), "{out}");
    assert!(out.contains("queued, held"), "{out}");
    assert!(out.contains("receipts  e2e4          3  done"), "{out}");
    assert!(out.contains("HTTP 503: busy"), "{out}");
    assert!(
        out.ends_with(
            "-- 3 items: 2 queued, 0 delivered, 0 expired, 1 done; 1 held; oldest unfinished 1 min 5 s\n"
        ),
        "{out}"
    );
    assert_eq!(queue(&[], NOW), "relay queue is empty\n");
}

#[test]
fn a_transfer_shows_both_chains_views() {
    let here = json!({"hash": "0x472f", "status": "irreversible", "height": 30, "index": 0,
        "receipt": {"amount": "5", "fee": "1"},
        "cross_chain": {"direction": "outbound", "stage": "refunded", "bounce_reason": "insufficient_collateral",
            "peer": "d157", "settled": {"bounced": "insufficient_collateral", "height": 36, "amount": "5"},
            "relay": delivery("v2-delivery-d157-30-0", "delivered", false, NOW - 1_000), "inbound": null}});
    let there = Other::Known {
        url: "http://127.0.0.1:27710".into(),
        answer: json!({"status": "inbound", "cross_chain": {"direction": "inbound", "stage": "bounced",
            "bounce_reason": "insufficient_collateral", "peer": "e2e4",
            "inbound": {"sender": "e2e4x0xS", "recipient": "0xR", "amount": "5", "height": 33, "tx": "0x34fd"},
            "relay": null}}),
    };
    let out = transfer("http://a", &here, Some(&there), NOW);
    for want in [
        "status         irreversible in block 30 (index 0)",
        "direction      outbound to d157",
        "stage          refunded: bounced by d157 (insufficient_collateral); the sender was refunded here",
        "bounce reason  insufficient_collateral",
        "settled        refunded (insufficient_collateral) at block 36, amount 5",
        "relay item     v2-delivery-d157-30-0: delivered, 2 attempts, last via http://127.0.0.1:27710, next in 3.0 s",
        "on d157 (the destination), asked at http://127.0.0.1:27710:",
        "stage          bounced: refused here (insufficient_collateral); e2e4 refunds the sender",
        "recipient      0xR",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let out = transfer(
        "http://a",
        &here,
        Some(&Other::Unreachable("no route".into())),
        NOW,
    );
    assert!(
        out.ends_with("on d157 (the destination): could not ask: no route\n"),
        "{out}"
    );
    let local = json!({"hash": "0x1", "status": "pending"});
    assert!(transfer("http://a", &local, None, NOW)
        .contains("cross-chain  no: a transaction of this chain only"));
}
