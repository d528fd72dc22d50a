//! `radar`: the single binary. `radar up` runs everything in one process; the client commands
//! talk to the REST API.
//!
//! Modules: [`server`] (up, node, print-config, sim), [`client`] (devices, get, set, op, query).

mod client;
mod client_audit;
mod client_credentials;
mod credentials_file;
mod logging;
mod router_cmd;
mod server;
mod token_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "radar",
    version,
    about = "Radar: TR-069 ACS and TR-369 controller with live digital twins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: one node hosting every shard, API and ACS.
    Up(server::UpArgs),
    /// Run one node from a config file (flags override it).
    Node(server::NodeArgs),
    /// Run one router: the front door that sends each device to its shard's leader node.
    Router(router_cmd::RouterArgs),
    /// Print the default configuration.
    PrintConfig {
        /// Which configuration: `node` or `router`.
        what: String,
        /// Check this file instead: exit non-zero, naming the key, when it does not parse
        /// (an unknown key, a bad value).
        #[arg(long)]
        check: Option<std::path::PathBuf>,
    },
    /// Run simulated CWMP devices against an ACS.
    Sim(server::SimArgs),
    /// Make API tokens (printed once) and the config entries that hold their hashes.
    Token {
        #[command(subcommand)]
        action: token_cmd::TokenAction,
    },
    /// List devices matching a query.
    Devices(client::DevicesArgs),
    /// Show a device's parameters.
    Get(client::GetArgs),
    /// Set parameters on a device (queued, delivered now or at its next contact).
    Set(client::SetArgs),
    /// Run an operation on a device.
    Op(client::OpArgs),
    /// Count devices matching a query, optionally grouped.
    Query(client::QueryArgs),
    /// Show the cluster.
    Cluster(client::ClusterArgs),
    /// Tell Radar the connection-request credentials a device (or a fleet query's devices)
    /// already has.
    Credentials(client_credentials::CredentialsArgs),
    /// Show the audit log: who changed what through the API, newest first.
    Audit(client_audit::AuditArgs),
}

/// mimalloc: glibc malloc's arena locks showed up as contention in the B1 profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => server::up(args).await,
            Command::Node(args) => server::node(args).await,
            Command::Router(args) => router_cmd::router(args).await,
            Command::PrintConfig { what, check } => server::print_config(&what, check.as_deref()),
            Command::Token { action } => token_cmd::run(action),
            Command::Sim(args) => server::sim(args).await,
            Command::Devices(args) => client::devices(args).await,
            Command::Audit(args) => client_audit::audit(args).await,
            Command::Get(args) => client::get(args).await,
            Command::Set(args) => client::set(args).await,
            Command::Op(args) => client::op(args).await,
            Command::Query(args) => client::query(args).await,
            Command::Cluster(args) => client::cluster(args).await,
            Command::Credentials(args) => client_credentials::credentials(args).await,
        }
    });
    if let Err(e) = result {
        // One line, as scripts expect.
        let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}
