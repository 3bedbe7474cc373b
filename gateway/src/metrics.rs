//! Counters of the node and their Prometheus text rendering at `/v1/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use trove_backends::retry::Op;
use trove_namespace::Provider;

use crate::state::AppState;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Reads of remote-bucket objects served from the cache.
    pub hits: AtomicU64,
    /// Reads of remote-bucket objects that had to go to the backend.
    pub misses: AtomicU64,
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
    for kind in [crate::jobs::PREFETCH, crate::jobs::EVICT] {
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
    let stats = state.providers.stats();
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    for (provider, s) in &stats {
        for op in Op::ALL {
            let labels = format!("{{provider=\"{}\",op=\"{}\"}}", provider.as_str(), op.as_str());
            requests.push((labels.clone(), s.requests(op)));
            errors.push((labels, s.errors(op)));
        }
    }
    counter(
        "trove_backend_requests_total",
        "Requests sent to backends, by provider and operation (retries included).",
        &requests,
    );
    counter("trove_backend_errors_total", "Backend calls that failed after all attempts.", &errors);
    out
}
