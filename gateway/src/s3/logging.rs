//! Bucket logging's configuration (Put/GetBucketLogging) and Put/GetBucketRequestPayment: where a bucket's
//! server access logs go, checked as S3 checks it (the target exists, is another bucket, logs nothing
//! itself, is not encrypted or requester-pays, and its policy lets the logging service write under the
//! prefix for this source bucket and account). Records are gathered and delivered by [`super::log_delivery`].

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use trove_namespace::BucketEntry;

use crate::acl::{self, Grantee, Perm};
use crate::s3::ctx::{bucket, caller};
use crate::s3::errors;
use crate::s3::policy;
use crate::state::{AppState, SharedState};

/// The bucket configuration's name in the registry.
pub const CONFIG: &str = "logging";
/// The request payment configuration's name in the registry (present only for `Requester`).
pub const PAYMENT: &str = "request-payment";
/// The principal a target bucket's policy names to let logs in.
pub const LOGGING_SERVICE: &str = "logging.s3.amazonaws.com";

/// Where a bucket's access logs go, as kept in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub target_bucket: String,
    pub target_prefix: String,
    /// `EventTime` or `DeliveryTime` for S3's partitioned key format; `None` for the simple one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned: Option<String>,
    /// The ACL log objects get (from `TargetGrants`), stored as [`crate::acl`] stores ACLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<String>,
}

pub fn of(entry: &BucketEntry) -> Option<Config> {
    entry.configs.get(CONFIG).and_then(|d| serde_json::from_str(d).ok())
}

/// Whether the target bucket lets the logging service write `source`'s logs under `prefix`: its policy
/// allows `s3:PutObject` on `arn:aws:s3:::<target>/<prefix>` to the service (for this source bucket and
/// account), or its ACL grants the log delivery group WRITE.
pub fn delivery_allowed(source: &BucketEntry, target: &BucketEntry, prefix: &str) -> bool {
    if let Some(p) = policy::of(target) {
        let mut context = std::collections::BTreeMap::new();
        context.insert("aws:sourcearn".to_owned(), format!("arn:aws:s3:::{}", source.bck.name));
        context.insert("aws:sourceaccount".to_owned(), source.owner.clone());
        let service = format!("{}{LOGGING_SERVICE}", policy::SERVICE);
        let ask = policy::Ask {
            user: Some(&service),
            action: "s3:PutObject",
            resource: format!("arn:aws:s3:::{}/{prefix}", target.bck.name),
            context,
        };
        match p.evaluate(&ask) {
            policy::Verdict::Allow => return true,
            policy::Verdict::Deny => return false,
            policy::Verdict::Neutral => {}
        }
    }
    acl::grants(target.acl.as_deref(), &target.owner, &target.owner)
        .iter()
        .any(|g| g.grantee == Grantee::LogDelivery && matches!(g.perm, Perm::Write | Perm::FullControl))
}

fn invalid(msg: &str) -> s3s::S3Error {
    s3_error!(InvalidArgument, "{msg}")
}

pub async fn put(
    state: &SharedState,
    req: S3Request<PutBucketLoggingInput>,
) -> S3Result<S3Response<PutBucketLoggingOutput>> {
    let entry = bucket(&req)?;
    // Only the bucket's owner decides where its logs go (a policy cannot hand that out).
    if caller(&req)?.id != entry.owner {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    let name = req.input.bucket.clone();
    let Some(le) = req.input.bucket_logging_status.logging_enabled else {
        crate::s3::bucket::set_config(state, name, CONFIG, None).await?;
        return Ok(S3Response::new(PutBucketLoggingOutput {}));
    };
    let partitioned = match le.target_object_key_format.as_ref() {
        None => None,
        Some(TargetObjectKeyFormat { partitioned_prefix: Some(_), simple_prefix: Some(_) }) => {
            return Err(s3_error!(MalformedXML, "Only one of SimplePrefix and PartitionedPrefix may be given"));
        }
        Some(TargetObjectKeyFormat { partitioned_prefix: Some(p), .. }) => {
            let source = p.partition_date_source.as_ref().map_or("EventTime", |s| s.as_str());
            if !matches!(source, "EventTime" | "DeliveryTime") {
                return Err(s3_error!(MalformedXML, "PartitionDateSource must be EventTime or DeliveryTime"));
            }
            Some(source.to_owned())
        }
        Some(_) => None,
    };
    if le.target_prefix.len() > 512 {
        return Err(invalid("The target prefix is too long"));
    }
    let Some(target) = state.registry.get(&le.target_bucket) else {
        return Err(errors::custom(
            "NoSuchKey",
            http::StatusCode::NOT_FOUND,
            "The target bucket for logging does not exist",
        ));
    };
    if target.bck.name == entry.bck.name {
        return Err(invalid("The target bucket for logging must not be the logged bucket"));
    }
    if target.configs.contains_key(CONFIG) {
        return Err(invalid("The target bucket for logging has logging enabled itself"));
    }
    if target.configs.contains_key(crate::s3::sse::CONFIG) {
        return Err(invalid("The target bucket for logging must not have default encryption"));
    }
    if target.configs.contains_key(PAYMENT) {
        return Err(invalid("The target bucket for logging must not be requester-pays"));
    }
    let grants = match le.target_grants.as_deref() {
        None | Some([]) => None,
        Some(list) => {
            if acl::Ownership::of(&target) == acl::Ownership::BucketOwnerEnforced {
                return Err(crate::s3::acl::acls_disabled());
            }
            let mut out = Vec::new();
            for g in list {
                let perm = match g.permission.as_ref().map(|p| p.as_str()) {
                    Some("READ") => Perm::Read,
                    Some("WRITE") => Perm::Write,
                    Some("FULL_CONTROL") => Perm::FullControl,
                    _ => return Err(s3_error!(MalformedXML, "Unknown target grant permission")),
                };
                out.push(acl::Grant { grantee: crate::s3::acl::grantee_of(state, g.grantee.as_ref())?, perm });
            }
            acl::encode(&out, &target.owner)
        }
    };
    if !delivery_allowed(&entry, &target, &le.target_prefix) {
        return Err(s3_error!(AccessDenied, "The target bucket's policy does not let the logging service write"));
    }
    let config =
        Config { target_bucket: target.bck.name.clone(), target_prefix: le.target_prefix, partitioned, grants };
    let doc = serde_json::to_string(&config).map_err(errors::internal)?;
    crate::s3::bucket::set_config(state, name, CONFIG, Some(doc)).await?;
    Ok(S3Response::new(PutBucketLoggingOutput {}))
}

pub async fn get(
    state: &SharedState,
    req: S3Request<GetBucketLoggingInput>,
) -> S3Result<S3Response<GetBucketLoggingOutput>> {
    let entry = bucket(&req)?;
    let logging_enabled = of(&entry).map(|c| {
        let format = match &c.partitioned {
            Some(source) => TargetObjectKeyFormat {
                partitioned_prefix: Some(PartitionedPrefix {
                    partition_date_source: Some(PartitionDateSource::from(source.clone())),
                }),
                simple_prefix: None,
            },
            None => TargetObjectKeyFormat { partitioned_prefix: None, simple_prefix: Some(SimplePrefix {}) },
        };
        let target_grants = c.grants.as_deref().map(|stored| target_grants(state, stored, &entry));
        LoggingEnabled {
            target_bucket: c.target_bucket,
            target_grants,
            target_object_key_format: Some(format),
            target_prefix: c.target_prefix,
        }
    });
    Ok(S3Response::new(GetBucketLoggingOutput { logging_enabled }))
}

fn target_grants(state: &AppState, stored: &str, entry: &BucketEntry) -> Vec<TargetGrant> {
    crate::s3::acl::grants_of(state, Some(stored), &entry.owner, &entry.owner)
        .into_iter()
        .map(|g| TargetGrant {
            grantee: g.grantee,
            permission: g.permission.map(|p| BucketLogsPermission::from(p.as_str().to_owned())),
        })
        .collect()
}

pub async fn put_payment(
    state: &SharedState,
    req: S3Request<PutBucketRequestPaymentInput>,
) -> S3Result<S3Response<PutBucketRequestPaymentOutput>> {
    bucket(&req)?;
    let payer = req.input.request_payment_configuration.payer.as_str();
    let doc = match payer {
        Payer::REQUESTER => Some(Payer::REQUESTER.to_owned()),
        Payer::BUCKET_OWNER => None,
        other => return Err(s3_error!(MalformedXML, "Unknown payer {other:?}")),
    };
    crate::s3::bucket::set_config(state, req.input.bucket, PAYMENT, doc).await?;
    Ok(S3Response::new(PutBucketRequestPaymentOutput {}))
}

pub async fn get_payment(
    _state: &SharedState,
    req: S3Request<GetBucketRequestPaymentInput>,
) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
    let entry = bucket(&req)?;
    let payer = if entry.configs.contains_key(PAYMENT) { Payer::REQUESTER } else { Payer::BUCKET_OWNER };
    Ok(S3Response::new(GetBucketRequestPaymentOutput { payer: Some(Payer::from_static(payer)) }))
}
