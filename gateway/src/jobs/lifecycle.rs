//! The lifecycle worker: carries out the expiration rules of AIS-local buckets (S3's bucket lifecycle). Each
//! pass walks, on every node, the keys of each bucket with rules that the node owns: a current object past
//! its rule's age or date expires (deleted in an unversioned bucket, hidden by a delete marker in a versioned
//! one), a noncurrent version past its noncurrent age is removed, a delete marker left alone is removed, and
//! an upload in progress past its age is aborted. A "day" is `lifecycle.day_secs` long (86,400; tests shorten
//! it, as RGW's `rgw_lc_debug_interval` does). Object Lock still applies: a locked version is left in place.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use trove_cache::ObjMeta;
use trove_namespace::BucketEntry;

use crate::cluster::Owner;
use crate::data::{self, now_ms};
use crate::state::SharedState;

/// The bucket configuration's name in the registry.
pub const CONFIG: &str = "lifecycle";

/// Which objects a rule is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_lt: Option<i64>,
}

impl Filter {
    pub fn matches(&self, key: &str, meta: &ObjMeta) -> bool {
        key.starts_with(&self.prefix)
            && self.tags.iter().all(|t| meta.tags.contains(t))
            && self.size_gt.is_none_or(|s| (meta.size as i64) > s)
            && self.size_lt.is_none_or(|s| (meta.size as i64) < s)
    }
}

/// One lifecycle rule, as kept in the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    /// The rule named its prefix the old way (`<Prefix>` beside the rule, not in a `<Filter>`).
    #[serde(default)]
    pub legacy_prefix: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_ms: Option<i64>,
    #[serde(default)]
    pub expired_object_delete_marker: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_days: Option<i32>,
}

pub fn rules_of(entry: &BucketEntry) -> Option<Vec<Rule>> {
    entry.configs.get(CONFIG).and_then(|d| serde_json::from_str(d).ok())
}

/// Keys looked at per listing page of a pass.
const PAGE: usize = 1000;

/// Runs passes for as long as the node runs.
pub async fn watch(state: SharedState) {
    let day_ms = (state.lifecycle_day_secs.max(1) * 1000) as i64;
    // A pass per tenth of a "day", at least every second and at most every ten minutes.
    let every = Duration::from_millis((day_ms as u64 / 10).clamp(1000, 600_000));
    loop {
        tokio::time::sleep(every).await;
        let snapshot = state.registry.snapshot();
        for entry in snapshot.buckets.values() {
            if entry.bck.is_remote() || entry.sealed {
                continue;
            }
            let Some(rules) = rules_of(entry).filter(|r| r.iter().any(|r| r.enabled)) else { continue };
            if let Err(e) = pass(&state, entry, &rules, day_ms).await {
                tracing::warn!(bucket = %entry.bck, error = %e, "lifecycle pass");
            }
        }
    }
}

/// One pass over this node's keys of `entry`.
async fn pass(state: &SharedState, entry: &BucketEntry, rules: &[Rule], day_ms: i64) -> Result<(), data::Error> {
    let mut after = String::new();
    loop {
        let (st, bck, start) = (state.clone(), entry.bck.clone(), after.clone());
        let page = data::blocking(move || Ok(st.store.list_versioned(&bck, start.as_bytes(), "", PAGE)?)).await?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        let full = page.len() == PAGE;
        for (key, versions) in page {
            if matches!(state.owner(&entry.bck, &key), Owner::Local) {
                apply(state, entry, rules, &key, &versions, day_ms).await;
            }
        }
        if !full {
            break;
        }
    }
    abort_uploads(state, entry, rules, day_ms).await
}

/// The actions due on one key (its versions newest first).
async fn apply(state: &SharedState, entry: &BucketEntry, rules: &[Rule], key: &str, versions: &[ObjMeta], day_ms: i64) {
    let now = now_ms();
    let versioned = data::versions::is_versioned(entry);
    let Some(latest) = versions.first() else { return };
    for rule in rules.iter().filter(|r| r.enabled) {
        if !key.starts_with(&rule.filter.prefix) {
            continue;
        }
        if !latest.delete_marker && rule.filter.matches(key, latest) {
            let by_age = rule.expiration_days.is_some_and(|d| now - latest.mtime_ms >= i64::from(d) * day_ms);
            let by_date = rule.expiration_date_ms.is_some_and(|d| now >= d);
            if by_age || by_date {
                let outcome = data::versions::delete(state, entry, key, None, false).await;
                log(key, &rule.id, "expired", outcome.err());
                return;
            }
        }
        if versioned && latest.delete_marker && versions.len() == 1 && rule.expired_object_delete_marker {
            let outcome = data::versions::delete(state, entry, key, Some(latest.version_id().to_owned()), false).await;
            log(key, &rule.id, "removed a lone delete marker", outcome.err());
            return;
        }
        if let (true, Some(days)) = (versioned, rule.noncurrent_days) {
            let keep = rule.newer_noncurrent_versions.unwrap_or(0).max(0) as usize;
            // A version became noncurrent when the next newer one was written.
            for (i, v) in versions.iter().enumerate().skip(1) {
                let since = versions[i - 1].mtime_ms;
                if i > keep
                    && !v.delete_marker
                    && rule.filter.matches(key, v)
                    && now - since >= i64::from(days) * day_ms
                {
                    let id = Some(v.version_id().to_owned());
                    let outcome = data::versions::delete(state, entry, key, id, false).await;
                    log(key, &rule.id, "removed a noncurrent version", outcome.err());
                }
            }
        }
    }
}

/// Aborts the uploads in progress on this node that a rule says are too old.
async fn abort_uploads(
    state: &SharedState,
    entry: &BucketEntry,
    rules: &[Rule],
    day_ms: i64,
) -> Result<(), data::Error> {
    if !rules.iter().any(|r| r.enabled && r.abort_days.is_some()) {
        return Ok(());
    }
    let (st, bck) = (state.clone(), entry.bck.clone());
    let uploads = data::blocking(move || Ok(st.store.list_uploads(&bck)?)).await?;
    let now = now_ms();
    for u in uploads {
        let due = rules.iter().any(|r| {
            r.enabled
                && u.key.starts_with(&r.filter.prefix)
                && r.abort_days.is_some_and(|d| now - u.initiated_ms >= i64::from(d) * day_ms)
        });
        if due {
            let (st, bck) = (state.clone(), entry.bck.clone());
            let (key, id) = (u.key.clone(), u.upload_id.clone());
            let outcome = data::blocking(move || Ok(st.store.abort_upload(&bck, &key, &id)?)).await;
            log(&u.key, "abort-incomplete-multipart-upload", "aborted an upload", outcome.err());
        }
    }
    Ok(())
}

fn log(key: &str, rule: &str, what: &str, error: Option<data::Error>) {
    match error {
        None => tracing::info!(key, rule, "lifecycle: {what}"),
        // An Object Lock on the version keeps it: that is the lock working, not a failure.
        Some(data::Error::Forbidden(why)) => tracing::debug!(key, rule, why, "lifecycle: kept a locked version"),
        Some(e) => tracing::warn!(key, rule, error = %e, "lifecycle: {what} failed"),
    }
}
