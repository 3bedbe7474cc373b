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
    let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
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
