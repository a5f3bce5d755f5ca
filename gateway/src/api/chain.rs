//! Handlers of the chain's own routes: status, transactions, blocks (views and
//! same-chain sync and gossip), accounts, producers, headers and proofs for peer
//! chains' light clients, the supply audit, metrics and the OpenAPI document.

use super::{
    error::{ApiError, ApiJson},
    txs_body::TxsBody,
    views, MAX_HEADERS, MAX_SYNC_BLOCKS, MAX_SYNC_TXS,
};
use crate::{node::BlockOutcome, state::AppState};
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use distpos_adapters::GOSSIP_HEADER;
use distpos_chain::{Address, Block, Transaction};
use distpos_proofs::Hash32;
use serde::Deserialize;
use std::sync::Arc;

/// The chain's own routes (merged into the main router).
pub(super) fn routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/txs", post(post_txs))
        .route("/v1/txs/{hash}", get(get_tx))
        .route("/v1/blocks", get(get_blocks).post(post_block))
        .route("/v1/blocks/{which}", get(get_block))
        .route("/v1/accounts/{address}", get(get_account))
        .route("/v1/producers", get(get_producers))
        .route("/v1/headers", get(get_headers))
        .route("/v1/proofs/tx/{hash}", get(get_tx_proof))
        .route("/v1/supply", get(get_supply))
        .route("/v1/anchor", get(get_anchor))
        .route("/v1/proposals", get(get_proposals))
        .route("/v1/transfers/recent", get(get_recent_transfers))
        .route("/", get(super::dashboard::page))
        .route("/dashboard.js", get(super::dashboard::script))
        .route("/v1/openapi.yaml", get(openapi))
        .route("/metrics", get(metrics))
}

fn parse_hash(s: &str) -> Result<Hash32, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad_request("invalid_hash", format!("invalid hash: {e}")))
}

async fn status(State(s): State<Arc<AppState>>) -> Result<Json<views::StatusView>, ApiError> {
    Ok(Json(views::status(&s.reads.latest(), s.clock.now_ms())?))
}

/// `GET /metrics`: the OpenMetrics text, with what is read at scrape time refreshed.
async fn metrics(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = super::scrape::render(s).await.map_err(ApiError::internal)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

/// One result of `POST /v1/txs`.
#[derive(serde::Serialize)]
struct TxResult {
    hash: Option<Hash32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// `POST /v1/txs`: one transaction (→ 202 `{"hash"}` or an error) or a JSON array of
/// at most [`super::txs_body::MAX_TX_BATCH`] (→ 200 with one result per transaction,
/// in order).
async fn post_txs(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: TxsBody,
) -> Result<Response, ApiError> {
    let gossip = headers.contains_key(GOSSIP_HEADER);
    // At most `MAX_TX_BATCH` items: the body's parser refused more.
    let (items, batch) = match body {
        TxsBody::Batch(v) => (v, true),
        TxsBody::One(one) => (vec![one], false),
    };
    // Decoding and signatures are the costly part: both run on every core, outside
    // the node lock and off the async threads.
    let (parsed, checks) = tokio::task::spawn_blocking(move || {
        let parsed: Vec<Result<Transaction, String>> = crate::cpu::par_map(items, |item| {
            serde_json::from_value::<Transaction>(item).map_err(|e| e.to_string())
        })
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("could not be decoded".to_string())))
        .collect();
        let checks = verify_parallel(&parsed);
        (parsed, checks)
    })
    .await
    .map_err(ApiError::internal)?;
    let now = s.clock.now_ms();
    // Refused before the ledger is asked: undecodable, or a bad signature.
    let mut results: Vec<Option<Result<Hash32, ApiError>>> = Vec::with_capacity(parsed.len());
    let mut checked = Vec::new();
    for (p, check) in parsed.into_iter().zip(checks) {
        results.push(match (p, check) {
            (Err(msg), _) => Some(Err(ApiError::bad_request("invalid_transaction", msg))),
            (Ok(_), Some(Err(e))) => Some(Err(ApiError::from(crate::node::NodeError::Tx(e)))),
            (Ok(tx), Some(Ok(check))) => {
                checked.push((tx, check));
                None
            }
            (Ok(_), None) => Some(Err(ApiError::internal("signature check missing"))),
        });
    }
    let copies: Vec<Transaction> = if gossip {
        Vec::new()
    } else {
        checked.iter().map(|(tx, _)| tx.clone()).collect()
    };
    let admitted = {
        let mut node = s.node.lock().await;
        crate::cpu::blocking(|| node.submit_checked_many(checked, now))
    };
    let mut accepted = Vec::new();
    let mut admitted = admitted.into_iter();
    let mut copies = copies.into_iter();
    let mut results: Vec<Result<Hash32, ApiError>> = results
        .into_iter()
        .map(|r| match r {
            Some(refused) => refused,
            None => {
                let copy = copies.next();
                match admitted.next() {
                    Some(Ok((hash, new))) => {
                        if new {
                            accepted.extend(copy);
                        }
                        Ok(hash)
                    }
                    Some(Err(e)) => Err(ApiError::from(e)),
                    None => Err(ApiError::internal("admission result missing")),
                }
            }
        })
        .collect();
    if !gossip && !accepted.is_empty() {
        s.chain_nodes.forward_txs(accepted);
    }
    if !batch {
        return match results.pop() {
            Some(Ok(hash)) => Ok((
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "hash": hash })),
            )
                .into_response()),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::bad_request(
                "invalid_transaction",
                "empty request",
            )),
        };
    }
    let out: Vec<TxResult> = results
        .into_iter()
        .map(|r| match r {
            Ok(hash) => TxResult {
                hash: Some(hash),
                error: None,
            },
            Err(e) => TxResult {
                hash: None,
                error: Some(serde_json::json!({ "code": e.code, "message": e.message })),
            },
        })
        .collect();
    Ok(Json(out).into_response())
}

async fn get_tx(
    State(s): State<Arc<AppState>>,
    Path(hash): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hash = parse_hash(&hash)?;
    let snap = s.reads.latest();
    let status = views::tx_status(&snap, &hash)?;
    let cross = views::transfers::cross_chain(&snap, &s.queue, &hash)?;
    match (status, cross) {
        (None, None) => Err(ApiError::not_found(format!(
            "transaction {hash} is not known here"
        ))),
        (status, cross) => {
            let mut v = match status {
                Some(st) => serde_json::to_value(st).map_err(ApiError::internal)?,
                // A transfer from another chain, known here by its inbound record.
                None => serde_json::json!({ "hash": hash, "status": "inbound" }),
            };
            if let Some(c) = cross {
                v["cross_chain"] = serde_json::to_value(c).map_err(ApiError::internal)?;
            }
            Ok(Json(v))
        }
    }
}

async fn get_block(
    State(s): State<Arc<AppState>>,
    Path(which): Path<String>,
) -> Result<Json<views::BlockView>, ApiError> {
    let snap = s.reads.latest();
    let height = match which.as_str() {
        "head" => snap.head_height,
        "lib" => snap.consensus.lib,
        n => n.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_height",
                format!(
                    "expected a height, `head` or `lib`, got {:?}",
                    distpos_proofs::codec::truncate(n)
                ),
            )
        })?,
    };
    views::block_at(&snap, height)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    from: u64,
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /v1/blocks?from=&limit=`: canonical blocks for catch-up sync.
async fn get_blocks(
    State(s): State<Arc<AppState>>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(MAX_SYNC_BLOCKS).clamp(1, MAX_SYNC_BLOCKS);
    let snap = s.reads.latest();
    let mut blocks: Vec<Block> = Vec::new();
    let end = q.from.saturating_add(limit);
    let heights = q.from.max(1)..end.min(snap.head_height + 1);
    let stored = heights.map_while(|h| snap.store.block_at(h).transpose());
    for b in within_tx_budget(stored, MAX_SYNC_TXS) {
        blocks.push(b.map_err(ApiError::internal)?);
    }
    Ok(Json(
        serde_json::json!({ "head": snap.head_height, "blocks": blocks }),
    ))
}

/// Blocks in order until their transactions reach `max` (the block that reaches it is
/// included; at least one block whenever there is one): one sync answer stays bounded
/// however full the blocks are, and the caller asks again from where it ends.
fn within_tx_budget<E>(
    blocks: impl Iterator<Item = Result<Block, E>>,
    max: usize,
) -> impl Iterator<Item = Result<Block, E>> {
    let mut txs = 0usize;
    blocks.take_while(move |b| {
        let go_on = txs < max;
        if let Ok(b) = b {
            txs += b.txs.len();
        }
        go_on
    })
}

/// `POST /v1/blocks`: a block pushed by another node of our chain.
async fn post_block(
    State(s): State<Arc<AppState>>,
    ApiJson(block): ApiJson<Block>,
) -> Result<Response, ApiError> {
    let now = s.clock.now_ms();
    let result = {
        let mut node = s.node.lock().await;
        crate::cpu::blocking(|| node.on_block(block, now))
    };
    match result {
        Ok(BlockOutcome::Known) => {
            Ok(Json(serde_json::json!({ "status": "known" })).into_response())
        }
        Ok(BlockOutcome::Added { head_changed }) => Ok(Json(
            serde_json::json!({ "status": "added", "head_changed": head_changed }),
        )
        .into_response()),
        Err(e) => {
            if matches!(
                e,
                crate::node::NodeError::Fork(distpos_chain::forkdb::ForkError::UnknownParent(_))
            ) {
                s.sync_now.notify_one();
            }
            Err(e.into())
        }
    }
}

async fn get_account(
    State(s): State<Arc<AppState>>,
    Path(addr): Path<String>,
) -> Result<Json<views::AccountView>, ApiError> {
    let address = distpos_chain::QualifiedAddress::parse(&addr)
        .map_err(|e| ApiError::bad_request("invalid_address", e.to_string()))?;
    let snap = s.reads.latest();
    let chain_id = snap.info.genesis.chain_id;
    if !address.is_local_to(chain_id) {
        return Err(ApiError::bad_request(
            "not_local",
            format!(
                "{address} is an address on chain {}, not on this chain {chain_id}",
                address.chain
            ),
        ));
    }
    let a: Address = address.address;
    Ok(Json(views::account(&snap, &a)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorQuery {
    height: Option<u64>,
}

/// `GET /v1/anchor[?height=H]`: what another chain registers this one from (DESIGN
/// §14): the last irreversible block, or the one at `H`.
async fn get_anchor(
    State(s): State<Arc<AppState>>,
    query: Result<Query<AnchorQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<distpos_chain::tx::PeerAnchor>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let snap = s.reads.latest();
    views::governance::anchor(&snap, q.height)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "block {} is not irreversible yet (LIB {}): no anchor there",
                q.height.unwrap_or_default(),
                snap.consensus.lib
            ))
        })
}

/// `GET /v1/transfers/recent`: the last cross-chain transfer events of this chain's
/// blocks as this node applied them, newest first (at most 200; in memory).
async fn get_recent_transfers(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let snap = s.reads.latest();
    Json(serde_json::json!({
        "head": snap.head_height,
        "transfers": snap.recent.newest(crate::node::recent::RECENT_TRANSFERS),
    }))
}

/// `GET /v1/proposals`: the open governance proposals and their approvals.
async fn get_proposals(
    State(s): State<Arc<AppState>>,
) -> Result<Json<views::governance::ProposalsView>, ApiError> {
    Ok(Json(views::governance::proposals(&s.reads.latest())?))
}

async fn get_producers(
    State(s): State<Arc<AppState>>,
) -> Result<Json<views::ProducersView>, ApiError> {
    Ok(Json(views::producers(&s.reads.latest(), s.clock.now_ms())?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderRange {
    from: u64,
    to: u64,
}

/// `GET /v1/headers?from=&to=`: signed canonical headers `from..=to` (at most
/// [`MAX_HEADERS`]), for peer chains' light clients.
async fn get_headers(
    State(s): State<Arc<AppState>>,
    query: Result<Query<HeaderRange>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    if q.from == 0 || q.to < q.from {
        return Err(ApiError::bad_request(
            "invalid_range",
            "need 1 <= from <= to",
        ));
    }
    if q.to - q.from >= MAX_HEADERS {
        return Err(ApiError::bad_request(
            "range_too_large",
            format!("at most {MAX_HEADERS} headers per request"),
        ));
    }
    let snap = s.reads.latest();
    let mut headers = Vec::new();
    for h in q.from..=q.to.min(snap.head_height) {
        match snap.store.block_at(h).map_err(ApiError::internal)? {
            Some(b) => headers.push(b.header),
            None => break,
        }
    }
    Ok(Json(
        serde_json::json!({ "head": snap.head_height, "lib": snap.consensus.lib, "headers": headers }),
    ))
}

async fn get_tx_proof(
    State(s): State<Arc<AppState>>,
    Path(hash): Path<String>,
) -> Result<Json<views::TxProofView>, ApiError> {
    let hash = parse_hash(&hash)?;
    // Two Merkle trees over the block: CPU work, off the async workers.
    let snap = s.reads.latest();
    let proof = tokio::task::spawn_blocking(move || views::tx_proof(&snap, &hash))
        .await
        .map_err(ApiError::internal)??;
    proof.map(Json).ok_or_else(|| {
        ApiError::not_found(format!("transaction {hash} is not included on this chain"))
    })
}

/// `GET /v1/supply`: where every token is, and whether the invariant holds.
async fn get_supply(State(s): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    // A pass over the whole state: CPU work, off the async workers.
    let snap = s.reads.latest();
    let r = tokio::task::spawn_blocking(move || distpos_chain::supply::audit_supply(&snap.state))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({
        "balances": r.balances.to_string(),
        "stakes": r.stakes.to_string(),
        "unbonding": r.unbonding.to_string(),
        "in_flight": r.in_flight.to_string(),
        "correspondents": r.correspondents.to_string(),
        "bonds": r.bonds.to_string(),
        "held": r.held.to_string(),
        "total": r.total().to_string(),
        "expected": r.expected.to_string(),
        "holds": r.holds(),
    })))
}

/// Verifies the signatures of the parsed transactions on all cores; `None` for the
/// ones that did not parse.
fn verify_parallel(
    parsed: &[Result<Transaction, String>],
) -> Vec<Option<Result<distpos_chain::TxCheck, distpos_chain::TxError>>> {
    crate::cpu::par_map(parsed.iter().collect(), |p| {
        p.as_ref().ok().map(distpos_chain::verify_tx_signature)
    })
    .into_iter()
    .map(Option::flatten)
    .collect()
}

/// `GET /v1/openapi.yaml`: the published API description (`docs/openapi.yaml`).
async fn openapi() -> impl IntoResponse {
    (
        [("content-type", "application/yaml")],
        include_str!("../../openapi.yaml"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use distpos_chain::{testkit::TestChain, Body, QualifiedAddress};

    #[test]
    fn sync_answers_stop_at_the_transaction_budget() {
        let mut c = TestChain::new(0xa, 1, 1, TestChain::dev_params());
        let key = c.users[0].clone();
        let to = QualifiedAddress::local(distpos_chain::Address::ZERO);
        for n in [3usize, 0, 4, 2, 5] {
            let txs: Vec<_> = (0..n)
                .map(|_| {
                    c.tx(
                        &key,
                        1,
                        Body::Transfer {
                            to,
                            amount: 1,
                            memo: vec![],
                            deliver_by: 0,
                            fast_fee: 0,
                            via: None,
                        },
                    )
                })
                .collect();
            c.produce(&txs).unwrap();
        }
        let sizes = |max| -> Vec<usize> {
            within_tx_budget(c.blocks.iter().cloned().map(Ok::<_, ()>), max)
                .map(|b| b.unwrap().txs.len())
                .collect()
        };
        assert_eq!(sizes(5), vec![3, 0, 4], "stops once 5 is reached (3+0+4)");
        assert_eq!(sizes(1), vec![3], "at least one block, even a large one");
        assert_eq!(sizes(100), vec![3, 0, 4, 2, 5]);
    }

    #[test]
    fn parallel_checks_stay_aligned_with_their_transactions() {
        let mut c = TestChain::new(0xa, 1, 3, TestChain::dev_params());
        let mut parsed = Vec::new();
        for i in 0..7usize {
            if i == 3 {
                parsed.push(Err("not a transaction".to_string()));
                continue;
            }
            let key = c.users[i % 3].clone();
            let to = QualifiedAddress::local(distpos_chain::Address::ZERO);
            let mut tx = c.tx(
                &key,
                1,
                Body::Transfer {
                    to,
                    amount: 1,
                    memo: vec![],
                    deliver_by: 0,
                    fast_fee: 0,
                    via: None,
                },
            );
            if i == 5 {
                tx.signature.0[9] ^= 1; // a bad signature in the middle
            }
            parsed.push(Ok(tx));
        }
        let checks = verify_parallel(&parsed);
        assert_eq!(checks.len(), parsed.len());
        for (i, (p, c)) in parsed.iter().zip(&checks).enumerate() {
            match (p, c) {
                (Err(_), None) => assert_eq!(i, 3),
                (Ok(_), Some(Err(_))) => assert_eq!(i, 5),
                (Ok(tx), Some(Ok(check))) => {
                    assert_eq!(check.hash, tx.hash(), "check {i} belongs to its own tx")
                }
                other => panic!("misaligned at {i}: {other:?}"),
            }
        }
    }
}
