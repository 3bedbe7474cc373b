//! Counters of the node and their Prometheus text rendering at `/v1/metrics`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use trove_backends::retry::Op;
use trove_namespace::Provider;

use crate::state::AppState;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum_secs: f64,
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

/// Shards of the request series: each worker thread records into its own (uncontended) lock.
const SHARDS: usize = 16;

/// Requests by operation and status, their latency (to the response head) and bytes in and out.
#[derive(Debug, Default)]
pub struct Requests {
    by_op: [Mutex<HashMap<(&'static str, u16), Series>>; SHARDS],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

fn shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SHARD: usize = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl Requests {
    pub fn record(&self, op: &'static str, status: u16, took: Duration, bytes_in: u64, bytes_out: u64) {
        let secs = took.as_secs_f64();
        let slot = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        {
            let mut map = self.by_op[shard()].lock().unwrap_or_else(|e| e.into_inner());
            let s = map.entry((op, status)).or_default();
            s.count += 1;
            s.sum_secs += secs;
            s.buckets[slot] += 1;
        }
        self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
    }

    /// All shards merged.
    fn series(&self) -> HashMap<(&'static str, u16), Series> {
        let mut all: HashMap<(&'static str, u16), Series> = HashMap::new();
        for shard in &self.by_op {
            for (k, s) in shard.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                let t = all.entry(*k).or_default();
                t.count += s.count;
                t.sum_secs += s.sum_secs;
                for (a, b) in t.buckets.iter_mut().zip(s.buckets.iter()) {
                    *a += b;
                }
            }
        }
        all
    }
}

/// The S3 (or native) operation of a request, from its method, path, query and headers — without parsing
/// it twice: what s3s decides later is finer, but these names are what dashboards group by.
pub fn operation(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    virtual_host: bool,
) -> &'static str {
    let path = uri.path();
    if path.starts_with(trove_ais::path::V1) && !virtual_host {
        return native_operation(method, path);
    }
    let query = uri.query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    let segments =
        path.trim_start_matches('/').splitn(2, '/').filter(|s| !s.is_empty()).count() + usize::from(virtual_host);
    let (bucket, object) = (segments >= 1, segments >= 2);
    use http::Method as M;
    match (method, bucket, object) {
        (&M::GET, false, _) => "ListBuckets",
        (&M::GET, true, true) if has("uploadId") => "ListParts",
        (&M::GET, true, true) if query.is_empty() || has("partNumber") || has("response-content-type") => "GetObject",
        (&M::GET, true, true) => "GetObjectOther",
        (&M::GET, true, false)
            if query.is_empty() || has("list-type") || has("prefix") || has("delimiter") || has("marker") =>
        {
            "ListObjects"
        }
        (&M::GET, true, false) if has("uploads") => "ListMultipartUploads",
        (&M::GET, true, false) => "GetBucketOther",
        (&M::HEAD, true, true) => "HeadObject",
        (&M::HEAD, true, false) => "HeadBucket",
        (&M::PUT, true, true) if has("partNumber") && headers.contains_key("x-amz-copy-source") => "UploadPartCopy",
        (&M::PUT, true, true) if has("partNumber") => "UploadPart",
        (&M::PUT, true, true) if headers.contains_key("x-amz-copy-source") => "CopyObject",
        (&M::PUT, true, true) if query.is_empty() => "PutObject",
        (&M::PUT, true, true) => "PutObjectOther",
        (&M::PUT, true, false) if query.is_empty() => "CreateBucket",
        (&M::PUT, true, false) => "PutBucketOther",
        (&M::POST, true, true) if has("uploads") => "CreateMultipartUpload",
        (&M::POST, true, true) if has("uploadId") => "CompleteMultipartUpload",
        (&M::POST, true, false) if has("delete") => "DeleteObjects",
        (&M::DELETE, true, true) if has("uploadId") => "AbortMultipartUpload",
        (&M::DELETE, true, true) => "DeleteObject",
        (&M::DELETE, true, false) if query.is_empty() => "DeleteBucket",
        _ => "Other",
    }
}

/// Native calls by family: object reads apart from the cluster's own chatter (health checks, intra-cluster
/// copies), so that the requests another cluster sends to this one can be counted on this side.
fn native_operation(method: &http::Method, path: &str) -> &'static str {
    use http::Method as M;
    use trove_ais::path as p;
    if path.starts_with(p::OBJECTS) {
        return match *method {
            M::GET => "NativeGetObject",
            M::HEAD => "NativeHeadObject",
            M::PUT => "NativePutObject",
            M::DELETE => "NativeDeleteObject",
            _ => "NativeObjectOther",
        };
    }
    let family = |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if family(p::BUCKETS) {
        "NativeBuckets"
    } else if family(p::HEALTH) {
        "NativeHealth"
    } else if path.starts_with(crate::data::peers::PREFIX) {
        "NativeIntra"
    } else if family(p::CLUSTER) || family(p::DAEMON) {
        "NativeCluster"
    } else {
        "Native"
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: Requests,
    /// Reads of remote-bucket objects served from the cache.
    pub hits: AtomicU64,
    /// Reads of remote-bucket objects that had to go to the backend.
    pub misses: AtomicU64,
    /// Cold reads served from a copy another node had cached, instead of the backend.
    pub neighbor_fills: AtomicU64,
    /// Copies of mirrored writes published on other nodes.
    pub mirror_copies: AtomicU64,
    /// Reads answered below hyper (`direct.rs`), and the body bytes of those sent with `sendfile`.
    pub direct_reads: AtomicU64,
    pub sendfile_bytes: AtomicU64,
    /// Reads of other nodes' objects relayed below hyper (`cluster::relay`), and the body bytes of those moved
    /// socket to socket with `splice`.
    pub relayed_reads: AtomicU64,
    pub spliced_bytes: AtomicU64,
    /// Objects and bytes this node sent to other nodes in rebalance and repair walks.
    pub rebalance_sent_objects: AtomicU64,
    pub rebalance_sent_bytes: AtomicU64,
    /// Objects and bytes other nodes' walks installed here.
    pub rebalance_received_objects: AtomicU64,
    pub rebalance_received_bytes: AtomicU64,
    /// Copies this node dropped because they were misplaced, stale or deleted elsewhere.
    pub rebalance_dropped: AtomicU64,
    /// Objects a walk could not place (retried by the next walk).
    pub rebalance_failures: AtomicU64,
}

/// `trove_request_duration_seconds`, one histogram per operation (all statuses together).
fn histograms(series: &HashMap<(&'static str, u16), Series>) -> String {
    let mut per_op: HashMap<&'static str, Series> = HashMap::new();
    for ((op, _), s) in series {
        let t = per_op.entry(op).or_default();
        t.count += s.count;
        t.sum_secs += s.sum_secs;
        for (a, b) in t.buckets.iter_mut().zip(s.buckets.iter()) {
            *a += b;
        }
    }
    let mut ops: Vec<_> = per_op.keys().copied().collect();
    ops.sort();
    let name = "trove_request_duration_seconds";
    let mut out = format!("# HELP {name} Time to the response head, by operation.\n# TYPE {name} histogram\n");
    for op in ops {
        let s = &per_op[op];
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += s.buckets[i];
            let _ = writeln!(out, "{name}_bucket{{op=\"{op}\",le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{op=\"{op}\",le=\"+Inf\"}} {}", s.count);
        let _ = writeln!(out, "{name}_sum{{op=\"{op}\"}} {}", s.sum_secs);
        let _ = writeln!(out, "{name}_count{{op=\"{op}\"}} {}", s.count);
    }
    out
}

/// The Prometheus text exposition of every counter.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    let mut metric = |kind: &str, name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let one = |v: u64| [(String::new(), v)];
    let usage = state.store.index().usage();
    let (limit, used) = state.capacity.measure(state);
    metric("gauge", "trove_capacity_bytes", "Bytes the node may hold (configured, or its filesystems).", &one(limit));
    metric("gauge", "trove_used_bytes", "Bytes in use against the capacity.", &one(used));
    metric("gauge", "trove_objects", "Objects on the node (AIS-local and cached copies).", &one(usage.objects));
    metric(
        "gauge",
        "trove_cached_bytes",
        "Bytes of cached copies of remote objects (evictable).",
        &one(usage.evictable),
    );
    metric("gauge", "trove_local_bytes", "Bytes of AIS-local objects.", &one(usage.total - usage.evictable));
    let mps: Vec<_> = state
        .store
        .mountpaths()
        .iter()
        .filter_map(|m| crate::capacity::filesystem(&m.root).map(|fs| (m.root.display().to_string(), fs)))
        .collect();
    let label = |p: &str| format!("{{mountpath=\"{}\"}}", p.replace('\\', "\\\\").replace('"', "\\\""));
    metric(
        "gauge",
        "trove_mountpath_capacity_bytes",
        "Size of each mountpath's filesystem.",
        &mps.iter().map(|(p, (t, _))| (label(p), *t)).collect::<Vec<_>>(),
    );
    metric(
        "gauge",
        "trove_mountpath_used_bytes",
        "Used bytes of each mountpath's filesystem.",
        &mps.iter().map(|(p, (_, u))| (label(p), *u)).collect::<Vec<_>>(),
    );
    metric("counter", "trove_evicted_objects_total", "Cached copies evicted by the LRU.", &one(usage.evicted_objects));
    metric("counter", "trove_evicted_bytes_total", "Bytes evicted by the LRU.", &one(usage.evicted_bytes));
    let jobs = state.jobs.list(None);
    let mut job_samples = Vec::new();
    for kind in [crate::jobs::PREFETCH, crate::jobs::EVICT, crate::jobs::rebalance::REBALANCE] {
        let of_kind: Vec<_> = jobs.iter().filter(|j| j.kind == kind).collect();
        let running = of_kind.iter().filter(|j| !j.finished()).count() as u64;
        job_samples.push((format!("{{kind=\"{kind}\",state=\"running\"}}"), running));
        job_samples.push((format!("{{kind=\"{kind}\",state=\"finished\"}}"), of_kind.len() as u64 - running));
    }
    metric("gauge", "trove_jobs", "Jobs known to the node, by kind and state.", &job_samples);
    let objs: u64 = jobs.iter().map(|j| j.objs.load(Ordering::Relaxed)).sum();
    let bytes: u64 = jobs.iter().map(|j| j.bytes.load(Ordering::Relaxed)).sum();
    metric("gauge", "trove_job_objects", "Objects done by the jobs the node still knows.", &one(objs));
    metric("gauge", "trove_job_bytes", "Bytes done by the jobs the node still knows.", &one(bytes));
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| metric("counter", name, help, samples);
    let req = &state.metrics.requests;
    counter(
        "trove_direct_reads_total",
        "Plain object reads answered below hyper (server.direct_reads).",
        &[(String::new(), state.metrics.direct_reads.load(Ordering::Relaxed))],
    );
    counter(
        "trove_sendfile_bytes_total",
        "Response body bytes sent from the page cache with sendfile.",
        &[(String::new(), state.metrics.sendfile_bytes.load(Ordering::Relaxed))],
    );
    counter(
        "trove_relayed_reads_total",
        "Reads of objects other nodes own, relayed to them below hyper (direct-read connections).",
        &[(String::new(), state.metrics.relayed_reads.load(Ordering::Relaxed))],
    );
    counter(
        "trove_spliced_bytes_total",
        "Relayed response body bytes moved from the owner's socket to the client's with splice.",
        &[(String::new(), state.metrics.spliced_bytes.load(Ordering::Relaxed))],
    );
    counter(
        "trove_bytes_in_total",
        "Request body bytes received (by Content-Length).",
        &[(String::new(), req.bytes_in.load(Ordering::Relaxed))],
    );
    counter(
        "trove_bytes_out_total",
        "Response body bytes sent (by Content-Length).",
        &[(String::new(), req.bytes_out.load(Ordering::Relaxed))],
    );
    let series = req.series();
    let mut keys: Vec<_> = series.keys().copied().collect();
    keys.sort();
    let samples: Vec<_> =
        keys.iter().map(|(op, st)| (format!("{{op=\"{op}\",status=\"{st}\"}}"), series[&(*op, *st)].count)).collect();
    counter("trove_requests_total", "Requests by operation and HTTP status.", &samples);
    let hist = histograms(&series);
    let m = &state.metrics;
    counter(
        "trove_cache_hits_total",
        "Reads of remote objects served from the cache.",
        &[(String::new(), m.hits.load(Ordering::Relaxed))],
    );
    counter(
        "trove_cache_misses_total",
        "Reads of remote objects that went to the backend.",
        &[(String::new(), m.misses.load(Ordering::Relaxed))],
    );
    counter(
        "trove_cache_neighbor_fills_total",
        "Cold reads of remote objects filled from another node's cached copy instead of the backend.",
        &[(String::new(), m.neighbor_fills.load(Ordering::Relaxed))],
    );
    let n = |c: &AtomicU64| [(String::new(), c.load(Ordering::Relaxed))];
    counter("trove_mirror_copies_total", "Copies of mirrored writes published on other nodes.", &n(&m.mirror_copies));
    counter(
        "trove_rebalance_sent_objects_total",
        "Objects sent to other nodes by rebalance and repair.",
        &n(&m.rebalance_sent_objects),
    );
    counter(
        "trove_rebalance_sent_bytes_total",
        "Bytes sent to other nodes by rebalance and repair.",
        &n(&m.rebalance_sent_bytes),
    );
    counter(
        "trove_rebalance_received_objects_total",
        "Objects other nodes' rebalance and repair walks installed here.",
        &n(&m.rebalance_received_objects),
    );
    counter(
        "trove_rebalance_received_bytes_total",
        "Bytes other nodes' rebalance and repair walks installed here.",
        &n(&m.rebalance_received_bytes),
    );
    counter(
        "trove_rebalance_dropped_total",
        "Copies dropped here as misplaced, stale or deleted elsewhere.",
        &n(&m.rebalance_dropped),
    );
    counter(
        "trove_rebalance_failures_total",
        "Objects a rebalance or repair walk could not place (retried).",
        &n(&m.rebalance_failures),
    );
    let rt = state.readthrough.counters();
    let cold: Vec<_> = [Provider::Aws, Provider::Gcp, Provider::Azure]
        .into_iter()
        .map(|p| (format!("{{provider=\"{}\"}}", p.as_str()), rt.cold_gets[p as usize].load(Ordering::Relaxed)))
        .collect();
    counter("trove_cold_gets_total", "Backend object fetches into the cache (one per single-flight fill).", &cold);
    counter(
        "trove_cold_get_bytes_total",
        "Bytes fetched into the cache by cold GETs.",
        &[(String::new(), rt.cold_bytes.load(Ordering::Relaxed))],
    );
    counter(
        "trove_cold_get_failures_total",
        "Cold GETs that failed.",
        &[(String::new(), rt.cold_failures.load(Ordering::Relaxed))],
    );
    // Several remote AIS clusters add up under one `ais` series.
    let mut per_op: std::collections::BTreeMap<String, (u64, u64)> = std::collections::BTreeMap::new();
    for (provider, s) in &state.providers.stats() {
        for op in Op::ALL {
            let labels = format!("{{provider=\"{}\",op=\"{}\"}}", provider.as_str(), op.as_str());
            let slot = per_op.entry(labels).or_default();
            slot.0 += s.requests(op);
            slot.1 += s.errors(op);
        }
    }
    let requests: Vec<_> = per_op.iter().map(|(l, (r, _))| (l.clone(), *r)).collect();
    let errors: Vec<_> = per_op.iter().map(|(l, (_, e))| (l.clone(), *e)).collect();
    counter(
        "trove_backend_requests_total",
        "Requests sent to backends, by provider and operation (retries included).",
        &requests,
    );
    counter("trove_backend_errors_total", "Backend calls that failed after all attempts.", &errors);
    out.push_str(&hist);
    out
}

#[cfg(test)]
mod tests {
    use super::operation;

    fn op(method: &str, uri: &str, copy: bool) -> &'static str {
        let mut h = http::HeaderMap::new();
        if copy {
            h.insert("x-amz-copy-source", http::HeaderValue::from_static("b/k"));
        }
        operation(&method.parse().unwrap(), &uri.parse().unwrap(), &h, false)
    }

    #[test]
    fn operations_from_requests() {
        assert_eq!(op("GET", "/", false), "ListBuckets");
        assert_eq!(op("GET", "/b", false), "ListObjects");
        assert_eq!(op("GET", "/b?list-type=2&prefix=a", false), "ListObjects");
        assert_eq!(op("GET", "/b/k", false), "GetObject");
        assert_eq!(op("GET", "/b/k/deep?partNumber=1", false), "GetObject");
        assert_eq!(op("HEAD", "/b/k", false), "HeadObject");
        assert_eq!(op("HEAD", "/b", false), "HeadBucket");
        assert_eq!(op("PUT", "/b/k", false), "PutObject");
        assert_eq!(op("PUT", "/b/k", true), "CopyObject");
        assert_eq!(op("PUT", "/b/k?partNumber=2&uploadId=x", false), "UploadPart");
        assert_eq!(op("PUT", "/b", false), "CreateBucket");
        assert_eq!(op("POST", "/b/k?uploads", false), "CreateMultipartUpload");
        assert_eq!(op("POST", "/b/k?uploadId=x", false), "CompleteMultipartUpload");
        assert_eq!(op("POST", "/b?delete", false), "DeleteObjects");
        assert_eq!(op("DELETE", "/b/k", false), "DeleteObject");
        assert_eq!(op("DELETE", "/b", false), "DeleteBucket");
        assert_eq!(op("GET", "/v1/buckets", false), "NativeBuckets");
        assert_eq!(op("GET", "/v1/buckets/b", false), "NativeBuckets");
        assert_eq!(op("GET", "/v1/objects/b/k", false), "NativeGetObject");
        assert_eq!(op("HEAD", "/v1/objects/b/k", false), "NativeHeadObject");
        assert_eq!(op("GET", "/v1/health", false), "NativeHealth");
        assert_eq!(op("PUT", "/v1/intra/copy", false), "NativeIntra");
        assert_eq!(op("GET", "/v1/cluster?what=smap", false), "NativeCluster");
        assert_eq!(op("GET", "/v1/daemon?what=smap", false), "NativeCluster");
        assert_eq!(op("GET", "/v1/ml/moss", false), "Native");
        assert_eq!(op("GET", "/b?tagging", false), "GetBucketOther");
    }
}
