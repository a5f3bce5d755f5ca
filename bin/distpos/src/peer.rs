//! `distpos peer …` and `distpos proposals`: linking and unlinking chains (DESIGN §14).
//! A peer is registered from its trust anchor (`GET /v1/anchor` of one of its nodes),
//! checked here before anything is signed: the identity the operator expects, a
//! consistent checkpoint, and the peer's own next headers taken by a light client
//! started from it.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use distpos_adapters::{Client, HeaderPage};
use distpos_chain::{
    governance::trust_anchor,
    tx::{GovAction, PeerAnchor},
    Address, Body,
};
use distpos_gateway::keyfile;
use distpos_proofs::{
    light_client::{LightClient, NotYet, Verdict},
    ChainId, Hash32,
};
use std::{path::PathBuf, time::Duration};

/// Headers asked for when checking an anchor against the peer's chain.
const CHECK_HEADERS: u64 = 200;

/// Where a command sends its transaction.
#[derive(Args)]
pub(crate) struct Sender {
    /// URL of a node of our chain.
    #[arg(long, env = "DISTPOS_NODE", default_value = "http://127.0.0.1:7700")]
    node: String,
    /// Key file of an active producer of our chain (governance is theirs).
    #[arg(long)]
    key: PathBuf,
    /// Fee (default: the chain's minimum).
    #[arg(long, value_parser = crate::parse_amount_arg)]
    fee: Option<u128>,
}

/// Where a trust anchor comes from.
#[derive(Args)]
pub(crate) struct AnchorSource {
    /// URL of a node of the peer chain: its anchor is fetched, and its next headers
    /// are checked against it.
    #[arg(long)]
    from: Option<String>,
    /// A trust anchor saved earlier (`distpos peer anchor --from URL > FILE`) instead
    /// of the one the peer serves now; with `--from` too, it is still checked against
    /// the peer's headers.
    #[arg(long)]
    anchor_file: Option<PathBuf>,
    /// The identity hash the peer must have (from its operators, its DNS TXT record,
    /// or an earlier registration).
    #[arg(long)]
    identity: Option<Hash32>,
    /// With `--from`: the peer's irreversible block to start at (default: its LIB).
    /// A light client proves nothing below its checkpoint: to reset one while
    /// transfers from the peer wait, start below the oldest of them.
    #[arg(long, conflicts_with = "anchor_file")]
    height: Option<u64>,
}

/// `distpos peer …`.
#[derive(Subcommand)]
pub(crate) enum PeerCommand {
    /// Print a chain's trust anchor (`GET /v1/anchor`) as JSON.
    Anchor {
        /// URL of a node of that chain.
        #[arg(long)]
        from: String,
        /// An irreversible height (default: the chain's LIB).
        #[arg(long)]
        height: Option<u64>,
    },
    /// Propose registering a peer chain from its trust anchor; prints the proposal id.
    Propose {
        #[command(flatten)]
        source: AnchorSource,
        #[command(flatten)]
        sender: Sender,
        /// Account on our chain that owns the peer's correspondent account (it may
        /// withdraw the collateral).
        #[arg(long, value_parser = crate::parse_local_address)]
        owner: Address,
        /// Credit extended to the peer beyond its collateral.
        #[arg(long, default_value = "0", value_parser = crate::parse_amount_arg)]
        credit_limit: u128,
        /// Below this available collateral the peer is shown `low`.
        #[arg(long, default_value = "0", value_parser = crate::parse_amount_arg)]
        low_watermark: u128,
    },
    /// Propose restarting our light client of a peer at its current (newer) anchor.
    Reset {
        #[command(flatten)]
        source: AnchorSource,
        #[command(flatten)]
        sender: Sender,
    },
    /// Propose removing a peer (refused while transfers are in flight or its
    /// correspondent account is not zero).
    Remove {
        /// The peer chain (hex).
        #[arg(value_parser = crate::parse_chain)]
        chain: ChainId,
        #[command(flatten)]
        sender: Sender,
    },
}

/// Runs `distpos peer …`.
pub(crate) async fn run(command: PeerCommand) -> anyhow::Result<()> {
    match command {
        PeerCommand::Anchor { from, height } => {
            let path = height.map_or("/v1/anchor".into(), |h| format!("/v1/anchor?height={h}"));
            let anchor: PeerAnchor = peer_client(&from)?.get_json(&path).await?;
            say!("{}", serde_json::to_string_pretty(&anchor)?);
            Ok(())
        }
        PeerCommand::Propose {
            source,
            sender,
            owner,
            credit_limit,
            low_watermark,
        } => {
            let anchor = checked_anchor(&source).await?;
            let chain = anchor.chain;
            let height = anchor.anchor.height();
            let action =
                GovAction::RegisterPeer(anchor.registration(owner, credit_limit, low_watermark));
            let what = format!("register chain {chain} at height {height}");
            propose(&sender, action, &what).await
        }
        PeerCommand::Reset { source, sender } => {
            let anchor = checked_anchor(&source).await?;
            let (chain, height) = (anchor.chain, anchor.anchor.height());
            let peer: serde_json::Value = client(&sender.node)?
                .get_json(&format!("/v1/correspondents/{chain}"))
                .await
                .with_context(|| format!("chain {chain} is not a registered peer here"))?;
            if peer["identity"].as_str() != Some(anchor.identity.to_string().as_str()) {
                bail!(
                    "the anchor's identity {} is not the registered peer's ({})",
                    anchor.identity,
                    peer["identity"]
                );
            }
            let action = GovAction::ResetPeerClient {
                chain,
                anchor: anchor.anchor,
            };
            let what = format!("reset the light client of chain {chain} to height {height}");
            propose(&sender, action, &what).await
        }
        PeerCommand::Remove { chain, sender } => {
            let what = format!("remove peer chain {chain}");
            propose(&sender, GovAction::RemovePeer { chain }, &what).await
        }
    }
}

/// A client of the node given by `--node`.
fn client(url: &str) -> anyhow::Result<Client> {
    crate::console::connect(url, Duration::from_secs(30))
}

/// A client of the peer chain's node given by `--from`.
fn peer_client(url: &str) -> anyhow::Result<Client> {
    crate::console::connect_as("--from", url, Duration::from_secs(30))
}

/// The anchor from `source`, checked: the expected identity, a usable checkpoint, and
/// (when a peer node is given) the peer's next headers taken by a light client started
/// from it.
async fn checked_anchor(source: &AnchorSource) -> anyhow::Result<PeerAnchor> {
    let peer = source.from.as_deref().map(peer_client).transpose()?;
    let anchor: PeerAnchor = match (&source.anchor_file, &peer) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a trust anchor", path.display()))?
        }
        (None, Some(c)) => match source.height {
            Some(h) => c.get_json(&format!("/v1/anchor?height={h}")).await?,
            None => c.get_json("/v1/anchor").await?,
        },
        (None, None) => bail!("say where the anchor comes from: --from URL or --anchor-file FILE"),
    };
    match source.identity {
        Some(want) if want != anchor.identity => bail!(
            "chain {} has identity {}, not the expected {want}: refusing",
            anchor.chain,
            anchor.identity
        ),
        Some(_) => say!("identity {} is the expected one", anchor.identity),
        None => say!(
            "identity {} (not checked: pass --identity to check it against what you expect)",
            anchor.identity
        ),
    }
    let reg = anchor.clone().registration(Address::ZERO, 0, 0);
    let mut lc = LightClient::new(&trust_anchor(&reg)).context("the trust anchor is not usable")?;
    let height = anchor.anchor.height();
    let Some(peer) = peer else {
        say!("checkpoint at height {height} (not checked against the peer's headers: no --from)");
        return Ok(anchor);
    };
    let status: serde_json::Value = peer.get_json("/v1/status").await?;
    if status["chain_id"].as_str() != Some(anchor.chain.to_string().as_str()) {
        bail!(
            "the node at --from is chain {}, the anchor is for chain {}",
            status["chain_id"],
            anchor.chain
        );
    }
    // A chain whose LIB is its head (one producer) has no newer header at first: wait
    // a few blocks for one.
    let path = format!(
        "/v1/headers?from={}&to={}",
        height + 1,
        height + CHECK_HEADERS
    );
    let mut page: HeaderPage = peer.get_json(&path).await?;
    for _ in 0..5 {
        if !page.headers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(anchor.block_interval_ms.min(2_000))).await;
        page = peer.get_json(&path).await?;
    }
    if page.headers.is_empty() {
        say!("checkpoint at height {height}; the peer has no newer header yet to check it with");
        return Ok(anchor);
    }
    match lc.submit(&page.headers, crate::console::now_ms()) {
        Verdict::Accepted(a) => say!(
            "checkpoint at height {height}: the peer's next {} headers follow from it (light client head {}, LIB {})",
            page.headers.len(),
            a.head,
            a.lib
        ),
        Verdict::NotYet(NotYet::NotPreferred) => {}
        Verdict::NotYet(n) => bail!("the peer's headers do not follow from this anchor: {n}"),
        Verdict::Rejected(r) => bail!("the peer's headers do not follow from this anchor: {r}"),
    }
    Ok(anchor)
}

/// Proposes `action` and reports its id and whether it executed at once.
async fn propose(sender: &Sender, action: GovAction, what: &str) -> anyhow::Result<()> {
    let key = keyfile::read(&sender.key)?;
    let c = client(&sender.node)?;
    let hash = c
        .send(
            &key,
            Body::Propose {
                action: Box::new(action),
            },
            sender.fee,
        )
        .await
        .with_context(|| format!("the node refused the proposal to {what}"))?;
    let status = c.wait(&hash, Duration::from_secs(60)).await?;
    let p = &status["receipt"]["outcome"]["proposal"];
    let (Some(id), Some(executed)) = (p["id"].as_u64(), p["executed"].as_bool()) else {
        bail!("transaction {hash} was included, but its receipt names no proposal: {status}");
    };
    if executed {
        say!("proposal {id} ({what}): approved and executed");
    } else {
        let pending: serde_json::Value = c.get_json("/v1/proposals").await?;
        let open = pending["proposals"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["id"].as_u64() == Some(id)));
        let have = open
            .and_then(|x| x["active_approvals"].as_u64())
            .unwrap_or(1);
        say!(
            "proposal {id} ({what}): {have} of {} approvals; other producers approve with\n  distpos tx --node {} --key KEY approve --proposal {id}",
            pending["threshold"],
            sender.node
        );
    }
    Ok(())
}

/// `distpos proposals`: the open proposals of the chain.
pub(crate) async fn list(node: &str, json: bool) -> anyhow::Result<()> {
    let v: serde_json::Value = client(node)?.get_json("/v1/proposals").await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let list = v["proposals"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        say!("no open proposals (head {})", v["head"]);
        return Ok(());
    }
    say!(
        "{:>4}  {:<9}  {:>9}  {:<44}  ACTION",
        "ID",
        "APPROVALS",
        "EXPIRES",
        "PROPOSER"
    );
    for p in &list {
        say!(
            "{:>4}  {:<9}  {:>9}  {:<44}  {}",
            p["id"],
            format!("{}/{}", p["active_approvals"], v["threshold"]),
            p["expires_at"],
            p["proposer"].as_str().unwrap_or("?"),
            summary(&p["action"])
        );
    }
    Ok(())
}

/// One line for a governance action.
fn summary(action: &serde_json::Value) -> String {
    let Some((kind, body)) = action.as_object().and_then(|o| o.iter().next()) else {
        return action.to_string();
    };
    let chain = body["chain"].as_str().unwrap_or("?");
    match kind.as_str() {
        "register_peer" => format!(
            "register_peer {chain} at height {} (identity {})",
            body["anchor"]["consensus"]["height"],
            body["identity"].as_str().unwrap_or("?")
        ),
        "reset_peer_client" => format!(
            "reset_peer_client {chain} to height {}",
            body["anchor"]["consensus"]["height"]
        ),
        "set_params" => "set_params".into(),
        other if body.is_object() && body.get("chain").is_some() => format!("{other} {chain}"),
        other => format!("{other} {body}"),
    }
}
