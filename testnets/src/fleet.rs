//! A local network whose node processes this process owns (the chaos and crash
//! soaks): each node can be killed without warning, paused and resumed, and started
//! again on its data. Every process is killed when the fleet is dropped, also when a
//! soak fails half-way.

use crate::launcher::{self, Network};
use anyhow::bail;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One node's process, if it runs.
#[derive(Default)]
struct NodeSlot {
    child: Option<Child>,
    paused: bool,
}

/// The nodes of a [`Network`], as processes of ours.
pub struct Fleet {
    exe: PathBuf,
    /// The network (configs and URLs).
    pub net: Network,
    nodes: Vec<Vec<NodeSlot>>,
    http: reqwest::Client,
}

impl Fleet {
    /// A fleet for `net`, running nodes with the `distpos` executable at `exe`;
    /// nothing is started yet.
    pub fn new(net: Network, exe: PathBuf) -> anyhow::Result<Self> {
        let nodes = net
            .chains
            .iter()
            .map(|c| c.urls.iter().map(|_| NodeSlot::default()).collect())
            .collect();
        Ok(Self {
            exe,
            net,
            nodes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    /// Node `k` of chain `c`'s URL.
    pub fn url(&self, c: usize, k: usize) -> &str {
        &self.net.chains[c].urls[k]
    }

    /// Nodes of chain `c`.
    pub fn size(&self, c: usize) -> usize {
        self.nodes[c].len()
    }

    /// Starts node `k` of chain `c` on its config and data (no-op if it runs).
    pub fn start(&mut self, c: usize, k: usize) -> anyhow::Result<()> {
        if self.running(c, k) {
            return Ok(());
        }
        let cfg = &self.net.chains[c].configs[k];
        let log = log_path(cfg, k);
        let child = launcher::spawn_node(&self.exe, cfg, &log)?;
        self.nodes[c][k] = NodeSlot {
            child: Some(child),
            paused: false,
        };
        Ok(())
    }

    /// Starts every node and waits until all answer.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for c in 0..self.nodes.len() {
            for k in 0..self.nodes[c].len() {
                self.start(c, k)?;
            }
        }
        for c in 0..self.nodes.len() {
            for k in 0..self.nodes[c].len() {
                self.wait_ready(c, k).await?;
            }
        }
        Ok(())
    }

    /// Waits until node `k` of chain `c` answers (30 s at most).
    pub async fn wait_ready(&self, c: usize, k: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !launcher::answers(&self.http, self.url(c, k)).await {
            if Instant::now() > deadline {
                // The folder may be gone by the time anyone looks: say what the log says.
                let log = log_path(&self.net.chains[c].configs[k], k);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                bail!(
                    "node {k} of chain {} did not start; the end of {}:\n{}",
                    self.net.chains[c].chain,
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Kills node `k` of chain `c` at once (SIGKILL: no chance to flush or say goodbye).
    pub fn kill(&mut self, c: usize, k: usize) {
        let slot = &mut self.nodes[c][k];
        if let Some(mut child) = slot.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        slot.paused = false;
    }

    /// Pauses node `k` of chain `c` (SIGSTOP): it holds its sockets but answers nothing.
    pub fn pause(&mut self, c: usize, k: usize) {
        if let Some(pid) = self.pid(c, k) {
            signal("-STOP", pid);
            self.nodes[c][k].paused = true;
        }
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume(&mut self, c: usize, k: usize) {
        if let Some(pid) = self.pid(c, k) {
            signal("-CONT", pid);
        }
        self.nodes[c][k].paused = false;
    }

    /// Whether node `k` of chain `c` is paused.
    pub fn paused(&self, c: usize, k: usize) -> bool {
        self.nodes[c][k].paused
    }

    /// Whether node `k` of chain `c` runs (paused or not).
    pub fn running(&mut self, c: usize, k: usize) -> bool {
        matches!(
            self.nodes[c][k].child.as_mut().map(|ch| ch.try_wait()),
            Some(Ok(None))
        )
    }

    fn pid(&mut self, c: usize, k: usize) -> Option<u32> {
        if self.running(c, k) {
            self.nodes[c][k].child.as_ref().map(Child::id)
        } else {
            None
        }
    }

    /// Resumes every paused node and starts every stopped one.
    pub async fn heal(&mut self) -> anyhow::Result<()> {
        for c in 0..self.nodes.len() {
            for k in 0..self.nodes[c].len() {
                if self.paused(c, k) {
                    self.resume(c, k);
                }
            }
        }
        self.start_all().await
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in 0..self.nodes.len() {
            for k in 0..self.nodes[c].len() {
                self.kill(c, k);
            }
        }
    }
}

fn log_path(cfg: &Path, k: usize) -> PathBuf {
    cfg.parent()
        .unwrap_or(Path::new("."))
        .join(format!("node-{k}.log"))
}

fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}
