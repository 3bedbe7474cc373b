//! Capacity management of a node (DESIGN §4): how full it is, eviction between the watermarks, and the
//! out-of-space refusal. The mechanism (index, LRU order, deletes) is the cache crate's; the policy (which
//! buckets, `lru.enabled`, `dont_evict_time`, watermarks) lives here, where the registry and config are.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use trove_config::CacheConfig;
use trove_namespace::Bck;

use crate::state::{AppState, SharedState};

#[derive(Debug)]
pub struct Capacity {
    cfg: CacheConfig,
    /// The last measured limit and use, for fast checks on the request path.
    limit: AtomicU64,
    used: AtomicU64,
}

/// One mountpath's filesystem: total and used bytes.
pub fn filesystem(path: &std::path::Path) -> Option<(u64, u64)> {
    let s = rustix::fs::statvfs(path).ok()?;
    let total = s.f_blocks * s.f_frsize;
    let free = s.f_bavail * s.f_frsize;
    Some((total, total.saturating_sub(free)))
}

impl Capacity {
    pub fn new(cfg: &CacheConfig) -> Capacity {
        Capacity { cfg: cfg.clone(), limit: AtomicU64::new(u64::MAX), used: AtomicU64::new(0) }
    }

    /// (limit, used) in bytes: the configured capacity and the bytes of objects, or the mountpaths'
    /// filesystems.
    pub fn measure(&self, state: &AppState) -> (u64, u64) {
        let (limit, used) = if self.cfg.capacity > 0 {
            (self.cfg.capacity, state.store.index().total())
        } else {
            state
                .store
                .mountpaths()
                .iter()
                .filter_map(|m| filesystem(&m.root))
                .fold((0, 0), |(t, u), (a, b)| (t + a, u + b))
        };
        self.limit.store(limit, Ordering::Relaxed);
        self.used.store(used, Ordering::Relaxed);
        (limit, used)
    }

    fn mark(limit: u64, percent: u8) -> u64 {
        (limit as u128 * percent as u128 / 100) as u64
    }

    /// Whether writes and cold GETs must be refused (507): at or above `out_of_space`.
    pub fn out_of_space(&self, state: &AppState) -> bool {
        let (limit, used) = self.now(state);
        used >= Self::mark(limit, self.cfg.out_of_space)
    }

    /// Whether the node is above its high watermark (it then takes no cached copies from other nodes).
    pub fn above_high(&self, state: &AppState) -> bool {
        let (limit, used) = self.now(state);
        used > Self::mark(limit, self.cfg.highwm)
    }

    /// (limit, used): with a configured capacity the index is exact at every instant; filesystems are sampled
    /// by `check`.
    fn now(&self, state: &AppState) -> (u64, u64) {
        if self.cfg.capacity > 0 {
            (self.cfg.capacity, state.store.index().total())
        } else {
            (self.limit.load(Ordering::Relaxed), self.used.load(Ordering::Relaxed))
        }
    }

    /// Whether an object of `size` bytes fits where `key` of `bck` would be stored: on its mountpath's
    /// filesystem (with 1 MiB to spare) and, with a configured capacity, below the out-of-space mark.
    pub fn room_for(&self, state: &AppState, bck: &Bck, key: &str, size: u64) -> bool {
        const SPARE: u64 = 1 << 20;
        let mp = &state.store.mountpaths()[state.store.mountpath_index(bck, key)];
        let free = rustix::fs::statvfs(&mp.root).map_or(u64::MAX, |s| s.f_bavail.saturating_mul(s.f_frsize));
        if size.saturating_add(SPARE) > free {
            return false;
        }
        self.cfg.capacity == 0
            || state.store.index().total().saturating_add(size) <= Self::mark(self.cfg.capacity, self.cfg.out_of_space)
    }

    /// One check: above `highwm`, evict down to `lowwm`, oldest access first. Returns bytes freed.
    pub fn check(&self, state: &AppState) -> u64 {
        let (limit, used) = self.measure(state);
        if used <= Self::mark(limit, self.cfg.highwm) {
            return 0;
        }
        // With filesystem accounting, what must go is the excess over the low mark, taken from our objects.
        let excess = used - Self::mark(limit, self.cfg.lowwm);
        let target = state.store.index().total().saturating_sub(excess);
        let now = crate::jobs::now_ns();
        let snapshot = state.registry.snapshot();
        let policy = |bck: &Bck| -> Option<i64> {
            match snapshot.buckets.values().find(|e| &e.bck == bck) {
                Some(e) if !e.props.lru.enabled => None,
                Some(e) => Some(now - (e.props.lru.dont_evict_time as i64).saturating_mul(1_000_000_000)),
                // Copies of a bucket no longer attached: nothing protects them.
                None => Some(now),
            }
        };
        match state.store.evict(target, policy) {
            Ok(freed) => {
                if freed > 0 {
                    tracing::info!(freed, used, limit, "evicted cached copies");
                }
                self.measure(state);
                freed
            }
            Err(e) => {
                tracing::warn!(error = %e, "eviction failed");
                0
            }
        }
    }
}

/// The node's background housekeeping thread: rebuilds the LRU index from disk (while the node already
/// serves), then checks capacity every `check_interval_secs` and saves access times every `atime_flush_secs`.
pub fn start(state: SharedState) {
    let spawned = std::thread::Builder::new().name("trove-capacity".into()).spawn(move || {
        let atimes = state.store.mountpaths()[0].root.join(".trove").join("atime.tsv");
        let buckets: Vec<Bck> = state.registry.snapshot().buckets.values().map(|e| e.bck.clone()).collect();
        let started = std::time::Instant::now();
        match state.store.rebuild_index(&buckets, &atimes) {
            Ok(()) => {
                let u = state.store.index().usage();
                tracing::info!(
                    objects = u.objects,
                    bytes = u.total,
                    secs = started.elapsed().as_secs_f64(),
                    "cache index rebuilt"
                );
            }
            Err(e) => tracing::error!(error = %e, "rebuilding the cache index failed"),
        }
        let interval = Duration::from_secs_f64(state.capacity.cfg.check_interval_secs);
        let flush = Duration::from_secs(state.capacity.cfg.atime_flush_secs.max(1));
        let mut last_flush = std::time::Instant::now();
        loop {
            state.capacity.check(&state);
            if last_flush.elapsed() >= flush {
                if let Err(e) = state.store.index().save_atimes(&atimes) {
                    tracing::warn!(error = %e, "saving access times failed");
                }
                last_flush = std::time::Instant::now();
            }
            std::thread::sleep(interval);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the capacity thread");
    }
}
