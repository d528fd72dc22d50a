//! `radar credentials`: tell Radar the connection-request credentials devices already have.

use crate::client::{call, print_json, segment, text, Common};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct CredentialsArgs {
    /// The device; or use --query for every device a fleet query matches.
    device: Option<String>,
    /// A fleet query (same grammar as `radar query`).
    #[arg(long, short = 'q', conflicts_with = "device")]
    query: Option<String>,
    #[arg(long)]
    username: String,
    /// The password (better given through the environment than on a command line).
    #[arg(long, env = "RADAR_CR_PASSWORD", hide_env_values = true)]
    password: String,
    #[command(flatten)]
    common: Common,
}

pub async fn credentials(args: CredentialsArgs) -> Result<()> {
    let v = match (&args.device, &args.query) {
        (Some(device), None) => {
            let url = format!(
                "{}/api/v1/devices/{}/connection-request-credentials",
                args.common.api,
                segment(device)
            );
            let body = json!({"username": args.username, "password": args.password});
            call(&args.common, reqwest::Method::PUT, url, Some(body)).await?
        }
        (None, Some(query)) => {
            let url = format!("{}/api/v1/connection-request-credentials", args.common.api);
            let body =
                json!({"query": query, "username": args.username, "password": args.password});
            call(&args.common, reqwest::Method::POST, url, Some(body)).await?
        }
        _ => bail!("name a device or give --query"),
    };
    if args.common.json {
        print_json(&v);
    } else if v.get("matched").is_some() {
        println!(
            "{} devices matched, {} updated{}",
            text(&v["matched"]),
            text(&v["updated"]),
            if v["partial"] == true {
                " (partial: some shards did not answer)"
            } else {
                ""
            }
        );
    } else {
        println!(
            "{}: connection-request credentials recorded for {}",
            text(&v["id"]),
            text(&v["username"])
        );
    }
    Ok(())
}
