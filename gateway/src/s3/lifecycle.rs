//! Bucket lifecycle configuration on the S3 wire (Put/Get/DeleteBucketLifecycleConfiguration), validated as
//! S3 does, and the `x-amz-expiration` header of objects a rule will expire. The rules themselves
//! (`crate::jobs::lifecycle::Rule`) are carried out by the lifecycle worker.

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use trove_cache::ObjMeta;
use trove_namespace::BucketEntry;

use crate::jobs::lifecycle::{Filter, Rule, CONFIG};
use crate::s3::ctx::bucket;
use crate::state::SharedState;

const MAX_RULES: usize = 1000;
const MAX_ID: usize = 255;
const DAY_MS: i64 = 86_400_000;

fn malformed() -> S3Error {
    s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
}

fn ms_of(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn tags_of(t: &[Tag]) -> Vec<(String, String)> {
    t.iter().map(|t| (t.key.clone().unwrap_or_default(), t.value.clone().unwrap_or_default())).collect()
}

fn rule_from(r: LifecycleRule, n: usize) -> S3Result<Rule> {
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => return Err(malformed()),
    };
    let id = r.id.unwrap_or_else(|| format!("rule-{n}"));
    if id.len() > MAX_ID {
        return Err(s3_error!(InvalidArgument, "ID length should not exceed allowed limit of {MAX_ID}"));
    }
    let filter = match r.filter {
        None => Filter { prefix: r.prefix.clone().unwrap_or_default(), ..Default::default() },
        Some(f) => {
            if r.prefix.is_some() {
                return Err(malformed());
            }
            let mut out = Filter {
                prefix: f.prefix.unwrap_or_default(),
                tags: f.tag.map(|t| tags_of(std::slice::from_ref(&t))).unwrap_or_default(),
                size_gt: f.object_size_greater_than,
                size_lt: f.object_size_less_than,
            };
            if let Some(and) = f.and {
                out.prefix = and.prefix.unwrap_or_default();
                out.tags = tags_of(&and.tags.unwrap_or_default());
                out.size_gt = and.object_size_greater_than;
                out.size_lt = and.object_size_less_than;
            }
            out
        }
    };
    let mut rule = Rule { id, enabled, filter, legacy_prefix: r.prefix.is_some(), ..Default::default() };
    if let Some(e) = r.expiration {
        if e.days.is_some_and(|d| d <= 0) {
            return Err(s3_error!(InvalidArgument, "'Days' for Expiration action must be a positive integer"));
        }
        if [e.days.is_some(), e.date.is_some(), e.expired_object_delete_marker.is_some()].iter().filter(|x| **x).count()
            != 1
        {
            return Err(malformed());
        }
        if let Some(d) = &e.date {
            let ms = ms_of(d);
            if ms % DAY_MS != 0 {
                return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT"));
            }
            rule.expiration_date_ms = Some(ms);
        }
        rule.expiration_days = e.days;
        rule.expired_object_delete_marker = e.expired_object_delete_marker.unwrap_or(false);
    }
    if let Some(n) = r.noncurrent_version_expiration {
        if n.noncurrent_days.is_some_and(|d| d <= 0) {
            return Err(s3_error!(
                InvalidArgument,
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"
            ));
        }
        rule.noncurrent_days = n.noncurrent_days;
        rule.newer_noncurrent_versions = n.newer_noncurrent_versions;
    }
    if let Some(a) = r.abort_incomplete_multipart_upload {
        if a.days_after_initiation.is_some_and(|d| d <= 0) {
            return Err(s3_error!(
                InvalidArgument,
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer"
            ));
        }
        rule.abort_days = a.days_after_initiation;
    }
    let transitions = r.transitions.unwrap_or_default();
    for t in &transitions {
        if t.date.as_ref().is_some_and(|d| ms_of(d) % DAY_MS != 0) || t.days.is_some_and(|d| d < 0) {
            return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT and 'Days' not negative"));
        }
    }
    if !transitions.is_empty() || !r.noncurrent_version_transitions.unwrap_or_default().is_empty() {
        return Err(s3_error!(
            NotImplemented,
            "Transitions between storage classes are not supported: Trove keeps one class of storage"
        ));
    }
    if rule.expiration_days.is_none()
        && rule.expiration_date_ms.is_none()
        && !rule.expired_object_delete_marker
        && rule.noncurrent_days.is_none()
        && rule.abort_days.is_none()
    {
        return Err(s3_error!(InvalidRequest, "At least one action needs to be specified in a rule"));
    }
    Ok(rule)
}

fn rule_to(r: &Rule) -> LifecycleRule {
    let tag = |(k, v): &(String, String)| Tag { key: Some(k.clone()), value: Some(v.clone()) };
    let f = &r.filter;
    let filter = (!r.legacy_prefix).then(|| {
        let parts = usize::from(!f.prefix.is_empty())
            + f.tags.len()
            + usize::from(f.size_gt.is_some())
            + usize::from(f.size_lt.is_some());
        if parts > 1 {
            LifecycleRuleFilter {
                and: Some(LifecycleRuleAndOperator {
                    prefix: Some(f.prefix.clone()),
                    tags: Some(f.tags.iter().map(tag).collect()),
                    object_size_greater_than: f.size_gt,
                    object_size_less_than: f.size_lt,
                }),
                ..Default::default()
            }
        } else {
            LifecycleRuleFilter {
                prefix: (!f.prefix.is_empty() || f.tags.is_empty()).then(|| f.prefix.clone()),
                tag: f.tags.first().map(tag),
                object_size_greater_than: f.size_gt,
                object_size_less_than: f.size_lt,
                ..Default::default()
            }
        }
    });
    let expiration = (r.expiration_days.is_some() || r.expiration_date_ms.is_some() || r.expired_object_delete_marker)
        .then(|| LifecycleExpiration {
            days: r.expiration_days,
            date: r.expiration_date_ms.map(crate::s3::bucket::timestamp_ms),
            expired_object_delete_marker: r.expired_object_delete_marker.then_some(true),
        });
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        prefix: r.legacy_prefix.then(|| f.prefix.clone()),
        filter,
        expiration,
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            noncurrent_days: Some(d),
            newer_noncurrent_versions: r.newer_noncurrent_versions,
        }),
        abort_incomplete_multipart_upload: r
            .abort_days
            .map(|d| AbortIncompleteMultipartUpload { days_after_initiation: Some(d) }),
        noncurrent_version_transitions: None,
        transitions: None,
    }
}

pub async fn put(
    state: &SharedState,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let entry = bucket(&req)?;
    if entry.bck.is_remote() {
        return Err(s3_error!(NotImplemented, "Lifecycle of a cloud bucket is its backend's: set it there"));
    }
    let config = req.input.lifecycle_configuration.ok_or_else(malformed)?;
    if config.rules.is_empty() || config.rules.len() > MAX_RULES {
        return Err(malformed());
    }
    let mut rules = Vec::new();
    for (n, r) in config.rules.into_iter().enumerate() {
        let rule = rule_from(r, n + 1)?;
        if rules.iter().any(|x: &Rule| x.id == rule.id) {
            return Err(s3_error!(InvalidArgument, "Rule ID must be unique. Found same ID for more than one rule"));
        }
        rules.push(rule);
    }
    let doc = serde_json::to_string(&rules).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, Some(doc)).await?;
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput::default()))
}

pub async fn get(
    _state: &SharedState,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let entry = bucket(&req)?;
    let rules = crate::jobs::lifecycle::rules_of(&entry)
        .ok_or_else(|| s3_error!(NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist"))?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(rules.iter().map(rule_to).collect()),
        ..Default::default()
    }))
}

pub async fn delete(
    state: &SharedState,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, None).await?;
    Ok(S3Response::new(DeleteBucketLifecycleOutput {}))
}

/// `x-amz-expiration` for an object that an enabled rule with an expiration date or age applies to: the
/// earliest such expiry, as S3 reports it (ages count whole days, to the next midnight GMT).
pub fn expiration_header(entry: &BucketEntry, meta: &ObjMeta, h: &mut http::HeaderMap) {
    let Some(rules) = crate::jobs::lifecycle::rules_of(entry) else { return };
    let mut best: Option<(i64, &str)> = None;
    for r in rules.iter().filter(|r| r.enabled && r.filter.matches(&meta.key, meta)) {
        let at = match (r.expiration_days, r.expiration_date_ms) {
            (Some(d), _) => (meta.mtime_ms + i64::from(d) * DAY_MS).div_euclid(DAY_MS) * DAY_MS + DAY_MS,
            (None, Some(date)) => date,
            _ => continue,
        };
        if best.is_none_or(|(b, _)| at < b) {
            best = Some((at, &r.id));
        }
    }
    if let Some((at, id)) = best {
        if let Some(date) = crate::s3::object::http_date(&crate::s3::bucket::timestamp_ms(at)) {
            if let Ok(v) = http::HeaderValue::from_str(&format!("expiry-date=\"{date}\", rule-id=\"{id}\"")) {
                h.insert("x-amz-expiration", v);
            }
        }
    }
}
