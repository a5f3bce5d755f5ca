//! The sync task: catch-up with this chain's other nodes, following fork choice.

use super::TaskResult;
use crate::{node::NodeError, state::AppState};
use distpos_chain::forkdb::ForkError;
use std::{sync::Arc, time::Duration};
use tracing::warn;

/// Polls the peers for a longer chain and fetches what we miss.
pub(super) async fn sync_loop(shared: Arc<AppState>) -> TaskResult {
    if shared.chain_nodes.peers().is_empty() {
        return Ok(());
    }
    let interval = Duration::from_millis(shared.config.sync.interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.sync_now.notified() => {}
        }
        for peer in shared.chain_nodes.peers().to_vec() {
            if let Err(e) = catch_up(&shared, &peer).await {
                warn!(peer, error = %e, "sync with peer failed");
            }
        }
    }
}

/// Fetches `peer`'s branch when fork choice prefers its head to ours (a higher LIB, or
/// the same LIB and taller), however short that branch is.
async fn catch_up(shared: &AppState, peer: &str) -> Result<(), String> {
    let batch = shared.config.sync.batch;
    let status = shared.chain_nodes.status(peer).await?;
    let remote = status.tip();
    let mut next = {
        let node = shared.node.lock().await;
        let local = node
            .forkdb
            .tip(&node.state.head_id)
            .unwrap_or_else(|| node.forkdb.best());
        match node.forkdb.sync_from(&local, &remote) {
            Some(from) => from,
            None => return Ok(()),
        }
    };
    let mut rewound = false;
    // `next` only moves forward, except for one rewind to just above our root when the
    // peer's blocks do not link to what we hold (we are on another branch).
    while next <= remote.height {
        let blocks = shared.chain_nodes.blocks(peer, next, batch).await?;
        if blocks.is_empty() {
            break;
        }
        let mut node = shared.node.lock().await;
        let rewind = node.forkdb.sync_rewind();
        for b in blocks {
            let height = b.height();
            match crate::cpu::blocking(|| node.on_block(b, shared.clock.now_ms())) {
                Ok(_) => next = height + 1,
                Err(NodeError::Fork(ForkError::UnknownParent(_))) if !rewound && next > rewind => {
                    rewound = true;
                    next = rewind;
                    break;
                }
                Err(e) => return Err(format!("block {height} from peer refused: {e}")),
            }
        }
    }
    Ok(())
}
