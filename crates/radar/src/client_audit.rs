//! `radar audit`: who changed what through the API (the audit log, newest first).

use crate::client::{call, print_json, table, text, Common};
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct AuditArgs {
    /// Only records about this device.
    #[arg(long)]
    device: Option<String>,
    /// Only records of this token id (or OIDC subject).
    #[arg(long)]
    actor: Option<String>,
    /// Records since an RFC 3339 time or for a duration back from now (`24h`).
    #[arg(long)]
    since: Option<String>,
    /// Records to show, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after a page (the cursor the last page printed).
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub async fn audit(args: AuditArgs) -> Result<()> {
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/audit", args.common.api))
        .context("bad --api url")?;
    {
        let mut q = url.query_pairs_mut();
        for (key, value) in [
            ("device", &args.device),
            ("actor", &args.actor),
            ("since", &args.since),
            ("cursor", &args.cursor),
        ] {
            if let Some(value) = value {
                q.append_pair(key, value);
            }
        }
        q.append_pair("limit", &args.limit.to_string());
    }
    let v = call(&args.common, reqwest::Method::GET, url.to_string(), None).await?;
    if args.common.json {
        print_json(&v);
        return Ok(());
    }
    let columns = [
        "at",
        "actor",
        "role",
        "source",
        "method",
        "path",
        "result",
        "operation",
        "detail",
    ];
    let rows = v["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    columns
                        .iter()
                        .map(|c| match *c {
                            "result" if !r["status"].is_null() => {
                                format!("{} {}", text(&r["status"]), text(&r["result"]))
                            }
                            _ => text(&r[*c]),
                        })
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    table(&columns, rows);
    if let Some(next) = v["next"].as_str() {
        eprintln!("more: --cursor {next}");
    }
    if v["partial"].as_bool() == Some(true) {
        eprintln!(
            "warning: partial answer; shards {} did not reply",
            v["failed_shards"]
        );
    }
    Ok(())
}
