//! Running a node: load config, genesis and key, open the store, then serve HTTP and
//! run the producer and sync loops until shutdown.

use crate::{
    api,
    config::NodeConfig,
    keyfile,
    metrics::Metrics,
    node::{Node, NodeError, ProductionGate},
    peers::PeerClient,
    store::Store,
};
use anyhow::Context;
use distpos_chain::{forkdb::ForkError, Genesis};
use distpos_proofs::consensus::OutageQuorum;
use std::{
    future::{Future, IntoFuture},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{Mutex, Notify};
use tracing::{error, info, warn};

/// The state every handler and background task shares.
pub struct AppState {
    /// The node.
    pub node: Mutex<Node>,
    /// This chain's other nodes.
    pub peers: PeerClient,
    /// The configuration.
    pub config: NodeConfig,
    /// Metrics.
    pub metrics: Metrics,
    /// Wakes the sync loop (e.g. a block with an unknown parent arrived).
    pub sync_now: Notify,
    /// Routes to other chains.
    pub routes: Arc<distpos_routing::RouteTable>,
    /// The persistent outbound queue.
    pub queue: crate::relay_queue::OutboundQueue,
    /// Client for other chains' peer protocol.
    pub peer: distpos_adapters::HttpPeer,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads a genesis file.
pub fn read_genesis(path: &std::path::Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    let g: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("genesis file {} is invalid", path.display()))?;
    g.validate()
        .with_context(|| format!("genesis file {} is invalid", path.display()))?;
    Ok(g)
}

/// Opens everything and returns the shared state and the bound listener.
pub async fn prepare(
    config: NodeConfig,
) -> anyhow::Result<(Arc<AppState>, tokio::net::TcpListener)> {
    let listen = config.listen;
    let shared = open(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    Ok((shared, listener))
}

/// Opens the node's state (genesis, key, store, queue, routes, clients) without
/// binding a port or starting a task: what [`serve`] runs, and what handler tests
/// drive with `tower::ServiceExt::oneshot` on [`crate::api::app`].
pub fn open(config: NodeConfig) -> anyhow::Result<Arc<AppState>> {
    let genesis = read_genesis(&config.genesis)?;
    let key = match &config.producer_key {
        Some(p) => Some(keyfile::read(p)?),
        None => None,
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("cannot open store in {}", config.data_dir.display()))?;
    let metrics = Metrics::new();
    let chain_id = genesis.chain_id;
    let queue = crate::relay_queue::OutboundQueue::open(store.db())?;
    let mut node = Node::open(genesis, store, key, config.mempool.max_txs, metrics.clone())?;
    let routes = Arc::new(
        distpos_routing::RouteTable::new(chain_id, &config.routing)
            .map_err(|e| anyhow::anyhow!("routing: {e}"))?,
    );
    let peer = distpos_adapters::HttpPeer::new(
        Duration::from_millis(config.relay.timeout_ms),
        config.relay.max_response_bytes,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    node.stale_production = config.stale_production;
    let peers = PeerClient::new(
        config.peers.clone(),
        Duration::from_millis(config.sync.timeout_ms),
    )?;
    Ok(Arc::new(AppState {
        node: Mutex::new(node),
        peers,
        config,
        metrics,
        sync_now: Notify::new(),
        routes,
        queue,
        peer,
    }))
}

/// Runs a node until `shutdown` completes, or until one of its background tasks
/// fails (then the error names the task and why, and the process should exit
/// non-zero: a node that answers HTTP but no longer produces or relays is worse than
/// one that is down).
pub async fn run(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (shared, listener) = prepare(config).await?;
    serve(listener, shared, shutdown).await
}

/// How long shutdown waits for the HTTP server and the background tasks to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// A background task's end: `Ok` when it had nothing to do (no key, no peers),
/// `Err(why)` when it failed.
type TaskResult = Result<(), String>;

/// A background task of the node.
type Task = std::pin::Pin<Box<dyn Future<Output = TaskResult> + Send>>;

/// Serves `listener` and runs the node's background tasks, supervised.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    {
        let node = shared.node.lock().await;
        info!(chain = %node.genesis.chain_id, url = %format!("http://{addr}"), head = node.head_height,
              producer = ?node.key.as_ref().map(|k| k.public_key()), "node listening");
    }
    let stop = Arc::new(Notify::new());
    let mut tasks: tokio::task::JoinSet<(&'static str, TaskResult)> = tokio::task::JoinSet::new();
    let loops: [(&'static str, Task); 3] = [
        ("producer", Box::pin(producer_loop(shared.clone()))),
        ("sync", Box::pin(sync_loop(shared.clone()))),
        ("relay", Box::pin(crate::relay::run(shared.clone()))),
    ];
    let mut names = std::collections::HashMap::new();
    for (name, task) in loops {
        let task = with_fault_hook(name, task);
        let handle = tasks.spawn(async move { (name, task.await) });
        names.insert(handle.id(), name);
    }
    let stopping = stop.clone();
    let server = axum::serve(listener, api::app(shared.clone()))
        .with_graceful_shutdown(async move { stopping.notified().await })
        .into_future();
    let mut server = std::pin::pin!(server);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut server_done = false;
    let mut failure: Option<String> = None;
    loop {
        tokio::select! {
            r = &mut server => {
                server_done = true;
                failure = Some(match r {
                    Ok(()) => "the HTTP server stopped".to_string(),
                    Err(e) => format!("the HTTP server failed: {e}"),
                });
                break;
            }
            _ = &mut shutdown => break,
            Some(ended) = tasks.join_next() => match ended {
                Ok((name, Ok(()))) => info!(task = name, "background task has nothing to do here"),
                Ok((name, Err(why))) => {
                    failure = Some(format!("the {name} task failed: {why}"));
                    break;
                }
                Err(e) => {
                    let name = names.get(&e.id()).copied().unwrap_or("background");
                    failure = Some(format!("the {name} task {}: {e}", if e.is_panic() { "panicked" } else { "was cancelled" }));
                    break;
                }
            },
        }
    }
    if let Some(why) = &failure {
        error!(reason = %why, "stopping the node: a part of it failed");
    }
    // Stop taking requests, stop the tasks, and give both a bounded time to finish.
    stop.notify_one();
    tasks.abort_all();
    let drain = async {
        if !server_done {
            let _ = (&mut server).await;
        }
        while tasks.join_next().await.is_some() {}
    };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        warn!(
            seconds = DRAIN.as_secs(),
            "shutdown: still draining after the bound; stopping anyway"
        );
    }
    let node = shared.node.lock().await;
    tokio::task::block_in_place(|| node.store.flush())?;
    info!(height = node.head_height, "node stopped");
    match failure {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// The supervision test's hook: `DISTPOS_FAULT=<task>` makes that background task
/// panic a second after the node starts. Nothing else reads it.
fn with_fault_hook(name: &'static str, task: Task) -> Task {
    if std::env::var("DISTPOS_FAULT").as_deref() != Ok(name) {
        return task;
    }
    warn!(
        task = name,
        "DISTPOS_FAULT is set: this task will fail in one second"
    );
    Box::pin(async move {
        tokio::select! {
            r = task => r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => panic!("fault injected into the {name} task (DISTPOS_FAULT)"),
        }
    })
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    info!("shutdown requested");
}

/// At every slot boundary, produces a block if this node holds the scheduled key.
async fn producer_loop(shared: Arc<AppState>) -> TaskResult {
    let clock = {
        let node = shared.node.lock().await;
        if node.key.is_none() {
            return Ok(());
        }
        node.rules.clock
    };
    let mut outage = OutageLog::default();
    loop {
        let now = now_ms();
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
            tokio::task::block_in_place(|| node.produce(slot, now_ms(), agreed_head))
        };
        match produced {
            Ok(Some(block)) => shared.peers.broadcast_block(block),
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
    for p in shared.peers.peers() {
        let (client, p) = (shared.peers.clone(), p.clone());
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

/// Polls the peers for a longer chain and fetches what we miss.
async fn sync_loop(shared: Arc<AppState>) -> TaskResult {
    if shared.peers.peers().is_empty() {
        return Ok(());
    }
    let interval = Duration::from_millis(shared.config.sync.interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.sync_now.notified() => {}
        }
        for peer in shared.peers.peers().to_vec() {
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
    let status = shared.peers.status(peer).await?;
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
        let blocks = shared.peers.blocks(peer, next, batch).await?;
        if blocks.is_empty() {
            break;
        }
        let mut node = shared.node.lock().await;
        let rewind = node.forkdb.sync_rewind();
        for b in blocks {
            let height = b.height();
            match tokio::task::block_in_place(|| node.on_block(b, now_ms())) {
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
