//! Client subcommands: they call the REST API (`--api`, or `RADAR_API`) and print tables for
//! people or JSON with `--json` for scripts.

use anyhow::{bail, Context, Result};
use clap::Args;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// Characters escaped in a path segment: everything but unreserved and `:` (TR-369 ids use `::`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

#[derive(Args, Clone)]
pub struct Common {
    /// Radar API base URL.
    #[arg(
        long,
        env = "RADAR_API",
        default_value = "http://127.0.0.1:7557",
        global = true
    )]
    pub(crate) api: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// API token (default: the one `radar up` saved for this API in the credentials file).
    #[arg(long, env = "RADAR_TOKEN", global = true, hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of the CA (or self-signed certificate) to trust for an `https://` API.
    #[arg(long, env = "RADAR_CA_FILE", global = true)]
    pub(crate) ca_file: Option<std::path::PathBuf>,
}

fn http_client(common: &Common) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &common.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} holds no PEM certificate", path.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

#[derive(Args)]
pub struct DevicesArgs {
    /// Query expression, e.g. `product_class LIKE "HG*" AND online = true`.
    #[arg(short = 'q', long)]
    query: Option<String>,
    /// Extra fields (parameter paths) to show.
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct GetArgs {
    device: String,
    /// Only parameters under this prefix.
    prefix: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct SetArgs {
    device: String,
    /// PATH=VALUE pairs.
    #[arg(required = true)]
    assignments: Vec<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct OpArgs {
    device: String,
    /// reboot | factory-reset | download URL | add PATH | delete PATH | refresh [PREFIX] |
    /// schedule-inform [SECONDS] | rpc-methods | attributes PATH
    kind: String,
    argument: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct QueryArgs {
    expression: String,
    #[arg(long)]
    group_by: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    action: Option<ClusterAction>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Subcommand)]
pub enum ClusterAction {
    /// Form the cluster from the nodes' seeds, once (repeating it is harmless).
    Init {
        /// Number of shards.
        #[arg(long)]
        shards: u32,
        /// Voters per shard (nodes hosting each shard).
        #[arg(long)]
        replicas: u32,
        /// Fixed partition count (default: the node's `partitions`).
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// Add a shard and move to it, with their twins, the partitions the new ring gives it.
    /// Devices keep being served; running it again finishes an interrupted move.
    AddShard,
    /// Add a running node (started with `radar node`) to the cluster and move replicas to it.
    AddNode {
        /// The new node's cluster gRPC address (HOST:PORT).
        #[arg(long)]
        address: String,
    },
    /// Drain a node (move each of its replicas to another node), then remove it.
    RemoveNode {
        #[arg(long)]
        node_id: u64,
    },
}

pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub(crate) async fn call(
    common: &Common,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Result<Value> {
    let client = http_client(common)?;
    let mut request = client.request(method, &url);
    let token = match &common.token {
        Some(token) => Some(token.clone()),
        None => crate::credentials_file::token_for(&common.api)?,
    };
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the response")?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        match status.as_u16() {
            401 if token.is_none() => bail!(
                "{status}: the API needs a token: set RADAR_TOKEN or pass --token (`radar up` printed one at its first start and saved it in {})",
                crate::credentials_file::path_text()
            ),
            401 => bail!("{status}: {message}: check RADAR_TOKEN, --token or {}", crate::credentials_file::path_text()),
            403 => bail!("{status}: {message}: use a token with a stronger role"),
            _ => bail!("{status}: {message}"),
        }
    }
    Ok(value)
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row);
    }
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub async fn devices(args: DevicesArgs) -> Result<()> {
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/devices", args.common.api))
        .context("bad --api url")?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(expr) = &args.query {
            q.append_pair("q", expr);
        }
        if !args.fields.is_empty() {
            q.append_pair("fields", &args.fields.join(","));
        }
        q.append_pair("limit", &args.limit.to_string());
    }
    let v = call(&args.common, reqwest::Method::GET, url.to_string(), None).await?;
    if args.common.json {
        print_json(&v);
        return Ok(());
    }
    let mut headers = vec![
        "id",
        "protocol",
        "online",
        "product_class",
        "software_version",
        "last_contact",
    ];
    headers.extend(args.fields.iter().map(String::as_str));
    let rows = v["devices"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    let mut row: Vec<String> = [
                        "id",
                        "protocol",
                        "online",
                        "product_class",
                        "software_version",
                        "last_contact",
                    ]
                    .iter()
                    .map(|k| text(&d[*k]))
                    .collect();
                    row.extend(args.fields.iter().map(|f| text(&d["fields"][f])));
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    table(&headers, rows);
    if v["partial"].as_bool() == Some(true) {
        eprintln!(
            "warning: partial answer; shards {} did not reply",
            v["failed_shards"]
        );
    }
    Ok(())
}

pub async fn get(args: GetArgs) -> Result<()> {
    let mut url = reqwest::Url::parse(&format!(
        "{}/api/v1/devices/{}/params",
        args.common.api,
        segment(&args.device)
    ))
    .context("bad --api url")?;
    if let Some(prefix) = &args.prefix {
        url.query_pairs_mut().append_pair("prefix", prefix);
    }
    let v = call(&args.common, reqwest::Method::GET, url.to_string(), None).await?;
    if args.common.json {
        print_json(&v);
        return Ok(());
    }
    let rows = v["params"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(path, p)| {
                    let desired = v["desired"]
                        .get(path)
                        .map(|d| format!("-> {} ({})", text(&d["value"]), text(&d["status"])));
                    vec![
                        path.clone(),
                        text(&p["value"]),
                        text(&p["type"]),
                        if p["writable"].as_bool() == Some(true) {
                            "rw".into()
                        } else {
                            "ro".into()
                        },
                        text(&p["source"]),
                        desired.unwrap_or_default(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &["path", "value", "type", "access", "source", "desired"],
        rows,
    );
    Ok(())
}

pub async fn set(args: SetArgs) -> Result<()> {
    let mut body = serde_json::Map::new();
    for assignment in &args.assignments {
        let (path, value) = assignment
            .split_once('=')
            .with_context(|| format!("{assignment:?} is not PATH=VALUE"))?;
        body.insert(path.to_owned(), Value::String(value.to_owned()));
    }
    let url = format!(
        "{}/api/v1/devices/{}/params",
        args.common.api,
        segment(&args.device)
    );
    let v = call(
        &args.common,
        reqwest::Method::PATCH,
        url,
        Some(Value::Object(body)),
    )
    .await?;
    print_operation(&v, args.common.json);
    Ok(())
}

fn print_operation(v: &Value, json: bool) {
    if json {
        print_json(v);
    } else {
        println!(
            "operation {} {} ({})",
            text(&v["id"]),
            text(&v["status"]),
            text(&v["kind"])
        );
    }
}

pub async fn op(args: OpArgs) -> Result<()> {
    let needs = |what: &str| {
        args.argument
            .clone()
            .with_context(|| format!("{} needs {what}", args.kind))
    };
    let body = match args.kind.as_str() {
        "reboot" => json!({"kind": "reboot"}),
        "factory-reset" | "factory_reset" => json!({"kind": "factory_reset"}),
        "download" => json!({"kind": "download", "url": needs("a URL")?}),
        "add" => json!({"kind": "add_object", "path": needs("an object path")?}),
        "delete" => json!({"kind": "delete_object", "path": needs("an object path")?}),
        "refresh" => json!({"kind": "refresh", "prefix": args.argument.clone().unwrap_or_default()}),
        "schedule-inform" => json!({"kind": "schedule_inform", "delay_seconds": args.argument.as_deref().unwrap_or("0").parse::<u32>().context("delay must be seconds")?}),
        "rpc-methods" => json!({"kind": "get_rpc_methods"}),
        "attributes" => json!({"kind": "get_attributes", "paths": [needs("a path")?]}),
        other => bail!(
            "unknown operation {other:?}; expected reboot, factory-reset, download, add, delete, refresh, schedule-inform, rpc-methods or attributes"
        ),
    };
    let url = format!(
        "{}/api/v1/devices/{}/operations",
        args.common.api,
        segment(&args.device)
    );
    let v = call(&args.common, reqwest::Method::POST, url, Some(body)).await?;
    print_operation(&v, args.common.json);
    Ok(())
}

pub async fn query(args: QueryArgs) -> Result<()> {
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", args.common.api))
        .context("bad --api url")?;
    url.query_pairs_mut().append_pair("q", &args.expression);
    if let Some(g) = &args.group_by {
        url.query_pairs_mut().append_pair("group_by", g);
    }
    let v = call(&args.common, reqwest::Method::GET, url.to_string(), None).await?;
    if args.common.json {
        print_json(&v);
        return Ok(());
    }
    println!("total {}", text(&v["total"]));
    if let Some(groups) = v["groups"].as_object().filter(|g| !g.is_empty()) {
        table(
            &["value", "count"],
            groups
                .iter()
                .map(|(k, c)| vec![k.clone(), text(c)])
                .collect(),
        );
    }
    if v["partial"].as_bool() == Some(true) {
        eprintln!(
            "warning: partial answer; shards {} did not reply",
            v["failed_shards"]
        );
    }
    Ok(())
}

fn print_membership(v: &Value, what: &str) {
    println!(
        "node {} {what} in {:.1} s; layout version {}",
        text(&v["node"]),
        v["seconds"].as_f64().unwrap_or(0.0),
        text(&v["layout_version"])
    );
    for m in v["moves"].as_array().into_iter().flatten() {
        println!(
            "  shard {}: replica moved from node {} to node {}",
            text(&m["shard"]),
            text(&m["from"]),
            text(&m["to"])
        );
    }
}

pub async fn cluster(args: ClusterArgs) -> Result<()> {
    let membership = match &args.action {
        Some(ClusterAction::AddNode { address }) => Some((
            reqwest::Method::POST,
            format!("{}/api/v1/cluster/nodes", args.common.api),
            Some(json!({ "address": address })),
            "added",
        )),
        Some(ClusterAction::RemoveNode { node_id }) => Some((
            reqwest::Method::DELETE,
            format!("{}/api/v1/cluster/nodes/{node_id}", args.common.api),
            None,
            "drained and removed",
        )),
        _ => None,
    };
    if let Some((method, url, body, what)) = membership {
        let v = call(&args.common, method, url, body).await?;
        if args.common.json {
            print_json(&v);
        } else {
            print_membership(&v, what);
        }
        return Ok(());
    }
    if let Some(ClusterAction::AddShard) = args.action {
        let v = call(
            &args.common,
            reqwest::Method::POST,
            format!("{}/api/v1/cluster/shards", args.common.api),
            None,
        )
        .await?;
        if args.common.json {
            print_json(&v);
        } else {
            println!(
                "shard {} added (voters {}): {} partitions and {} twins moved in {:.1} s; layout version {}",
                text(&v["shard"]),
                v["voters"],
                text(&v["partitions_moved"]),
                text(&v["twins_moved"]),
                v["seconds"].as_f64().unwrap_or(0.0),
                text(&v["layout_version"])
            );
        }
        return Ok(());
    }
    if let Some(ClusterAction::Init {
        shards,
        replicas,
        partitions,
    }) = args.action
    {
        let v = call(
            &args.common,
            reqwest::Method::POST,
            format!("{}/api/v1/cluster/init", args.common.api),
            Some(json!({"shards": shards, "replicas": replicas, "partitions": partitions})),
        )
        .await?;
        if args.common.json {
            print_json(&v);
        } else {
            println!(
                "cluster initialized: layout version {}, {} shards × {} replicas over {} partitions",
                text(&v["layout_version"]),
                shards,
                text(&v["replicas"]),
                text(&v["partitions"])
            );
        }
        return Ok(());
    }
    let v = call(
        &args.common,
        reqwest::Method::GET,
        format!("{}/api/v1/cluster", args.common.api),
        None,
    )
    .await?;
    if args.common.json {
        print_json(&v);
        return Ok(());
    }
    println!("layout version {}", text(&v["layout_version"]));
    let rows = v["shards"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    vec![
                        text(&s["id"]),
                        text(&s["leader"]),
                        text(&s["voters"]),
                        text(&s["devices"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["shard", "leader", "voters", "devices"], rows);
    if let Some(nodes) = v["nodes"]
        .as_array()
        .filter(|n| n.len() > 1 || v["mode"] == "cluster")
    {
        println!();
        let rows = nodes
            .iter()
            .map(|n| {
                vec![
                    text(&n["id"]),
                    text(&n["grpc"]),
                    text(&n["api"]),
                    if n["reachable"] == json!(false) {
                        "no".into()
                    } else {
                        "yes".into()
                    },
                    text(&n["leads"]),
                ]
            })
            .collect();
        table(&["node", "grpc", "api", "reachable", "leads"], rows);
    }
    Ok(())
}
