//! `distpos queue`: the relay queue of a node, `mailq`-style, and the operator's
//! actions on it (hold, release, retry, delete; one item or `all`), with the operator
//! token. A delete takes only what no relay attempt can be using, and moves no money.

use super::{connect, error_of, explain, now_ms, print, print_json, views, Target, TIMEOUT};
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use distpos_adapters::AdapterError;
use serde_json::Value;

/// `distpos queue …`.
#[derive(Args)]
pub(crate) struct QueueArgs {
    #[command(subcommand)]
    command: Option<QueueCommand>,
    #[command(flatten)]
    target: Target,
    /// The node's operator token (its `api_token`).
    #[arg(long, env = "DISTPOS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

/// What to do with the relay queue (default: `list`).
#[derive(Subcommand)]
pub(crate) enum QueueCommand {
    /// Every item, then a summary (the default).
    List,
    /// Stop sending an item (or `all`) until it is released.
    Hold {
        /// An item id from the list, or `all`.
        id: String,
    },
    /// Let a held item (or `all`) be sent again.
    Release {
        /// An item id from the list, or `all`.
        id: String,
    },
    /// Send an item (or `all`) now; an expired one gets a new lifetime.
    Retry {
        /// An item id from the list, or `all`.
        id: String,
    },
    /// Remove an item (or `all` that may go) from this node's queue: only a held,
    /// done or expired one. No money moves: its transfers stay in flight on chain
    /// until a proven receipt settles or refunds them, and the chain's other nodes
    /// still relay their copies.
    Delete {
        /// An item id from the list, or `all`.
        id: String,
        /// Confirms `delete all`.
        #[arg(long)]
        yes: bool,
    },
}

/// Most pages of the queue listing read (a thousand items each).
const MAX_QUEUE_PAGES: usize = 1_000;

/// `distpos queue [list|hold|release|retry|delete ID|all]`.
pub(crate) async fn queue(q: QueueArgs) -> anyhow::Result<()> {
    let mut c = connect(&q.target.node, TIMEOUT)?;
    let has_token = q.token.is_some();
    if let Some(t) = q.token {
        c = c.with_token(t);
    }
    let operator = |e: AdapterError| {
        match e {
        AdapterError::Status { status: 401, .. } if has_token => anyhow!(
            "401: the node refused this operator token (--token or DISTPOS_TOKEN): is it the node's api_token?"
        ),
        AdapterError::Status { status: 401, .. } => {
            anyhow!("401: the queue needs the operator token (--token or DISTPOS_TOKEN)")
        }
        e => explain(&c, e),
    }
    };
    let (id, action) = match q.command.unwrap_or(QueueCommand::List) {
        QueueCommand::List => {
            let mut items = Vec::new();
            let mut after: Option<String> = None;
            for _ in 0..MAX_QUEUE_PAGES {
                let path = match &after {
                    Some(a) => format!("/v1/relay/queue?limit=1000&after={a}"),
                    None => "/v1/relay/queue?limit=1000".into(),
                };
                let page: Value = c.get_json(&path).await.map_err(operator)?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next"].as_str() {
                    Some(n) if valid_item_id(n) && after.as_deref() != Some(n) => {
                        after = Some(n.to_string())
                    }
                    _ => break,
                }
            }
            if q.target.json {
                return print_json(&serde_json::json!({ "items": items, "next": null }));
            }
            print(&views::queue(&items, now_ms()));
            return Ok(());
        }
        QueueCommand::Hold { id } => (id, "hold"),
        QueueCommand::Release { id } => (id, "release"),
        QueueCommand::Retry { id } => (id, "retry"),
        QueueCommand::Delete { id, yes } => {
            if id == "all" && !yes {
                bail!(
                    "delete all removes every held, done or expired item from this node's relay \
                     queue (no money moves: their transfers stay in flight on chain): pass --yes to confirm"
                );
            }
            (id, "delete")
        }
    };
    if id != "all" && !valid_item_id(&id) {
        bail!("{id:?} is not a relay item id (see `distpos queue` for them), nor `all`");
    }
    let answer: Value = match c.post_json(&format!("/v1/relay/queue/{id}/{action}")).await {
        Ok(v) => v,
        Err(AdapterError::Status {
            status: 409,
            ref body,
            ..
        }) => {
            let message = error_of(body).map_or(body.clone(), |(_, m)| m);
            bail!("409: {message} (distpos queue hold {id})");
        }
        Err(e) => return Err(operator(e)),
    };
    if q.target.json {
        return print_json(&answer);
    }
    print(&action_summary(&id, action, &answer));
    Ok(())
}

/// An item id as the node makes them (`v2-delivery-d157-30-0`): nothing else goes
/// into the path.
fn valid_item_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One line saying what an action did.
fn action_summary(id: &str, action: &str, answer: &Value) -> String {
    let all = &answer["all"];
    if all.is_object() {
        let n = |k: &str| all[k].as_u64().unwrap_or(0);
        let mut s = format!(
            "{action} all: {} items changed, {} unchanged",
            n("changed"),
            n("unchanged")
        );
        if n("refused") > 0 {
            s.push_str(&format!(
                ", {} refused (still being sent: hold them first)",
                n("refused")
            ));
        }
        return s + "\n";
    }
    if answer["deleted"] == true {
        let n = views::item_kind(&answer["item"]).1;
        return format!(
            "deleted {id} from this node's relay queue. No money moved: its {n} transfers are \
             where the ledger has them (one in flight stays in flight until a proven receipt \
             settles or refunds it: see distpos transfer HASH), and the chain's other nodes \
             still relay their copies of the item\n"
        );
    }
    let state = views::item_summary(&answer["item"]);
    let done = match action {
        "hold" => "held",
        "release" => "released",
        "retry" => "due now:",
        other => other,
    };
    if answer["changed"] == false {
        format!("{id}: nothing to {action} ({state})\n")
    } else {
        format!("{done} {id} ({state})\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_ids_are_checked_before_they_go_into_a_path() {
        assert!(valid_item_id("v2-delivery-d157-30-0"));
        for bad in ["", "../status", "a/b", "x?y", "all items", "é"] {
            assert!(!valid_item_id(bad), "{bad}");
        }
    }

    #[test]
    fn actions_are_summed_up() {
        let all = json!({"all": {"action": "hold", "changed": 3, "unchanged": 1, "refused": 0}});
        assert_eq!(
            action_summary("all", "hold", &all),
            "hold all: 3 items changed, 1 unchanged\n"
        );
        let all = json!({"all": {"action": "delete", "changed": 1, "unchanged": 0, "refused": 2}});
        assert!(action_summary("all", "delete", &all).contains("2 refused"));
        let item = json!({"item": {"id": "v2-x", "state": "queued", "held": true, "attempts": 0}, "changed": true});
        assert_eq!(
            action_summary("v2-x", "hold", &item),
            "held v2-x (queued, held, 0 attempts)\n"
        );
        let item = json!({"item": {"id": "v2-x", "state": "done", "held": false, "attempts": 1}, "changed": false});
        assert_eq!(
            action_summary("v2-x", "hold", &item),
            "v2-x: nothing to hold (done, 1 attempts)\n"
        );
        let deleted = json!({"deleted": true, "changed": true,
            "item": {"id": "v2-x", "payload": {"delivery_batch": {"transfers": [{}]}}}});
        let s = action_summary("v2-x", "delete", &deleted);
        assert!(
            s.starts_with(
                "deleted v2-x from this node's relay queue. No money moved: its 1 transfers"
            ),
            "{s}"
        );
        assert!(s.contains("stays in flight"), "{s}");
    }
}
