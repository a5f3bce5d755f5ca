//! The operator's console (DESIGN §14): `distpos status`, `producers`, `account`,
//! `peers`, `routes`, `queue` and `transfer` — every view of a running node's `/v1`
//! API as readable tables, or with `--json` the node's own JSON for scripts. The node
//! comes from `--node` or `DISTPOS_NODE`, the operator's token (the relay queue) from
//! `--token` or `DISTPOS_TOKEN`. Fetching is here (the queue's in `console/queue.rs`);
//! what is printed is in `console/views.rs` (pure, tested on JSON), the verdict of
//! `status` in `console/health.rs`, tables and durations in `console/table.rs`.

mod health;
mod queue;
mod table;
mod views;

pub(crate) use queue::{queue, QueueArgs};

use anyhow::{anyhow, bail};
use clap::Args;
use distpos_adapters::{AdapterError, Client};
use distpos_proofs::Hash32;
use serde_json::Value;
use std::time::Duration;

/// Prints text that ends with a newline; exits quietly if stdout is gone (e.g. piped
/// into `head`).
fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Prints a value as indented JSON.
fn print_json(v: &Value) -> anyhow::Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(v)?));
    Ok(())
}

/// Which node to ask, and how to print its answer.
#[derive(Args)]
pub(crate) struct Target {
    /// URL of the node to ask.
    #[arg(
        long,
        env = "DISTPOS_NODE",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    node: String,
    /// Print the node's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

/// `distpos account ADDR`.
#[derive(Args)]
pub(crate) struct AccountArgs {
    /// The address (`0x…`, or `<chain>x…` of this chain).
    address: String,
    #[command(flatten)]
    target: Target,
}

/// `distpos transfer HASH`.
#[derive(Args)]
pub(crate) struct TransferArgs {
    /// The transaction's hash (a cross-chain transfer: the source chain's hash, which
    /// both chains know it by).
    hash: String,
    #[command(flatten)]
    target: Target,
}

/// `distpos underwriters [--peer CHAIN]`.
#[derive(Args)]
pub(crate) struct UnderwritersArgs {
    /// Only this peer chain.
    #[arg(long, value_parser = crate::parse_chain)]
    peer: Option<distpos_proofs::ChainId>,
    #[command(flatten)]
    target: Target,
}

/// `distpos underwriters`: the fast path's policy and bonds per peer chain.
pub(crate) async fn underwriters(a: UnderwritersArgs) -> anyhow::Result<()> {
    let c = connect(&a.target.node, TIMEOUT)?;
    let path = match a.peer {
        Some(p) => format!("/v1/underwriters?peer={p}"),
        None => "/v1/underwriters".to_string(),
    };
    let v = get(&c, &path).await?;
    if a.target.json {
        return print_json(&v);
    }
    print(&views::underwriters(&v));
    Ok(())
}

/// Now, on this machine's clock (unix ms).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A client of the node at `url` (given as `flag`, which errors name), which must be
/// an `http://` URL.
pub(crate) fn connect_as(flag: &str, url: &str, timeout: Duration) -> anyhow::Result<Client> {
    if url.starts_with("https://") {
        bail!("{flag} {url}: https is not supported yet (the client has no TLS): use http://");
    }
    if !url.starts_with("http://") || url.len() <= "http://".len() {
        bail!("{flag} needs http://…, e.g. {flag} http://127.0.0.1:7700 (got {url:?})");
    }
    Ok(Client::with_timeout(url, timeout)?)
}

/// A client of the node given by `--node`.
pub(crate) fn connect(url: &str, timeout: Duration) -> anyhow::Result<Client> {
    connect_as("--node", url, timeout)
}

/// How long the console waits for a node's answer.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The node's error body as "code: message", if it is one.
fn error_of(body: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let e = &v["error"];
    Some((e["code"].as_str()?.into(), e["message"].as_str()?.into()))
}

/// An adapter error said so that the operator knows what to do.
fn explain(c: &Client, e: AdapterError) -> anyhow::Error {
    let node = c.base();
    match e {
        AdapterError::Unreachable { reason, .. } => {
            anyhow!("node not reachable at {node}: is it running? ({reason})")
        }
        AdapterError::Status {
            status: 403,
            ref body,
            ..
        } if error_of(body).is_some_and(|(code, _)| code == "operator_disabled") => anyhow!(
            "403: the node at {node} has no operator token (api_token in its config), so its operator routes are off"
        ),
        AdapterError::Status { status, body, .. } => match error_of(&body) {
            Some((code, message)) => anyhow!("{status} {code}: {message}"),
            None => anyhow!("{status} from {node}: {}", table::clip(&body, 200)),
        },
        AdapterError::BadResponse { endpoint, reason } => {
            anyhow!("{endpoint} answered, but not with the JSON expected: {reason}")
        }
        AdapterError::TimedOut(what) => anyhow!("{what}"),
    }
}

/// GETs `path` as JSON.
async fn get(c: &Client, path: &str) -> anyhow::Result<Value> {
    c.get_json(path).await.map_err(|e| explain(c, e))
}

/// `distpos status`: the health verdict, head, LIB, participation, mempool, peers.
/// Exits non-zero when the node is stalled. With `--json`: `{"node", "verdict":
/// {health, why}, "head_age_ms", "status"}`, `status` being the node's own JSON.
pub(crate) async fn status(t: Target) -> anyhow::Result<()> {
    let c = connect(&t.node, TIMEOUT)?;
    let st = get(&c, "/v1/status").await?;
    let pace = health::Pace {
        interval_ms: st["block_interval_ms"].as_u64().unwrap_or(1_000),
        producers: st["schedule"]["producers"].as_array().map_or(0, Vec::len),
        participation: st["participation"]["percent"]
            .as_u64()
            .map_or(0, |p| p.min(100) as u32),
    };
    let first = sample(&c, &st).await?;
    let mut samples = vec![first];
    let mut last_status = st;
    if first.head_age_ms() > pace.fresh_limit_ms() {
        // An old head: look again a moment later to tell catching up from stuck.
        tokio::time::sleep(Duration::from_millis(pace.interval_ms.clamp(1_000, 3_000))).await;
        let again = get(&c, "/v1/status").await?;
        samples.push(sample(&c, &again).await?);
        last_status = again;
    }
    let verdict = health::verdict(&pace, &samples);
    if t.json {
        print_json(&serde_json::json!({
            "node": c.base(),
            "verdict": { "health": verdict.health.as_str(), "why": verdict.why },
            "head_age_ms": samples.last().map(health::Sample::head_age_ms),
            "status": last_status,
        }))?;
    } else {
        let peers = get(&c, "/v1/correspondents").await.ok();
        let head_time = samples.last().map(|s| s.head_time_ms);
        print(&views::status(
            c.base(),
            &last_status,
            &verdict,
            head_time,
            peers.as_ref(),
            now_ms(),
        ));
    }
    if verdict.health == health::Health::Stalled {
        bail!("the node at {} is stalled", c.base());
    }
    Ok(())
}

/// One look at the node: its status's head and LIB, and its head block's time (from
/// `/v1/headers`, one header).
async fn sample(c: &Client, st: &Value) -> anyhow::Result<health::Sample> {
    let (Some(head), Some(lib)) = (st["head"]["height"].as_u64(), st["lib"]["height"].as_u64())
    else {
        bail!("the node's /v1/status has no head or LIB height: {st}");
    };
    let page = get(c, &format!("/v1/headers?from={head}&to={head}")).await;
    let head_time_ms = match page {
        Ok(p) => p["headers"][0]["header"]["timestamp_ms"].as_u64(),
        Err(_) => None,
    }
    // Without the header (genesis), the chain's first slot.
    .or_else(|| st["genesis_time_ms"].as_u64())
    .unwrap_or(0);
    Ok(health::Sample {
        head,
        lib,
        head_time_ms,
        at_ms: now_ms(),
    })
}

/// `distpos producers`: the schedule and every producer, most voted first.
pub(crate) async fn producers(t: Target) -> anyhow::Result<()> {
    let c = connect(&t.node, TIMEOUT)?;
    let v = get(&c, "/v1/producers").await?;
    if t.json {
        return print_json(&v);
    }
    print(&views::producers(&v));
    Ok(())
}

/// `distpos account ADDR`.
pub(crate) async fn account(a: AccountArgs) -> anyhow::Result<()> {
    // Checked here, so that nothing but an address goes into the path.
    distpos_chain::QualifiedAddress::parse(&a.address)
        .map_err(|e| anyhow!("{:?} is not an address: {e}", a.address))?;
    let c = connect(&a.target.node, TIMEOUT)?;
    let v = get(&c, &format!("/v1/accounts/{}", a.address)).await?;
    if a.target.json {
        return print_json(&v);
    }
    print(&views::account(&v));
    Ok(())
}

/// `distpos peers`: correspondent accounts and light clients.
pub(crate) async fn peers(t: Target) -> anyhow::Result<()> {
    let c = connect(&t.node, TIMEOUT)?;
    let v = get(&c, "/v1/correspondents").await?;
    if t.json {
        return print_json(&v);
    }
    print(&views::peers(&v, now_ms()));
    Ok(())
}

/// `distpos routes`: the routing table of the node.
pub(crate) async fn routes(t: Target) -> anyhow::Result<()> {
    let c = connect(&t.node, TIMEOUT)?;
    let v = get(&c, "/v1/routes").await?;
    if t.json {
        return print_json(&v);
    }
    print(&views::routes(&v, now_ms()));
    Ok(())
}

/// How long the console waits for the other chain's nodes in `transfer`.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// `distpos transfer HASH`: the transfer on the node, and on the other chain (found
/// through the node's route to it). With `--json`: `{"node": {url, answer}, "peer":
/// {chain, url, answer, error} | null}`, each answer the JSON a node served.
pub(crate) async fn transfer(a: TransferArgs) -> anyhow::Result<()> {
    let hash: Hash32 = a
        .hash
        .parse()
        .map_err(|e| anyhow!("{:?} is not a transaction hash: {e}", a.hash))?;
    let c = connect(&a.target.node, TIMEOUT)?;
    let here = match c.get_json::<Value>(&format!("/v1/txs/{hash}")).await {
        Ok(v) => v,
        Err(AdapterError::Status { status: 404, .. }) => bail!(
            "transaction {hash} is not known at {}: not in its chain or mempool, nor a transfer its chain received",
            c.base()
        ),
        Err(e) => return Err(explain(&c, e)),
    };
    let peer = here["cross_chain"]["peer"].as_str().map(str::to_string);
    let other = match &peer {
        Some(chain) => Some(ask_other_chain(&c, chain, &hash).await),
        None => None,
    };
    if a.target.json {
        let peer_json = match (&peer, &other) {
            (Some(chain), Some(o)) => {
                let (url, answer, error) = match o {
                    views::Other::Known { url, answer } => {
                        (Some(url.clone()), answer.clone(), None)
                    }
                    views::Other::Unknown { url } => (
                        Some(url.clone()),
                        Value::Null,
                        Some("not known there".to_string()),
                    ),
                    views::Other::Unreachable(why) => (None, Value::Null, Some(why.clone())),
                };
                serde_json::json!({ "chain": chain, "url": url, "answer": answer, "error": error })
            }
            _ => Value::Null,
        };
        return print_json(&serde_json::json!({
            "node": { "url": c.base(), "answer": here },
            "peer": peer_json,
        }));
    }
    print(&views::transfer(c.base(), &here, other.as_ref(), now_ms()));
    Ok(())
}

/// The other chain's view of transfer `hash`: its endpoints from the node's route to
/// `chain` (in route order, healthy ones first), asked in turn until one answers.
async fn ask_other_chain(c: &Client, chain: &str, hash: &Hash32) -> views::Other {
    if distpos_proofs::ChainId::parse(chain).is_err() {
        return views::Other::Unreachable(format!("{chain:?} is not a chain id"));
    }
    let route = match c.get_json::<Value>(&format!("/v1/routes/{chain}")).await {
        Ok(r) => r,
        Err(e) => {
            return views::Other::Unreachable(format!(
                "no route to it from {}: {}",
                c.base(),
                explain(c, e)
            ))
        }
    };
    let mut endpoints: Vec<(bool, String)> = route["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["health"] != "up", e["url"].as_str()?.to_string())))
        .collect();
    // Stable: route order within the healthy ones, then the others.
    endpoints.sort_by_key(|(down, _)| *down);
    let mut errors = Vec::new();
    for (_, url) in endpoints {
        let Ok(peer) = connect(&url, PEER_TIMEOUT) else {
            errors.push(format!("{url}: not an http:// URL"));
            continue;
        };
        match peer.get_json::<Value>(&format!("/v1/txs/{hash}")).await {
            Ok(answer) => return views::Other::Known { url, answer },
            Err(AdapterError::Status { status: 404, .. }) => {
                return views::Other::Unknown { url };
            }
            Err(e) => errors.push(explain(&peer, e).to_string()),
        }
    }
    if errors.is_empty() {
        views::Other::Unreachable("its route has no endpoints".into())
    } else {
        views::Other::Unreachable(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_nodes() {
        for bad in ["127.0.0.1:7700", "localhost", "http://", "ftp://x"] {
            let e = connect(bad, TIMEOUT).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains("--node needs http://")),
                "{bad}: {e:?}"
            );
        }
        let e = connect("https://node", TIMEOUT)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("https is not supported")));
        assert!(connect("http://127.0.0.1:7700/", TIMEOUT).is_ok());
        let e = connect_as("--from", "localhost:7700", TIMEOUT).err();
        assert!(e.is_some_and(|e| e.to_string().starts_with("--from needs http://")));
    }

    #[test]
    fn errors_say_what_to_do() {
        let c = Client::new("http://127.0.0.1:1").unwrap();
        let e = explain(
            &c,
            AdapterError::Unreachable {
                endpoint: "x".into(),
                reason: "connection refused".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "node not reachable at http://127.0.0.1:1: is it running? (connection refused)"
        );
        let e = explain(
            &c,
            AdapterError::Status {
                endpoint: "x".into(),
                status: 400,
                body: r#"{"error": {"code": "invalid_address", "message": "bad checksum"}}"#.into(),
            },
        );
        assert_eq!(e.to_string(), "400 invalid_address: bad checksum");
        let e = explain(
            &c,
            AdapterError::Status {
                endpoint: "x".into(),
                status: 403,
                body: r#"{"error": {"code": "operator_disabled", "message": "off"}}"#.into(),
            },
        );
        assert!(e.to_string().contains("api_token"), "{e}");
        let e = explain(
            &c,
            AdapterError::Status {
                endpoint: "x".into(),
                status: 502,
                body: "<html>".into(),
            },
        );
        assert_eq!(e.to_string(), "502 from http://127.0.0.1:1: <html>");
    }
}
