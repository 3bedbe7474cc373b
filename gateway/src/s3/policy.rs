//! S3 bucket policies: the JSON policy language (statements with Effect, Principal/NotPrincipal,
//! Action/NotAction, Resource/NotResource and Condition), validated when set and evaluated by the door for
//! every request s3s routes to a bucket that has one: an explicit Deny refuses, an Allow grants beyond the
//! bucket's ACL, and no matching statement leaves the ACL to decide. Public access block settings sit beside
//! it: a public policy can be refused when set, or ignored for callers outside the bucket owner.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use trove_namespace::BucketEntry;

use crate::s3::ctx::bucket;
use crate::s3::errors;
use crate::state::SharedState;

/// The bucket configurations' names in the registry.
pub const CONFIG: &str = "policy";
pub const PUBLIC_ACCESS_BLOCK: &str = "public-access-block";

/// How a service principal (`{"Service": "logging.s3.amazonaws.com"}`) is kept, and how an [`Ask`] made on a
/// service's behalf names it.
pub const SERVICE: &str = "service:";

/// S3's limit on a bucket policy document.
const MAX_POLICY: usize = 20 * 1024;

/// One statement, normalized: every list-or-string field is a list.
#[derive(Debug, Clone, PartialEq)]
struct Statement {
    allow: bool,
    principal: Option<Vec<String>>,
    not_principal: Option<Vec<String>>,
    action: Option<Vec<String>>,
    not_action: Option<Vec<String>>,
    resource: Option<Vec<String>>,
    not_resource: Option<Vec<String>>,
    /// Operator -> condition key -> values.
    condition: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What the door knows about a request, for a policy to decide on.
pub struct Ask<'a> {
    /// Canonical id of the caller (`service:<name>` for a service); `None` when anonymous.
    pub user: Option<&'a str>,
    /// `s3:GetObject`, `s3:ListBucket`, ...
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: String,
    /// Condition keys (as [`condition_key`] makes them: `s3:x-amz-acl`, `s3:prefix`, `aws:securetransport`,
    /// `s3:existingobjecttag/<key>`...) with their values.
    pub context: BTreeMap<String, String>,
}

/// A policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deny,
    Allow,
    /// No statement applies: the ACL decides.
    Neutral,
}

fn malformed(why: impl std::fmt::Display) -> S3Error {
    s3_error!(MalformedPolicy, "{why}")
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, S3Error> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| malformed(format!("{what} must hold strings"))))
            .collect(),
        _ => Err(malformed(format!("{what} must be a string or a list of strings"))),
    }
}

/// `"*"`, `{"AWS": ...}`, `{"CanonicalUser": ...}` or `{"Service": ...}`: the principals named (services as
/// `service:<name>`, which no user id can be).
fn principals(v: &Value) -> Result<Vec<String>, S3Error> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".to_owned()]),
        Value::Object(m) => {
            let mut out = Vec::new();
            for (k, v) in m {
                match k.as_str() {
                    "Service" => out.extend(strings(v, "Principal")?.into_iter().map(|s| format!("{SERVICE}{s}"))),
                    "AWS" | "CanonicalUser" | "Federated" => out.extend(strings(v, "Principal")?),
                    _ => return Err(malformed(format!("unknown principal type {k}"))),
                }
            }
            Ok(out)
        }
        _ => Err(malformed("Principal must be \"*\" or an object")),
    }
}

impl Policy {
    /// Parses and validates a policy document for the bucket `bucket`.
    pub fn parse(doc: &str, bucket: &str) -> Result<Policy, S3Error> {
        if doc.len() > MAX_POLICY {
            return Err(malformed("Policies must be 20 KB or less"));
        }
        let v: Value = serde_json::from_str(doc).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| malformed("a policy is a JSON object"))?;
        let list = match obj.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(s @ Value::Object(_)) => vec![s.clone()],
            _ => return Err(malformed("Missing required field Statement")),
        };
        if list.is_empty() {
            return Err(malformed("Missing required field Statement"));
        }
        let mut statements = Vec::new();
        for s in &list {
            let s = s.as_object().ok_or_else(|| malformed("a statement is a JSON object"))?;
            let allow = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(malformed("Effect must be Allow or Deny")),
            };
            let principal = s.get("Principal").map(principals).transpose()?;
            let not_principal = s.get("NotPrincipal").map(principals).transpose()?;
            if principal.is_none() == not_principal.is_none() {
                return Err(malformed("a statement needs exactly one of Principal and NotPrincipal"));
            }
            if not_principal.is_some() && allow {
                // AWS accepts NotPrincipal only with Deny for bucket policies (the suite checks the refusal).
                return Err(s3_error!(InvalidArgument, "NotPrincipal with Allow is not supported"));
            }
            let action = s.get("Action").map(|v| strings(v, "Action")).transpose()?;
            let not_action = s.get("NotAction").map(|v| strings(v, "NotAction")).transpose()?;
            if action.is_none() == not_action.is_none() {
                return Err(malformed("a statement needs exactly one of Action and NotAction"));
            }
            for a in action.iter().chain(not_action.iter()).flatten() {
                if !(a == "*" || a.starts_with("s3:")) {
                    return Err(malformed(format!("Policy has invalid action {a}")));
                }
            }
            let mut resource = s.get("Resource").map(|v| strings(v, "Resource")).transpose()?;
            let not_resource = s.get("NotResource").map(|v| strings(v, "NotResource")).transpose()?;
            if resource.is_none() && not_resource.is_none() {
                // No resource named: the statement is about the bucket and everything in it (as RGW reads it).
                resource = Some(vec![format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]);
            }
            if resource.is_some() && not_resource.is_some() {
                return Err(malformed("a statement needs exactly one of Resource and NotResource"));
            }
            for r in resource.iter().chain(not_resource.iter()).flatten() {
                let Some(path) = r.strip_prefix("arn:aws:s3:::") else {
                    return Err(malformed(format!("Policy has invalid resource {r}")));
                };
                let b = path.split('/').next().unwrap_or_default();
                if !wildcard(b, bucket) {
                    return Err(malformed("Policy has invalid resource: it names another bucket"));
                }
            }
            let mut condition = BTreeMap::new();
            if let Some(c) = s.get("Condition") {
                let c = c.as_object().ok_or_else(|| malformed("Condition must be an object"))?;
                for (op, kv) in c {
                    if !KNOWN_OPERATORS.contains(&op.trim_end_matches("IfExists")) {
                        return Err(malformed(format!("unknown condition operator {op}")));
                    }
                    let kv = kv.as_object().ok_or_else(|| malformed("a condition maps keys to values"))?;
                    let mut m = BTreeMap::new();
                    for (k, v) in kv {
                        let vals = match v {
                            Value::Bool(b) => vec![b.to_string()],
                            Value::Number(n) => vec![n.to_string()],
                            other => strings(other, "a condition value")?,
                        };
                        m.insert(condition_key(k), vals);
                    }
                    condition.insert(op.clone(), m);
                }
            }
            statements.push(Statement {
                allow,
                principal,
                not_principal,
                action,
                not_action,
                resource,
                not_resource,
                condition,
            });
        }
        Ok(Policy { statements })
    }

    /// The verdict on `ask`: any matching Deny wins over any matching Allow.
    pub fn evaluate(&self, ask: &Ask<'_>) -> Verdict {
        let mut verdict = Verdict::Neutral;
        for s in &self.statements {
            if s.applies(ask) {
                if !s.allow {
                    return Verdict::Deny;
                }
                verdict = Verdict::Allow;
            }
        }
        verdict
    }

    /// Whether any statement has a condition on a key that starts with `prefix` (`s3:ExistingObjectTag/`).
    pub fn looks_at(&self, prefix: &str) -> bool {
        let prefix = condition_key(prefix);
        self.statements.iter().flat_map(|s| s.condition.values()).flat_map(|m| m.keys()).any(|k| k.starts_with(&prefix))
    }

    /// Whether the policy grants anything to everyone (S3's "public": a `*` principal in an Allow without
    /// a condition that narrows it to known callers or sources).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.allow
                && s.principal.as_ref().is_some_and(|p| p.iter().any(|x| x == "*"))
                && !s.condition.values().flat_map(|m| m.keys()).any(|k| {
                    matches!(
                        k.as_str(),
                        "aws:sourceip"
                            | "aws:sourcevpc"
                            | "aws:sourcevpce"
                            | "aws:sourceaccount"
                            | "aws:principalaccount"
                            | "aws:userid"
                            | "aws:sourcearn"
                    )
                })
        })
    }
}

const KNOWN_OPERATORS: [&str; 20] = [
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "Bool",
    "Null",
    "IpAddress",
    "NotIpAddress",
];

impl Statement {
    fn applies(&self, ask: &Ask<'_>) -> bool {
        let principal_ok = match (&self.principal, &self.not_principal) {
            (Some(p), _) => p.iter().any(|x| principal_matches(x, ask.user)),
            (None, Some(np)) => !np.iter().any(|x| principal_matches(x, ask.user)),
            (None, None) => false,
        };
        let action_ok = match (&self.action, &self.not_action) {
            (Some(a), _) => a.iter().any(|x| action_matches(x, ask.action)),
            (None, Some(na)) => !na.iter().any(|x| action_matches(x, ask.action)),
            (None, None) => false,
        };
        let resource_ok = match (&self.resource, &self.not_resource) {
            (Some(r), _) => r.iter().any(|x| wildcard(x, &ask.resource)),
            (None, Some(nr)) => !nr.iter().any(|x| wildcard(x, &ask.resource)),
            (None, None) => false,
        };
        principal_ok
            && action_ok
            && resource_ok
            && self.condition.iter().all(|(op, kv)| condition(op, kv, &ask.context))
    }
}

/// A condition key as policies and asks compare them: the name is case-insensitive, what follows a `/` (a tag
/// key in `s3:ExistingObjectTag/<key>`) is not.
pub fn condition_key(k: &str) -> String {
    match k.split_once('/') {
        Some((name, rest)) => format!("{}/{rest}", name.to_ascii_lowercase()),
        None => k.to_ascii_lowercase(),
    }
}

/// `*`, a canonical user id, or an IAM-style ARN naming one (`arn:aws:iam::<id>:user/<name>`, `...:root`). A
/// service is matched only by a statement that names it.
fn principal_matches(p: &str, user: Option<&str>) -> bool {
    if user.is_some_and(|u| u.starts_with(SERVICE)) {
        return Some(p) == user;
    }
    if p == "*" {
        return true;
    }
    let Some(user) = user else { return false };
    if p == user {
        return true;
    }
    p.strip_prefix("arn:aws:iam::").is_some_and(|rest| {
        let (account, who) = rest.split_once(':').unwrap_or((rest, ""));
        account == user || who.rsplit('/').next() == Some(user)
    })
}

fn action_matches(pattern: &str, action: &str) -> bool {
    pattern == "*" || wildcard(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
}

/// `*` (any run) and `?` (one character) matching, as policies use them.
fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn condition(op: &str, kv: &BTreeMap<String, Vec<String>>, ctx: &BTreeMap<String, String>) -> bool {
    let if_exists = op.ends_with("IfExists");
    let op = op.trim_end_matches("IfExists");
    kv.iter().all(|(key, want)| {
        let have = ctx.get(key);
        if op == "Null" {
            let absent = have.is_none();
            return want.iter().any(|w| (w == "true") == absent);
        }
        let Some(have) = have else {
            // A missing key satisfies only the negated operators (and ...IfExists).
            return if_exists || op.contains("Not");
        };
        let any = |f: &dyn Fn(&str) -> bool| want.iter().any(|w| f(w));
        match op {
            "StringEquals" => any(&|w| w == have),
            "StringNotEquals" => !any(&|w| w == have),
            "StringEqualsIgnoreCase" => any(&|w| w.eq_ignore_ascii_case(have)),
            "StringNotEqualsIgnoreCase" => !any(&|w| w.eq_ignore_ascii_case(have)),
            "StringLike" | "ArnLike" | "ArnEquals" => any(&|w| wildcard(w, have)),
            "ArnNotLike" | "ArnNotEquals" => !any(&|w| wildcard(w, have)),
            "StringNotLike" => !any(&|w| wildcard(w, have)),
            "Bool" => any(&|w| w.eq_ignore_ascii_case(have)),
            "NumericEquals"
            | "NumericNotEquals"
            | "NumericLessThan"
            | "NumericLessThanEquals"
            | "NumericGreaterThan"
            | "NumericGreaterThanEquals" => {
                let Ok(h) = have.parse::<f64>() else { return false };
                let cmp = |w: &str| {
                    w.parse::<f64>().is_ok_and(|w| match op {
                        "NumericEquals" => h == w,
                        "NumericNotEquals" => h != w,
                        "NumericLessThan" => h < w,
                        "NumericLessThanEquals" => h <= w,
                        "NumericGreaterThan" => h > w,
                        _ => h >= w,
                    })
                };
                any(&cmp)
            }
            // Trove sees loopback and cluster addresses, not the client networks a policy would name: an
            // address condition never matches (so an Allow with one grants nothing, a Deny denies nothing).
            _ => false,
        }
    })
}

/// The policy of `entry`, if it has one (registry documents were validated when set).
pub fn of(entry: &BucketEntry) -> Option<Policy> {
    let name = entry.bck.name.as_str();
    entry.configs.get(CONFIG).and_then(|d| Policy::parse(d, name).ok())
}

/// A bucket's public access block settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

pub fn block_of(entry: &BucketEntry) -> Block {
    entry.configs.get(PUBLIC_ACCESS_BLOCK).and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default()
}

pub async fn put(
    state: &SharedState,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let entry = bucket(&req)?;
    let policy = Policy::parse(&req.input.policy, &req.input.bucket)?;
    if policy.is_public() && block_of(&entry).block_public_policy {
        return Err(s3_error!(AccessDenied, "The bucket's public access block forbids public policies"));
    }
    crate::s3::bucket::set_config(state, req.input.bucket.clone(), CONFIG, Some(req.input.policy)).await?;
    Ok(S3Response::new(PutBucketPolicyOutput {}))
}

pub async fn get(
    _state: &SharedState,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let entry = bucket(&req)?;
    let doc = entry
        .configs
        .get(CONFIG)
        .cloned()
        .ok_or_else(|| s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"))?;
    Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(doc) }))
}

pub async fn delete(
    state: &SharedState,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, None).await?;
    Ok(S3Response::new(DeleteBucketPolicyOutput {}))
}

pub async fn status(
    _state: &SharedState,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let entry = bucket(&req)?;
    let public = of(&entry).is_some_and(|p| p.is_public()) || crate::acl::is_public(entry.acl.as_deref());
    Ok(S3Response::new(GetBucketPolicyStatusOutput { policy_status: Some(PolicyStatus { is_public: Some(public) }) }))
}

pub async fn put_block(
    state: &SharedState,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    bucket(&req)?;
    let c = &req.input.public_access_block_configuration;
    let block = Block {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    let doc = serde_json::to_string(&block).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::s3::bucket::set_config(state, req.input.bucket, PUBLIC_ACCESS_BLOCK, Some(doc)).await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput {}))
}

pub async fn get_block(
    _state: &SharedState,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let entry = bucket(&req)?;
    if !entry.configs.contains_key(PUBLIC_ACCESS_BLOCK) {
        return Err(errors::custom(
            "NoSuchPublicAccessBlockConfiguration",
            http::StatusCode::NOT_FOUND,
            "The public access block configuration was not found",
        ));
    }
    let b = block_of(&entry);
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(b.block_public_acls),
            ignore_public_acls: Some(b.ignore_public_acls),
            block_public_policy: Some(b.block_public_policy),
            restrict_public_buckets: Some(b.restrict_public_buckets),
        }),
    }))
}

pub async fn delete_block(
    state: &SharedState,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, PUBLIC_ACCESS_BLOCK, None).await?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput {}))
}

/// The S3 action name a policy says for an s3s operation.
pub fn action_name(op: &str) -> String {
    match op {
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "s3:ListBucket".to_owned(),
        "ListObjectVersions" => "s3:ListBucketVersions".to_owned(),
        "HeadObject" => "s3:GetObject".to_owned(),
        "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "UploadPartCopy"
        | "PostObject"
        | "CopyObject" => "s3:PutObject".to_owned(),
        "AbortMultipartUpload" => "s3:AbortMultipartUpload".to_owned(),
        "ListParts" => "s3:ListMultipartUploadParts".to_owned(),
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads".to_owned(),
        "DeleteObjects" => "s3:DeleteObject".to_owned(),
        "GetBucketLocation" => "s3:GetBucketLocation".to_owned(),
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock".to_owned(),
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => "s3:PutBucketPublicAccessBlock".to_owned(),
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration".to_owned(),
        "PutBucketEncryption" | "DeleteBucketEncryption" => "s3:PutEncryptionConfiguration".to_owned(),
        "GetObjectLockConfiguration" => "s3:GetBucketObjectLockConfiguration".to_owned(),
        "PutObjectLockConfiguration" => "s3:PutBucketObjectLockConfiguration".to_owned(),
        "DeleteBucketTagging" => "s3:PutBucketTagging".to_owned(),
        other => format!("s3:{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'a>(user: Option<&'a str>, action: &'a str, resource: &str, ctx: &[(&str, &str)]) -> Ask<'a> {
        Ask {
            user,
            action,
            resource: resource.to_owned(),
            context: ctx.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn statements_match_and_deny_wins() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},
            {"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"},
            {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*",
             "Condition":{"StringLike":{"s3:x-amz-acl":"public*"}}},
            {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*",
             "Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}]}"#;
        let p = Policy::parse(doc, "b").unwrap();
        assert!(p.is_public());
        assert_eq!(p.evaluate(&ask(None, "s3:ListBucket", "arn:aws:s3:::b", &[])), Verdict::Allow);
        assert_eq!(p.evaluate(&ask(None, "s3:GetObject", "arn:aws:s3:::b/k", &[])), Verdict::Neutral);
        let enc = [("s3:x-amz-server-side-encryption", "AES256")];
        assert_eq!(p.evaluate(&ask(Some("u"), "s3:PutObject", "arn:aws:s3:::b/k", &enc)), Verdict::Allow);
        assert_eq!(p.evaluate(&ask(Some("u"), "s3:PutObject", "arn:aws:s3:::b/k", &[])), Verdict::Deny);
        let public = [("s3:x-amz-server-side-encryption", "AES256"), ("s3:x-amz-acl", "public-read")];
        assert_eq!(p.evaluate(&ask(Some("u"), "s3:PutObject", "arn:aws:s3:::b/k", &public)), Verdict::Deny);
    }

    #[test]
    fn bad_policies_are_refused() {
        for doc in [
            "not json",
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:*","Resource":"arn:aws:s3:::b"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#,
        ] {
            assert!(Policy::parse(doc, "b").is_err(), "{doc}");
        }
    }

    #[test]
    fn wildcards_and_principals() {
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b"));
        assert!(wildcard("a?c*", "abcdef") && !wildcard("a?c", "ac"));
        assert!(principal_matches("arn:aws:iam::alice:root", Some("alice")));
        assert!(principal_matches("arn:aws:iam::acct:user/alice", Some("alice")));
        assert!(!principal_matches("alice", None));
    }
}
