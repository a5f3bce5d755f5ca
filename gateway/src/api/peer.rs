//! HTTP routes of the cross-chain parts: the peer protocol's relay endpoints,
//! correspondent accounts, routes, and the relay queue with its operator actions
//! (behind the bearer token).

use super::{
    error::{ApiError, ApiJson},
    views::transfers as views_interchain,
};
use crate::{
    queue::{Operated, QueueAction},
    state::AppState,
    store::{OverrideError, StoreError, MAX_ROUTE_OVERRIDES},
};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post, put},
    Json, Router,
};
use distpos_adapters::{
    AckStatus, BatchDelivery, BatchReceipts, EndorseAnswer, EndorseRequest, FastDelivery, RelayAck,
    GOSSIP_HEADER,
};
use distpos_proofs::ChainId;
use distpos_routing::StaticEndpoint;
use std::sync::Arc;

/// The cross-chain routes (merged into the main router).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/relay/deliveries", post(retired_v1))
        .route("/v1/relay/deliveries/batch", post(retired_v1))
        .route("/v1/relay/receipts", post(retired_v1))
        .route("/v1/relay/receipts/batch", post(retired_v1))
        .route("/v1/relay/v2/deliveries", post(post_batch_delivery))
        .route("/v1/relay/v2/receipts", post(post_batch_receipts))
        .route("/v1/relay/fast", post(post_fast_delivery))
        .route("/v1/fast/endorse", post(post_endorse))
        .route("/v1/underwriters", get(get_underwriters))
        .route("/v1/correspondents", get(get_correspondents))
        .route("/v1/correspondents/{chain}", get(get_correspondent))
        .route("/v1/routes", get(get_routes))
        .route("/v1/routes/{chain}", get(get_route))
}

/// The operator's routes: the caller puts them behind the bearer token
/// (`api::auth`), checked before anything else of the request is read.
pub fn operator_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/relay/queue", get(get_queue))
        .route("/v1/relay/queue/{id}/{action}", post(post_queue_action))
        .route("/v1/routes/{chain}", put(put_route).delete(delete_route))
}

fn parse_chain(s: &str) -> Result<ChainId, ApiError> {
    ChainId::parse(s).map_err(|e| {
        ApiError::bad_request(
            "invalid_chain",
            format!("{:?}: {e}", distpos_proofs::codec::truncate(s)),
        )
    })
}

/// The per-transfer routes of interchain v1 (`/v1/relay/deliveries[/batch]`,
/// `/v1/relay/receipts[/batch]`): retired. Answered with 410 before the body is read,
/// so an old relayer learns why at once instead of retrying forever.
async fn retired_v1() -> ApiError {
    ApiError {
        status: StatusCode::GONE,
        code: "protocol_v1_retired",
        message: "interchain v1 (one transfer or receipt per item) is retired: this node \
                  takes batches under one multiproof at /v1/relay/v2/deliveries and \
                  /v1/relay/v2/receipts (DESIGN §6.1); upgrade the sending node"
            .into(),
    }
}

/// `POST /v1/relay/v2/deliveries`: a batch of transfers to us (interchain v2). Held
/// for the next block and passed to this chain's other nodes, so that whichever
/// producer comes next includes it.
async fn post_batch_delivery(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(d): ApiJson<BatchDelivery>,
) -> Result<(StatusCode, Json<RelayAck>), ApiError> {
    let gossip = headers.contains_key(GOSSIP_HEADER);
    let copy = (!gossip).then(|| d.clone());
    let (ack, consumed_at, held) = {
        let mut node = s.node.lock().await;
        let first = d.transfers.first().map(|t| t.hash());
        let (source, height) = (d.source_chain, d.height);
        let first_index = d.indices.first().copied().unwrap_or(0);
        let ack = crate::cpu::blocking(|| node.handle_batch_delivery(d, s.clock.now_ms()))?;
        let consumed_at = first.and_then(|t| {
            distpos_chain::interchain::inbound_record(&node.state, source, &t)
                .ok()
                .flatten()
                .map(|r| (source, r.height))
        });
        let held = node.holds_batch(source, false, height, first_index);
        (ack, consumed_at, held)
    };
    if ack.status == AckStatus::AlreadyConsumed {
        // The source delivers again, so it has not settled: send our receipts again.
        if let Some((source, height)) = consumed_at {
            let id = crate::queue::batch_receipts_id(source, height);
            if let Err(e) = s.queue.revive(&id, s.clock.now_ms()) {
                tracing::error!(error = %e, item = %id, "relay queue: cannot revive receipts");
            }
        }
    } else if let (Some(d), true) = (copy, held) {
        // Only what was checked and kept goes on: a batch nobody could check yet is
        // not multiplied over the chain.
        s.chain_nodes.forward_relay("/v1/relay/v2/deliveries", d);
    }
    Ok((ack_status(&ack), Json(ack)))
}

/// `POST /v1/relay/v2/receipts`: a batch of a destination's receipts for our
/// transfers (interchain v2), held and passed on like a batch of transfers.
async fn post_batch_receipts(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(r): ApiJson<BatchReceipts>,
) -> Result<(StatusCode, Json<RelayAck>), ApiError> {
    let gossip = headers.contains_key(GOSSIP_HEADER);
    let copy = (!gossip).then(|| r.clone());
    let (ack, held) = {
        let mut node = s.node.lock().await;
        let (source, height) = (r.receipt_chain, r.height);
        let first_index = r.indices.first().copied().unwrap_or(0);
        let ack = crate::cpu::blocking(|| node.handle_batch_receipts(r, s.clock.now_ms()))?;
        (ack, node.holds_batch(source, true, height, first_index))
    };
    if let (Some(r), true) = (copy, held) {
        s.chain_nodes.forward_relay("/v1/relay/v2/receipts", r);
    }
    Ok((ack_status(&ack), Json(ack)))
}

/// `POST /v1/relay/fast`: a transfer from a peer delivered on the fast path (DESIGN
/// §11), before its block is irreversible there, on its underwriters' endorsements.
/// Checked as our next block would apply it, held, and passed to this chain's other
/// nodes so that whichever producer comes next includes it.
async fn post_fast_delivery(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiJson(d): ApiJson<FastDelivery>,
) -> Result<(StatusCode, Json<RelayAck>), ApiError> {
    let gossip = headers.contains_key(GOSSIP_HEADER);
    let copy = (!gossip).then(|| d.clone());
    let (ack, held) = {
        let mut node = s.node.lock().await;
        let (peer, tx) = (d.source_chain, d.transfer.hash());
        let ack = crate::cpu::blocking(|| node.handle_fast_delivery(d, s.clock.now_ms()))?;
        (ack, node.holds_fast(peer, &tx))
    };
    if let (Some(d), true) = (copy, held) {
        s.chain_nodes.forward_relay("/v1/relay/fast", d);
    }
    Ok((ack_status(&ack), Json(ack)))
}

/// `POST /v1/fast/endorse`: another node of this chain asks for a share of a fast
/// transfer in one of our blocks (co-underwriting). Answered with an endorsement
/// within this node's free bond on the destination, or none and why.
async fn post_endorse(
    State(s): State<Arc<AppState>>,
    ApiJson(r): ApiJson<EndorseRequest>,
) -> Result<Json<EndorseAnswer>, ApiError> {
    Ok(Json(crate::relay::fast::co_endorse(&s, r).await))
}

/// `GET /v1/underwriters[?peer=CHAIN]`: per peer chain, the fast path's policy and
/// book, and every underwriter's bond: amount, locked, free.
async fn get_underwriters(
    State(s): State<Arc<AppState>>,
    axum::extract::Query(q): axum::extract::Query<UnderwritersQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let peer = q.peer.as_deref().map(parse_chain).transpose()?;
    let snap = s.reads.latest();
    if let Some(p) = peer {
        if distpos_chain::ledger::peer(&snap.state, p)
            .map_err(crate::node::NodeError::from)?
            .is_none()
        {
            return Err(ApiError::not_found(format!(
                "chain {p} is not a registered peer"
            )));
        }
    }
    Ok(Json(super::views::fast::underwriters(&snap.state, peer)?))
}

/// `?peer=` of `GET /v1/underwriters`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnderwritersQuery {
    peer: Option<String>,
}

fn ack_status(ack: &RelayAck) -> StatusCode {
    if matches!(ack.status, AckStatus::Accepted | AckStatus::Pending) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

/// Most items in one page of `GET /v1/relay/queue`.
const MAX_QUEUE_PAGE: usize = 1_000;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueuePage {
    /// List the items after this id.
    after: Option<String>,
    /// At most this many (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /v1/relay/queue?after=&limit=` (operator): the outbound queue, a page at a
/// time, with the id to continue after.
async fn get_queue(
    State(s): State<Arc<AppState>>,
    query: Result<axum::extract::Query<QueuePage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_QUEUE_PAGE);
    let items = s
        .queue
        .page(q.after.as_deref(), limit)
        .map_err(ApiError::internal)?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|i| i.id.clone()))
        .flatten();
    Ok(Json(serde_json::json!({ "items": items, "next": next })))
}

/// The id that names every item in `POST /v1/relay/queue/{id}/{action}` (no item has
/// it: theirs start with `v2-`).
pub const ALL_ITEMS: &str = "all";

/// `POST /v1/relay/queue/{id}/{action}` (operator): `retry`, `hold`, `release` or
/// `delete` one item, or every item with the id `all`. A delete is refused (409)
/// for an item the relay may be sending: hold it first. Deleting stops only this
/// node's relaying of the item; its transfers stay in flight on chain.
async fn post_queue_action(
    State(s): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(action) = QueueAction::parse(&action) else {
        return Err(ApiError::bad_request(
            "invalid_action",
            "action must be retry, hold, release or delete",
        ));
    };
    let now = s.clock.now_ms();
    if id == ALL_ITEMS {
        let queue = s.queue.clone();
        let r = tokio::task::spawn_blocking(move || queue.operate_all(action, now))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        if r.changed > 0 {
            tracing::info!(
                action = action.as_str(),
                changed = r.changed,
                unchanged = r.unchanged,
                refused = r.refused,
                "relay queue: operator action on every item"
            );
        }
        return Ok(Json(serde_json::json!({ "all": r })));
    }
    match crate::cpu::blocking(|| s.queue.operate(&id, action, now)).map_err(ApiError::internal)? {
        Operated::Changed(item) => {
            tracing::info!(item = %item.id, action = action.as_str(), "relay queue: operator action");
            Ok(Json(serde_json::json!({ "item": item, "changed": true })))
        }
        Operated::Unchanged(item) => {
            Ok(Json(serde_json::json!({ "item": item, "changed": false })))
        }
        Operated::Deleted(item) => {
            let transfers: Vec<String> = item.transfers().iter().map(|t| t.to_string()).collect();
            tracing::warn!(item = %item.id, destination = %item.destination, state = ?item.state,
                transfers = %transfers.join(","),
                "relay queue: item deleted by the operator; this node no longer relays it");
            Ok(Json(serde_json::json!({
                "item": item,
                "changed": true,
                "deleted": true,
                "note": DELETE_NOTE,
            })))
        }
        Operated::Refused { item, why } => Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "queue_item_active",
            message: format!("relay item {} is {}: {why}", item.id, state_name(&item)),
        }),
        Operated::NotFound => Err(ApiError::not_found(format!(
            "no relay item {:?}",
            distpos_proofs::codec::truncate(&id)
        ))),
    }
}

/// What the answer to a delete says it meant.
const DELETE_NOTE: &str = "deleted from this node's relay queue only: no money moved. \
    Its transfers stay where the ledger has them (an outbound transfer stays in flight, \
    its amount held, until a proven receipt settles or refunds it), and the chain's \
    other nodes still relay their own copies of the item.";

fn state_name(item: &crate::queue::QueueItem) -> &'static str {
    match item.state {
        crate::queue::ItemState::Queued => "queued",
        crate::queue::ItemState::Delivered => "delivered (taken, not final there yet)",
        crate::queue::ItemState::Done => "done",
        crate::queue::ItemState::Expired => "expired",
    }
}

async fn get_correspondents(
    State(s): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let list =
        views_interchain::correspondents(&s.reads.latest(), &s.peer_watch, s.clock.now_ms())?;
    Ok(Json(serde_json::json!({ "correspondents": list })))
}

async fn get_correspondent(
    State(s): State<Arc<AppState>>,
    Path(chain): Path<String>,
) -> Result<Json<views_interchain::CorrespondentView>, ApiError> {
    let chain = parse_chain(&chain)?;
    views_interchain::correspondent(&s.reads.latest(), &s.peer_watch, chain, s.clock.now_ms())?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("chain {chain} is not a registered peer")))
}

/// `GET /v1/routes`: every known route, each endpoint with its origin (`config`,
/// `dns`, `override` with `scope: "node"`), and this node's stored overrides.
async fn get_routes(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let stats = s.routes.dns_stats();
    Json(serde_json::json!({
        "routes": s.routes.snapshot(s.clock.now_ms()),
        "dns": stats,
        "overrides": {
            "scope": "node",
            "stored": s.route_overrides.stored(),
            "limit": MAX_ROUTE_OVERRIDES,
            "note": OVERRIDE_SCOPE_NOTE,
        },
    }))
}

async fn get_route(
    State(s): State<Arc<AppState>>,
    Path(chain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let chain = parse_chain(&chain)?;
    // Resolve now (filling the cache) so the answer shows what a delivery would use.
    let identity = distpos_chain::ledger::peer(&s.reads.latest().state, chain)
        .ok()
        .flatten()
        .map(|p| p.registration.identity);
    // A chain we have no relation with is reached through a correspondent (DESIGN
    // §12): the config's `via`, or DNS TXT `via=` (a bounded cache).
    if identity.is_none() {
        let via = s.routes.resolve_via(chain, s.clock.now_ms(), true).await;
        if let (Ok(Some(_)), Some(v)) = (via, s.routes.snapshot_chain(chain, s.clock.now_ms())) {
            return Ok(Json(serde_json::to_value(v).map_err(ApiError::internal)?));
        }
    }
    // DNS SRV is asked only for chains we deal with (a registered peer, or one with a
    // configured route): anyone may call this, and any chain id would otherwise fill
    // the cache.
    if identity.is_none() && s.routes.snapshot_chain(chain, s.clock.now_ms()).is_none() {
        return Err(ApiError::not_found(format!(
            "chain {chain} is not a registered peer and has no configured route"
        )));
    }
    let resolved = s.routes.resolve(chain, identity, s.clock.now_ms()).await;
    let view = s.routes.snapshot_chain(chain, s.clock.now_ms());
    match (resolved, view) {
        (Ok(_), Some(v)) => Ok(Json(serde_json::to_value(v).map_err(ApiError::internal)?)),
        (Ok(_), None) => Err(ApiError::not_found(format!("no route to chain {chain}"))),
        (Err(e), v) => {
            let code = if e.is_temporary() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::NOT_FOUND
            };
            Err(ApiError {
                status: code,
                code: "no_route",
                message: match v {
                    Some(_) => format!("{e} (stale entries may exist)"),
                    None => e.to_string(),
                },
            })
        }
    }
}

/// What the answers about overrides say of their scope.
const OVERRIDE_SCOPE_NOTE: &str = "a route override applies to this node only, not to the \
    chain: the chain's other nodes keep their own routes, so set it on each node that \
    should use it. It is stored and survives this node's restarts.";

/// `PUT /v1/routes/{chain}` (operator): checked, stored and flushed, then applied.
async fn put_route(
    State(s): State<Arc<AppState>>,
    Path(chain): Path<String>,
    ApiJson(endpoints): ApiJson<Vec<StaticEndpoint>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let chain = parse_chain(&chain)?;
    let checked = s
        .routes
        .check_override(chain, endpoints)
        .map_err(|e| ApiError::bad_request("invalid_route", e.to_string()))?;
    crate::cpu::blocking(|| s.route_overrides.set(&s.routes, checked)).map_err(|e| match e {
        OverrideError::Full { .. } => ApiError {
            status: StatusCode::CONFLICT,
            code: "route_overrides_full",
            message: e.to_string(),
        },
        OverrideError::Store(e) => not_saved(chain, "set", e),
    })?;
    Ok(Json(serde_json::json!({
        "route": s.routes.snapshot_chain(chain, s.clock.now_ms()),
        "scope": "node",
        "persisted": true,
        "note": OVERRIDE_SCOPE_NOTE,
    })))
}

/// `DELETE /v1/routes/{chain}` (operator): removed from the store (flushed), then
/// from the table.
async fn delete_route(
    State(s): State<Arc<AppState>>,
    Path(chain): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let chain = parse_chain(&chain)?;
    let removed = crate::cpu::blocking(|| s.route_overrides.clear(&s.routes, chain))
        .map_err(|e| not_saved(chain, "removed", e))?;
    Ok(Json(
        serde_json::json!({ "removed": removed, "scope": "node" }),
    ))
}

/// The store refused an override change: a 500 that says nothing changed; the cause
/// goes to the log (it is the node's fault, not the caller's).
fn not_saved(chain: ChainId, what: &str, cause: StoreError) -> ApiError {
    tracing::error!(%chain, error = %cause, "route override not {what}: the store failed");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "route_override_not_saved",
        message: format!(
            "the route override of chain {chain} could not be {what}: this node's store \
             failed to write it, so the route is unchanged (the node's log has the cause)"
        ),
    }
}
