//! Server access log delivery (S3 bucket logging): one record per request to a bucket with logging enabled,
//! in S3's format, gathered per source bucket on the node that served the request, and written every
//! `[s3] log_roll_secs` (sooner when a batch grows large) as one object under the target prefix. A node writes
//! its log objects under keys it owns itself (the unique part of the name is drawn until the key hashes to
//! the node), so delivery never crosses the cluster. Permission is checked again at delivery: a target whose
//! policy no longer lets the logging service in gets nothing, and the records are dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use trove_cache::ObjMeta;

use crate::cluster::Owner;
use crate::request::{AuthKind, Target};
use crate::s3::logging;
use crate::state::SharedState;

/// A batch this large is delivered without waiting for its roll time.
const EARLY_DELIVERY: usize = 4 << 20;
/// Records beyond this much per bucket waiting for delivery are dropped (delivery cannot keep up).
const MAX_PENDING: usize = 16 << 20;

#[derive(Default)]
pub struct Logs {
    pending: Mutex<HashMap<String, Batch>>,
    wake: tokio::sync::Notify,
    /// Records dropped because a bucket's pending batch was full or its delivery failed.
    pub dropped: AtomicU64,
}

struct Batch {
    text: String,
    since: std::time::Instant,
}

/// What is known about a request when its response is ready.
pub struct Served<'a> {
    pub target: &'a Target,
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub remote: Option<std::net::SocketAddr>,
    pub requester: Option<String>,
    pub request_id: &'a str,
    pub started: OffsetDateTime,
    pub elapsed: Duration,
}

/// Whether the request is to a bucket whose access is logged.
pub fn is_logged(state: &crate::state::AppState, target: &Target) -> bool {
    target.api == crate::request::Api::S3
        && target.bucket.as_deref().is_some_and(|b| {
            state.registry.snapshot().buckets.get(b).is_some_and(|e| e.configs.contains_key(logging::CONFIG))
        })
}

impl Logs {
    /// Adds the record of a request whose bucket logs its access (nothing otherwise).
    pub fn record(&self, state: &crate::state::AppState, s: &Served<'_>, resp: &http::Response<s3s::Body>) {
        let Some(bucket) = s.target.bucket.as_deref() else { return };
        let snap = state.registry.snapshot();
        let Some(entry) = snap.buckets.get(bucket).filter(|e| e.configs.contains_key(logging::CONFIG)) else {
            return;
        };
        let line = format_record(&entry.owner, bucket, s, resp);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let batch = pending
            .entry(bucket.to_owned())
            .or_insert_with(|| Batch { text: String::new(), since: std::time::Instant::now() });
        if batch.text.len() + line.len() > MAX_PENDING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        batch.text.push_str(&line);
        if batch.text.len() >= EARLY_DELIVERY {
            self.wake.notify_one();
        }
    }

    /// The batches due for delivery: older than `roll`, or large.
    fn due(&self, roll: Duration) -> Vec<(String, String)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, b)| b.since.elapsed() >= roll || b.text.len() >= EARLY_DELIVERY)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter().filter_map(|k| pending.remove(&k).map(|b| (k, b.text))).collect()
    }
}

/// The delivery task: runs for the node's life.
pub async fn deliver_forever(state: SharedState) {
    let roll = Duration::from_secs(state.log_roll_secs);
    let tick = roll.min(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = state.server_logs.wake.notified() => {}
        }
        for (source, text) in state.server_logs.due(roll) {
            let lines = text.lines().count() as u64;
            if let Err(why) = deliver(&state, &source, text).await {
                state.server_logs.dropped.fetch_add(lines, Ordering::Relaxed);
                tracing::warn!(bucket = %source, %why, lines, "access log records not delivered");
            }
        }
    }
}

/// Writes one batch of `source`'s records to its target bucket, if logging is still on and allowed.
async fn deliver(state: &SharedState, source: &str, text: String) -> Result<(), String> {
    let entry = state.registry.get(source).ok_or("the source bucket is gone")?;
    let config = logging::of(&entry).ok_or("logging was turned off")?;
    let target = state.registry.get(&config.target_bucket).ok_or("the target bucket is gone")?;
    if !logging::delivery_allowed(&entry, &target, &config.target_prefix) {
        return Err("the target bucket's policy does not let the logging service write".into());
    }
    let now = OffsetDateTime::now_utc();
    let key = (0..64)
        .map(|_| log_key(&config, &entry, &state.region, now))
        .find(|k| state.owner(&target.bck, k) == Owner::Local)
        .unwrap_or_else(|| log_key(&config, &entry, &state.region, now));
    let st = state.clone();
    let (bck, k) = (target.bck.clone(), key.clone());
    let staged = crate::data::blocking(move || Ok(st.store.stage(&bck, &k)?)).await.map_err(|e| e.to_string())?;
    let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(text))]);
    let received = crate::data::receive::receive(&staged, Some(body), &[], u64::MAX)
        .await
        .map_err(|_| "could not stage the log object".to_owned())?;
    let meta = ObjMeta {
        key,
        size: received.size,
        etag: received.etag(),
        mtime_ms: crate::data::now_ms(),
        content_type: Some("text/plain".to_owned()),
        acl: config.grants.clone(),
        ..Default::default()
    };
    crate::data::put(state, &target, staged, meta, None).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// S3's log object names: `<prefix>YYYY-mm-DD-HH-MM-SS-<unique>`, or partitioned
/// `<prefix><account>/<region>/<bucket>/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-<unique>`.
fn log_key(config: &logging::Config, source: &trove_namespace::BucketEntry, region: &str, t: OffsetDateTime) -> String {
    let stamp = format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{:016X}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        rand::random::<u64>()
    );
    match &config.partitioned {
        None => format!("{}{stamp}", config.target_prefix),
        Some(_) => format!(
            "{}{}/{region}/{}/{:04}/{:02}/{:02}/{stamp}",
            config.target_prefix,
            source.owner,
            source.bck.name,
            t.year(),
            t.month() as u8,
            t.day()
        ),
    }
}

/// The canonical id of the user whose access key signed the request (header or presigned URL), if known.
pub fn requester(state: &crate::state::AppState, h: &http::HeaderMap, target: &Target) -> Option<String> {
    let auth = h.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") {
        rest.split_once("Credential=").and_then(|(_, c)| c.split('/').next())
    } else if let Some(rest) = auth.strip_prefix("AWS ") {
        rest.split(':').next()
    } else {
        target.param("X-Amz-Credential").and_then(|c| c.split('/').next()).or_else(|| target.param("AWSAccessKeyId"))
    }?;
    state.user(key).map(|u| u.id.clone())
}

/// The error code of an S3 error response, kept by the frontend for the access log.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

/// One record in S3's server access log format (26 space-separated fields).
fn format_record(owner: &str, bucket: &str, s: &Served<'_>, resp: &http::Response<s3s::Body>) -> String {
    let h = s.headers;
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let dash = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("-").to_owned();
    let quoted = |v: Option<&str>| match v {
        Some(v) => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        None => "\"-\"".to_owned(),
    };
    let key = object_key(s.target, s.uri);
    let t = s.started;
    let month =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][t.month() as usize - 1];
    let time =
        format!("[{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000]", t.day(), t.year(), t.hour(), t.minute(), t.second());
    let request_uri =
        format!("{} {} {:?}", s.method, s.uri.path_and_query().map_or("/", |p| p.as_str()), http::Version::HTTP_11);
    let sent = resp.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    let object_size = match (*s.method == http::Method::PUT, key.is_some()) {
        (true, true) => header("content-length"),
        (false, true) if resp.status().is_success() => sent,
        _ => None,
    };
    let (sig, auth) = match s.target.auth {
        AuthKind::Anonymous => ("-", "-"),
        AuthKind::SigV4 => ("SigV4", "AuthHeader"),
        AuthKind::SigV4Presigned => ("SigV4", "QueryString"),
        AuthKind::SigV2 => ("SigV2", "AuthHeader"),
        AuthKind::SigV2Presigned => ("SigV2", "QueryString"),
    };
    let ms = s.elapsed.as_millis();
    let mut line = String::with_capacity(512);
    let _ = writeln!(
        line,
        "{owner} {bucket} {time} {} {} {} {} {} {} {} {} {} {} {ms} {ms} {} {} {} - {sig} - {auth} {} - - -",
        s.remote.map_or_else(|| "-".to_owned(), |a| a.ip().to_string()),
        dash(s.requester.as_deref()),
        s.request_id,
        operation(s.method, key.is_some(), s.target, h),
        dash(key),
        quoted(Some(&request_uri)),
        resp.status().as_u16(),
        dash(resp.extensions().get::<ErrorCode>().map(|c| c.0.as_str())),
        dash(sent),
        dash(object_size),
        quoted(header("referer")),
        quoted(header("user-agent")),
        dash(resp.headers().get("x-amz-version-id").and_then(|v| v.to_str().ok())),
        dash(header("host")),
    );
    line
}

/// The key part of the request's path (still URL-encoded, as S3 logs it), if it names one.
fn object_key<'a>(target: &Target, uri: &'a http::Uri) -> Option<&'a str> {
    let path = uri.path().strip_prefix('/')?;
    let key = if target.virtual_host { path } else { path.split_once('/')?.1 };
    (!key.is_empty()).then_some(key)
}

/// S3's operation names: `REST.<METHOD>.<resource>`, the resource a subresource's name (ACL, TAGGING,
/// UPLOADS...), PART for an upload's part, or OBJECT/BUCKET.
fn operation(method: &http::Method, has_key: bool, target: &Target, h: &http::HeaderMap) -> String {
    const SUBRESOURCES: [(&str, &str); 22] = [
        ("acl", "ACL"),
        ("tagging", "TAGGING"),
        ("versioning", "VERSIONING"),
        ("policy", "BUCKETPOLICY"),
        ("policyStatus", "BUCKETPOLICYSTATUS"),
        ("cors", "CORS"),
        ("lifecycle", "LIFECYCLE"),
        ("logging", "LOGGING_STATUS"),
        ("uploads", "UPLOADS"),
        ("delete", "MULTI_OBJECT_DELETE"),
        ("versions", "BUCKETVERSIONS"),
        ("location", "LOCATION"),
        ("encryption", "ENCRYPTION"),
        ("object-lock", "OBJECT_LOCK_CONFIGURATION"),
        ("retention", "RETENTION"),
        ("legal-hold", "LEGAL_HOLD"),
        ("requestPayment", "REQUEST_PAYMENT"),
        ("ownershipControls", "OWNERSHIP_CONTROLS"),
        ("publicAccessBlock", "PUBLIC_ACCESS_BLOCK"),
        ("attributes", "OBJECT_ATTRIBUTES"),
        ("website", "WEBSITE"),
        ("notification", "NOTIFICATION"),
    ];
    let has = |name: &str| target.param(name).is_some();
    let resource = if has("uploadId") {
        if has("partNumber") {
            "PART"
        } else {
            "UPLOAD"
        }
    } else if let Some((_, r)) = SUBRESOURCES.iter().find(|(q, _)| has(q)) {
        r
    } else if has_key {
        "OBJECT"
    } else {
        "BUCKET"
    };
    if *method == http::Method::PUT && resource == "OBJECT" && h.contains_key("x-amz-copy-source") {
        return "REST.COPY.OBJECT".to_owned();
    }
    format!("REST.{method}.{resource}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served<'a>(target: &'a Target, uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Served<'a> {
        Served {
            target,
            method: &http::Method::PUT,
            uri,
            headers,
            remote: Some("127.0.0.1:5000".parse().unwrap()),
            requester: Some("alice".into()),
            request_id: "ABC",
            started: OffsetDateTime::from_unix_timestamp(1_549_411_238).unwrap(),
            elapsed: Duration::from_millis(7),
        }
    }

    #[test]
    fn records_have_s3s_26_fields() {
        let uri: http::Uri = "/b/some%20key?x=1".parse().unwrap();
        let mut h = http::HeaderMap::new();
        h.insert("user-agent", "Boto3/1.0 \"odd\"".parse().unwrap());
        h.insert("content-length", "3".parse().unwrap());
        let target = Target::parse(&http::Method::PUT, &uri, &h, None);
        let mut resp = http::Response::new(s3s::Body::empty());
        resp.extensions_mut().insert(ErrorCode("NoSuchKey".into()));
        let line = format_record("owner", "b", &served(&target, &uri, &h), &resp);
        assert!(
            line.starts_with("owner b [06/Feb/2019:00:00:38 +0000] 127.0.0.1 alice ABC REST.PUT.OBJECT some%20key ")
        );
        assert!(
            line.contains(" \"PUT /b/some%20key?x=1 HTTP/1.1\" 200 NoSuchKey - 3 7 7 \"-\" \"Boto3/1.0 \\\"odd\\\"\" ")
        );
        assert_eq!(split(&line).len(), 26, "{line}");
    }

    /// The fields as log readers split them (brackets read as quotes, quoted fields with backslash escapes).
    fn split(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted, mut escaped, mut started) = (Vec::new(), String::new(), false, false, false);
        for c in line.replace(['[', ']'], "\"").trim_end().chars() {
            if escaped {
                cur.push(c);
                escaped = false;
                continue;
            }
            match c {
                '\\' if quoted => escaped = true,
                '"' => {
                    quoted = !quoted;
                    started = true;
                }
                ' ' if !quoted => {
                    if started || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                _ => cur.push(c),
            }
        }
        if started || !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    #[test]
    fn operations_and_keys() {
        let op = |m: http::Method, u: &str| {
            let uri: http::Uri = u.parse().unwrap();
            let t = Target::parse(&m, &uri, &http::HeaderMap::new(), None);
            operation(&m, object_key(&t, &uri).is_some(), &t, &http::HeaderMap::new())
        };
        assert_eq!(op(http::Method::GET, "/b/k"), "REST.GET.OBJECT");
        assert_eq!(op(http::Method::GET, "/b"), "REST.GET.BUCKET");
        assert_eq!(op(http::Method::PUT, "/b/k?acl"), "REST.PUT.ACL");
        assert_eq!(op(http::Method::PUT, "/b/k?partNumber=1&uploadId=x"), "REST.PUT.PART");
        assert_eq!(op(http::Method::POST, "/b/k?uploads"), "REST.POST.UPLOADS");
    }

    #[test]
    fn log_keys() {
        let source = trove_namespace::BucketEntry::new(trove_namespace::Bck::ais("src"), "acct".into(), 0, 1);
        let t = OffsetDateTime::from_unix_timestamp(1_549_411_238).unwrap();
        let mut c = logging::Config {
            target_bucket: "logs".into(),
            target_prefix: "log/".into(),
            partitioned: None,
            grants: None,
        };
        assert!(log_key(&c, &source, "us-east-1", t).starts_with("log/2019-02-06-00-00-38-"));
        c.partitioned = Some("EventTime".into());
        assert!(
            log_key(&c, &source, "us-east-1", t).starts_with("log/acct/us-east-1/src/2019/02/06/2019-02-06-00-00-38-")
        );
    }
}
