//! The relay's side of the console: the queue (`distpos queue`) and a transfer's
//! lifecycle on both chains (`distpos transfer`).

use super::super::table::{clip, duration, fields, short, until, Table};
use super::{num, text};
use serde_json::Value;

/// What a relay item carries: its kind and how many transfers.
pub(crate) fn item_kind(item: &Value) -> (&'static str, usize) {
    let p = &item["payload"];
    if let Some(d) = p.get("delivery_batch") {
        ("delivery", d["transfers"].as_array().map_or(0, Vec::len))
    } else if let Some(r) = p.get("receipt_batch") {
        let n = r["receipts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|rc| {
                rc["outcome"]["inbound_batch"]["results"]
                    .as_array()
                    .map_or(0, Vec::len)
            })
            .sum();
        ("receipts", n)
    } else {
        ("?", 0)
    }
}

/// An item's state as one word, `held` added.
fn item_state(item: &Value) -> String {
    let mut s = text(&item["state"]);
    if item["held"] == true {
        s.push_str(", held");
    }
    s
}

/// An item's state and attempts: "queued, held, 0 attempts".
pub(crate) fn item_summary(it: &Value) -> String {
    format!("{}, {} attempts", item_state(it), num(&it["attempts"]))
}

/// Whether the relay still works on an item (queued or delivered).
fn unfinished(item: &Value) -> bool {
    matches!(item["state"].as_str(), Some("queued" | "delivered"))
}

/// `GET /v1/relay/queue`, every page: one row per item, then a `mailq`-style summary.
pub(crate) fn queue(items: &[Value], now_ms: u64) -> String {
    if items.is_empty() {
        return "relay queue is empty\n".into();
    }
    let mut t = Table::new(&[
        "ID",
        "KIND",
        "TO",
        "TRANSFERS",
        "STATE",
        "ATTEMPTS",
        "AGE",
        "NEXT",
        "LAST ERROR",
    ])
    .right(&[3, 5]);
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut held = 0;
    let mut oldest: Option<u64> = None;
    for it in items {
        let (kind, n) = item_kind(it);
        *counts.entry(text(&it["state"])).or_default() += 1;
        let live = unfinished(it);
        if it["held"] == true {
            held += 1;
        }
        if live {
            if let Some(c) = it["created_ms"].as_u64() {
                oldest = Some(oldest.map_or(c, |o| o.min(c)));
            }
        }
        let next = match it["next_attempt_ms"].as_u64() {
            Some(at) if live && it["held"] != true => until(at, now_ms),
            _ => "—".into(),
        };
        t.row(vec![
            text(&it["id"]),
            kind.into(),
            text(&it["destination"]),
            n.to_string(),
            item_state(it),
            num(&it["attempts"]),
            it["created_ms"]
                .as_u64()
                .map_or("?".into(), |c| duration(now_ms.saturating_sub(c))),
            next,
            it["last_error"]
                .as_str()
                .map_or("—".into(), |e| clip(e, 60)),
        ]);
    }
    let by_state: Vec<String> = ["queued", "delivered", "expired", "done"]
        .iter()
        .map(|s| format!("{} {s}", counts.get(*s).copied().unwrap_or(0)))
        .collect();
    let mut out = t.render();
    out.push_str(&format!(
        "-- {} items: {}; {held} held",
        items.len(),
        by_state.join(", ")
    ));
    match oldest {
        Some(o) => out.push_str(&format!(
            "; oldest unfinished {}\n",
            duration(now_ms.saturating_sub(o))
        )),
        None => out.push_str("; nothing unfinished\n"),
    }
    out
}

/// One line about a relay item: "v2-delivery-d157-30-0: delivered, 2 attempts, last via
/// http://…, next in 3 s".
fn item_line(it: &Value, now_ms: u64) -> String {
    let mut s = format!(
        "{}: {}, {} attempts",
        text(&it["id"]),
        item_state(it),
        num(&it["attempts"])
    );
    if let Some(e) = it["last_endpoint"].as_str() {
        s.push_str(&format!(", last via {e}"));
    }
    if let Some(e) = it["last_error"].as_str() {
        s.push_str(&format!(", last error: {}", clip(e, 80)));
    }
    if let (true, false, Some(at)) = (
        unfinished(it),
        it["held"] == true,
        it["next_attempt_ms"].as_u64(),
    ) {
        s.push_str(&format!(", next {}", until(at, now_ms)));
    }
    s
}

/// What a stage means, in words.
fn stage_words(cross: &Value) -> String {
    let peer = text(&cross["peer"]);
    let reason = cross["bounce_reason"]
        .as_str()
        .map_or(String::new(), |r| format!(" ({r})"));
    let inbound = cross["direction"] == "inbound";
    match (cross["stage"].as_str().unwrap_or("?"), inbound) {
        ("in_flight", _) => {
            "in a block here, waiting for it to be irreversible before it is relayed".into()
        }
        ("forwarding", _) => format!("queued for delivery to {peer}, not taken there yet"),
        ("delivered", false) => {
            format!("taken by {peer}, waiting for its receipt to settle it here")
        }
        ("delivered", true) => "credited to the recipient here".into(),
        ("settled_delivered", _) => {
            format!("delivered; {peer}'s receipt settled it here")
        }
        ("refunded", _) => format!("bounced by {peer}{reason}; the sender was refunded here"),
        ("expired", _) => {
            "the relay gave up after the item's lifetime: retry it with `distpos queue retry ID`"
                .into()
        }
        ("bounced", _) => format!("refused here{reason}; {peer} refunds the sender"),
        (other, _) => other.to_string(),
    }
}

/// The `cross_chain` section of a `/v1/txs/{hash}` answer, as `key  value` rows.
fn cross_rows(cross: &Value, now_ms: u64) -> Vec<(&'static str, String)> {
    let mut rows = vec![(
        "stage",
        format!("{}: {}", text(&cross["stage"]), stage_words(cross)),
    )];
    if let Some(r) = cross["bounce_reason"].as_str() {
        rows.push(("bounce reason", r.to_string()));
    }
    let s = &cross["settled"];
    if s.is_object() {
        let how = match s["bounced"].as_str() {
            Some(r) => format!("refunded ({r})"),
            None => "delivered".into(),
        };
        rows.push((
            "settled",
            format!(
                "{how} at block {}, amount {}",
                num(&s["height"]),
                text(&s["amount"])
            ),
        ));
    }
    let i = &cross["inbound"];
    if i.is_object() {
        rows.push(("sender", text(&i["sender"])));
        rows.push(("recipient", text(&i["recipient"])));
        rows.push(("amount", text(&i["amount"])));
        rows.push((
            "recorded",
            format!(
                "at block {} by batch transaction {}",
                num(&i["height"]),
                short(&text(&i["tx"]))
            ),
        ));
    }
    if let Some(path) = cross["path"].as_str() {
        let f = &cross["fast"];
        let how = if f.is_object() {
            let shares: Vec<String> = f["shares"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| format!("{} {}", short(&text(&s["signing_key"])), text(&s["share"])))
                .collect();
            format!(
                "{path}: endorsed in block {} (height {}) by {}; shares {}, underwriters paid {}",
                short(&text(&f["block_id"])),
                num(&f["height"]),
                shares.join(", "),
                text(&f["state"]),
                text(&f["fee_paid"])
            )
        } else {
            format!("{path}: proven against an irreversible block of the source")
        };
        rows.push(("path", how));
    }
    let relay = &cross["relay"];
    if relay.is_object() {
        rows.push(("relay item", item_line(relay, now_ms)));
    }
    rows
}

/// The other chain's view of a transfer, as the console found it.
pub(crate) enum Other {
    /// That chain knows it: the endpoint asked and its answer.
    Known {
        /// The endpoint that answered.
        url: String,
        /// Its `/v1/txs/{hash}` answer.
        answer: Value,
    },
    /// The endpoint answered that it does not know the transfer (yet).
    Unknown {
        /// The endpoint that answered.
        url: String,
    },
    /// No endpoint could be asked: why.
    Unreachable(String),
}

/// `/v1/txs/{hash}` on the node asked, and the other chain's view when there is one.
pub(crate) fn transfer(node: &str, here: &Value, other: Option<&Other>, now_ms: u64) -> String {
    let cross = &here["cross_chain"];
    let status = text(&here["status"]);
    let mut rows = vec![
        ("transaction", text(&here["hash"])),
        ("asked", node.to_string()),
    ];
    let placed = match here["height"].as_u64() {
        Some(h) => format!("{status} in block {h} (index {})", num(&here["index"])),
        None => status,
    };
    rows.push(("status", placed));
    let receipt = &here["receipt"];
    if receipt.is_object() {
        rows.push((
            "amount",
            format!(
                "{} (fee {})",
                text(&receipt["amount"]),
                text(&receipt["fee"])
            ),
        ));
    }
    if !cross.is_object() {
        rows.push(("cross-chain", "no: a transaction of this chain only".into()));
        return fields(&rows);
    }
    let inbound = cross["direction"] == "inbound";
    let peer = text(&cross["peer"]);
    rows.push((
        "direction",
        if inbound {
            format!("inbound from {peer}")
        } else {
            format!("outbound to {peer}")
        },
    ));
    rows.extend(cross_rows(cross, now_ms));
    let mut out = fields(&rows);
    let role = if inbound {
        "the source"
    } else {
        "the destination"
    };
    match other {
        None => {}
        Some(Other::Known { url, answer }) => {
            out.push_str(&format!("\non {peer} ({role}), asked at {url}:\n"));
            let there = &answer["cross_chain"];
            if there.is_object() {
                out.push_str(&fields(&cross_rows(there, now_ms)));
            } else {
                out.push_str(&fields(&[("status", text(&answer["status"]))]));
            }
        }
        Some(Other::Unknown { url }) => out.push_str(&format!(
            "\non {peer} ({role}), asked at {url}: not known there (yet): no batch has brought it\n"
        )),
        Some(Other::Unreachable(why)) => {
            out.push_str(&format!("\non {peer} ({role}): could not ask: {why}\n"))
        }
    }
    out
}
