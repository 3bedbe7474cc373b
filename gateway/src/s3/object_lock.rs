//! S3 Object Lock on AIS-local buckets: the bucket's configuration (enabled, default retention), each version's
//! retention and legal hold, and the headers that carry them. A bucket with Object Lock is versioned and cannot
//! be suspended. The enforcement itself (a locked version cannot be removed) is the data layer's
//! (`data::versions::removable`), checked under the store's tree lock.

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use trove_cache::ObjMeta;
use trove_namespace::{BucketEntry, S3Versioning};

use crate::data::now_ms;
use crate::s3::bucket::timestamp_ms;
use crate::s3::ctx::{bucket, check_key};
use crate::s3::errors;
use crate::state::SharedState;

/// The bucket configuration's name in the registry.
pub const CONFIG: &str = "object-lock";

const GOVERNANCE: &str = ObjectLockRetentionMode::GOVERNANCE;
const COMPLIANCE: &str = ObjectLockRetentionMode::COMPLIANCE;

/// A bucket's Object Lock configuration, as kept in the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Default retention of new objects: mode and period (days or years).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<i32>,
}

impl Config {
    /// Object Lock enabled, without default retention.
    pub fn enabled() -> Config {
        Config::default()
    }

    /// The configuration of `entry`, when Object Lock is enabled on it.
    pub fn of(entry: &BucketEntry) -> Option<Config> {
        entry.configs.get(CONFIG).and_then(|d| serde_json::from_str(d).ok())
    }

    pub fn to_doc(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The retention a new object gets by default: mode and retain-until time.
    fn default_retention(&self, now_ms: i64) -> Option<(String, i64)> {
        const DAY_MS: i64 = 86_400_000;
        let mode = self.mode.clone()?;
        let days = match (self.days, self.years) {
            (Some(d), _) => i64::from(d),
            (None, Some(y)) => i64::from(y) * 365,
            (None, None) => return None,
        };
        Some((mode, now_ms.saturating_add(days.saturating_mul(DAY_MS))))
    }
}

/// `x-amz-bypass-governance-retention`, honoured for the bucket owner only (S3 grants the bypass by a
/// permission of its own, which no ACL gives).
pub fn bypass<T>(req: &S3Request<T>, entry: &BucketEntry, asked: Option<bool>) -> S3Result<bool> {
    let owner = crate::s3::ctx::caller_opt(req)?.is_some_and(|u| u.id == entry.owner);
    Ok(asked.unwrap_or(false) && owner)
}

fn malformed() -> S3Error {
    s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema")
}

fn no_lock() -> S3Error {
    s3_error!(InvalidRequest, "Bucket is missing Object Lock Configuration")
}

/// The bucket's configuration, or S3's refusal for a bucket without Object Lock.
fn required(entry: &BucketEntry) -> S3Result<Config> {
    Config::of(entry).ok_or_else(no_lock)
}

fn valid_mode(mode: &str) -> bool {
    mode == GOVERNANCE || mode == COMPLIANCE
}

pub async fn put_configuration(
    state: &SharedState,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let entry = bucket(&req)?;
    if entry.bck.is_remote() {
        return Err(s3_error!(NotImplemented, "Object Lock of a cloud bucket is its backend's: set it there"));
    }
    let c = req.input.object_lock_configuration.ok_or_else(malformed)?;
    if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some(ObjectLockEnabled::ENABLED) {
        return Err(malformed());
    }
    let mut config = Config::enabled();
    if let Some(rule) = c.rule {
        let d = rule.default_retention.ok_or_else(malformed)?;
        let mode = d.mode.ok_or_else(malformed)?;
        if !valid_mode(mode.as_str()) {
            return Err(malformed());
        }
        if d.days.is_some() == d.years.is_some() {
            return Err(malformed());
        }
        if d.days.or(d.years).is_some_and(|n| n <= 0) {
            return Err(errors::custom(
                "InvalidRetentionPeriod",
                http::StatusCode::BAD_REQUEST,
                "Default retention period must be a positive integer value",
            ));
        }
        config = Config { mode: Some(mode.as_str().to_owned()), days: d.days, years: d.years };
    }
    if Config::of(&entry).is_none() && entry.props.versioning.s3 != S3Versioning::Enabled {
        return Err(s3_error!(
            InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
        ));
    }
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, Some(config.to_doc())).await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub async fn get_configuration(
    _state: &SharedState,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let entry = bucket(&req)?;
    let config = Config::of(&entry).ok_or_else(|| {
        s3_error!(ObjectLockConfigurationNotFoundError, "Object Lock configuration does not exist for this bucket")
    })?;
    let rule = config.mode.as_ref().map(|mode| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            mode: Some(ObjectLockRetentionMode::from(mode.clone())),
            days: config.days,
            years: config.years,
        }),
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    }))
}

fn ms_of(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Sets the Object Lock fields of a new object: from its `x-amz-object-lock-*` headers, else from the bucket's
/// default retention.
pub fn for_new_object(
    entry: &BucketEntry,
    meta: &mut ObjMeta,
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<()> {
    let config = Config::of(entry);
    if config.is_none() {
        if mode.is_some() || until.is_some() || hold.is_some() {
            return Err(no_lock());
        }
        return Ok(());
    }
    let now = now_ms();
    match (mode, until) {
        (Some(mode), Some(until)) => {
            if !valid_mode(mode.as_str()) {
                return Err(s3_error!(InvalidArgument, "Unknown wormMode directive."));
            }
            let until = ms_of(until);
            if until <= now {
                return Err(s3_error!(InvalidArgument, "The retain until date must be in the future!"));
            }
            meta.lock_mode = Some(mode.as_str().to_owned());
            meta.lock_until_ms = Some(until);
        }
        (None, None) => {
            if let Some((mode, until)) = config.and_then(|c| c.default_retention(now)) {
                meta.lock_mode = Some(mode);
                meta.lock_until_ms = Some(until);
            }
        }
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
            ))
        }
    }
    if let Some(h) = hold {
        meta.legal_hold =
            legal_hold_on(h.as_str()).ok_or_else(|| s3_error!(InvalidArgument, "Unknown legal hold status"))?;
    }
    Ok(())
}

fn legal_hold_on(status: &str) -> Option<bool> {
    match status {
        ObjectLockLegalHoldStatus::ON => Some(true),
        ObjectLockLegalHoldStatus::OFF => Some(false),
        _ => None,
    }
}

/// The Object Lock headers of a read.
pub fn headers(meta: &ObjMeta, h: &mut http::HeaderMap) {
    if let (Some(mode), Some(until)) = (&meta.lock_mode, meta.lock_until_ms) {
        let mut date = Vec::new();
        if timestamp_ms(until).format(TimestampFormat::DateTime, &mut date).is_ok() {
            if let (Ok(m), Ok(d)) = (http::HeaderValue::from_str(mode), http::HeaderValue::from_bytes(&date)) {
                h.insert("x-amz-object-lock-mode", m);
                h.insert("x-amz-object-lock-retain-until-date", d);
            }
        }
    }
    if meta.legal_hold {
        h.insert("x-amz-object-lock-legal-hold", http::HeaderValue::from_static("ON"));
    }
}

/// The metadata of the version a request names (the current one without a version id).
async fn version_meta(state: &SharedState, entry: &BucketEntry, key: &str, version: Option<&str>) -> S3Result<ObjMeta> {
    let meta = match version {
        Some(v) => crate::data::versions::open(state, entry, key, v).await.map_err(errors::from_data)?.1,
        None => {
            let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
            crate::s3::ctx::blocking(move || st.store.head(&bck, &k).map_err(errors::from_store)).await?
        }
    };
    if meta.delete_marker {
        return Err(s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."));
    }
    Ok(meta)
}

/// Changes one version's lock fields with `change`, under the store's tree lock.
async fn update(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: Option<String>,
    change: impl FnOnce(&mut ObjMeta) -> Result<(), trove_cache::Error> + Send + 'static,
) -> S3Result<ObjMeta> {
    crate::data::versions::update_meta(state, entry, key, version, move |m| {
        if m.delete_marker {
            return Err(trove_cache::Error::NotFound);
        }
        change(m)
    })
    .await
    .map_err(errors::from_data)
}

pub async fn put_retention(
    state: &SharedState,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let entry = bucket(&req)?;
    let bypass = bypass(&req, &entry, req.input.bypass_governance_retention)?;
    let i = req.input;
    check_key(&i.key)?;
    required(&entry)?;
    let r = i.retention.ok_or_else(malformed)?;
    let mode = r.mode.map(|m| m.as_str().to_owned()).ok_or_else(malformed)?;
    if !valid_mode(&mode) {
        return Err(malformed());
    }
    let until = r.retain_until_date.as_ref().map(ms_of).ok_or_else(malformed)?;
    if until <= now_ms() {
        return Err(s3_error!(InvalidArgument, "The retain until date must be in the future!"));
    }
    update(state, &entry, &i.key, i.version_id, move |m| {
        let active = m.lock_until_ms.is_some_and(|t| t > now_ms());
        let weaker = m.lock_until_ms.is_some_and(|t| until < t) || m.lock_mode.as_deref() != Some(mode.as_str());
        match m.lock_mode.as_deref() {
            Some(COMPLIANCE) if active && weaker => {
                return Err(trove_cache::Error::Refused("The object is retained in compliance mode".into()))
            }
            Some(GOVERNANCE) if active && weaker && !bypass => {
                return Err(trove_cache::Error::Refused("The object is retained in governance mode".into()))
            }
            _ => {}
        }
        m.lock_mode = Some(mode);
        m.lock_until_ms = Some(until);
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub async fn get_retention(
    state: &SharedState,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    required(&entry)?;
    let meta = version_meta(state, &entry, &i.key, i.version_id.as_deref()).await?;
    let (Some(mode), Some(until)) = (meta.lock_mode, meta.lock_until_ms) else {
        return Err(s3_error!(
            NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration"
        ));
    };
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(mode)),
            retain_until_date: Some(timestamp_ms(until)),
        }),
    }))
}

pub async fn put_legal_hold(
    state: &SharedState,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    required(&entry)?;
    let status = i.legal_hold.and_then(|h| h.status).ok_or_else(malformed)?;
    let on = legal_hold_on(status.as_str()).ok_or_else(malformed)?;
    update(state, &entry, &i.key, i.version_id, move |m| {
        m.legal_hold = on;
        Ok(())
    })
    .await?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub async fn get_legal_hold(
    state: &SharedState,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    required(&entry)?;
    let meta = version_meta(state, &entry, &i.key, i.version_id.as_deref()).await?;
    let status = if meta.legal_hold { ObjectLockLegalHoldStatus::ON } else { ObjectLockLegalHoldStatus::OFF };
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold { status: Some(ObjectLockLegalHoldStatus::from_static(status)) }),
    }))
}
