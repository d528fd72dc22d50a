//! `radar token`: make API tokens offline. The token is printed once; the config entry printed
//! with it holds only its hash, for `[[auth.tokens]]` or a `tokens_file`.

use anyhow::{Context, Result};
use clap::Subcommand;
use radar_node::auth::role::Role;
use radar_node::auth::tokens::{generate, sha256_hex, TokenEntry};

#[derive(Subcommand)]
pub enum TokenAction {
    /// Make a new token and print it with its config entry.
    New {
        /// The token's id, as the audit log will name it (e.g. `noc`, `oss-sync`).
        #[arg(long)]
        id: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: Role,
    },
    /// Print the SHA-256 of a token read from standard input (to list an existing token).
    Hash,
}

pub fn run(action: TokenAction) -> Result<()> {
    match action {
        TokenAction::New { id, role } => {
            let token = generate();
            let entry = TokenEntry {
                id,
                role,
                sha256: sha256_hex(&token),
            };
            println!("token (shown once): {token}");
            println!("\n# config (radar.toml):");
            println!("[[auth.tokens]]");
            print!("{}", toml::to_string(&entry)?);
            println!(
                "\n# or in a tokens_file (JSON):\n{}",
                serde_json::to_string(&entry)?
            );
        }
        TokenAction::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("reading the token from standard input")?;
            println!("{}", sha256_hex(token.trim()));
        }
    }
    Ok(())
}
