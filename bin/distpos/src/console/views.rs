//! What the console prints for each view: the node's JSON (as `/v1` serves it) made
//! into tables and lines. Pure functions of the JSON and the time now; a field that is
//! missing or of another type shows as `?`, never a panic.

mod relay;

pub(crate) use relay::{item_kind, item_summary, queue, transfer, Other};

use super::health::Verdict;
use super::table::{ago, duration, fields, short, until, Table};
use serde_json::Value;

/// A string field, or `?`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "?".into(),
    }
}

/// An integer field, or `?`.
fn num(v: &Value) -> String {
    v.as_u64().map_or_else(|| text(v), |n| n.to_string())
}

/// A unix-ms field as "3.2 s ago", or `—`.
fn when(v: &Value, now_ms: u64) -> String {
    v.as_u64().map_or_else(|| "—".into(), |t| ago(t, now_ms))
}

/// `/v1/status` and the health verdict.
pub(crate) fn status(
    node: &str,
    st: &Value,
    verdict: &Verdict,
    head_time_ms: Option<u64>,
    peers: Option<&Value>,
    now_ms: u64,
) -> String {
    let head = &st["head"];
    let (h, l) = (head["height"].as_u64(), st["lib"]["height"].as_u64());
    let behind = match (h, l) {
        (Some(h), Some(l)) => format!(" ({} blocks behind the head)", h.saturating_sub(l)),
        _ => String::new(),
    };
    let p = &st["participation"];
    let schedule = &st["schedule"];
    let n = schedule["producers"].as_array().map_or(0, Vec::len);
    let mut producers = format!("{n} in schedule v{}", num(&schedule["version"]));
    if let Some(k) = st["producer_key"].as_str() {
        producers.push_str(&format!(" (this node produces, key {})", short(k)));
    }
    if let Some(p) = st["pending_schedule"].as_object() {
        let m = p
            .get("producers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        producers.push_str(&format!(
            "; pending schedule v{}: {m}",
            p.get("version").map_or("?".into(), num)
        ));
    }
    fields(&[
        (
            "node",
            format!(
                "{node} (chain {}, version {})",
                text(&st["chain_id"]),
                text(&st["version"])
            ),
        ),
        (
            "health",
            format!("{}: {}", verdict.health.as_str(), verdict.why),
        ),
        (
            "head",
            format!(
                "{}  {}{}",
                num(&head["height"]),
                short(&text(&head["id"])),
                head_time_ms.map_or(String::new(), |t| format!("  ({})", ago(t, now_ms)))
            ),
        ),
        ("LIB", format!("{}{behind}", num(&st["lib"]["height"]))),
        (
            "participation",
            format!(
                "{}% ({} of the last {} slots filled)",
                num(&p["percent"]),
                num(&p["filled"]),
                num(&p["window"])
            ),
        ),
        ("producers", producers),
        (
            "block interval",
            st["block_interval_ms"]
                .as_u64()
                .map_or("?".into(), duration),
        ),
        (
            "mempool",
            format!("{} transactions", num(&st["mempool_txs"])),
        ),
        ("min fee", text(&st["min_fee"])),
        (
            "peers",
            peers.map_or("? (not available)".into(), peer_summary),
        ),
    ])
}

/// "2 chains: d157 ok, b2 stalled" from `/v1/correspondents`.
fn peer_summary(v: &Value) -> String {
    let list = v["correspondents"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "none registered".into();
    }
    let each: Vec<String> = list
        .iter()
        .map(|c| format!("{} {}", text(&c["chain"]), text(&c["status"])))
        .collect();
    let noun = if list.len() == 1 { "chain" } else { "chains" };
    format!("{} {noun}: {}", list.len(), each.join(", "))
}

/// `/v1/producers`, most votes first.
pub(crate) fn producers(v: &Value) -> String {
    let p = &v["participation"];
    let schedule = &v["schedule"];
    let mut out = format!(
        "schedule v{}: {} producers; participation {}% ({} of the last {} slots)\n",
        num(&schedule["version"]),
        schedule["producers"].as_array().map_or(0, Vec::len),
        num(&p["percent"]),
        num(&p["filled"]),
        num(&p["window"])
    );
    if let Some(pending) = v["pending_schedule"].as_object() {
        out.push_str(&format!(
            "pending schedule v{}: {} producers\n",
            pending.get("version").map_or("?".into(), num),
            pending
                .get("producers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        ));
    }
    let mut list = v["producers"].as_array().cloned().unwrap_or_default();
    let votes = |p: &Value| {
        p["total_votes"]
            .as_str()
            .and_then(|s| s.parse::<u128>().ok())
            .unwrap_or(0)
    };
    list.sort_by_key(|p| std::cmp::Reverse(votes(p)));
    let mut t = Table::new(&[
        "ACCOUNT",
        "STATE",
        "VOTES",
        "PRODUCED",
        "MISSED",
        "LAST BLOCK",
        "SIGNING KEY",
        "URL",
    ])
    .right(&[2, 3, 4, 5]);
    for p in &list {
        let state = if p["slashed"] == true {
            "slashed"
        } else if p["active"] == true {
            "active"
        } else if p["registered"] == true {
            "standby"
        } else {
            "unregistered"
        };
        t.row(vec![
            text(&p["account"]),
            state.into(),
            text(&p["total_votes"]),
            num(&p["produced"]),
            num(&p["missed"]),
            num(&p["last_block_height"]),
            short(&text(&p["signing_key"])),
            text(&p["url"]),
        ]);
    }
    if t.is_empty() {
        out.push_str("no producer registered\n");
    } else {
        out.push_str(&t.render());
    }
    out
}

/// `/v1/accounts/{address}`.
pub(crate) fn account(v: &Value) -> String {
    let votes: Vec<String> = v["votes"]
        .as_array()
        .map(|l| l.iter().map(text).collect())
        .unwrap_or_default();
    let mut rows = vec![
        ("address", text(&v["address"])),
        ("balance", text(&v["balance"])),
        ("stake", text(&v["stake"])),
        ("unbonding", text(&v["unbonding"])),
        (
            "nonce",
            format!(
                "{} (the next transaction takes {})",
                num(&v["nonce"]),
                num(&v["next_nonce"])
            ),
        ),
        (
            "votes for",
            if votes.is_empty() {
                "nobody".into()
            } else {
                votes.join(", ")
            },
        ),
        (
            "proxy",
            match v["proxy"].as_str() {
                Some(p) => format!("{p} (votes this account's stake)"),
                None => "— (votes directly)".into(),
            },
        ),
        (
            "proxied to it",
            format!(
                "{} from {} accounts",
                text(&v["proxied_weight"]),
                num(&v["delegators"])
            ),
        ),
    ];
    let p = &v["producer"];
    if p.is_object() {
        let state = if p["slashed"] == true {
            "slashed"
        } else if p["registered"] == true {
            "registered"
        } else {
            "unregistered"
        };
        rows.push((
            "producer",
            format!(
                "{state}: {} votes, {} produced, {} missed, last block {}",
                text(&p["total_votes"]),
                num(&p["produced"]),
                num(&p["missed"]),
                num(&p["last_block_height"])
            ),
        ));
        rows.push(("signing key", text(&p["signing_key"])));
        rows.push(("producer url", text(&p["url"])));
    }
    fields(&rows)
}

/// `/v1/correspondents`: one row per peer chain, then why each stalled one is.
pub(crate) fn peers(v: &Value, now_ms: u64) -> String {
    let list = v["correspondents"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no peer chain registered\n".into();
    }
    let mut t = Table::new(&[
        "CHAIN",
        "STATUS",
        "REP",
        "AVAILABLE",
        "COLLATERAL",
        "RESERVED",
        "CREDIT",
        "IN OK/BOUNCED",
        "OUT SENT/ACKED/REFUNDED",
        "LC HEAD",
        "LC LIB",
        "LC HEAD AGE",
        "RELAYS NOW",
    ])
    .right(&[2, 3, 4, 5, 6, 9, 10]);
    let mut notes = String::new();
    for c in &list {
        let lc = &c["light_client"];
        let duty = &c["relay_duty"];
        t.row(vec![
            text(&c["chain"]),
            text(&c["status"]),
            c["reputation"]
                .as_u64()
                .map_or("—".into(), |r| r.to_string()),
            text(&c["available"]),
            text(&c["collateral"]),
            text(&c["reserved"]),
            text(&c["credit_limit"]),
            format!("{}/{}", num(&c["delivered_in"]), num(&c["bounced_in"])),
            format!(
                "{}/{}/{}",
                num(&c["sent_out"]),
                num(&c["acked_out"]),
                num(&c["refunded_out"])
            ),
            num(&lc["head"]),
            num(&lc["lib"]),
            lc["head_age_ms"]
                .as_u64()
                .map_or("—".into(), |a| format!("{} ago", duration(a))),
            if duty["ours"] == true {
                "this node".into()
            } else {
                duty["holder"].as_str().map_or("—".into(), short)
            },
        ]);
        if let Some(p) = policy_note(&c["policy"]) {
            notes.push_str(&format!("{} policy: {p}\n", text(&c["chain"])));
        }
        if let Some(f) = reputation_facts(c) {
            notes.push_str(&format!(
                "{} reputation {}: {f}\n",
                text(&c["chain"]),
                num(&c["reputation"])
            ));
        }
        if let Some(s) = lc["stalled"].as_object() {
            notes.push_str(&format!(
                "{} stalled (seen {}): {}\n",
                text(&c["chain"]),
                s.get("since_ms").map_or("?".into(), |t| when(t, now_ms)),
                s.get("reason").map_or("?".into(), text)
            ));
        }
    }
    let mut out = t.render();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes);
    }
    out
}

/// The on-chain facts behind a peer's reputation (DESIGN §13) in one line: its
/// bounces by reason, proofs refused, equivocations; `None` when there are none.
fn reputation_facts(c: &Value) -> Option<String> {
    let mut parts = Vec::new();
    let bounces: Vec<String> = c["bounces"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(reason, n)| format!("{reason} {}", num(n)))
        .collect();
    if !bounces.is_empty() {
        parts.push(format!("bounced {}", bounces.join(", ")));
    }
    for (key, what) in [
        ("refused_proofs", "proofs refused"),
        ("equivocations", "equivocations"),
    ] {
        if let Some(n) = c[key].as_u64().filter(|n| *n > 0) {
            parts.push(format!("{what} {n}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A peer's admission policy (DESIGN §13) in one line, if any limit is set.
fn policy_note(book: &Value) -> Option<String> {
    let p = &book["policy"];
    let set = |k: &str| p[k].as_str().is_some_and(|v| v != "0");
    let mut parts = Vec::new();
    if set("max_transfer") {
        parts.push(format!("max {}", text(&p["max_transfer"])));
    }
    if set("rate_capacity") {
        parts.push(format!(
            "rate {} at {}/s (level {})",
            text(&p["rate_capacity"]),
            text(&p["rate_per_s"]),
            text(&book["level"])
        ));
    }
    if set("delay_above") {
        parts.push(format!(
            "above {} waits {}",
            text(&p["delay_above"]),
            p["delay_ms"].as_u64().map_or("?".into(), duration)
        ));
    }
    if p["min_reputation"].as_u64().is_some_and(|r| r > 0) {
        parts.push(format!(
            "reputation below {}: {}",
            num(&p["min_reputation"]),
            text(&p["below_reputation"])
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "{}; delayed {}, refused {}",
        parts.join(", "),
        num(&book["delayed"]),
        num(&book["refused"])
    ))
}

/// `/v1/routes`: every endpoint of every route, then the overrides and DNS figures.
pub(crate) fn routes(v: &Value, now_ms: u64) -> String {
    let mut t = Table::new(&[
        "CHAIN",
        "URL",
        "ORIGIN",
        "HEALTH",
        "PRIO",
        "WEIGHT",
        "LATENCY",
        "LAST OK",
        "LAST FAILURE",
        "FAILURES",
    ])
    .right(&[4, 5, 6, 9]);
    let mut notes = String::new();
    for r in v["routes"].as_array().into_iter().flatten() {
        let chain = text(&r["chain"]);
        if r["negative"] == true {
            notes.push_str(&format!(
                "{chain}: DNS says there is no such chain (cached)\n"
            ));
        }
        if let Some(ttl) = r["dns_ttl_left_ms"].as_u64() {
            notes.push_str(&format!(
                "{chain}: DNS answer cached for {}\n",
                duration(ttl)
            ));
        }
        for e in r["endpoints"].as_array().into_iter().flatten() {
            let mut health = text(&e["health"]);
            if let Some(at) = e["retry_at_ms"].as_u64() {
                health.push_str(&format!(" (retry {})", until(at, now_ms)));
            }
            let mut origin = text(&e["origin"]);
            if e["scope"] == "node" {
                origin.push_str(" (this node)");
            }
            t.row(vec![
                chain.clone(),
                text(&e["url"]),
                origin,
                health,
                num(&e["priority"]),
                num(&e["weight"]),
                e["latency_ms"]
                    .as_u64()
                    .map_or("—".into(), |l| format!("{l} ms")),
                when(&e["last_success_ms"], now_ms),
                when(&e["last_failure_ms"], now_ms),
                num(&e["failures"]),
            ]);
        }
    }
    let mut out = if t.is_empty() {
        "no routes\n".to_string()
    } else {
        t.render()
    };
    out.push('\n');
    out.push_str(&notes);
    let o = &v["overrides"];
    out.push_str(&format!(
        "overrides: {} stored on this node (at most {}); an override applies to this node only, not to the chain\n",
        num(&o["stored"]),
        num(&o["limit"])
    ));
    let d = &v["dns"];
    if d.is_object() {
        out.push_str(&format!(
            "dns: {} lookups, {} failures\n",
            num(&d["lookups"]),
            num(&d["failures"])
        ));
    }
    out
}

/// `/v1/underwriters`: per peer chain, the policy and totals, then a row per bond.
pub(crate) fn underwriters(v: &Value) -> String {
    let list = v["peers"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no peer chain registered\n".into();
    }
    let mut out = String::new();
    for p in &list {
        let pol = &p["policy"];
        if p["enabled"] == true {
            out.push_str(&format!(
                "{}: fast path on: up to {} per transfer, {} outstanding at most ({} now), underwriters earn {} bps of the fast fee; {} delivered, {} proven, {} slashed, {} returned\n",
                text(&p["chain"]),
                text(&pol["max_amount"]),
                text(&pol["max_outstanding"]),
                text(&p["outstanding"]),
                num(&pol["fee_share_bps"]),
                num(&p["delivered"]),
                num(&p["proven"]),
                num(&p["slashed"]),
                num(&p["returned"]),
            ));
        } else {
            out.push_str(&format!(
                "{}: fast path off (governance: set_fast_policy)\n",
                text(&p["chain"])
            ));
        }
        let mut t =
            Table::new(&["SIGNING KEY", "OWNER", "BONDED", "LOCKED", "FREE"]).right(&[2, 3, 4]);
        for b in p["bonds"].as_array().into_iter().flatten() {
            t.row(vec![
                short(&text(&b["signing_key"])),
                text(&b["owner"]),
                text(&b["amount"]),
                text(&b["locked"]),
                text(&b["free"]),
            ]);
        }
        if t.is_empty() {
            out.push_str("  no bonds\n");
        } else {
            out.push_str(&t.render());
        }
    }
    out
}

#[cfg(test)]
mod tests;
