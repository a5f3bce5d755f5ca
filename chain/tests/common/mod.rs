//! Helpers shared by the `rules_*` integration tests (each test binary uses a subset).
#![allow(dead_code)]
// Test helpers outside `#[test]` functions: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod interchain;

use distpos_chain::{
    address::QualifiedAddress,
    ledger::{self, Account, PeerChain, Producer},
    supply::audit_supply,
    testkit::{address_of, TestChain},
    tx::{GovAction, PeerRegistration},
    Address, Body, BuiltBlock, ChainParams, Transaction, TxCheck, TxError,
};
use distpos_proofs::{hash_domain, light_client::Checkpoint, ChainId, ProducerSchedule, SecretKey};

/// Our chain id in every test.
pub(crate) const CHAIN: u32 = 0xe2e4;
/// A chain that is registered as a peer in the tests that need one.
pub(crate) const PEER: ChainId = ChainId(0xbeef);

/// A local transfer body (`0x…` recipient, no memo).
pub(crate) fn transfer(to: Address, amount: u128) -> Body {
    transfer_to(QualifiedAddress::local(to), amount)
}

/// A transfer body to a qualified address.
pub(crate) fn transfer_to(to: QualifiedAddress, amount: u128) -> Body {
    Body::Transfer {
        to,
        amount,
        memo: Vec::new(),
        deliver_by: 0,
        fast_fee: 0,
        via: None,
    }
}

/// A fresh, unfunded address.
pub(crate) fn fresh(tag: &str) -> Address {
    address_of(&SecretKey::from_seed(tag.as_bytes()))
}

/// Dev parameters with some fields changed by `f`.
pub(crate) fn params(f: impl FnOnce(&mut ChainParams)) -> ChainParams {
    let mut p = TestChain::dev_params();
    f(&mut p);
    p
}

/// Start time of the next slot: the time a mempool check uses.
pub(crate) fn next_time(chain: &TestChain) -> u64 {
    chain.slot_time(chain.next_slot(0))
}

/// The mempool check at the next slot.
pub(crate) fn validate(chain: &TestChain, tx: &Transaction) -> Result<TxCheck, TxError> {
    distpos_chain::validate_tx(&chain.state, tx, next_time(chain))
}

/// Produces the next block and asserts every transaction was included.
pub(crate) fn produce_ok(chain: &mut TestChain, txs: &[Transaction]) -> BuiltBlock {
    let built = chain.produce(txs).expect("block builds");
    assert!(
        built.rejected.is_empty(),
        "unexpected rejections: {:?}",
        built.rejected
    );
    assert_eq!(built.block.txs.len(), txs.len());
    built
}

/// Produces the next block with one transaction that must be rejected; returns why.
pub(crate) fn produce_rejected(chain: &mut TestChain, tx: &Transaction) -> TxError {
    let built = chain
        .produce(std::slice::from_ref(tx))
        .expect("block builds");
    assert!(built.block.txs.is_empty(), "the transaction was included");
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, tx.hash());
    built.rejected[0].1.clone()
}

/// The account of `addr`.
pub(crate) fn account(chain: &TestChain, addr: &Address) -> Account {
    ledger::account(&chain.state, addr).expect("account readable")
}

/// The balance of the account of `key`.
pub(crate) fn balance(chain: &TestChain, key: &SecretKey) -> u128 {
    account(chain, &address_of(key)).balance
}

/// The producer record of `addr`.
pub(crate) fn producer(chain: &TestChain, addr: &Address) -> Producer {
    ledger::producer(&chain.state, addr)
        .expect("producer readable")
        .expect("producer exists")
}

/// The peer record of `chain_id`, if registered.
pub(crate) fn peer(chain: &TestChain, chain_id: ChainId) -> Option<PeerChain> {
    ledger::peer(&chain.state, chain_id).expect("peer readable")
}

/// Asserts the supply invariant.
pub(crate) fn assert_supply(chain: &TestChain) {
    let report = audit_supply(&chain.state).expect("state readable");
    assert!(report.holds(), "supply invariant broken: {report:?}");
}

/// The account that produced `built`.
pub(crate) fn producer_key_of(chain: &TestChain, built: &BuiltBlock) -> SecretKey {
    let want = built.block.header.header.producer;
    chain
        .producers
        .iter()
        .chain(&chain.extra_signers)
        .find(|k| k.public_key() == want)
        .cloned()
        .expect("known producer")
}

/// A registration of peer chain `chain` owned by `owner` on our chain.
pub(crate) fn registration(chain: ChainId, owner: Address) -> PeerRegistration {
    PeerRegistration {
        chain,
        identity: hash_domain(b"test peer identity", &[&chain.0.to_be_bytes()]),
        genesis_time_ms: 1_700_000_000_000,
        block_interval_ms: 1_000,
        anchor: Checkpoint::genesis(ProducerSchedule {
            version: 0,
            producers: vec![SecretKey::from_seed(b"peer producer").public_key()],
        })
        .unwrap(),
        owner,
        credit_limit: 0,
        low_watermark: 0,
    }
}

/// On a chain with one producer: proposes `action` (executes at once) in a block.
pub(crate) fn govern(chain: &mut TestChain, action: GovAction) {
    assert_eq!(
        ledger::consensus(&chain.state).unwrap().active.len(),
        1,
        "govern() needs a single active producer"
    );
    let p0 = chain.producers[0].clone();
    let tx = chain.tx(
        &p0,
        1,
        Body::Propose {
            action: Box::new(action),
        },
    );
    produce_ok(chain, &[tx]);
}

/// On a chain with one producer: registers [`PEER`] owned by `owner`.
pub(crate) fn register_peer(chain: &mut TestChain, owner: Address) {
    govern(chain, GovAction::RegisterPeer(registration(PEER, owner)));
    assert!(peer(chain, PEER).is_some(), "peer registered");
}
