//! Running a node: load config, genesis and key, open the store, then serve HTTP and
//! run the producer, sync and relay tasks, supervised, until shutdown or until one
//! of them fails.

mod connections;
mod http;
mod producer;
mod sync;

use crate::{api, config::NodeConfig, keyfile, metrics::Metrics, node::Node, store::Store};
pub use crate::{clock::now_ms, state::AppState};
use anyhow::Context;
use distpos_adapters::ChainNodes;
use distpos_chain::Genesis;
use std::{future::Future, sync::Arc, time::Duration};
use tokio::sync::{Mutex, Notify};
use tracing::{error, info, warn};

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

/// Writes `http://ADDR` and a newline to `path` in one step (a temporary file renamed
/// over it): whoever polls the file sees either nothing or the whole URL.
pub fn write_ready_file(path: &std::path::Path, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, format!("http://{addr}\n"))
        .with_context(|| format!("cannot write ready file {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write ready file {}", path.display()))?;
    Ok(())
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
    let chain_id = genesis.chain_id;
    let metrics = Metrics::for_chain(chain_id);
    let db = store
        .db()
        .ok_or_else(|| anyhow::anyhow!("the store of a running node must be on disk"))?;
    let queue = crate::queue::OutboundQueue::open(db)?;
    let routes = Arc::new(
        distpos_routing::RouteTable::new(chain_id, &config.routing)
            .map_err(|e| anyhow::anyhow!("routing: {e}"))?,
    );
    // Before anything is served: the overrides this node's operator set survive it.
    let route_overrides = crate::store::RouteOverrides::open(db, &routes)
        .context("cannot read the stored route overrides")?;
    let mut node = Node::open(genesis, store, key, config.mempool.max_txs, metrics.clone())?;
    let peer_chains = distpos_adapters::HttpPeer::new(
        Duration::from_millis(config.relay.timeout_ms),
        config.relay.max_response_bytes,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    node.stale_production = config.stale_production;
    let chain_nodes = ChainNodes::new(
        config.peers.clone(),
        Duration::from_millis(config.sync.timeout_ms),
    )?;
    Ok(Arc::new(AppState {
        reads: node.reads(),
        clock: crate::clock::Clock::system(),
        node: Mutex::new(node),
        chain_nodes,
        config,
        metrics,
        sync_now: Notify::new(),
        routes,
        route_overrides,
        queue,
        peer_chains,
        peer_watch: Default::default(),
        underwriting: Default::default(),
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
        (
            "producer",
            Box::pin(producer::producer_loop(shared.clone())),
        ),
        ("sync", Box::pin(sync::sync_loop(shared.clone()))),
        ("relay", Box::pin(crate::relay::run(shared.clone()))),
    ];
    let mut names = std::collections::HashMap::new();
    for (name, task) in loops {
        let task = with_fault_hook(name, task);
        let handle = tasks.spawn(async move { (name, task.await) });
        names.insert(handle.id(), name);
    }
    let stopping = stop.clone();
    let limits = shared.config.http.clone();
    let server = http::serve(listener, api::app(shared.clone()), &limits, async move {
        stopping.notified().await
    });
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
    crate::cpu::blocking(|| node.store.flush())?;
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
