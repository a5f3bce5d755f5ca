//! The producer task: at every slot boundary, produce if this node holds the key
//! scheduled for the slot, and the outage rule (DESIGN §14) when participation is
//! below the floor.

use super::TaskResult;
use crate::{node::ProductionGate, state::AppState};
use distpos_proofs::consensus::OutageQuorum;
use std::{sync::Arc, time::Duration};
use tracing::{error, info, warn};

/// At every slot boundary, produces a block if this node holds the scheduled key.
pub(super) async fn producer_loop(shared: Arc<AppState>) -> TaskResult {
    let clock = {
        let node = shared.node.lock().await;
        if node.key.is_none() {
            return Ok(());
        }
        node.rules.clock
    };
    let mut outage = OutageLog::default();
    loop {
        let now = shared.clock.now_ms();
        let slot = clock.slot_of(now).map_or(1, |s| s + 1).max(1);
        let at = clock.slot_start(slot);
        tokio::time::sleep(Duration::from_millis(at.saturating_sub(now))).await;
        let gate = shared.node.lock().await.production_gate(slot);
        let agreed_head = match gate {
            Ok(ProductionGate::NotOurs) => continue,
            Ok(ProductionGate::Ours) => {
                outage.clear();
                None
            }
            Ok(ProductionGate::LowParticipation {
                participation,
                head,
                schedule,
            }) => {
                let wait = Duration::from_millis((clock.interval_ms / 2).clamp(100, 2_000));
                let quorum = outage_quorum(&shared, head, &schedule, wait).await;
                outage.report(&quorum, participation, head);
                if !quorum.met() {
                    continue;
                }
                Some(head)
            }
            Err(e) => {
                error!(slot, error = %e, "block production failed");
                continue;
            }
        };
        let produced = {
            let mut node = shared.node.lock().await;
            crate::cpu::blocking(|| node.produce(slot, shared.clock.now_ms(), agreed_head))
        };
        match produced {
            Ok(Some(block)) => shared.chain_nodes.broadcast_block(block),
            Ok(None) => {}
            Err(e) => error!(slot, error = %e, "block production failed"),
        }
    }
}

/// The outage rule (DESIGN §14): asks this chain's other nodes for their heads and
/// counts the scheduled producers whose nodes agree on ours (this node included).
async fn outage_quorum(
    shared: &AppState,
    head: distpos_proofs::Hash32,
    schedule: &distpos_proofs::ProducerSchedule,
    wait: Duration,
) -> OutageQuorum {
    let mut asks = tokio::task::JoinSet::new();
    for p in shared.chain_nodes.peers() {
        let (client, p) = (shared.chain_nodes.clone(), p.clone());
        asks.spawn(async move { client.status_within(&p, wait).await });
    }
    let ours = shared
        .node
        .lock()
        .await
        .key
        .as_ref()
        .map(|k| k.public_key());
    let mut agreeing: Vec<distpos_proofs::PublicKey> = ours.into_iter().collect();
    while let Some(answer) = asks.join_next().await {
        if let Ok(Ok(s)) = answer {
            if s.head.id == head {
                agreeing.extend(s.producer_key);
            }
        }
    }
    OutageQuorum::count(schedule, &agreeing)
}

/// Says why a producer below the participation floor waits (at WARN, every few
/// seconds at most) and when it resumes (at INFO, once).
#[derive(Default)]
struct OutageLog {
    last_warn: Option<std::time::Instant>,
    resumed: bool,
}

impl OutageLog {
    const EVERY: Duration = Duration::from_secs(5);

    fn clear(&mut self) {
        self.last_warn = None;
        self.resumed = false;
    }

    fn report(
        &mut self,
        q: &OutageQuorum,
        p: distpos_proofs::consensus::Participation,
        head: distpos_proofs::Hash32,
    ) {
        if q.met() {
            if !self.resumed {
                info!(agreeing = q.agreeing, needed = q.needed, filled = p.filled, window = p.window, head = %head,
                      "participation below 33%, but the scheduled producers' nodes agree on our head: \
                       resuming production after an outage");
            }
            self.resumed = true;
            return;
        }
        self.resumed = false;
        if self.last_warn.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return;
        }
        self.last_warn = Some(std::time::Instant::now());
        warn!(agreeing = q.agreeing, needed = q.needed, filled = p.filled, window = p.window, head = %head,
              "participation below 33% and too few scheduled producers' nodes reachable in agreement on \
               our head: not producing (a minority partition must not grow a chain); waiting for them, \
               or set stale_production to override");
    }
}
