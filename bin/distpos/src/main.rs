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

/// Prints a line to stdout; exits quietly if stdout is gone (e.g. piped into `head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod console;
mod peer;

#[derive(Parser)]
#[command(
    name = "distpos",
    version,
    about = "DistPOS gateway: a DPOS chain node that links chains peer to peer"
)]
struct Cli {
    /// How commands that log write their lines: `text` (colour only on a terminal) or
    /// `json` (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DISTPOS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines; ANSI colour only when stdout is a terminal.
    Text,
    /// One JSON object per line (for journald, Loki, …).
    Json,
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
    /// Benchmarks and soaks (JSON lines): `local`, `cross`, `all`; `hops`; `flood`;
    /// `chaos`, `crash-restart`, `outage`.
    Bench {
        /// local, cross or all (the throughput benchmarks); hops (delivery through a
        /// correspondent against direct delivery, --transfers of each, default 40);
        /// flood (a hostile client against a chain while transfers flow); chaos,
        /// crash-restart or outage (the crash soaks).
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
        /// cross: the underwritten fast path (DESIGN §11) against the ordinary path in
        /// the same run, --transfers of each (default 40), 3 producers per chain.
        #[arg(long)]
        fast: bool,
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
    /// Check a node config: every problem, with its field, and the files it names.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    /// reason here and on the other chain, and whether it came the fast way.
    Transfer(console::TransferArgs),
    /// The fast path (DESIGN §11): per peer chain, its policy and the bonds of its
    /// underwriters here (amount, locked, free).
    Underwriters(console::UnderwritersArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check FILE: its syntax, every value, the genesis and key files it names, the
    /// routes against the genesis's chain id. Exits non-zero on any problem.
    Check {
        /// The node's TOML config.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new random key as an encrypted V3 keystore (scrypt); print its address
    /// and public key. The passphrase comes from --passphrase-file or the environment
    /// (DISTPOS_KEY_PASSPHRASE_FILE, DISTPOS_KEY_PASSPHRASE).
    New {
        /// Where to write it (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        protect: Protect,
    },
    /// Import a key: a raw hex secret (--hex), an Ethereum V3 keystore (--keystore,
    /// opened with the same passphrase) or a plaintext distpos key file (--plain);
    /// written to --out as a keystore.
    Import {
        /// A file holding the 32-byte secret as hex (64 digits, `0x` optional).
        #[arg(long, group = "source")]
        hex: Option<PathBuf>,
        /// An Ethereum V3 keystore (geth, clef, MetaMask export, …).
        #[arg(long, group = "source")]
        keystore: Option<PathBuf>,
        /// A plaintext distpos key file (what dev chains and testnets write).
        #[arg(long, group = "source")]
        plain: Option<PathBuf>,
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        protect: Protect,
    },
    /// Show a key file: its address, public key and whether it is encrypted.
    Show {
        /// The key file.
        file: PathBuf,
        /// A file whose first line is the keystore's passphrase (default: the
        /// environment).
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

/// How a written key is protected.
#[derive(Args)]
struct Protect {
    /// A file whose first line is the passphrase (default: DISTPOS_KEY_PASSPHRASE_FILE
    /// or DISTPOS_KEY_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Write it unencrypted, marked as a dev key (dev chains and testnets only).
    #[arg(long)]
    plaintext: bool,
}

/// The passphrase of a keys command: `--passphrase-file`, else the environment.
fn passphrase(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    Ok(match file {
        Some(f) => Some(keyfile::passphrase_from_file(f)?),
        None => keyfile::passphrase_from_env()?,
    })
}

/// Writes `key` to `out` as `protect` says.
fn write_key(
    out: &std::path::Path,
    key: &distpos_proofs::SecretKey,
    protect: &Protect,
) -> anyhow::Result<()> {
    if protect.plaintext {
        keyfile::write(out, key)?;
        return Ok(());
    }
    let Some(pass) = passphrase(protect.passphrase_file.as_deref())? else {
        anyhow::bail!(
            "a keystore needs a passphrase: --passphrase-file FILE, or DISTPOS_KEY_PASSPHRASE_FILE / \
             DISTPOS_KEY_PASSPHRASE (or --plaintext for a dev key)"
        );
    };
    keyfile::write_keystore(out, key, &pass, keyfile::keystore::SCRYPT_STANDARD)?;
    Ok(())
}

fn say_key(key: &distpos_proofs::SecretKey, out: &std::path::Path, encrypted: bool) {
    say!("address:    {}", keyfile::address(key));
    say!("public key: {}", key.public_key());
    say!(
        "written to: {} ({})",
        out.display(),
        if encrypted {
            "V3 keystore, scrypt"
        } else {
            "unencrypted dev key"
        }
    );
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
    #[arg(long, env = "DISTPOS_NODE", default_value = "http://127.0.0.1:7700")]
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

/// The correspondent that forwards to `chain`, when this node's chain is not a peer
/// of it and its routes name one (`via`): `None` for a local transfer, a peer, or a
/// chain no route names a way to (the node then refuses the transfer and says why).
async fn first_hop(node: &str, chain: ChainId) -> anyhow::Result<Option<ChainId>> {
    use distpos_adapters::AdapterError;
    if chain.is_local() {
        return Ok(None);
    }
    let client = Client::new(node)?;
    let status: serde_json::Value = client.get_json("/v1/status").await?;
    if status["chain_id"].as_str() == Some(chain.to_string().as_str()) {
        return Ok(None);
    }
    match client
        .get_json::<serde_json::Value>(&format!("/v1/correspondents/{chain}"))
        .await
    {
        Ok(_) => return Ok(None),
        Err(AdapterError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let route = match client
        .get_json::<serde_json::Value>(&format!("/v1/routes/{chain}"))
        .await
    {
        Ok(route) => route,
        Err(AdapterError::Status {
            status: 404 | 503, ..
        }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(via) = route["via"].as_str() else {
        return Ok(None);
    };
    let via = ChainId::parse(via)
        .map_err(|e| anyhow::anyhow!("the node's route to {chain} names a bad via: {e}"))?;
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "chain {chain} is reached through chain {via} (its route names it as via)"
    );
    Ok(Some(via))
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
        /// Cross-chain: pay this on top of the amount to be delivered before the
        /// block is irreversible here, by underwriters bonded on the destination (0 =
        /// the ordinary path).
        #[arg(long, value_parser = parse_amount_arg, default_value = "0")]
        fast_fee: u128,
        /// Cross-chain, to a chain this one has no correspondent relation with: the
        /// correspondent that forwards it (DESIGN §12). Default: asked of the node
        /// (`GET /v1/routes/<chain>` names it) when the destination is not a peer.
        #[arg(long, value_parser = parse_chain)]
        via: Option<ChainId>,
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
    /// Bond tokens here behind the fast-path endorsements of a node of chain --peer
    /// (DESIGN §11): its signing key (default: the sender's own public key).
    BondUnderwriter {
        #[arg(long, value_parser = parse_chain)]
        peer: ChainId,
        #[arg(long)]
        signing_key: Option<PublicKey>,
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
    /// Take back the unlocked part of a bond (it unbonds like stake).
    UnbondUnderwriter {
        #[arg(long, value_parser = parse_chain)]
        peer: ChainId,
        #[arg(long)]
        signing_key: Option<PublicKey>,
        #[arg(long, value_parser = parse_amount_arg)]
        amount: u128,
    },
    /// Report two headers of peer chain --peer signed by one of its producers for one
    /// slot (JSON files, as `GET /v1/headers` of a peer node shows them): evidence of
    /// equivocation, which lowers the peer's reputation here (DESIGN §13).
    PeerEvidence {
        #[arg(long, value_parser = parse_chain)]
        peer: ChainId,
        #[arg(long)]
        header_a: std::path::PathBuf,
        #[arg(long)]
        header_b: std::path::PathBuf,
    },
}

/// A signed header from a JSON file (`--header-a`, `--header-b`).
fn read_header(path: &std::path::Path) -> anyhow::Result<Box<distpos_proofs::SignedHeader>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a signed header", path.display()))?;
    Ok(Box::new(header))
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

/// Starts logging with `RUST_LOG` if set, else `default` (a config's `log`); an
/// invalid filter is an error, not silence.
fn init_logging(default: &str, format: LogFormat) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let (filter, origin) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => (v, "RUST_LOG"),
        _ => (default.to_string(), "log"),
    };
    distpos_gateway::config::check_log_filter(&filter)
        .map_err(|e| anyhow::anyhow!("{origin} is not a valid log filter: {e}"))?;
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("{origin} is not a valid log filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stdout().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

/// `distpos config check FILE`: prints every problem and returns an error if any.
fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut cfg: NodeConfig = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => anyhow::bail!("{}: {e}", file.display()),
    };
    cfg.resolve_paths(file.parent().unwrap_or(std::path::Path::new(".")));
    let mut problems = cfg.problems();
    match runtime::read_genesis(&cfg.genesis) {
        Ok(g) => {
            if let Err(e) = distpos_routing::RouteTable::new(g.chain_id, &cfg.routing) {
                problems.push(format!("routing: {e}"));
            }
            say!(
                "genesis:      {} (chain {}, identity {})",
                cfg.genesis.display(),
                g.chain_id,
                g.identity_hash()
            );
        }
        Err(e) => problems.push(format!("genesis: {e:#}")),
    }
    match &cfg.producer_key {
        Some(k) => match keyfile::read(k) {
            Ok(key) => say!(
                "producer key: {} (address {})",
                k.display(),
                keyfile::address(&key)
            ),
            Err(e) => problems.push(format!("producer_key: {e}")),
        },
        None => say!("producer key: none (a non-producing node)"),
    }
    if cfg.api_token.is_some() {
        if let Some(mode) = keyfile::shared_mode(file) {
            problems.push(format!(
                "api_token: the file is readable by other users (mode {mode:04o}): chmod 600 it"
            ));
        }
    }
    say!("listen:       http://{}", cfg.listen);
    say!("data_dir:     {}", cfg.data_dir.display());
    if problems.is_empty() {
        say!("{}: ok", file.display());
        return Ok(());
    }
    for p in &problems {
        say!("problem: {p}");
    }
    anyhow::bail!("{}: {} problem(s)", file.display(), problems.len())
}

#[tokio::main]
async fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    // `--version` names the git revision built (from the gateway's build script).
    let version: &'static str = Box::leak(
        format!(
            "{} (git {})",
            distpos_gateway::build_info::VERSION,
            distpos_gateway::build_info::GIT_REVISION
        )
        .into_boxed_str(),
    );
    let cli = match Cli::from_arg_matches(&Cli::command().version(version).get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cli_log_format = cli.log_format;
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
            init_logging(&cfg.log, cli_log_format)?;
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
            // systemd (Type=notify): ready once the port is bound and the store open.
            // Outside systemd (no NOTIFY_SOCKET) this does nothing.
            if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
                tracing::warn!(error = %e, "could not tell systemd the node is ready");
            }
            runtime::serve(listener, state, runtime::shutdown_signal()).await
        }
        Command::Dev { dir, listen } => {
            init_logging("info", cli_log_format)?;
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
            say!("  try:         distpos status --node http://{}", cfg.listen);
            say!(
                "               open http://{}/ (the live dashboard)",
                cfg.listen
            );
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
            fast,
            local_transfers,
            senders,
            fault_secs,
            seed,
            runs,
            stop_secs,
        } => {
            let seed = seed.unwrap_or_else(runtime::now_ms);
            let soak = match which.as_str() {
                "cross" if fast => Some(
                    distpos_testnets::bench::fast::fast(
                        transfers.unwrap_or(40),
                        producers.unwrap_or(3),
                    )
                    .await?,
                ),
                _ if fast => anyhow::bail!("--fast goes with `bench cross`"),
                "local" | "cross" | "all" => None,
                "hops" => Some(
                    distpos_testnets::bench::hops::hops(
                        transfers.unwrap_or(40),
                        producers.unwrap_or(1),
                    )
                    .await?,
                ),
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
                    "bench: unknown {other:?}; expected local, cross, all, hops, flood, chaos, crash-restart or outage"
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
            command: KeysCommand::New { out, protect },
        } => {
            let key = keyfile::generate()?;
            write_key(&out, &key, &protect)?;
            say_key(&key, &out, !protect.plaintext);
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Import {
                    hex,
                    keystore,
                    plain,
                    out,
                    protect,
                },
        } => {
            let key = match (hex, keystore, plain) {
                (Some(f), None, None) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read {}", f.display()))?;
                    let bytes = distpos_proofs::codec::parse_hex(text.trim())
                        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
                        anyhow::anyhow!("{}: a secret key is 32 bytes (64 hex digits)", f.display())
                    })?;
                    distpos_proofs::SecretKey::from_bytes(&arr).ok_or_else(|| {
                        anyhow::anyhow!("{}: not a valid secp256k1 secret key", f.display())
                    })?
                }
                (None, Some(f), None) => {
                    let pass = passphrase(protect.passphrase_file.as_deref())?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "opening a keystore needs its passphrase: --passphrase-file FILE or DISTPOS_KEY_PASSPHRASE(_FILE)"
                        )
                    })?;
                    keyfile::read_with(&f, Some(&pass))?
                }
                (None, None, Some(f)) => keyfile::read(&f)?,
                _ => {
                    anyhow::bail!("say what to import: --hex FILE, --keystore FILE or --plain FILE")
                }
            };
            write_key(&out, &key, &protect)?;
            say_key(&key, &out, !protect.plaintext);
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Show {
                    file,
                    passphrase_file,
                },
        } => {
            let encrypted = keyfile::is_keystore_file(&file);
            let pass = if encrypted {
                passphrase(passphrase_file.as_deref())?
            } else {
                None
            };
            let key = keyfile::read_with(&file, pass.as_deref())?;
            say!("address:    {}", keyfile::address(&key));
            say!("public key: {}", key.public_key());
            say!(
                "format:     {}",
                if encrypted {
                    "V3 keystore (encrypted)"
                } else {
                    "plaintext (unencrypted)"
                }
            );
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
        Command::Config {
            command: ConfigCommand::Check { file },
        } => check_config(&file),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "distpos", &mut script);
            say!("{}", String::from_utf8_lossy(&script).trim_end());
            Ok(())
        }
        Command::Proposals { node, json } => peer::list(&node, json).await,
        Command::Status(t) => console::status(t).await,
        Command::Producers(t) => console::producers(t).await,
        Command::Account(a) => console::account(a).await,
        Command::Peers(t) => console::peers(t).await,
        Command::Routes(t) => console::routes(t).await,
        Command::Queue(q) => console::queue(q).await,
        Command::Transfer(a) => console::transfer(a).await,
        Command::Underwriters(a) => console::underwriters(a).await,
        Command::Tx(args) => {
            let key = keyfile::read(&args.key)?;
            let body = match args.body {
                TxBody::Transfer {
                    to,
                    amount,
                    memo,
                    deliver_by,
                    fast_fee,
                    via,
                } => Body::Transfer {
                    to,
                    amount,
                    memo: memo.into_bytes(),
                    deliver_by,
                    fast_fee,
                    via: match via {
                        Some(v) => Some(v),
                        None => first_hop(&args.node, to.chain).await?,
                    },
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
                TxBody::BondUnderwriter {
                    peer,
                    signing_key,
                    amount,
                } => Body::BondUnderwriter {
                    peer,
                    signing_key: signing_key.unwrap_or_else(|| key.public_key()),
                    amount,
                },
                TxBody::UnbondUnderwriter {
                    peer,
                    signing_key,
                    amount,
                } => Body::UnbondUnderwriter {
                    peer,
                    signing_key: signing_key.unwrap_or_else(|| key.public_key()),
                    amount,
                },
                TxBody::PeerEvidence {
                    peer,
                    header_a,
                    header_b,
                } => Body::PeerEvidence {
                    peer,
                    header_a: read_header(&header_a)?,
                    header_b: read_header(&header_b)?,
                },
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
