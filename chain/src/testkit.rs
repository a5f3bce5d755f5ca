//! A deterministic in-memory chain for tests, benchmarks and examples: genesis with
//! dev keys, transaction building with correct nonce and TaPoS, and block production
//! in slot order by whichever producer is scheduled. Pure, like the rest of the crate.

use crate::{
    address::Address,
    block::{apply_block, build_block, Block, BuildError, BuiltBlock},
    error::BlockError,
    genesis::genesis_state,
    genesis::{Genesis, GenesisAccount, GenesisProducer},
    ledger,
    params::ChainParams,
    state::State,
    tx::{Body, Transaction, UnsignedTx},
};
use distpos_proofs::{header::tapos_prefix, ChainId, PublicKey, SecretKey};
use std::collections::BTreeMap;

/// Genesis time of every test chain.
pub const GENESIS_TIME_MS: u64 = 1_700_000_000_000;
/// Balance of every funded test user.
pub const USER_BALANCE: u128 = 1_000_000_000;
/// Stake of every genesis producer.
pub const PRODUCER_STAKE: u128 = 100_000;

/// A test chain: its genesis, keys, current state and blocks.
#[derive(Clone, Debug)]
pub struct TestChain {
    /// The genesis.
    pub genesis: Genesis,
    /// Producer keys (also their account keys).
    pub producers: Vec<SecretKey>,
    /// Funded user keys.
    pub users: Vec<SecretKey>,
    /// Extra keys that may sign blocks (e.g. newly elected producers' signing keys).
    pub extra_signers: Vec<SecretKey>,
    /// State after the last block.
    pub state: State,
    /// Blocks produced so far.
    pub blocks: Vec<Block>,
    /// Receipts of each block.
    pub receipts: Vec<Vec<crate::tx::Receipt>>,
    nonces: BTreeMap<Address, u64>,
}

/// The account address of a key.
pub fn address_of(key: &SecretKey) -> Address {
    // Keys made by SecretKey always have a valid compressed public key.
    Address::from_public_key(&key.public_key()).unwrap_or(Address::ZERO)
}

impl TestChain {
    /// A chain `chain` with `producers` genesis producers and `users` funded users.
    pub fn new(chain: u32, producers: usize, users: usize, params: ChainParams) -> Self {
        let tag = chain.to_be_bytes();
        let producer_keys: Vec<SecretKey> = (0..producers)
            .map(|i| SecretKey::from_seed(&[&tag[..], b"producer", &[i as u8]].concat()))
            .collect();
        let user_keys: Vec<SecretKey> = (0..users)
            .map(|i| SecretKey::from_seed(&[&tag[..], b"user", &(i as u32).to_be_bytes()].concat()))
            .collect();
        let genesis = Genesis {
            chain_id: ChainId(chain),
            genesis_time_ms: GENESIS_TIME_MS,
            params,
            producers: producer_keys
                .iter()
                .map(|k| GenesisProducer {
                    account: address_of(k),
                    signing_key: k.public_key(),
                    url: String::new(),
                    stake: PRODUCER_STAKE,
                })
                .collect(),
            accounts: user_keys
                .iter()
                .chain(producer_keys.iter())
                .map(|k| GenesisAccount {
                    address: address_of(k),
                    balance: USER_BALANCE,
                })
                .collect(),
            peers: Vec::new(),
        };
        Self::from_genesis(genesis, producer_keys, user_keys)
    }

    /// A chain from an explicit genesis and the keys that go with it.
    pub fn from_genesis(
        genesis: Genesis,
        producers: Vec<SecretKey>,
        users: Vec<SecretKey>,
    ) -> Self {
        let state = match genesis_state(&genesis) {
            Ok(s) => s,
            Err(e) => panic!("test genesis invalid: {e}"),
        };
        Self {
            genesis,
            producers,
            users,
            extra_signers: Vec::new(),
            state,
            blocks: Vec::new(),
            receipts: Vec::new(),
            nonces: BTreeMap::new(),
        }
    }

    /// Default dev parameters with a 100 ms interval.
    pub fn dev_params() -> ChainParams {
        ChainParams {
            dev: true,
            block_interval_ms: 100,
            ..ChainParams::default()
        }
    }

    /// Our chain id.
    pub fn chain_id(&self) -> ChainId {
        self.genesis.chain_id
    }

    /// Current head height.
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// Builds and signs a transaction from `key`, with the next nonce and a TaPoS
    /// reference to the head.
    pub fn tx(&mut self, key: &SecretKey, fee: u128, body: Body) -> Transaction {
        let addr = address_of(key);
        let nonce = self.nonces.get(&addr).copied().unwrap_or_else(|| {
            ledger::account(&self.state, &addr)
                .map(|a| a.nonce)
                .unwrap_or(0)
        }) + 1;
        self.nonces.insert(addr, nonce);
        self.unsigned(nonce, fee, body).sign(key)
    }

    /// An unsigned transaction with the given nonce, referencing the head.
    pub fn unsigned(&self, nonce: u64, fee: u128, body: Body) -> UnsignedTx {
        UnsignedTx {
            chain_id: self.chain_id(),
            nonce,
            fee,
            ref_block_num: self.height() as u16,
            ref_block_prefix: tapos_prefix(&self.state.head_id),
            expiration: self.head_time() + 60_000,
            body,
        }
    }

    /// Forgets locally tracked nonces (after a transaction was rejected).
    pub fn resync_nonces(&mut self) {
        self.nonces.clear();
    }

    /// Time of the head block (genesis time at genesis).
    pub fn head_time(&self) -> u64 {
        self.blocks
            .last()
            .map(|b| b.header.header.timestamp_ms)
            .unwrap_or(GENESIS_TIME_MS)
    }

    /// The key scheduled to sign in `slot`, among the keys this chain knows.
    pub fn signer_for_slot(&self, slot: u64) -> Option<SecretKey> {
        let cons = ledger::consensus(&self.state).ok()?;
        let want: PublicKey = *cons.scheduled_producer(slot)?;
        self.producers
            .iter()
            .chain(&self.extra_signers)
            .find(|k| k.public_key() == want)
            .cloned()
    }

    /// The next slot after the head, skipping `skip` slots.
    pub fn next_slot(&self, skip: u64) -> u64 {
        let cons = ledger::consensus(&self.state).map(|c| c.slot).unwrap_or(0);
        cons + 1 + skip
    }

    /// Start time of `slot`.
    pub fn slot_time(&self, slot: u64) -> u64 {
        GENESIS_TIME_MS + slot * self.genesis.params.block_interval_ms
    }

    /// Builds the next block (in the next slot) with `txs`, re-verifies it with
    /// [`apply_block`] as a peer would, and commits it.
    pub fn produce(&mut self, txs: &[Transaction]) -> Result<BuiltBlock, BuildError> {
        self.produce_in_slot(self.next_slot(0), txs)
    }

    /// Like [`Self::produce`], in a given slot.
    pub fn produce_in_slot(
        &mut self,
        slot: u64,
        txs: &[Transaction],
    ) -> Result<BuiltBlock, BuildError> {
        let time = self.slot_time(slot);
        let key = self
            .signer_for_slot(slot)
            .ok_or(BuildError::NotScheduled(time))?;
        let built = build_block(&self.state, &key, time, txs)?;
        let verified = apply_block(&self.state, &built.block, time)?;
        if verified != built.applied {
            return Err(BuildError::Block(BlockError::StateDigest {
                computed: verified.state_digest,
                header: built.applied.state_digest,
            }));
        }
        self.state.commit(&built.applied);
        self.blocks.push(built.block.clone());
        self.receipts.push(built.applied.receipts.clone());
        if !built.rejected.is_empty() {
            self.resync_nonces();
        }
        Ok(built)
    }

    /// Produces `n` empty blocks.
    pub fn produce_empty(&mut self, n: usize) -> Result<(), BuildError> {
        for _ in 0..n {
            self.produce(&[])?;
        }
        Ok(())
    }

    /// Applies an externally built block (verification included) and commits it.
    pub fn import(&mut self, block: &Block) -> Result<(), BlockError> {
        let applied = apply_block(&self.state, block, block.header.header.timestamp_ms)?;
        self.state.commit(&applied);
        self.blocks.push(block.clone());
        self.receipts.push(applied.receipts.clone());
        Ok(())
    }
}

/// Two chains registered as each other's peers at genesis (owner: each chain's first
/// producer; no credit; low watermark 100).
pub fn peer_pair(
    a: u32,
    b: u32,
    producers: usize,
    users: usize,
    params: ChainParams,
) -> (TestChain, TestChain) {
    let mut ca = TestChain::new(a, producers, users, params.clone());
    let mut cb = TestChain::new(b, producers, users, params);
    let reg_a = registration_of(&ca, address_of(&cb.producers[0]));
    let reg_b = registration_of(&cb, address_of(&ca.producers[0]));
    ca.genesis.peers = vec![reg_b];
    cb.genesis.peers = vec![reg_a];
    let (ga, gb) = (ca.genesis.clone(), cb.genesis.clone());
    let ca = TestChain::from_genesis(ga, ca.producers, ca.users);
    let cb = TestChain::from_genesis(gb, cb.producers, cb.users);
    (ca, cb)
}

/// How another chain registers `c` as a peer, with `owner` on that other chain.
pub fn registration_of(c: &TestChain, owner: Address) -> crate::tx::PeerRegistration {
    crate::tx::PeerRegistration {
        chain: c.chain_id(),
        identity: c.genesis.identity_hash(),
        genesis_time_ms: c.genesis.genesis_time_ms,
        block_interval_ms: c.genesis.params.block_interval_ms,
        anchor: match distpos_proofs::light_client::Checkpoint::genesis(c.genesis.schedule()) {
            Ok(a) => a,
            Err(e) => panic!("test genesis schedule invalid: {e}"),
        },
        owner,
        credit_limit: 0,
        low_watermark: 100,
    }
}

impl TestChain {
    /// Position (height, index) of a transaction in this chain's blocks.
    pub fn locate(&self, tx: &distpos_proofs::Hash32) -> Option<(u64, u32)> {
        self.blocks.iter().enumerate().find_map(|(h, b)| {
            b.txs
                .iter()
                .position(|t| &t.hash() == tx)
                .map(|i| (h as u64 + 1, i as u32))
        })
    }

    /// Inclusion proof of the transaction at (height, index) against `tx_root`.
    pub fn tx_proof(&self, height: u64, index: u32) -> distpos_proofs::merkle::MerkleProof {
        let b = &self.blocks[height as usize - 1];
        let leaves: Vec<_> = b
            .txs
            .iter()
            .map(|t| distpos_proofs::merkle::leaf_hash(&t.encode()))
            .collect();
        distpos_proofs::merkle::prove(&leaves, index as usize)
            .unwrap_or(distpos_proofs::merkle::MerkleProof { siblings: vec![] })
    }

    /// Inclusion proof of the receipt at (height, index) against `receipts_root`.
    pub fn receipt_proof(&self, height: u64, index: u32) -> distpos_proofs::merkle::MerkleProof {
        let r = &self.receipts[height as usize - 1];
        let leaves: Vec<_> = r
            .iter()
            .map(|x| distpos_proofs::merkle::leaf_hash(&x.encode()))
            .collect();
        distpos_proofs::merkle::prove(&leaves, index as usize)
            .unwrap_or(distpos_proofs::merkle::MerkleProof { siblings: vec![] })
    }

    /// Signed headers of blocks `from..=to`.
    pub fn headers(&self, from: u64, to: u64) -> Vec<distpos_proofs::SignedHeader> {
        (from..=to)
            .filter_map(|h| self.blocks.get(h as usize - 1))
            .map(|b| b.header.clone())
            .collect()
    }

    /// The LIB of this chain.
    pub fn lib(&self) -> u64 {
        ledger::consensus(&self.state).map(|c| c.lib).unwrap_or(0)
    }

    /// The checkpoint at block `height` (0: genesis), as `GET /v1/anchor` would serve
    /// it: the header and the consensus state its header chain implies.
    pub fn checkpoint(&self, height: u64) -> distpos_proofs::light_client::Checkpoint {
        let clock = distpos_proofs::SlotClock {
            genesis_time_ms: self.genesis.genesis_time_ms,
            interval_ms: self.genesis.params.block_interval_ms,
        };
        let mut consensus =
            match distpos_proofs::consensus::ConsensusState::genesis(self.genesis.schedule()) {
                Ok(c) => c,
                Err(e) => panic!("test genesis schedule invalid: {e}"),
            };
        for b in self.blocks.iter().take(height as usize) {
            consensus = consensus.advance(&b.header.header, &clock);
        }
        let header = height
            .checked_sub(1)
            .and_then(|i| self.blocks.get(i as usize))
            .map(|b| b.header.clone());
        distpos_proofs::light_client::Checkpoint { header, consensus }
    }
}
