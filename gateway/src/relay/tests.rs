//! The relay's decisions without a network: a scripted [`PeerChain`] answers, a manual
//! clock stands still or moves, and the queue says what became of each item.

use super::*;
use crate::{
    clock::Clock,
    config::NodeConfig,
    node::Node,
    queue::{PENDING_RETRY_MS, REDELIVER_MS, RETRY_SCHEDULE_MS},
    store::Store,
};
use distpos_adapters::{AckStatus, BatchDelivery, BatchReceipts, HeaderPage, TxProof};
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
    Body, Transaction,
};
use distpos_proofs::{
    light_client::{verify_batch, Commitment, Finalized},
    multiproof::MultiProof,
};
use std::sync::Mutex;

const PEER_URL: &str = "http://peer-b.invalid";
const T0: u64 = 1_900_000_000_000;

/// What the scripted peer answers to a call.
#[derive(Clone)]
enum Script {
    /// The answer to the batch of block `h` is `answers[(h - 1) % len]` (items go out
    /// concurrently, so answers are keyed by the batch, not by the order of calls); an
    /// `Err` is a 400 refusal with that code.
    Answers(Vec<Result<AckStatus, &'static str>>),
    /// Every call fails.
    Fails(fn() -> AdapterError),
}

/// A peer chain that answers from a script and counts the calls it gets.
struct ScriptedPeer {
    script: Mutex<Script>,
    calls: Mutex<usize>,
}

impl ScriptedPeer {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script),
            calls: Mutex::new(0),
        })
    }

    fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }

    fn answer(&self, height: u64) -> Result<RelayAck, AdapterError> {
        *self.calls.lock().unwrap() += 1;
        match self.script.lock().unwrap().clone() {
            Script::Fails(e) => Err(e()),
            Script::Answers(a) => match a[(height.max(1) - 1) as usize % a.len()] {
                Ok(status) => Ok(RelayAck {
                    status,
                    tx: None,
                    reason: None,
                }),
                Err(code) => Err(AdapterError::Status {
                    endpoint: PEER_URL.into(),
                    status: 400,
                    body: format!("{{\"code\":\"{code}\"}}"),
                }),
            },
        }
    }
}

impl PeerChain for ScriptedPeer {
    async fn headers(&self, _: &str, _: u64, _: u64) -> Result<HeaderPage, AdapterError> {
        Err(AdapterError::TimedOut("not scripted".into()))
    }
    async fn tx_proof(&self, _: &str, _: &Hash32) -> Result<TxProof, AdapterError> {
        Err(AdapterError::TimedOut("not scripted".into()))
    }
    async fn deliver_v2(&self, _: &str, d: &BatchDelivery) -> Result<RelayAck, AdapterError> {
        self.answer(d.height)
    }
    async fn deliver_receipts_v2(
        &self,
        _: &str,
        r: &BatchReceipts,
    ) -> Result<RelayAck, AdapterError> {
        self.answer(r.height)
    }
}

/// A node of chain A (whose genesis registers B) with a static route to B and a
/// clock standing at `T0`. The folder lives as long as the guard.
fn relay_node() -> (Arc<AppState>, TestChain, TestChain, tempfile::TempDir) {
    let (a, b) = peer_pair(0xa7, 0xb7, 1, 2, TestChain::dev_params());
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&a.genesis).unwrap()).unwrap();
    let mut config = NodeConfig {
        data_dir: dir.path().join("data"),
        genesis,
        ..Default::default()
    };
    // These tests are about answers, not about whose duty it is to send.
    config.relay.takeover_ms = 0;
    config.routing.static_routes.insert(
        b.chain_id().to_string(),
        vec![distpos_routing::StaticEndpoint {
            url: PEER_URL.into(),
            priority: 10,
            weight: 1,
        }],
    );
    let mut state = crate::runtime::open(config).unwrap();
    Arc::get_mut(&mut state).expect("not shared yet").clock = Clock::manual(T0);
    (state, a, b, dir)
}

fn transfer_to(a: &mut TestChain, b: &TestChain, n: u128) -> Transaction {
    let to = QualifiedAddress {
        chain: b.chain_id(),
        address: address_of(&b.users[0]),
    };
    a.tx(
        &a.users[0].clone(),
        1,
        Body::Transfer {
            to,
            amount: n,
            memo: vec![],
            deliver_by: 0,
            fast_fee: 0,
            via: None,
        },
    )
}

/// `n` batches for B (one transfer each, from A's blocks 1..=n), queued at `T0`.
fn queue_deliveries(state: &AppState, a: &mut TestChain, b: &TestChain, n: usize) -> Vec<String> {
    let items: Vec<QueueItem> = (0..n)
        .map(|i| {
            let d = BatchDelivery {
                source_chain: a.chain_id(),
                height: 1 + i as u64,
                transfers: vec![transfer_to(a, b, 1 + i as u128)],
                indices: vec![0],
                proof: MultiProof { siblings: vec![] },
                headers: vec![],
            };
            QueueItem::batch_delivery(d, b.chain_id(), T0)
        })
        .collect();
    state.queue.enqueue(&items, 1).unwrap();
    items.into_iter().map(|i| i.id).collect()
}

fn item(state: &AppState, id: &str) -> QueueItem {
    state.queue.get(id).unwrap().expect("queued")
}

#[tokio::test]
async fn each_answer_moves_its_item_as_the_peer_said() {
    let (state, mut a, b, _dir) = relay_node();
    // Blocks 1, 2, 3: answered accepted, pending, refused.
    let ids = queue_deliveries(&state, &mut a, &b, 3);
    let peer = ScriptedPeer::new(Script::Answers(vec![
        Ok(AckStatus::Accepted),
        Ok(AckStatus::Pending),
        Err("bad_proof"),
    ]));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 3, "one call per batch");

    let accepted = item(&state, &ids[0]);
    assert_eq!(accepted.state, ItemState::Delivered);
    assert_eq!(
        accepted.next_attempt_ms,
        T0 + REDELIVER_MS,
        "re-sent until settled"
    );
    let pending = item(&state, &ids[1]);
    assert_eq!(pending.state, ItemState::Queued);
    assert_eq!(pending.next_attempt_ms, T0 + PENDING_RETRY_MS);
    let refused = item(&state, &ids[2]);
    assert_eq!((refused.state, refused.failures), (ItemState::Queued, 1));
    assert!(refused
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("bad_proof"));
    assert_eq!(refused.next_attempt_ms, T0 + RETRY_SCHEDULE_MS[0]);

    // Nothing is due while the clock stands still.
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 3);
    // Once it moves, the refused one and then the pending one go again (not the
    // accepted one).
    state.clock.advance(RETRY_SCHEDULE_MS[0]);
    peer.set(Script::Answers(vec![Ok(AckStatus::Pending)]));
    send_due(&state, &peer).await;
    assert_eq!(
        peer.calls(),
        4,
        "the refused one (the pending one is due later)"
    );
    state.clock.advance(PENDING_RETRY_MS - RETRY_SCHEDULE_MS[0]);
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 5, "then the pending one");
    assert_eq!(
        item(&state, &ids[2]).failures,
        0,
        "an answer resets the backoff"
    );
    assert_eq!(item(&state, &ids[0]).state, ItemState::Delivered);
}

#[tokio::test]
async fn an_unreachable_peer_is_retried_later_and_later() {
    let (state, mut a, b, _dir) = relay_node();
    let ids = queue_deliveries(&state, &mut a, &b, 1);
    let peer = ScriptedPeer::new(Script::Fails(|| AdapterError::Unreachable {
        endpoint: PEER_URL.into(),
        reason: "connection refused".into(),
    }));
    let mut waited = Vec::new();
    for _ in 0..3 {
        let before = item(&state, &ids[0]);
        state
            .clock
            .advance(before.next_attempt_ms.saturating_sub(state.clock.now_ms()));
        let now = state.clock.now_ms();
        send_due(&state, &peer).await;
        let after = item(&state, &ids[0]);
        assert_eq!(after.state, ItemState::Queued, "never given up while young");
        waited.push(after.next_attempt_ms - now);
    }
    assert_eq!(
        waited,
        RETRY_SCHEDULE_MS[..3].to_vec(),
        "backoff grows by the schedule"
    );
    assert_eq!(item(&state, &ids[0]).failures, 3);
}

#[tokio::test]
async fn an_item_past_its_lifetime_expires_without_a_call() {
    let (state, mut a, b, _dir) = relay_node();
    let ids = queue_deliveries(&state, &mut a, &b, 1);
    state.clock.advance(state.config.relay.max_lifetime_ms + 1);
    let peer = ScriptedPeer::new(Script::Answers(vec![Ok(AckStatus::Accepted)]));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 0);
    assert_eq!(item(&state, &ids[0]).state, ItemState::Expired);
}

#[tokio::test]
async fn a_receipt_is_done_when_its_source_settled_and_only_then() {
    let (state, a, b, _dir) = relay_node();
    // Our receipts of B's transfers, from our blocks 1 and 2.
    let receipts = |height: u64| BatchReceipts {
        receipt_chain: a.chain_id(),
        height,
        receipts: vec![distpos_chain::Receipt {
            tx_hash: Hash32([height as u8; 32]),
            outcome: distpos_chain::tx::Outcome::InboundBatch {
                source: b.chain_id(),
                results: vec![distpos_chain::tx::TransferResult {
                    source_tx: Hash32([height as u8; 32]),
                    amount: 1,
                    bounced: None,
                    fast: false,
                    bounced_by: None,
                }],
            },
            amount: 1,
            fee: 0,
        }],
        indices: vec![0],
        proof: MultiProof { siblings: vec![] },
        headers: vec![],
    };
    let items = vec![
        QueueItem::batch_receipts(receipts(1), b.chain_id(), Hash32([1; 32]), T0),
        QueueItem::batch_receipts(receipts(2), b.chain_id(), Hash32([2; 32]), T0),
    ];
    state.queue.enqueue(&items, 1).unwrap();
    let peer = ScriptedPeer::new(Script::Answers(vec![
        Ok(AckStatus::AlreadySettled),
        Ok(AckStatus::Accepted),
    ]));
    send_due(&state, &peer).await;
    assert_eq!(item(&state, &items[0].id).state, ItemState::Done);
    assert_eq!(
        item(&state, &items[1].id).state,
        ItemState::Delivered,
        "accepted is not settled: sent again until the source says so"
    );
}

#[test]
fn a_scan_queues_one_provable_batch_per_destination_and_block() {
    let (mut a, b) = peer_pair(0xa8, 0xb8, 1, 2, TestChain::dev_params());
    let local = QualifiedAddress::local(address_of(&a.users[1]));
    let txs = vec![
        transfer_to(&mut a, &b, 5),
        a.tx(
            &a.users[1].clone(),
            1,
            Body::Transfer {
                to: local,
                amount: 1,
                memo: vec![],
                deliver_by: 0,
                fast_fee: 0,
                via: None,
            },
        ),
    ];
    a.produce(&txs).unwrap();
    a.produce_empty(2).unwrap();
    let mut node = Node::open(
        a.genesis.clone(),
        Store::in_memory(),
        None,
        10,
        crate::metrics::Metrics::new(),
    )
    .unwrap();
    for blk in a.blocks.clone() {
        node.on_block(blk.clone(), blk.header.header.timestamp_ms)
            .unwrap();
    }
    let snap = node.reads().latest();
    let (items, upto) = scan_blocks(&snap, 0, snap.consensus.lib, T0).unwrap();
    assert_eq!(upto, snap.consensus.lib);
    assert_eq!(items.len(), 1, "the local transfer is not relayed");
    let Payload::DeliveryBatch(d) = &items[0].payload else {
        panic!("a batch delivery");
    };
    assert_eq!(
        (items[0].destination, d.height, d.indices.clone()),
        (b.chain_id(), 1, vec![0])
    );
    assert_eq!(d.transfers, vec![txs[0].clone()]);
    assert!(
        d.headers.is_empty(),
        "no headers ride along: the destination takes them from its own header sync"
    );
    assert_eq!(
        verify_batch(
            &Finalized::of(&a.blocks[0].header),
            &[d.transfers[0].encode()],
            &d.indices,
            &d.proof,
            Commitment::Transactions
        ),
        Ok(()),
        "the multiproof verifies against the signed header"
    );
    // Scanned once: a later scan from where it ended finds nothing new.
    let (again, _) = scan_blocks(&snap, upto, snap.consensus.lib, T0).unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn a_node_off_duty_sends_only_what_waited_past_the_takeover_bound() {
    let (mut state, mut a, b, _dir) = relay_node();
    Arc::get_mut(&mut state).unwrap().config.relay.takeover_ms = 10_000;
    let ids = queue_deliveries(&state, &mut a, &b, 1);
    let peer = ScriptedPeer::new(Script::Answers(vec![Ok(AckStatus::Accepted)]));
    // No producer key here: never on duty.
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 0, "the duty holder sends first");
    state.clock.advance(9_999);
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 0);
    state.clock.advance(1);
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), 1, "taken over once it waited 10 s");
    assert_eq!(item(&state, &ids[0]).state, ItemState::Delivered);
}

#[test]
fn the_duty_turns_over_the_schedule_and_differs_per_destination() {
    let keys: Vec<_> = (0..3u8)
        .map(|i| distpos_proofs::SecretKey::from_seed(&[b'd', i]).public_key())
        .collect();
    let schedule = distpos_proofs::ProducerSchedule {
        version: 1,
        producers: keys.clone(),
    };
    let b = ChainId(7);
    let holders: Vec<_> = (0..3)
        .map(|k| duty_holder(&schedule, b, k * DUTY_PERIOD_MS).unwrap())
        .collect();
    let mut sorted = holders.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        3,
        "every producer takes its turn: {holders:?}"
    );
    assert_eq!(
        duty_holder(&schedule, b, 5),
        duty_holder(&schedule, b, DUTY_PERIOD_MS - 1),
        "one holder through a period"
    );
    assert_ne!(
        duty_holder(&schedule, ChainId(7), 0),
        duty_holder(&schedule, ChainId(8), 0),
        "destinations spread over the producers"
    );
    let empty = distpos_proofs::ProducerSchedule {
        version: 1,
        producers: vec![],
    };
    assert_eq!(duty_holder(&empty, b, 0), None);
}
