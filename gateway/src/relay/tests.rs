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
use distpos_adapters::{
    AckStatus, BatchAnswer, BatchDelivery, BatchError, BatchReceipts, HeaderPage, TxProof,
};
use distpos_chain::{
    address::QualifiedAddress,
    testkit::{address_of, peer_pair, TestChain},
    Body, Transaction,
};
use distpos_proofs::light_client::{verify_bundle, Commitment, Finalized, ProofBundle};
use std::sync::Mutex;

const PEER_URL: &str = "http://peer-b.invalid";
const T0: u64 = 1_900_000_000_000;

/// What the scripted peer answers to a batch call.
#[derive(Clone)]
enum Script {
    /// One answer per item, in order (cycled).
    Answers(Vec<Result<AckStatus, &'static str>>),
    /// The whole call fails.
    Fails(fn() -> AdapterError),
}

/// A peer chain that answers from a script and counts the calls it gets.
struct ScriptedPeer {
    script: Mutex<Script>,
    batch_calls: Mutex<usize>,
    single_calls: Mutex<usize>,
}

impl ScriptedPeer {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script),
            batch_calls: Mutex::new(0),
            single_calls: Mutex::new(0),
        })
    }

    fn set(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    fn calls(&self) -> (usize, usize) {
        (
            *self.batch_calls.lock().unwrap(),
            *self.single_calls.lock().unwrap(),
        )
    }

    fn answer(&self, n: usize) -> Result<Vec<BatchAnswer>, AdapterError> {
        *self.batch_calls.lock().unwrap() += 1;
        match self.script.lock().unwrap().clone() {
            Script::Fails(e) => Err(e()),
            Script::Answers(a) => Ok((0..n)
                .map(|i| match a[i % a.len()] {
                    Ok(status) => BatchAnswer {
                        ack: Some(RelayAck {
                            status,
                            tx: None,
                            reason: None,
                        }),
                        error: None,
                    },
                    Err(code) => BatchAnswer {
                        ack: None,
                        error: Some(BatchError {
                            code: code.into(),
                            message: "refused by the script".into(),
                        }),
                    },
                })
                .collect()),
        }
    }

    fn single(&self) -> Result<RelayAck, AdapterError> {
        *self.single_calls.lock().unwrap() += 1;
        Ok(RelayAck {
            status: AckStatus::Accepted,
            tx: None,
            reason: None,
        })
    }
}

impl PeerChain for ScriptedPeer {
    async fn headers(&self, _: &str, _: u64, _: u64) -> Result<HeaderPage, AdapterError> {
        Err(AdapterError::TimedOut("not scripted".into()))
    }
    async fn tx_proof(&self, _: &str, _: &Hash32) -> Result<TxProof, AdapterError> {
        Err(AdapterError::TimedOut("not scripted".into()))
    }
    async fn deliver(&self, _: &str, _: &Delivery) -> Result<RelayAck, AdapterError> {
        self.single()
    }
    async fn deliver_receipt(
        &self,
        _: &str,
        _: &ReceiptDelivery,
    ) -> Result<RelayAck, AdapterError> {
        self.single()
    }
    async fn deliver_v2(&self, _: &str, _: &BatchDelivery) -> Result<RelayAck, AdapterError> {
        self.single()
    }
    async fn deliver_receipts_v2(
        &self,
        _: &str,
        _: &BatchReceipts,
    ) -> Result<RelayAck, AdapterError> {
        self.single()
    }
    async fn deliver_batch(
        &self,
        _: &str,
        d: &[Delivery],
    ) -> Result<Vec<BatchAnswer>, AdapterError> {
        self.answer(d.len())
    }
    async fn deliver_receipt_batch(
        &self,
        _: &str,
        r: &[ReceiptDelivery],
    ) -> Result<Vec<BatchAnswer>, AdapterError> {
        self.answer(r.len())
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
        },
    )
}

/// `n` delivery items for B, queued at `T0`.
fn queue_deliveries(state: &AppState, a: &mut TestChain, b: &TestChain, n: usize) -> Vec<String> {
    let items: Vec<QueueItem> = (0..n)
        .map(|i| {
            let tx = transfer_to(a, b, 1 + i as u128);
            let d = Delivery {
                source_chain: a.chain_id(),
                source_tx: tx,
                proof: distpos_proofs::merkle::MerkleProof { siblings: vec![] },
                height: 1,
                index: i as u32,
                hops: 0,
            };
            QueueItem::delivery(d, b.chain_id(), T0)
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
    queue_deliveries(&state, &mut a, &b, 3);
    // In the order they go out (the answers come back in it).
    let ids: Vec<String> = state
        .queue
        .due(T0, 100)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let peer = ScriptedPeer::new(Script::Answers(vec![
        Ok(AckStatus::Accepted),
        Ok(AckStatus::Pending),
        Err("bad_proof"),
    ]));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (1, 0), "one batch call for the three");

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
    assert_eq!(peer.calls(), (1, 0));
    // Once it moves, the pending and refused ones go again (not the accepted one).
    state.clock.advance(RETRY_SCHEDULE_MS[0]);
    peer.set(Script::Answers(vec![Ok(AckStatus::Pending)]));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (2, 0));
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
async fn a_peer_without_batch_calls_gets_one_call_per_item() {
    let (state, mut a, b, _dir) = relay_node();
    let ids = queue_deliveries(&state, &mut a, &b, 2);
    let peer = ScriptedPeer::new(Script::Fails(|| AdapterError::Status {
        endpoint: PEER_URL.into(),
        status: 404,
        body: "not found".into(),
    }));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (1, 2));
    for id in &ids {
        assert_eq!(item(&state, id).state, ItemState::Delivered);
    }
}

#[tokio::test]
async fn an_item_past_its_lifetime_expires_without_a_call() {
    let (state, mut a, b, _dir) = relay_node();
    let ids = queue_deliveries(&state, &mut a, &b, 1);
    state.clock.advance(state.config.relay.max_lifetime_ms + 1);
    let peer = ScriptedPeer::new(Script::Answers(vec![Ok(AckStatus::Accepted)]));
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (0, 0));
    assert_eq!(item(&state, &ids[0]).state, ItemState::Expired);
}

#[tokio::test]
async fn a_receipt_is_done_when_its_source_settled_and_only_then() {
    let (state, a, b, _dir) = relay_node();
    let receipt = |n: u8| ReceiptDelivery {
        receipt_chain: a.chain_id(),
        receipt: distpos_chain::Receipt {
            tx_hash: Hash32([n; 32]),
            outcome: distpos_chain::tx::Outcome::Applied,
            amount: 1,
            fee: 0,
        },
        proof: distpos_proofs::merkle::MerkleProof { siblings: vec![] },
        height: 1,
        index: 0,
    };
    let items = vec![
        QueueItem::receipt(receipt(1), b.chain_id(), Hash32([1; 32]), T0),
        QueueItem::receipt(receipt(2), b.chain_id(), Hash32([2; 32]), T0),
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
fn a_scan_queues_one_provable_delivery_per_outbound_transfer() {
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
    let (items, upto) = scan_blocks(&snap, 0, snap.consensus.lib, T0, false).unwrap();
    assert_eq!(upto, snap.consensus.lib);
    assert_eq!(items.len(), 1, "the local transfer is not relayed");
    let Payload::Delivery(d) = &items[0].payload else {
        panic!("a delivery");
    };
    assert_eq!(
        (items[0].destination, d.height, d.index),
        (b.chain_id(), 1, 0)
    );
    let finalized = Finalized::of(&a.blocks[0].header);
    let bundle = ProofBundle {
        height: 1,
        index: 0,
        item: d.source_tx.encode(),
        proof: d.proof.clone(),
    };
    assert_eq!(
        verify_bundle(&finalized, &bundle, Commitment::Transactions),
        Ok(()),
        "the proof verifies against the signed header"
    );
    // Scanned once: a later scan from where it ended finds nothing new.
    let (again, _) = scan_blocks(&snap, upto, snap.consensus.lib, T0, false).unwrap();
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
    assert_eq!(peer.calls(), (0, 0), "the duty holder sends first");
    state.clock.advance(9_999);
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (0, 0));
    state.clock.advance(1);
    send_due(&state, &peer).await;
    assert_eq!(peer.calls(), (1, 0), "taken over once it waited 10 s");
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
