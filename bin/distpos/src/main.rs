//! `distpos`: the daemon and its operator commands — clap and output only; each
//! subcommand calls `distpos-gateway` (the daemon), `distpos-adapters`' client, or
//! `distpos-testnets` (networks, demo, benchmarks, soaks). With no subcommand it runs
//! the demo (what `cargo run --release` runs).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use distpos_adapters::Client;
use distpos_chain::{tx::GovAction, Address, Body, QualifiedAddress};
use distpos_gateway::{config::NodeConfig, keyfile, runtime};
use distpos_proofs::{codec::dec_u128::parse_amount, ChainId, PublicKey};
use distpos_testnets::testnet;
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

mod console;
mod peer;

/// Prints a line to stdout; exits quietly if stdout is gone (e.g. piped into `head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

#[derive(Parser)]
#[command(
    name = "distpos",
    version,
    about = "DistPOS gateway: a DPOS chain node that links chains peer to peer"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a config file.
    Node {
        /// The node's TOML config.
        #[arg(long)]
        config: PathBuf,
        /// Override `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Produce even while participation is below 33% (restart a halted chain).
        #[arg(long)]
        stale_production: bool,
        /// Once listening, write the node's URL (`http://ADDR`, the bound port even
        /// with `--listen 127.0.0.1:0`) to this file, for scripts and harnesses.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Run a one-producer dev chain with its data under `--dir`, printing its URL and
    /// a funded key.
    Dev {
        /// Folder of the dev chain.
        #[arg(long, default_value = ".distpos")]
        dir: PathBuf,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:7700")]
        listen: SocketAddr,
    },
    /// Bring up the `duo` network, show transfers both ways (one bouncing), keep running.
    Demo {
        /// Folder of the network.
        #[arg(long, default_value = ".distpos/duo")]
        dir: PathBuf,
        /// First HTTP port (chain i, node k use base + 10·i + k).
        #[arg(long, default_value_t = 7700)]
        base_port: u16,
        /// Run the scenario, stop the network and exit (non-zero if an outcome is not
        /// the expected one) instead of running until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Benchmarks and soaks (JSON lines): `local`, `cross`, `all`; `flood`; `chaos`,
    /// `crash-restart`, `outage`.
    Bench {
        /// local, cross or all (the throughput benchmarks); flood (a hostile client
        /// against a chain while transfers flow); chaos, crash-restart or outage (the
        /// crash soaks).
        #[arg(default_value = "all")]
        which: String,
        /// Transfers for the local benchmark.
        #[arg(long, default_value_t = 20_000)]
        local_txs: usize,
        /// Transfers for the cross-chain benchmark.
        #[arg(long, default_value_t = 2_000)]
        cross_txs: usize,
        /// Producers per chain (cross: 1; chaos and flood: 3).
        #[arg(long)]
        producers: Option<usize>,
        /// Transfers in the chaos soak (half each way; default 1,000), or honest A→B
        /// transfers during the flood (default 200).
        #[arg(long)]
        transfers: Option<usize>,
        /// Forged pending deliveries in the flood.
        #[arg(long, default_value_t = 100_000)]
        flood_deliveries: usize,
        /// Badly signed transactions in the flood (in requests of 1,000).
        #[arg(long, default_value_t = 100_000)]
        flood_txs: usize,
        /// Garbage JSON requests in the flood.
        #[arg(long, default_value_t = 4_000)]
        flood_garbage: usize,
        /// Where the flood goes: `all` (every node of the chain, round-robin) or
        /// `node0`.
        #[arg(long, default_value = "all")]
        flood_target: String,
        /// Requests a second of the flood, all nodes together (0: as fast as it goes).
        #[arg(long, default_value_t = 0.0)]
        flood_rate: f64,
        /// Chaos soak: run a flood beside it (--flood-deliveries forged deliveries and
        /// --flood-txs bad transactions over both chains, paced over the fault window).
        #[arg(long)]
        flood: bool,
        /// Honest local transfers on the flooded chain during the flood.
        #[arg(long, default_value_t = 20)]
        local_transfers: usize,
        /// Concurrent senders per chain in the chaos soak.
        #[arg(long, default_value_t = 16)]
        senders: usize,
        /// Seconds of faults in the chaos soak (the transfers are spread over them).
        #[arg(long, default_value_t = 60)]
        fault_secs: u64,
        /// Seed of a soak's faults and restart orders (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        /// Full crashes in the crash-restart soak.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Seconds every node stays stopped in the outage soak.
        #[arg(long, default_value_t = 90)]
        stop_secs: u64,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Local networks.
    Testnet {
        #[command(subcommand)]
        command: TestnetCommand,
    },
    /// Sign and submit a transaction.
    Tx(TxArgs),
    /// Link and unlink peer chains: trust anchors, registration, reset, removal.
    Peer {
        #[command(subcommand)]
        command: peer::PeerCommand,
    },
    /// The chain's open governance proposals and their approvals.
    Proposals {
        /// URL of a node of the chain.
        #[arg(long, env = "DISTPOS_NODE", default_value = "http://127.0.0.1:7700")]
        node: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    // The operator's views of a running node (console.rs); `--node`/DISTPOS_NODE,
    // `--json` on each.
    /// Health (producing / syncing / stalled), head, LIB, participation, mempool,
    /// peers; exits non-zero when the node is stalled.
    Status(console::Target),
    /// The producer schedule and every producer: votes, produced and missed blocks.
    Producers(console::Target),
    /// An account: balance, stake, votes, nonce, producer record.
    Account(console::AccountArgs),
    /// Peer chains: correspondent accounts (collateral, available, status), light
    /// clients (head, age, why one is stalled), who relays.
    Peers(console::Target),
    /// The routing table: each peer chain's endpoints, their origin
    /// (config/dns/override) and health.
    Routes(console::Target),
    /// The relay queue (operator token: --token or DISTPOS_TOKEN): list, or hold,
    /// release, retry or delete an item or all.
    Queue(console::QueueArgs),
    /// A transaction's lifecycle; for a cross-chain transfer its stage and bounce
    /// reason here and on the other chain.
    Transfer(console::TransferArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new random key file; print its address and public key.
    New {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TestnetCommand {
    /// Write (once) and start a network from a spec: duo, trio, or a spec file.
    Up {
        /// duo, trio, or a path to a spec TOML.
        spec: String,
        /// Folder of the network.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// First HTTP port (chain i, node k use base + 10·i + k; DNS base + 99).
        #[arg(long, default_value_t = 7700)]
        base_port: u16,
    },
    /// Stop a network started with `up`.
    Down {
        /// Folder of the network.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Write keys, a genesis and one config per producer node.
    Init {
        /// Output folder.
        #[arg(long)]
        dir: PathBuf,
        /// Chain id (hex).
        #[arg(long, value_parser = parse_chain)]
        chain: ChainId,
        /// Number of producers.
        #[arg(long, default_value_t = 3)]
        producers: usize,
        /// HTTP ports, one per producer (comma-separated); default 7700, 7701, …
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
        /// Block interval in ms (below 1000 makes a dev chain).
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Max producers in the schedule.
        #[arg(long, default_value_t = 21)]
        max_producers: u32,
        /// Blocks before unstaked tokens are released.
        #[arg(long, default_value_t = 100)]
        unbonding_blocks: u64,
    },
}

#[derive(Args)]
struct TxArgs {
    /// Node URL.
    #[arg(long, default_value = "http://127.0.0.1:7700")]
    node: String,
    /// Key file of the sender.
    #[arg(long)]
    key: PathBuf,
    /// Fee (default: the chain's minimum).
    #[arg(long, value_parser = parse_amount_arg)]
    fee: Option<u128>,
    /// Wait until the transaction is included and print its status.
    #[arg(long)]
    wait: bool,
    #[command(subcommand)]
    body: TxBody,
}

#[derive(Subcommand)]
enum TxBody {
    /// Send tokens (`<chain>x<address>` for another chain).
    Transfer {
        #[arg(long, value_parser = parse_address)]
        to: QualifiedAddress,
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
        #[arg(long, default_value = "")]
        memo: String,
        /// Deadline for cross-chain delivery (unix ms, 0 = none).
        #[arg(long, default_value_t = 0)]
        deliver_by: u64,
    },
    /// Lock tokens as stake.
    Stake {
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
    /// Start unbonding stake.
    Unstake {
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
    /// Approve producers (none = withdraw all approvals).
    Vote {
        #[arg(long, value_delimiter = ',', value_parser = parse_local_address)]
        producers: Vec<Address>,
    },
    /// Let another account vote your stake (omit --proxy to vote directly again).
    SetProxy {
        #[arg(long, value_parser = parse_local_address)]
        proxy: Option<Address>,
    },
    /// Become a producer candidate.
    RegisterProducer {
        /// Signing key (default: the sender's own public key).
        #[arg(long)]
        signing_key: Option<PublicKey>,
        #[arg(long, default_value = "")]
        url: String,
    },
    /// Withdraw candidacy.
    UnregisterProducer,
    /// Propose a governance action, given as JSON (e.g. '{"suspend_peer":{"chain":"e2e4"}}').
    Propose {
        #[arg(long)]
        action: String,
    },
    /// Approve a proposal.
    Approve {
        #[arg(long)]
        proposal: u64,
    },
    /// Fund a peer chain's correspondent account.
    DepositCollateral {
        #[arg(long, value_parser = parse_chain)]
        peer: ChainId,
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
    /// Withdraw collateral (peer owner only).
    WithdrawCollateral {
        #[arg(long, value_parser = parse_chain)]
        peer: ChainId,
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
}

fn parse_chain(s: &str) -> Result<ChainId, String> {
    ChainId::parse(s).map_err(|e| e.to_string())
}

fn parse_amount_arg(s: &str) -> Result<u128, String> {
    parse_amount(s)
}

fn parse_address(s: &str) -> Result<QualifiedAddress, String> {
    QualifiedAddress::parse(s).map_err(|e| e.to_string())
}

fn parse_local_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>().map_err(|e| e.to_string())
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Demo {
        dir: PathBuf::from(".distpos/duo"),
        base_port: 7700,
        once: false,
    });
    match command {
        Command::Node {
            config,
            listen,
            data_dir,
            stale_production,
            ready_file,
        } => {
            let mut cfg = NodeConfig::load(&config)?;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            cfg.stale_production |= stale_production;
            init_logging(&cfg.log);
            if cfg.api_token.is_some() {
                if let Some(mode) = distpos_gateway::keyfile::shared_mode(&config) {
                    tracing::warn!(config = %config.display(), mode = %format!("{mode:04o}"),
                        "the config holds the operator token and other users can read it: chmod 600 it");
                }
            }
            let (state, listener) = runtime::prepare(cfg).await?;
            if let Some(path) = ready_file {
                runtime::write_ready_file(&path, listener.local_addr()?)?;
            }
            runtime::serve(listener, state, runtime::shutdown_signal()).await
        }
        Command::Dev { dir, listen } => {
            init_logging("info");
            let (cfg, faucet, fresh) = testnet::dev_config(&dir, listen, runtime::now_ms())?;
            let faucet_key = keyfile::read(&faucet)?;
            say!(
                "distpos dev chain ({}) in {}",
                if fresh { "new" } else { "existing" },
                dir.display()
            );
            say!("  node:        http://{}", cfg.listen);
            say!(
                "  funded key:  {} (address {})",
                faucet.display(),
                keyfile::address(&faucet_key)
            );
            say!("  try:         curl http://{}/v1/status", cfg.listen);
            say!(
                "               distpos tx --node http://{} --key {} --wait transfer --to 0x000000000000000000000000000000000000dEaD --amount 5",
                cfg.listen,
                faucet.display()
            );
            runtime::run(cfg, runtime::shutdown_signal()).await
        }
        Command::Bench {
            which,
            local_txs,
            cross_txs,
            producers,
            transfers,
            flood_deliveries,
            flood_txs,
            flood_garbage,
            flood_target,
            flood_rate,
            flood,
            local_transfers,
            senders,
            fault_secs,
            seed,
            runs,
            stop_secs,
        } => {
            let seed = seed.unwrap_or_else(runtime::now_ms);
            let soak = match which.as_str() {
                "local" | "cross" | "all" => None,
                "flood" => Some(
                    distpos_testnets::bench::flood(distpos_testnets::bench::FloodOptions {
                        deliveries: flood_deliveries,
                        txs: flood_txs,
                        garbage: flood_garbage,
                        transfers: transfers.unwrap_or(200),
                        local_transfers,
                        producers: producers.unwrap_or(3),
                        all_nodes: match flood_target.as_str() {
                            "all" => true,
                            "node0" => false,
                            other => anyhow::bail!(
                                "--flood-target: unknown {other:?}; expected all or node0"
                            ),
                        },
                        rate: (flood_rate > 0.0).then_some(flood_rate),
                        ..Default::default()
                    })
                    .await?,
                ),
                "chaos" => Some(
                    distpos_testnets::soak::chaos(distpos_testnets::soak::ChaosOptions {
                        transfers: transfers.unwrap_or(1_000),
                        seed,
                        producers: producers.unwrap_or(3),
                        senders,
                        fault_secs,
                        flood: flood.then_some((flood_deliveries, flood_txs)),
                    })
                    .await?,
                ),
                "crash-restart" => Some(distpos_testnets::soak::crash_restart(runs, seed).await?),
                "outage" => Some(distpos_testnets::soak::outage(stop_secs, seed).await?),
                other => anyhow::bail!(
                    "bench: unknown {other:?}; expected local, cross, all, flood, chaos, crash-restart or outage"
                ),
            };
            if let Some(line) = soak {
                say!("{line}");
                return Ok(());
            }
            let producers = producers.unwrap_or(1);
            let local = if which == "local" || which == "all" {
                Some(distpos_testnets::bench::local(local_txs).await?)
            } else {
                None
            };
            if which == "cross" || which == "all" {
                distpos_testnets::bench::cross(cross_txs, producers, local).await?;
            }
            Ok(())
        }
        Command::Demo {
            dir,
            base_port,
            once,
        } => distpos_testnets::demo::run(&dir, base_port, !once).await,
        Command::Testnet {
            command:
                TestnetCommand::Up {
                    spec,
                    dir,
                    base_port,
                },
        } => {
            let spec = distpos_testnets::launcher::builtin(&spec)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(format!(".distpos/{}", spec.name)));
            let net =
                distpos_testnets::launcher::prepare(&spec, &dir, base_port, runtime::now_ms())?;
            distpos_testnets::launcher::start(&net, &dir).await?;
            say!(
                "network {:?} running (folder {}; stop with: distpos testnet down --dir {})",
                spec.name,
                dir.display(),
                dir.display()
            );
            for c in &net.chains {
                say!(
                    "  chain {:>5}: {}   faucet {}",
                    c.chain.to_string(),
                    c.urls.join("  "),
                    c.faucet_key.display()
                );
            }
            if let Some((_, port)) = &net.dns {
                say!(
                    "  DNS: 127.0.0.1:{port} serves _distpos._tcp.<chain>.{}",
                    spec.zone.clone().unwrap_or_default()
                );
            }
            if let Some(t) = &net.api_token {
                say!("  operator token: {t}");
            }
            Ok(())
        }
        Command::Testnet {
            command: TestnetCommand::Down { dir },
        } => {
            let n = distpos_testnets::launcher::stop(&dir)?;
            say!("stopped {n} processes");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::New { out },
        } => {
            let key = keyfile::generate()?;
            keyfile::write(&out, &key)?;
            say!("address:    {}", keyfile::address(&key));
            say!("public key: {}", key.public_key());
            say!("written to: {}", out.display());
            Ok(())
        }
        Command::Testnet {
            command:
                TestnetCommand::Init {
                    dir,
                    chain,
                    producers,
                    ports,
                    interval_ms,
                    max_producers,
                    unbonding_blocks,
                },
        } => {
            let ports = if ports.is_empty() {
                (0..producers).map(|i| 7700 + i as u16).collect()
            } else {
                ports
            };
            let spec = testnet::TestnetSpec {
                dir,
                chain,
                producers,
                ports,
                interval_ms,
                faucet_balance: 1_000_000_000_000,
                producer_stake: 1_000_000,
                params: distpos_chain::ChainParams {
                    max_producers,
                    unbonding_blocks,
                    ..Default::default()
                },
                api_token: Some(testnet::random_token()?),
            };
            let files = testnet::init(&spec, runtime::now_ms())?;
            say!("genesis: {}", files.genesis.display());
            for (c, u) in files.configs.iter().zip(&files.urls) {
                say!("node:    distpos node --config {}   # {u}", c.display());
            }
            say!("faucet:  {}", files.faucet_key.display());
            Ok(())
        }
        Command::Peer { command } => peer::run(command).await,
        Command::Proposals { node, json } => peer::list(&node, json).await,
        Command::Status(t) => console::status(t).await,
        Command::Producers(t) => console::producers(t).await,
        Command::Account(a) => console::account(a).await,
        Command::Peers(t) => console::peers(t).await,
        Command::Routes(t) => console::routes(t).await,
        Command::Queue(q) => console::queue(q).await,
        Command::Transfer(a) => console::transfer(a).await,
        Command::Tx(args) => {
            let key = keyfile::read(&args.key)?;
            let body = match args.body {
                TxBody::Transfer {
                    to,
                    amount,
                    memo,
                    deliver_by,
                } => Body::Transfer {
                    to,
                    amount,
                    memo: memo.into_bytes(),
                    deliver_by,
                },
                TxBody::Stake { amount } => Body::Stake { amount },
                TxBody::Unstake { amount } => Body::Unstake { amount },
                TxBody::Vote { producers } => Body::Vote { producers },
                TxBody::SetProxy { proxy } => Body::SetProxy { proxy },
                TxBody::RegisterProducer { signing_key, url } => Body::RegisterProducer {
                    signing_key: signing_key.unwrap_or(key.public_key()),
                    url,
                },
                TxBody::UnregisterProducer => Body::UnregisterProducer,
                TxBody::Propose { action } => Body::Propose {
                    action: Box::new(
                        serde_json::from_str::<GovAction>(&action)
                            .context("--action is not a valid governance action")?,
                    ),
                },
                TxBody::Approve { proposal } => Body::Approve { proposal },
                TxBody::DepositCollateral { peer, amount } => {
                    Body::DepositCollateral { peer, amount }
                }
                TxBody::WithdrawCollateral { peer, amount } => {
                    Body::WithdrawCollateral { peer, amount }
                }
            };
            let client = Client::new(&args.node)?;
            let hash = client.send(&key, body, args.fee).await?;
            say!("{hash}");
            if args.wait {
                let status = client.wait(&hash, Duration::from_secs(60)).await?;
                say!("{}", serde_json::to_string_pretty(&status)?);
            }
            Ok(())
        }
    }
}
