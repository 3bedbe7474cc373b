//! `trove bench`: a small S3 load generator that signs its requests (SigV4, header auth, unsigned payload).
//!
//! It PUTs `--objects` objects of `--size` bytes over `--concurrency` keep-alive connections, then GETs them
//! round-robin for `--duration` seconds (or each once with `--get-once`), and prints objects/s, MB/s, p50 and
//! p99 for each phase. With
//! `--anonymous --get-only` it reads plain URLs, so a static file server (nginx) holding the same files can be
//! measured by the same tool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::s3::sigv4;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// S3 endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    #[arg(long, env = "TROVE_ACCESS_KEY", default_value = "")]
    access_key: String,
    #[arg(long, env = "TROVE_SECRET_KEY", default_value = "", hide_env_values = true)]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value = "trove-bench")]
    bucket: String,
    /// Number of distinct objects.
    #[arg(long, default_value_t = 1000)]
    objects: usize,
    /// Object size, e.g. 4KiB, 1MiB, 100.
    #[arg(long, default_value = "4KiB")]
    size: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of GETs after the PUT phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Skip creating the bucket and PUTting the objects.
    #[arg(long)]
    get_only: bool,
    /// GET every object exactly once instead of for `--duration` seconds (cold reads through a cache).
    #[arg(long)]
    get_once: bool,
    /// Send unsigned requests (for static file servers, or Trove objects PUT with `--acl public-read`).
    #[arg(long)]
    anonymous: bool,
    /// Canned ACL for the bucket and objects created in the PUT phase (e.g. `public-read`), so that a later
    /// `--anonymous` run measures the server without SigV4 on either side.
    #[arg(long)]
    acl: Option<String>,
    /// GET a range of this many bytes of each object (at an offset that moves from request to request)
    /// instead of the whole object; a 206 counts as success.
    #[arg(long)]
    range: Option<String>,
    /// Sign GETs as presigned URLs (query-string SigV4) instead of with an Authorization header.
    #[arg(long)]
    presigned: bool,
    /// Write a wrk Lua script that replays one signed GET per object (valid for 15 minutes) to this file and
    /// exit: `wrk -s FILE URL` then measures the same requests with an independent load tool.
    #[arg(long)]
    wrk_script: Option<std::path::PathBuf>,
    /// Instead of the GET phase, list the whole bucket (ListObjectsV2, 1,000 keys a page, one connection) and
    /// print the time of the first, median, slowest and last page and the total.
    #[arg(long)]
    list: bool,
}

pub(crate) fn parse_size(s: &str) -> anyhow::Result<usize> {
    let s = s.trim();
    let (num, mult) = match s.find(|c: char| !c.is_ascii_digit()) {
        None => (s, 1),
        Some(i) => {
            let unit = &s[i..];
            let m = match unit.to_ascii_lowercase().as_str() {
                "b" => 1,
                "k" | "kb" | "kib" => 1024,
                "m" | "mb" | "mib" => 1024 * 1024,
                "g" | "gb" | "gib" => 1024 * 1024 * 1024,
                _ => bail!("unknown size unit {unit:?}"),
            };
            (&s[..i], m)
        }
    };
    Ok(num.parse::<usize>().context("bad size")? * mult)
}

/// SigV4 signer with the signing key derived once per day.
struct Signer {
    access_key: String,
    region: String,
    host: String,
    key: std::sync::Mutex<(String, [u8; 32])>,
    secret: String,
}

impl Signer {
    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != date {
            *cached = (date.to_owned(), sigv4::signing_key(&self.secret, date, &self.region, "s3"));
        }
        cached.1
    }

    /// Headers to add, `(x-amz-date, authorization)`, for a request with the canonical query string `query`;
    /// `acl` is the `x-amz-acl` header when the request has one.
    fn sign_query(&self, method: &str, path: &str, query: &str, acl: Option<&str>) -> (String, String) {
        let amz_date = amz_now();
        let date = &amz_date[..8];
        let mut headers = vec![("host", self.host.as_str())];
        if let Some(a) = acl {
            headers.push(("x-amz-acl", a));
        }
        headers.push(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"));
        headers.push(("x-amz-date", &amz_date));
        let canonical = sigv4::Canonical { method, path, query, headers: &headers, payload_hash: "UNSIGNED-PAYLOAD" };
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let sig = canonical.signature(&self.signing_key(date), &amz_date, &scope);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={sig}",
            self.access_key,
            canonical.signed_headers()
        );
        (amz_date, auth)
    }
}

fn amz_now() -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_default()
}

impl Signer {
    /// The query string of a presigned `method` of `path`, valid for 15 minutes (only `host` signed).
    fn presign(&self, method: &str, path: &str) -> String {
        let amz_date = amz_now();
        let date = &amz_date[..8];
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        // Already in canonical order (sorted by name) and encoding.
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires=900\
             &X-Amz-SignedHeaders=host",
            sigv4::uri_encode(&format!("{}/{scope}", self.access_key))
        );
        let headers = [("host", self.host.as_str())];
        let canonical =
            sigv4::Canonical { method, path, query: &query, headers: &headers, payload_hash: "UNSIGNED-PAYLOAD" };
        let sig = canonical.signature(&self.signing_key(date), &amz_date, &scope);
        format!("{query}&X-Amz-Signature={sig}")
    }
}

struct Ctx {
    args: Args,
    host: String,
    addr: String,
    signer: Option<Signer>,
    payload: Bytes,
    /// `--range`: bytes per GET.
    range: Option<usize>,
}

impl Ctx {
    /// The Range header of the `n`th GET: `range` bytes at an offset that moves through the object.
    fn range_of(&self, n: usize) -> Option<String> {
        let len = self.range?;
        let room = self.payload.len().saturating_sub(len);
        let at = if room == 0 { 0 } else { n.wrapping_mul(7_919).wrapping_mul(4096) % room };
        Some(format!("bytes={at}-{}", at + len - 1))
    }
}

type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(ctx: &Ctx) -> anyhow::Result<Conn> {
    let stream =
        tokio::net::TcpStream::connect(&ctx.addr).await.with_context(|| format!("connecting to {}", ctx.addr))?;
    stream.set_nodelay(true)?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// The head of one request: `(request target, headers)`, signed as the arguments ask. `query` is canonical
/// (sorted, encoded) or empty.
fn head_of(
    ctx: &Ctx,
    method: &str,
    path: &str,
    query: &str,
    range: Option<&str>,
) -> (String, Vec<(&'static str, String)>) {
    let mut headers = vec![("host", ctx.host.clone())];
    let acl = ctx.args.acl.as_deref().filter(|_| method == "PUT");
    if let Some(acl) = acl {
        headers.push(("x-amz-acl", acl.to_owned()));
    }
    if let Some(r) = range {
        headers.push(("range", r.to_owned()));
    }
    let mut target = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
    match &ctx.signer {
        Some(s) if ctx.args.presigned && method == "GET" && query.is_empty() => {
            target = format!("{path}?{}", s.presign(method, path));
        }
        Some(s) => {
            let (date, auth) = s.sign_query(method, path, query, acl);
            headers.push(("x-amz-date", date));
            headers.push(("x-amz-content-sha256", "UNSIGNED-PAYLOAD".to_owned()));
            headers.push(("authorization", auth));
        }
        None => {}
    }
    (target, headers)
}

/// Sends one request and drains the body; returns the status and the number of body bytes.
async fn request(
    ctx: &Ctx,
    conn: &mut Conn,
    method: &str,
    path: &str,
    body: Bytes,
    range: Option<&str>,
) -> anyhow::Result<(u16, usize)> {
    let (target, headers) = head_of(ctx, method, path, "", range);
    let mut b = http::Request::builder().method(method).uri(target);
    for (name, value) in headers {
        b = b.header(name, value);
    }
    let req = b.header("content-length", body.len()).body(Full::new(body))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(d) = frame?.into_data() {
            n += d.len();
        }
    }
    Ok((status, n))
}

fn key_path(bucket: &str, i: usize) -> String {
    format!("/{bucket}/bench/obj-{i:07}")
}

struct Phase {
    latencies: Vec<Duration>,
    bytes: usize,
    elapsed: Duration,
    errors: usize,
}

impl Phase {
    fn report(&mut self, name: &str) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| {
            self.latencies.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or_default()
        };
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{name:<4} objects={n} errors={} objects/s={:.0} MB/s={:.1} p50={:.3}ms p99={:.3}ms",
            self.errors,
            n as f64 / secs,
            self.bytes as f64 / secs / 1e6,
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3
        );
    }
}

async fn run_phase(ctx: Arc<Ctx>, put: bool) -> anyhow::Result<Phase> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(ctx.args.duration);
    let mut tasks = Vec::new();
    for _ in 0..ctx.args.concurrency.max(1) {
        let ctx = ctx.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(&ctx).await?;
            let mut lat = Vec::new();
            let (mut bytes, mut errors) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let once = put || ctx.args.get_once;
                if once && i >= ctx.args.objects || !once && Instant::now() >= deadline {
                    break;
                }
                let path = key_path(&ctx.args.bucket, i % ctx.args.objects);
                let t = Instant::now();
                let (method, body) = if put { ("PUT", ctx.payload.clone()) } else { ("GET", Bytes::new()) };
                let range = if put { None } else { ctx.range_of(i) };
                let mut outcome = request(&ctx, &mut conn, method, &path, body.clone(), range.as_deref()).await;
                if outcome.is_err() {
                    // Servers may close an idle keep-alive connection (moto's does): once, on a fresh one.
                    conn = connect(&ctx).await?;
                    outcome = request(&ctx, &mut conn, method, &path, body, range.as_deref()).await;
                }
                match outcome {
                    Ok((200 | 206, n)) => {
                        lat.push(t.elapsed());
                        bytes += if put { ctx.payload.len() } else { n };
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = connect(&ctx).await?;
                    }
                }
            }
            anyhow::Ok((lat, bytes, errors))
        }));
    }
    let mut phase = Phase { latencies: Vec::new(), bytes: 0, elapsed: Duration::ZERO, errors: 0 };
    for t in tasks {
        let (lat, bytes, errors) = t.await??;
        phase.latencies.extend(lat);
        phase.bytes += bytes;
        phase.errors += errors;
    }
    phase.elapsed = start.elapsed();
    Ok(phase)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let uri: http::Uri = args.endpoint.parse().context("bad --endpoint")?;
    if uri.scheme_str() != Some("http") {
        bail!("--endpoint must be an http:// URL");
    }
    let host = uri.authority().context("--endpoint needs a host")?.to_string();
    let addr = if uri.port().is_some() { host.clone() } else { format!("{host}:80") };
    let size = parse_size(&args.size)?;
    let signer = (!args.anonymous).then(|| Signer {
        access_key: args.access_key.clone(),
        secret: args.secret_key.clone(),
        region: args.region.clone(),
        host: host.clone(),
        key: std::sync::Mutex::new((String::new(), [0; 32])),
    });
    if signer.is_some() && (args.access_key.is_empty() || args.secret_key.is_empty()) {
        bail!("credentials required: --access-key/--secret-key or TROVE_ACCESS_KEY/TROVE_SECRET_KEY (or --anonymous)");
    }
    let payload = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let range = args.range.as_deref().map(parse_size).transpose()?.filter(|n| *n > 0);
    let ctx = Arc::new(Ctx { args: args.clone(), host, addr, signer, payload, range });
    if let Some(file) = &args.wrk_script {
        return write_wrk_script(&ctx, file);
    }
    println!(
        "bench: endpoint={} objects={} size={} concurrency={} duration={}s",
        args.endpoint, args.objects, size, args.concurrency, args.duration
    );
    if !args.get_only {
        let mut conn = connect(&ctx).await?;
        let (status, _) = request(&ctx, &mut conn, "PUT", &format!("/{}", args.bucket), Bytes::new(), None).await?;
        if !matches!(status, 200 | 409) {
            bail!("creating bucket {} failed with HTTP {status}", args.bucket);
        }
        run_phase(ctx.clone(), true).await?.report("PUT");
    }
    if args.list {
        return list_all(&ctx).await;
    }
    run_phase(ctx, false).await?.report("GET");
    Ok(())
}

/// Lists the whole bucket page by page, timing each page.
async fn list_all(ctx: &Ctx) -> anyhow::Result<()> {
    let mut conn = connect(ctx).await?;
    let path = format!("/{}", ctx.args.bucket);
    let (mut token, mut times, mut keys) = (None::<String>, Vec::new(), 0usize);
    let start = Instant::now();
    loop {
        let mut query = match &token {
            Some(t) => format!("continuation-token={}&", sigv4::uri_encode(t)),
            None => String::new(),
        };
        query.push_str("list-type=2&max-keys=1000");
        let (target, headers) = head_of(ctx, "GET", &path, &query, None);
        let mut b = http::Request::builder().method("GET").uri(target);
        for (name, value) in headers {
            b = b.header(name, value);
        }
        let t = Instant::now();
        conn.ready().await?;
        let resp = conn.send_request(b.body(Full::new(Bytes::new()))?).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        times.push(t.elapsed());
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            bail!("listing failed with HTTP {status}: {text}");
        }
        keys += text.matches("<Key>").count();
        token = text
            .split_once("<NextContinuationToken>")
            .and_then(|(_, rest)| rest.split_once("</NextContinuationToken>"))
            .map(|(t, _)| t.to_owned());
        if token.is_none() {
            break;
        }
    }
    let total = start.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (first, last) = (times[0], times[times.len() - 1]);
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "LIST keys={keys} pages={} seconds={:.2} first-page={:.1}ms median-page={:.1}ms slowest-page={:.1}ms \
         last-page={:.1}ms",
        times.len(),
        total.as_secs_f64(),
        ms(first),
        ms(sorted[sorted.len() / 2]),
        ms(sorted[sorted.len() - 1]),
        ms(last)
    );
    Ok(())
}

/// A wrk script cycling through one GET per object, each signed now (so valid for 15 minutes).
fn write_wrk_script(ctx: &Ctx, file: &std::path::Path) -> anyhow::Result<()> {
    let mut lua = String::from("local reqs = {\n");
    for i in 0..ctx.args.objects {
        let path = key_path(&ctx.args.bucket, i);
        let (target, headers) = head_of(ctx, "GET", &path, "", ctx.range_of(i).as_deref());
        let mut raw = format!("GET {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        lua.push_str(&format!("  {raw:?},\n"));
    }
    lua.push_str(
        "}\nlocal i = 0\nfunction init(args) i = math.random(#reqs) end\n\
         function request() i = i % #reqs + 1; return reqs[i] end\n",
    );
    std::fs::write(file, lua).with_context(|| format!("writing {}", file.display()))?;
    println!("wrote {} signed GETs to {}", ctx.args.objects, file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("3XB").is_err());
    }
}
