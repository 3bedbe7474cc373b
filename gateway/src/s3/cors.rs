//! CORS for browsers: a bucket's CORS configuration (Put/Get/DeleteBucketCors), the answer to a preflight
//! `OPTIONS` (presigned URLs included: a preflight carries no credentials), and the `Access-Control-*` headers
//! of actual requests from an allowed origin, errors included.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use trove_namespace::BucketEntry;

use crate::s3::ctx::bucket;
use crate::s3::errors;
use crate::state::SharedState;

/// The bucket configuration's name in the registry.
pub const CONFIG: &str = "cors";

/// S3's limit on rules per configuration.
const MAX_RULES: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    methods: Vec<String>,
    origins: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expose: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<i32>,
}

fn rules_of(entry: &BucketEntry) -> Option<Vec<Rule>> {
    entry.configs.get(CONFIG).and_then(|d| serde_json::from_str(d).ok())
}

/// `*` in an origin or header pattern matches any run of characters (S3 allows one).
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post),
    }
}

impl Rule {
    fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.origins.iter().any(|o| matches(o, origin))
            && self.methods.iter().any(|m| m == method)
            && headers.iter().all(|h| self.headers.iter().any(|p| matches(&p.to_ascii_lowercase(), h)))
    }

    /// The `Access-Control-*` headers for an allowed request from `origin`.
    fn headers(&self, origin: &str, requested: &[String], preflight: bool, h: &mut http::HeaderMap) {
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = http::HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        let any_origin = self.origins.iter().any(|o| o == "*");
        put("access-control-allow-origin", if any_origin { "*" } else { origin });
        put("access-control-allow-methods", &self.methods.join(", "));
        if preflight && !requested.is_empty() {
            put("access-control-allow-headers", &requested.join(", "));
        }
        if !self.expose.is_empty() {
            put("access-control-expose-headers", &self.expose.join(", "));
        }
        if let Some(age) = self.max_age {
            put("access-control-max-age", &age.to_string());
        }
        if !any_origin {
            put("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
        }
    }
}

fn requested_headers(h: &http::HeaderMap) -> Vec<String> {
    h.get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// The answer to a preflight `OPTIONS` on the bucket `entry` (or a missing bucket).
pub fn preflight(entry: Option<&BucketEntry>, h: &http::HeaderMap) -> http::Response<s3s::Body> {
    let origin = h.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
    let method = h.get("access-control-request-method").and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (origin, method) else {
        return errors::xml_response(
            http::StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        );
    };
    let Some(entry) = entry else {
        return errors::xml_response(
            http::StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist",
        );
    };
    let requested = requested_headers(h);
    let rule = rules_of(entry).and_then(|rules| rules.into_iter().find(|r| r.allows(origin, method, &requested)));
    match rule {
        Some(rule) => {
            let mut resp = http::Response::new(s3s::Body::empty());
            rule.headers(origin, &requested, true, resp.headers_mut());
            resp
        }
        None => errors::xml_response(
            http::StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        ),
    }
}

/// Adds the `Access-Control-*` headers to the answer of an actual request from an allowed origin.
pub fn decorate(entry: &BucketEntry, origin: &str, method: &str, resp: &mut http::Response<s3s::Body>) {
    if let Some(rule) = rules_of(entry).and_then(|rules| rules.into_iter().find(|r| r.allows(origin, method, &[]))) {
        rule.headers(origin, &[], false, resp.headers_mut());
    }
}

pub async fn put(state: &SharedState, req: S3Request<PutBucketCorsInput>) -> S3Result<S3Response<PutBucketCorsOutput>> {
    bucket(&req)?;
    let rules = &req.input.cors_configuration.cors_rules;
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(s3_error!(MalformedXML, "A CORS configuration holds 1 to {MAX_RULES} rules"));
    }
    let mut out = Vec::new();
    for r in rules {
        for m in &r.allowed_methods {
            if !matches!(m.as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD") {
                return Err(s3_error!(
                    InvalidRequest,
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                ));
            }
        }
        for o in &r.allowed_origins {
            if o.matches('*').count() > 1 {
                return Err(s3_error!(InvalidRequest, "AllowedOrigin \"{o}\" can not have more than one wildcard."));
            }
        }
        out.push(Rule {
            id: r.id.clone(),
            methods: r.allowed_methods.clone(),
            origins: r.allowed_origins.clone(),
            headers: r.allowed_headers.clone().unwrap_or_default(),
            expose: r.expose_headers.clone().unwrap_or_default(),
            max_age: r.max_age_seconds,
        });
    }
    let doc = serde_json::to_string(&out).map_err(|e| s3_error!(InternalError, "{e}"))?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, Some(doc)).await?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub async fn get(
    _state: &SharedState,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let entry = bucket(&req)?;
    let rules =
        rules_of(&entry).ok_or_else(|| s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist"))?;
    let cors_rules = rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_methods: r.methods,
            allowed_origins: r.origins,
            allowed_headers: (!r.headers.is_empty()).then_some(r.headers),
            expose_headers: (!r.expose.is_empty()).then_some(r.expose),
            max_age_seconds: r.max_age,
        })
        .collect();
    Ok(S3Response::new(GetBucketCorsOutput { cors_rules: Some(cors_rules) }))
}

pub async fn delete(
    state: &SharedState,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, CONFIG, None).await?;
    Ok(S3Response::new(DeleteBucketCorsOutput {}))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn origin_patterns() {
        assert!(matches("*suffix", "foo.suffix") && !matches("*suffix", "foo.suffix.get"));
        assert!(
            matches("start*end", "startend")
                && matches("start*end", "start12end")
                && !matches("start*end", "0start12end")
        );
        assert!(matches("prefix*", "prefix.suffix") && !matches("prefix*", "bla.prefix"));
        assert!(matches("*", "anything") && matches("exact", "exact") && !matches("exact", "exact2"));
    }
}
