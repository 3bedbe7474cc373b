//! A fixed-window rate limit, for work that unauthenticated or careless clients could otherwise trigger in
//! bulk.

/// At most `per_sec` auto-attach checks per second on the node (each is a HEAD at every auto-attach provider),
/// so that even authenticated clients cycling through names cannot turn the node into a backend scanner.
#[derive(Debug)]
pub struct RateLimit {
    per_sec: u32,
    window: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl RateLimit {
    pub fn new(per_sec: u32) -> RateLimit {
        RateLimit { per_sec, window: std::sync::Mutex::new((std::time::Instant::now(), 0)) }
    }

    pub fn take(&self) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.0.elapsed() >= std::time::Duration::from_secs(1) {
            *w = (std::time::Instant::now(), 0);
        }
        if w.1 >= self.per_sec {
            return false;
        }
        w.1 += 1;
        true
    }
}
