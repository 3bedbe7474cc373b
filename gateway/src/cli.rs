//! The `trove` client commands that talk to a node's native API (`--endpoint` / `TROVE_ENDPOINT`, token from
//! `TROVE_ADMIN_TOKEN`): `trove bucket ls|attach|detach|props`, `trove prefetch`, `trove evict`,
//! `trove job ls|show|wait|stop`, `trove ls`, `trove get` (an object, or a file inside a shard), `trove archive`
//! (a shard of many objects), `trove bucket cp`, `trove download` (links into a bucket), `trove cluster show|maintenance|activate|decommission|remove`.
//! Errors are one line and a non-zero exit code.

mod download;

pub use download::{download, DownloadArgs};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use trove_ais::{action, header, path, query, what, ActionMsg};
use trove_namespace::{Bck, Provider};

#[derive(Args)]
pub struct Conn {
    /// The node's address.
    #[arg(long, env = "TROVE_ENDPOINT", default_value = "http://127.0.0.1:8080", global = true)]
    pub endpoint: String,
    /// Native-API bearer token.
    #[arg(long, env = "TROVE_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum BucketCmd {
    /// List the buckets of the namespace: S3 name and what it stands for.
    Ls,
    /// Attach a cloud bucket (s3://, gs://, az://) or a remote AIS cluster's bucket (ais://@alias/b) under an S3 name.
    Attach {
        /// The cloud bucket, e.g. s3://origin.
        uri: String,
        /// The S3 name clients use [default: the cloud bucket's name].
        #[arg(long = "as", value_name = "NAME")]
        name: Option<String>,
        /// Bucket properties with AIS names, as JSON (`{"versioning":{"validate_warm_get":true}}`).
        #[arg(long, value_name = "JSON")]
        props: Option<String>,
    },
    /// Detach a cloud bucket: it leaves the namespace and its cached copies are dropped; cloud data stays.
    Detach { name: String },
    /// Show a bucket's properties, or set some (`key=value` with AIS names, e.g. versioning.validate_warm_get=true).
    Props { name: String, set: Vec<String> },
    /// Copy a bucket's objects into another bucket (AIS's copy-bck job); prints the job id.
    Cp {
        /// The source, e.g. s3://origin or ais://data.
        src: String,
        /// The destination, e.g. ais://copy (created when it is a missing AIS-local bucket).
        dst: String,
        /// Only objects whose names start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Prepended to each copy's name.
        #[arg(long, default_value = "")]
        prepend: String,
        /// Copy every object of a cloud source (from its listing), not only those the cluster holds.
        #[arg(long)]
        all: bool,
        /// Count what would be copied, copy nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the job until it ends (progress bar on a terminal).
        #[arg(long)]
        wait: bool,
    },
}

struct Api {
    endpoint: String,
    token: Option<String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Api {
    fn new(c: &Conn) -> Api {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Api { endpoint: c.endpoint.trim_end_matches('/').to_owned(), token: c.token.clone(), client }
    }

    /// Sends one call; returns the response headers and body, or the node's error message.
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(http::HeaderMap, Bytes)> {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Api::call`] with extra request headers.
    async fn call_with(
        &self,
        method: http::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(http::HeaderMap, Bytes)> {
        let mut req = http::Request::builder().method(method).uri(format!("{}{path}", self.endpoint));
        if let Some(t) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = req.header(http::header::CONTENT_TYPE, "application/json");
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let resp = self
            .client
            .request(req.body(Full::new(body))?)
            .await
            .with_context(|| format!("cannot reach {}", self.endpoint))?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        if !parts.status.is_success() {
            bail!("{}", error_message(parts.status, &bytes));
        }
        Ok((parts.headers, bytes))
    }
}

/// The node's error message (AIS's JSON `message`, else the body).
fn error_message(status: http::StatusCode, bytes: &[u8]) -> String {
    let msg = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    if status == http::StatusCode::UNAUTHORIZED {
        format!("{msg} (set TROVE_ADMIN_TOKEN or --token)")
    } else {
        msg
    }
}

fn uri_of(v: &serde_json::Value) -> String {
    let b = v.get("backend_bck").unwrap_or(v);
    let provider =
        b.get("provider").and_then(|p| p.as_str()).and_then(|p| p.parse::<Provider>().ok()).unwrap_or(Provider::Ais);
    let name = b.get("name").and_then(|n| n.as_str()).unwrap_or_default();
    format!("{}://{name}", provider.scheme())
}

pub async fn bucket(conn: &Conn, cmd: BucketCmd) -> anyhow::Result<()> {
    let api = Api::new(conn);
    match cmd {
        BucketCmd::Ls => {
            let (_, body) = api
                .call(http::Method::GET, &format!("{}/", path::BUCKETS), Some(msg(action::LIST, json!(null))))
                .await?;
            let list: Vec<serde_json::Value> = serde_json::from_slice(&body).context("unexpected answer")?;
            for b in list {
                println!("{}\t{}", b.get("name").and_then(|n| n.as_str()).unwrap_or_default(), uri_of(&b));
            }
        }
        BucketCmd::Attach { uri, name, props } => {
            let bck: Bck = uri.parse()?;
            if !bck.is_remote() {
                bail!("{uri} is not a cloud or remote AIS bucket: use s3://, gs://, az:// or ais://@cluster/");
            }
            let mut value = match props {
                Some(p) => serde_json::from_str(&p).context("--props is not valid JSON")?,
                None => json!({}),
            };
            // A remote AIS bucket always goes by `backend_bck` (its own name would be an AIS-local bucket's).
            let name = name.filter(|n| *n != bck.name || bck.ns.is_remote());
            let name = if bck.ns.is_remote() { Some(name.unwrap_or_else(|| bck.name.clone())) } else { name };
            let path = match name {
                None => bucket_path(&bck),
                Some(n) => {
                    value["backend_bck"] = json!({
                        "name": bck.name, "provider": bck.provider.as_str(),
                        "namespace": {"uuid": bck.ns.uuid, "name": bck.ns.name},
                    });
                    format!("{}/{n}?{}=ais", path::BUCKETS, query::PROVIDER)
                }
            };
            api.call(http::Method::POST, &path, Some(msg(action::CREATE_BCK, value))).await?;
            println!("attached {uri}");
        }
        BucketCmd::Detach { name } => {
            api.call(
                http::Method::DELETE,
                &format!("{}/{name}", path::BUCKETS),
                Some(msg(action::DESTROY_BCK, json!(null))),
            )
            .await?;
            println!("detached {name}");
        }
        BucketCmd::Cp { src, dst, prefix, prepend, all, dry_run, wait } => {
            let (from, to) = (bucket_of(&src)?, bucket_of(&dst)?);
            let to_uname = format!("{}/%40%23/{}/", to.provider.as_str(), to.name);
            let mut path = format!("{}&bck_to={to_uname}", bucket_path(&from));
            if all {
                path.push_str("&presence=0");
            }
            let value = json!({"prefix": prefix, "prepend": prepend, "dry_run": dry_run});
            let (_, body) = api.call(http::Method::POST, &path, Some(msg(action::COPY_BCK, value))).await?;
            let id = String::from_utf8_lossy(&body).trim().to_owned();
            println!("{id}");
            if wait {
                wait_job(&api, &id).await?;
            }
        }
        BucketCmd::Props { name, set } => {
            if !set.is_empty() {
                let mut value = json!({});
                for kv in &set {
                    let (k, v) = kv.split_once('=').with_context(|| format!("{kv}: expected key=value"))?;
                    let parsed: serde_json::Value = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
                    let mut slot = &mut value;
                    for part in k.split('.') {
                        slot = &mut slot[part];
                    }
                    *slot = parsed;
                }
                api.call(
                    http::Method::PATCH,
                    &format!("{}/{name}", path::BUCKETS),
                    Some(msg(action::SET_BPROPS, value)),
                )
                .await?;
            }
            let (headers, _) = api.call(http::Method::HEAD, &format!("{}/{name}", path::BUCKETS), None).await?;
            let props = headers.get(header::BUCKET_PROPS).and_then(|h| h.to_str().ok()).unwrap_or("{}");
            let v: serde_json::Value = serde_json::from_str(props).unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}

/// `bucket` and `key` of `ais://bucket/key` (any provider's scheme).
fn object_of(uri: &str) -> anyhow::Result<(Bck, String)> {
    let (scheme, rest) = uri.split_once("://").with_context(|| format!("{uri}: expected PROVIDER://BUCKET/KEY"))?;
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(_, k)| !k.is_empty())
        .with_context(|| format!("{uri}: expected PROVIDER://BUCKET/KEY"))?;
    Ok((bucket_of(&format!("{scheme}://{bucket}"))?, key.to_owned()))
}

/// `trove get`: an object, or with `archpath` one file inside it, streamed to `out` (or stdout).
pub async fn get(
    conn: &Conn,
    uri: &str,
    archpath: Option<String>,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let api = Api::new(conn);
    let (bck, key) = object_of(uri)?;
    let enc = |s: &str| crate::request::encode(s, crate::request::SEGMENT);
    let key_path: Vec<String> = key.split('/').map(enc).collect();
    let objects = path::OBJECTS.trim_end_matches('/');
    let (provider, name) = (bck.provider.as_str(), enc(&bck.name));
    let mut target = format!("{}{objects}/{name}/{}?{}={provider}", api.endpoint, key_path.join("/"), query::PROVIDER);
    if let Some(a) = &archpath {
        target.push_str(&format!("&archpath={}", enc(a)));
    }
    let mut req = http::Request::get(target);
    if let Some(t) = &api.token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = api
        .client
        .request(req.body(Full::new(Bytes::new()))?)
        .await
        .with_context(|| format!("cannot reach {}", api.endpoint))?;
    let (parts, mut body) = resp.into_parts();
    if !parts.status.is_success() {
        let bytes = body.collect().await?.to_bytes();
        bail!("{}", error_message(parts.status, &bytes));
    }
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin> = match &out {
        Some(p) => {
            Box::new(tokio::fs::File::create(p).await.with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            sink.write_all(&data).await?;
        }
    }
    sink.flush().await?;
    Ok(())
}

/// `trove archive`: a shard (named by its extension: .tar .tgz .tar.gz .zip .tar.lz4) of a source bucket's
/// objects, written into a bucket; prints the job id.
pub async fn archive(
    conn: &Conn,
    src: &str,
    shard: &str,
    sel: &Selection,
    append: bool,
    wait: bool,
) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let from = bucket_of(src)?;
    let (to, archname) = object_of(shard)?;
    let mut value = sel.value()?;
    value["archname"] = json!(archname);
    value["tobck"] = json!({"name": to.name, "provider": to.provider.as_str()});
    value["aate"] = json!(append);
    let (_, body) = api.call(http::Method::PUT, &bucket_path(&from), Some(msg(action::ARCHIVE, value))).await?;
    let id = String::from_utf8_lossy(&body).trim().to_owned();
    println!("{id}");
    if wait {
        wait_job(&api, &id).await?;
    }
    Ok(())
}

/// Which objects a prefetch or evict names.
#[derive(Args)]
pub struct Selection {
    /// Object names (comma-separated, or repeat the flag).
    #[arg(long, value_delimiter = ',')]
    pub list: Vec<String>,
    /// An AIS template: `shard-{000..999}.tar` (ranges with optional step, several ranges); no braces = prefix.
    #[arg(long)]
    pub template: Option<String>,
    /// Every object whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
}

impl Selection {
    fn value(&self) -> anyhow::Result<serde_json::Value> {
        let given = usize::from(!self.list.is_empty())
            + usize::from(self.template.is_some())
            + usize::from(self.prefix.is_some());
        if given > 1 {
            bail!("give one of --list, --template, --prefix (none: the whole bucket)");
        }
        Ok(if !self.list.is_empty() {
            json!({"objnames": self.list})
        } else {
            json!({"template": self.template.clone().or_else(|| self.prefix.clone()).unwrap_or_default()})
        })
    }
}

#[derive(Subcommand)]
pub enum JobCmd {
    /// Jobs of the node, newest first.
    Ls {
        #[arg(long)]
        kind: Option<String>,
    },
    /// One job's counters.
    Show { id: String },
    /// Wait for a job to end, showing progress.
    Wait { id: String },
    /// Stop a job.
    Stop { id: String },
}

/// A control message as the node expects it.
fn msg(action: &str, value: serde_json::Value) -> serde_json::Value {
    serde_json::to_value(ActionMsg::new(action, value)).unwrap_or_default()
}

fn xstats_path() -> String {
    format!("{}?{}={}", path::CLUSTER, query::WHAT, what::QUERY_XSTATS)
}

fn bucket_of(uri: &str) -> anyhow::Result<Bck> {
    let bck: Bck = uri.parse()?;
    Ok(bck)
}

/// A bucket's native path with its provider, and its namespace when it has one (`ais://@remais/b` is
/// `namespace=@remais#`, percent-encoded).
fn bucket_path(bck: &Bck) -> String {
    let mut p = format!("{}/{}?{}={}", path::BUCKETS, bck.name, query::PROVIDER, bck.provider.as_str());
    if !bck.ns.is_global() {
        let uname = format!("@{}#{}", bck.ns.uuid, bck.ns.name);
        p.push_str(&format!("&{}={}", query::NAMESPACE, uname.replace('@', "%40").replace('#', "%23")));
    }
    p
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The job's snapshot (`qryxstats`), added up over the nodes that run a part of it.
async fn snapshot(api: &Api, id: &str) -> anyhow::Result<serde_json::Value> {
    let (_, body) = api.call(http::Method::GET, &xstats_path(), Some(json!({"ID": id}))).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let parts: Vec<serde_json::Value> = v
        .as_object()
        .map(|m| m.values().flat_map(|l| l.as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default();
    let mut total = parts.first().cloned().with_context(|| format!("no job {id}"))?;
    let sum = |path: &[&str]| parts.iter().map(|p| counter(p, path)).sum::<u64>().to_string();
    total["stats"]["loc-objs"] = json!(sum(&["stats", "loc-objs"]));
    total["stats"]["loc-bytes"] = json!(sum(&["stats", "loc-bytes"]));
    total["trove"]["skipped"] = json!(sum(&["trove", "skipped"]));
    total["trove"]["failed"] = json!(sum(&["trove", "failed"]));
    let running = parts.iter().any(|p| p["end-time"].as_str().unwrap_or("").is_empty());
    if running {
        total["end-time"] = json!("");
    }
    total["aborted"] = json!(parts.iter().any(|p| p["aborted"].as_bool().unwrap_or(false)));
    let err = parts.iter().filter_map(|p| p["err"].as_str()).find(|e| !e.is_empty()).unwrap_or_default();
    total["err"] = json!(err);
    Ok(total)
}

fn counter(snap: &serde_json::Value, path: &[&str]) -> u64 {
    let mut v = snap;
    for p in path {
        v = &v[*p];
    }
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64()).unwrap_or(0)
}

fn progress_line(snap: &serde_json::Value) -> String {
    format!(
        "{} {}: {} objects, {}, {} skipped, {} failed",
        snap["kind"].as_str().unwrap_or("job"),
        snap["id"].as_str().unwrap_or(""),
        counter(snap, &["stats", "loc-objs"]),
        human_bytes(counter(snap, &["stats", "loc-bytes"])),
        counter(snap, &["trove", "skipped"]),
        counter(snap, &["trove", "failed"]),
    )
}

/// Polls a job until it ends: one rewritten line on a terminal, a line every few seconds otherwise. Fails
/// (non-zero exit) when the job failed or was stopped.
async fn wait_job(api: &Api, id: &str) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last_print = std::time::Instant::now() - std::time::Duration::from_secs(60);
    loop {
        let snap = snapshot(api, id).await?;
        let done = !snap["end-time"].as_str().unwrap_or("").is_empty();
        let line = progress_line(&snap);
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if done || last_print.elapsed() >= std::time::Duration::from_secs(5) {
            eprintln!("{line}");
            last_print = std::time::Instant::now();
        }
        if done {
            if tty {
                eprintln!();
            }
            let err = snap["err"].as_str().unwrap_or("");
            if !err.is_empty() {
                bail!("job {id} failed: {err}");
            }
            if snap["aborted"].as_bool().unwrap_or(false) {
                bail!("job {id} was stopped");
            }
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Starts a prefetch or evict job; prints its id; with `wait`, follows it to the end.
pub async fn start_job(
    conn: &Conn,
    evict: bool,
    uri: &str,
    sel: &Selection,
    opts: serde_json::Value,
    wait: bool,
) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let bck = bucket_of(uri)?;
    let mut value = sel.value()?;
    if let (Some(v), Some(o)) = (value.as_object_mut(), opts.as_object()) {
        v.extend(o.clone());
    }
    let (method, action) =
        if evict { (http::Method::DELETE, action::EVICT) } else { (http::Method::POST, action::PREFETCH) };
    let (_, body) = api.call(method, &bucket_path(&bck), Some(msg(action, value))).await?;
    let id = String::from_utf8_lossy(&body).trim().to_owned();
    println!("{id}");
    if wait {
        wait_job(&api, &id).await?;
    }
    Ok(())
}

/// Drops every cached copy of a bucket (`evict-remote-bck`), keeping it attached with `keep`.
pub async fn evict_bucket(conn: &Conn, uri: &str, keep: bool) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let bck = bucket_of(uri)?;
    let path = format!("{}&{}={keep}", bucket_path(&bck), query::KEEP_BCK_MD);
    api.call(http::Method::DELETE, &path, Some(msg(action::EVICT_REMOTE_BCK, json!(null)))).await?;
    println!("evicted {uri}{}", if keep { "" } else { " (detached)" });
    Ok(())
}

pub async fn job(conn: &Conn, cmd: JobCmd) -> anyhow::Result<()> {
    let api = Api::new(conn);
    match cmd {
        JobCmd::Ls { kind } => {
            let (_, body) =
                api.call(http::Method::GET, &xstats_path(), Some(json!({"kind": kind.unwrap_or_default()}))).await?;
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            for snap in v
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .flat_map(|l| l.as_array().cloned().unwrap_or_default())
            {
                let state = if snap["end-time"].as_str().unwrap_or("").is_empty() {
                    "running"
                } else if snap["aborted"].as_bool().unwrap_or(false) {
                    "stopped"
                } else if !snap["err"].as_str().unwrap_or("").is_empty() {
                    "failed"
                } else {
                    "done"
                };
                println!("{}\t{}", progress_line(&snap), state);
            }
        }
        JobCmd::Show { id } => println!("{}", serde_json::to_string_pretty(&snapshot(&api, &id).await?)?),
        JobCmd::Wait { id } => wait_job(&api, &id).await?,
        JobCmd::Stop { id } => {
            api.call(http::Method::PUT, path::CLUSTER, Some(msg(action::STOP, json!({"id": id})))).await?;
            println!("stopping {id}");
        }
    }
    Ok(())
}

/// `trove ls`: objects of a bucket, with whether each is cached (`--cached`: only those).
pub async fn ls(conn: &Conn, uri: &str, prefix: Option<String>, cached: bool) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let bck = bucket_of(uri)?;
    let mut token = String::new();
    loop {
        let value = json!({
            "prefix": prefix.clone().unwrap_or_default(), "continuation_token": token,
            "flags": if cached { "1" } else { "0" }, "pagesize": 1000,
        });
        let (_, body) = api.call(http::Method::GET, &bucket_path(&bck), Some(msg(action::LIST, value))).await?;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        for e in page["Entries"].as_array().into_iter().flatten() {
            let is_cached = e["f"].as_u64().unwrap_or(0) & 64 != 0;
            println!(
                "{}\t{}\t{}",
                e["n"].as_str().unwrap_or(""),
                e["s"].as_u64().unwrap_or(0),
                if is_cached { "cached" } else { "-" }
            );
        }
        token = page["ContinuationToken"].as_str().unwrap_or("").to_owned();
        if token.is_empty() {
            return Ok(());
        }
    }
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// The cluster's nodes: state, URL, capacity and use (from each node's metrics), and totals; with `remote`,
    /// the attached remote AIS clusters.
    Show {
        #[arg(value_parser = ["remote"])]
        what: Option<String>,
    },
    /// Attach a remote AIS cluster (AIStore or Trove): ALIAS=URL[,URL...]; its buckets are then `ais://@ALIAS/b`.
    RemoteAttach {
        spec: String,
        /// A bearer token, for a cluster that requires one.
        #[arg(long)]
        token: Option<String>,
    },
    /// Detach a remote AIS cluster, by alias or UUID.
    RemoteDetach { alias: String },
    /// Put a node in maintenance: it stays a member but owns no objects.
    Maintenance { node: String },
    /// Bring a node back from maintenance (or decommission) into placement.
    Activate { node: String },
    /// Take a node out of placement for good (then `remove` it).
    Decommission { node: String },
    /// Remove a node from the cluster (the Raft membership and the map) at once.
    Remove { node: String },
    /// Start a rebalance (and repair of mirrored copies) on every node now; prints the job id.
    Rebalance,
}

/// One node's capacity, use and objects, read from its public `/v1/metrics` (absent when it does not answer).
async fn node_usage(api: &Api, url: &str) -> Option<(u64, u64, u64)> {
    let other =
        Api { endpoint: url.trim_end_matches('/').to_owned(), token: api.token.clone(), client: api.client.clone() };
    let (_, body) = other.call(http::Method::GET, path::METRICS, None).await.ok()?;
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some((value("trove_capacity_bytes")?, value("trove_used_bytes")?, value("trove_objects")?))
}

pub async fn cluster(conn: &Conn, cmd: ClusterCmd) -> anyhow::Result<()> {
    let api = Api::new(conn);
    let node_action = |act: &str, node: &str| msg(act, json!({ "sid": node }));
    let (act, node) = match cmd {
        ClusterCmd::Show { what: None } => return show_cluster(&api).await,
        ClusterCmd::Show { what: Some(_) } => return show_remotes(&api).await,
        ClusterCmd::RemoteAttach { spec, token } => {
            let (alias, urls) = spec.split_once('=').context("expected ALIAS=URL[,URL...]")?;
            let path = format!("{}?{}={}", path::ATTACH, query::WHAT, what::REMOTE);
            let mut headers = vec![(header::REMOTE_AIS_ALIAS, alias), (header::REMOTE_AIS_URL, urls)];
            if let Some(t) = &token {
                headers.push((header::TROVE_REMOTE_TOKEN, t.as_str()));
            }
            api.call_with(http::Method::PUT, &path, None, &headers).await?;
            println!("attached {alias}");
            return Ok(());
        }
        ClusterCmd::RemoteDetach { alias } => {
            let path = format!("{}?{}={}", path::DETACH, query::WHAT, what::REMOTE);
            api.call_with(http::Method::PUT, &path, None, &[(header::REMOTE_AIS_ALIAS, alias.as_str())]).await?;
            println!("detached {alias}");
            return Ok(());
        }
        ClusterCmd::Rebalance => {
            let start = msg(action::START, json!({ "kind": crate::jobs::rebalance::REBALANCE }));
            let (_, id) = api.call(http::Method::PUT, path::CLUSTER, Some(start)).await?;
            println!("{}", String::from_utf8_lossy(&id));
            return Ok(());
        }
        ClusterCmd::Maintenance { node } => (action::START_MAINTENANCE, node),
        ClusterCmd::Activate { node } => (action::STOP_MAINTENANCE, node),
        ClusterCmd::Decommission { node } => (action::DECOMMISSION_NODE, node),
        ClusterCmd::Remove { node } => (action::RM_NODE_UNSAFE, node),
    };
    api.call(http::Method::PUT, path::CLUSTER, Some(node_action(act, &node))).await?;
    println!("{act}: {node}");
    Ok(())
}

async fn show_remotes(api: &Api) -> anyhow::Result<()> {
    let (_, body) =
        api.call(http::Method::GET, &format!("{}?{}={}", path::CLUSTER, query::WHAT, what::REMOTE), None).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).context("the remote clusters are not JSON")?;
    println!("{:<16} {:<14} {:<32} {:>6}", "ALIAS", "UUID", "URL", "NODES");
    for r in v["a"].as_array().into_iter().flatten() {
        let nodes = r["smap"]["tmap"].as_object().map_or(0, |m| m.len());
        println!(
            "{:<16} {:<14} {:<32} {:>6}",
            r["alias"].as_str().unwrap_or_default(),
            r["uuid"].as_str().unwrap_or_default(),
            r["url"].as_str().unwrap_or_default(),
            nodes
        );
    }
    Ok(())
}

async fn show_cluster(api: &Api) -> anyhow::Result<()> {
    let (_, body) =
        api.call(http::Method::GET, &format!("{}?{}={}", path::CLUSTER, query::WHAT, what::SMAP), None).await?;
    let smap: serde_json::Value = serde_json::from_slice(&body).context("the cluster map is not JSON")?;
    let primary = smap["proxy_si"]["daemon_id"].as_str().unwrap_or_default().to_owned();
    println!(
        "cluster {}  map version {}  leader {}",
        smap["uuid"].as_str().unwrap_or_default(),
        smap["version"].as_str().unwrap_or_default(),
        primary
    );
    println!("{:<12} {:<12} {:<28} {:>10} {:>10} {:>10}", "NODE", "STATE", "URL", "CAPACITY", "USED", "OBJECTS");
    let (mut cap_total, mut used_total, mut objs_total) = (0u64, 0u64, 0u64);
    let nodes = smap["tmap"].as_object().cloned().unwrap_or_default();
    for (id, n) in &nodes {
        let url = n["public_net"]["direct_url"].as_str().unwrap_or_default();
        let state = n["trove"]["state"].as_str().unwrap_or("active");
        let usage = node_usage(api, url).await;
        let (cap, used, objs) = match usage {
            Some((c, u, o)) => {
                cap_total += c;
                used_total += u;
                objs_total += o;
                (human_bytes(c), human_bytes(u), o.to_string())
            }
            None => ("-".into(), "-".into(), "unreachable".into()),
        };
        println!("{id:<12} {state:<12} {url:<28} {cap:>10} {used:>10} {objs:>10}");
    }
    println!(
        "{:<12} {:<12} {:<28} {:>10} {:>10} {:>10}",
        "TOTAL",
        format!("{} nodes", nodes.len()),
        "",
        human_bytes(cap_total),
        human_bytes(used_total),
        objs_total
    );
    Ok(())
}
