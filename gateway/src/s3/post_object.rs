//! POST Object: browser-based uploads (`multipart/form-data` to a bucket URL). The form's fields are read
//! (bounded), its policy document and signature checked (SigV2 or SigV4), the policy's conditions matched
//! against the fields as S3 matches them, the door asked as for a PUT, and then the file part streamed to disk
//! by the PUT handler itself, so the object gets exactly what a PUT with those headers would give it. The file
//! is never held in memory; its size limit is the policy's `content-length-range` (else S3's object limit).

use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use s3s::dto::*;
use s3s::{S3Error, S3Request};
use serde_json::Value;

use crate::request::Target;
use crate::s3::errors::{xml_escape as escape, xml_response};
use crate::state::{SharedState, User};

/// All fields before the file, in bytes: S3 refuses forms whose fields exceed 20 KB.
const MAX_FIELDS: usize = 20 * 1024;

/// A refusal, worded as S3 words it.
struct Refusal(StatusCode, String, String);

impl Refusal {
    fn new(status: StatusCode, code: &str, msg: impl Into<String>) -> Refusal {
        Refusal(status, code.to_owned(), msg.into())
    }
    fn bad(code: &str, msg: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, code, msg)
    }
    fn denied(msg: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::FORBIDDEN, "AccessDenied", msg)
    }
    fn response(self) -> Response<s3s::Body> {
        xml_response(self.0, &self.1, &self.2)
    }
}

impl From<S3Error> for Refusal {
    fn from(e: S3Error) -> Refusal {
        let status = e.status_code().unwrap_or(StatusCode::BAD_REQUEST);
        Refusal(status, e.code().as_str().to_owned(), e.message().unwrap_or_default().to_owned())
    }
}

/// The form's fields, names lower-cased (S3 matches them without regard to case), in order.
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Whether a request is a form upload this module serves: a POST of `multipart/form-data` to a bucket.
pub fn is_form_upload(method: &http::Method, h: &HeaderMap) -> bool {
    *method == http::Method::POST
        && h.get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

pub async fn serve(state: &SharedState, req: http::Request<s3s::Body>, target: &Target) -> Response<s3s::Body> {
    match upload(state, req, target).await {
        Ok(resp) => resp,
        Err(r) => r.response(),
    }
}

async fn upload(
    state: &SharedState,
    req: http::Request<s3s::Body>,
    target: &Target,
) -> Result<Response<s3s::Body>, Refusal> {
    let bucket = target.bucket.clone().ok_or_else(|| Refusal::bad("MethodNotAllowed", "POST needs a bucket"))?;
    let path_key = if target.virtual_host { req.uri().path().trim_start_matches('/') } else { "" };
    let path_has_key = !path_key.is_empty() || req.uri().path().trim_start_matches('/').contains('/');
    if path_has_key {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        ));
    }
    let (parts, body) = req.into_parts();
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Refusal::bad("MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
    })?;
    let mut form = multer::Multipart::new(body, boundary);
    let malformed = |e: multer::Error| {
        Refusal::bad(
            "MalformedPOSTRequest",
            format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
        )
    };

    // Fields up to the file (S3 ignores what follows it).
    let mut fields = Fields::default();
    let mut budget = MAX_FIELDS;
    let (file, filename) = loop {
        let Some(mut field) = form.next_field().await.map_err(malformed)? else {
            return Err(Refusal::bad("InvalidArgument", "POST requires exactly one file upload per request."));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            let filename = field.file_name().unwrap_or_default().to_owned();
            break (field, filename);
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            budget = budget.checked_sub(chunk.len()).ok_or_else(|| {
                Refusal::bad(
                    "MaxPostPreDataLengthExceeded",
                    "Your POST request fields preceeding the upload file were too large.",
                )
            })?;
            value.extend_from_slice(&chunk);
        }
        fields.0.push((name, String::from_utf8_lossy(&value).into_owned()));
    };

    let key_field = fields.get("key").ok_or_else(|| {
        Refusal::bad(
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
        )
    })?;
    let key = key_field.replace("${filename}", &filename);
    // In a cluster the key's owner stores it: the form goes there whole (its fields again, then the rest of
    // the file as it arrives), once.
    if !parts.headers.contains_key(crate::cluster::forward::FORWARDED) {
        if let Some(entry) = state.registry.get(&bucket) {
            if let crate::cluster::Owner::Remote(node) = state.owner(&entry.bck, &key) {
                let file_type = file.content_type().map(|m| m.to_string());
                let (body, content_type) = rebuilt(&fields, &filename, file_type.as_deref(), file);
                let mut parts = parts;
                parts.headers.remove(http::header::CONTENT_LENGTH);
                parts.headers.insert(http::header::CONTENT_TYPE, content_type);
                return Ok(crate::cluster::forward::pass_to(state, &parts, &node, body).await);
            }
        }
    }
    let user = authenticate(state, &fields)?;
    let limits = match fields.get("policy") {
        Some(doc) => check_policy(doc, &fields, &bucket, &key)?,
        None => (0, u64::MAX),
    };
    let entry =
        crate::s3::access::check_form_upload(state, user, &bucket, &key, &parts.headers).map_err(Refusal::from)?;

    // The file goes through the PUT handler, as a PUT with the form's fields as headers.
    let input = put_input(&fields, &bucket, &key, file)?;
    let redirect = fields.get("success_action_redirect").or_else(|| fields.get("redirect")).map(str::to_owned);
    let status = fields.get("success_action_status").map(str::to_owned);
    let mut extensions = http::Extensions::new();
    extensions.insert(crate::door::Grant { user: user.cloned(), entry: Some(entry) });
    let put = S3Request {
        input,
        method: http::Method::PUT,
        uri: parts.uri.clone(),
        headers: parts.headers.clone(),
        extensions,
        credentials: None,
        region: None,
        service: None,
        trailing_headers: None,
    };
    let written = crate::s3::object::put_with_limits(state, put, limits).await.map_err(Refusal::from)?;
    let etag = written.output.e_tag.as_ref().map(|e| e.value().to_owned()).unwrap_or_default();

    let location = format!("{}/{}/{}", origin(&parts.headers), bucket, encode(&key));
    let mut resp = match (redirect, status.as_deref()) {
        (Some(url), _) if url.starts_with("http://") || url.starts_with("https://") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            let to = format!("{url}{sep}bucket={}&key={}&etag=%22{etag}%22", encode(&bucket), encode(&key));
            let mut r = Response::new(s3s::Body::empty());
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            r
        }
        (_, Some("200")) => Response::new(s3s::Body::empty()),
        (_, Some("201")) => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket>\
                 <Key>{}</Key><ETag>\"{}\"</ETag></PostResponse>",
                escape(&location),
                escape(&bucket),
                escape(&key),
                escape(&etag)
            );
            let mut r = Response::new(s3s::Body::from(body));
            *r.status_mut() = StatusCode::CREATED;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            r
        }
        _ => {
            let mut r = Response::new(s3s::Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
    };
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        resp.headers_mut().insert(http::header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().entry(http::header::LOCATION).or_insert(v);
    }
    resp.headers_mut().extend(written.headers);
    Ok(resp)
}

/// The form again, under a new random boundary (no field can contain it): the fields read, then the file
/// part, whose bytes stream on from the client. Returns the body and its Content-Type.
fn rebuilt(
    fields: &Fields,
    filename: &str,
    file_type: Option<&str>,
    file: multer::Field<'static>,
) -> (s3s::Body, HeaderValue) {
    let boundary = format!("trove-form-{:032x}", rand::random::<u128>());
    let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .unwrap_or_else(|_| HeaderValue::from_static("multipart/form-data"));
    let quote = |s: &str| s.replace('"', "%22").replace(['\r', '\n'], " ");
    let mut head = String::new();
    for (name, value) in &fields.0 {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
            quote(name)
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
        quote(filename),
        quote(file_type.unwrap_or("application/octet-stream"))
    ));
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let data = file.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
    let stream: trove_backends::ByteStream = Box::pin(
        futures::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(data)
            .chain(futures::stream::once(async move { Ok(tail) })),
    );
    (StreamingBlob::wrap(crate::data::SyncBody::new(stream)).into(), content_type)
}

/// The user a signed form comes from (SigV4 `x-amz-credential`/`x-amz-signature`, or SigV2
/// `AWSAccessKeyId`/`signature` over the policy document); `None` for an anonymous form (no policy).
fn authenticate<'s>(state: &'s SharedState, f: &Fields) -> Result<Option<&'s User>, Refusal> {
    let Some(policy) = f.get("policy") else {
        if f.get("awsaccesskeyid").is_some() || f.get("x-amz-credential").is_some() {
            return Err(Refusal::bad("InvalidArgument", "Bucket POST must contain a field named 'policy'."));
        }
        return Ok(None);
    };
    let unknown = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    };
    let mismatch = || {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    };
    if let Some(credential) = f.get("x-amz-credential") {
        if f.get("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
            return Err(Refusal::bad("InvalidArgument", "x-amz-algorithm must be AWS4-HMAC-SHA256"));
        }
        let given = f.get("x-amz-signature").ok_or_else(|| {
            Refusal::bad("InvalidArgument", "Bucket POST must contain a field named 'x-amz-signature'.")
        })?;
        let mut scope = credential.split('/');
        let (Some(ak), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
            (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
        else {
            return Err(Refusal::bad("InvalidArgument", "x-amz-credential is not well-formed"));
        };
        let user = state.user(ak).ok_or_else(unknown)?;
        let key = crate::s3::sigv4::signing_key(&user.secret_key, date, region, service);
        let want = hex::encode(crate::s3::sigv4::hmac(&key, policy.as_bytes()));
        if !crate::door::constant_time_eq(want.as_bytes(), given.to_ascii_lowercase().as_bytes()) {
            return Err(mismatch());
        }
        return Ok(Some(user));
    }
    let ak = f
        .get("awsaccesskeyid")
        .ok_or_else(|| Refusal::bad("InvalidArgument", "Bucket POST must contain a field named 'AWSAccessKeyId'."))?;
    let given = f
        .get("signature")
        .ok_or_else(|| Refusal::bad("InvalidArgument", "Bucket POST must contain a field named 'Signature'."))?;
    if !state.sigv2 {
        return Err(Refusal::bad("InvalidRequest", "SigV2 is disabled on this server; sign with SigV4"));
    }
    let user = state.user(ak).ok_or_else(unknown)?;
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(user.secret_key.as_bytes()).map_err(|_| mismatch())?;
    mac.update(policy.as_bytes());
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if !crate::door::constant_time_eq(want.as_bytes(), given.as_bytes()) {
        return Err(mismatch());
    }
    Ok(Some(user))
}

/// Checks the policy document against the form: not expired, every condition met, every field covered by
/// a condition. Returns the file's size bounds (`content-length-range`).
fn check_policy(doc: &str, f: &Fields, bucket: &str, key: &str) -> Result<(u64, u64), Refusal> {
    let invalid = |msg: &str| Refusal::bad("InvalidPolicyDocument", format!("Invalid Policy: {msg}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(doc.trim())
        .map_err(|_| invalid("the policy is not base64"))?;
    let policy: Value = serde_json::from_slice(&raw).map_err(|_| invalid("the policy is not JSON"))?;
    let expiration =
        policy.get("expiration").and_then(Value::as_str).ok_or_else(|| invalid("Policy missing expiration."))?;
    // ISO 8601 in UTC as S3 wants it (`2030-01-01T00:00:00Z`, fractions allowed), nothing looser.
    let expires = Some(expiration)
        .filter(|e| e.as_bytes().get(10) == Some(&b'T') && e.ends_with('Z'))
        .and_then(|e| time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok())
        .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
    if expires < time::OffsetDateTime::now_utc() {
        return Err(Refusal::denied("Invalid according to Policy: Policy expired."));
    }
    let conditions =
        policy.get("conditions").and_then(Value::as_array).ok_or_else(|| invalid("Policy missing conditions."))?;
    // The value a condition names: `$bucket` is the URL's bucket, `$key` the key after `${filename}`.
    let value_of = |name: &str| -> Option<String> {
        match name {
            "bucket" => Some(bucket.to_owned()),
            "key" => Some(key.to_owned()),
            other => f.get(other).map(str::to_owned),
        }
    };
    let failed = |c: &Value| Refusal::denied(format!("Invalid according to Policy: Policy Condition failed: {c}"));
    let mut covered = vec!["bucket".to_owned()];
    let mut limits = (0u64, u64::MAX);
    for c in conditions {
        match c {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let name = k.to_ascii_lowercase();
                    let want = v.as_str().ok_or_else(|| invalid("a condition value must be a string"))?;
                    if value_of(&name).as_deref() != Some(want) {
                        return Err(failed(c));
                    }
                    covered.push(name);
                }
            }
            Value::Array(a) => {
                let op = a.first().and_then(Value::as_str).map(str::to_ascii_lowercase).unwrap_or_default();
                match op.as_str() {
                    "eq" | "starts-with" if a.len() == 3 => {
                        let field = a[1]
                            .as_str()
                            .and_then(|s| s.strip_prefix('$'))
                            .ok_or_else(|| invalid("a condition names a field as $name"))?;
                        let name = field.to_ascii_lowercase();
                        let want = a[2].as_str().ok_or_else(|| invalid("a condition value must be a string"))?;
                        let have = value_of(&name).unwrap_or_default();
                        let ok = if op == "eq" {
                            have == want
                        } else if name == "content-type" {
                            // Content-Type may list several types; each must start with the prefix.
                            have.split(',').all(|t| t.trim().starts_with(want))
                        } else {
                            have.starts_with(want)
                        };
                        if !ok {
                            return Err(failed(c));
                        }
                        covered.push(name);
                    }
                    "content-length-range" if a.len() == 3 => {
                        let num = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
                        let (Some(min), Some(max)) = (num(&a[1]), num(&a[2])) else {
                            return Err(invalid("content-length-range needs two integers"));
                        };
                        if min < 0 || max < min {
                            return Err(invalid("content-length-range is not a range"));
                        }
                        limits = (min as u64, max as u64);
                    }
                    _ => return Err(invalid("unknown or malformed condition")),
                }
            }
            _ => return Err(invalid("a condition is an object or a list")),
        }
    }
    for (name, _) in &f.0 {
        let exempt = matches!(name.as_str(), "policy" | "signature" | "awsaccesskeyid" | "x-amz-signature" | "file")
            || name.starts_with("x-ignore-")
            || name.starts_with("x-amz-checksum-");
        if !exempt && !covered.contains(name) {
            return Err(Refusal::denied(format!("Invalid according to Policy: Extra input fields: {name}")));
        }
    }
    Ok(limits)
}

/// The PUT the form stands for: its fields as the headers a PUT would carry, the file as the body.
fn put_input(f: &Fields, bucket: &str, key: &str, file: multer::Field<'static>) -> Result<PutObjectInput, Refusal> {
    let s = |name: &str| f.get(name).map(str::to_owned);
    let metadata: Metadata =
        f.0.iter().filter_map(|(k, v)| Some((k.strip_prefix("x-amz-meta-")?.to_owned(), v.clone()))).collect();
    let tagging = match f.get("tagging") {
        Some(xml) => Some(tagging_header(xml)?),
        None => None,
    };
    let expires = match f.get("expires") {
        Some(e) => Some(
            Timestamp::parse(TimestampFormat::HttpDate, e)
                .map_err(|_| Refusal::bad("InvalidArgument", "Invalid Expires"))?,
        ),
        None => None,
    };
    let lock_until = match f.get("x-amz-object-lock-retain-until-date") {
        Some(d) => Some(
            Timestamp::parse(TimestampFormat::DateTime, d)
                .map_err(|_| Refusal::bad("InvalidArgument", "Invalid retain-until date"))?,
        ),
        None => None,
    };
    let stream: trove_backends::ByteStream = Box::pin(
        file.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())).map_ok(Bytes::from),
    );
    Ok(PutObjectInput {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        body: Some(StreamingBlob::wrap(crate::data::SyncBody::new(stream))),
        acl: s("acl").map(ObjectCannedACL::from),
        cache_control: s("cache-control"),
        content_disposition: s("content-disposition"),
        content_encoding: s("content-encoding"),
        content_type: s("content-type"),
        expires,
        metadata: (!metadata.is_empty()).then_some(metadata),
        tagging,
        storage_class: s("x-amz-storage-class").map(StorageClass::from),
        server_side_encryption: s("x-amz-server-side-encryption").map(ServerSideEncryption::from),
        ssekms_key_id: s("x-amz-server-side-encryption-aws-kms-key-id"),
        sse_customer_algorithm: s("x-amz-server-side-encryption-customer-algorithm"),
        sse_customer_key: s("x-amz-server-side-encryption-customer-key"),
        sse_customer_key_md5: s("x-amz-server-side-encryption-customer-key-md5"),
        checksum_crc32: s("x-amz-checksum-crc32"),
        checksum_crc32c: s("x-amz-checksum-crc32c"),
        checksum_crc64nvme: s("x-amz-checksum-crc64nvme"),
        checksum_sha1: s("x-amz-checksum-sha1"),
        checksum_sha256: s("x-amz-checksum-sha256"),
        object_lock_mode: s("x-amz-object-lock-mode").map(ObjectLockMode::from),
        object_lock_retain_until_date: lock_until,
        object_lock_legal_hold_status: s("x-amz-object-lock-legal-hold").map(ObjectLockLegalHoldStatus::from),
        website_redirect_location: s("x-amz-website-redirect-location"),
        grant_full_control: s("x-amz-grant-full-control"),
        grant_read: s("x-amz-grant-read"),
        grant_read_acp: s("x-amz-grant-read-acp"),
        grant_write_acp: s("x-amz-grant-write-acp"),
        ..Default::default()
    })
}

/// The form's `tagging` document (`<Tagging><TagSet>...`) as the `x-amz-tagging` header would carry it.
fn tagging_header(xml: &str) -> Result<String, Refusal> {
    let mut de = s3s::xml::Deserializer::new(xml.as_bytes());
    let tagging = <Tagging as s3s::xml::Deserialize>::deserialize(&mut de).map_err(|_| {
        Refusal::bad(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    })?;
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    Ok(tagging
        .tag_set
        .iter()
        .map(|t| {
            format!("{}={}", enc(t.key.as_deref().unwrap_or_default()), enc(t.value.as_deref().unwrap_or_default()))
        })
        .collect::<Vec<_>>()
        .join("&"))
}

/// `http://host` of the request, for the Location S3 reports.
fn origin(h: &HeaderMap) -> String {
    let host = h.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn encode(s: &str) -> String {
    crate::request::encode(s, crate::request::SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    fn b64(doc: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(doc)
    }

    #[test]
    fn policy_conditions() {
        let doc =
            b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[{"bucket":"b"},["StArTs-WiTh","$KeY","foo"],
               {"acl":"private"},["starts-with","$Content-Type","text/"],["content-length-range",1,"1024"]]}"#);
        let f = fields(&[("key", "foo.txt"), ("acl", "private"), ("content-type", "text/plain"), ("policy", &doc)]);
        assert_eq!(check_policy(&doc, &f, "b", "foo.txt").ok(), Some((1, 1024)));
        // The URL's bucket is the one conditions see; a key that misses its prefix fails; so does an extra field.
        assert_eq!(check_policy(&doc, &f, "other", "foo.txt").err().map(|r| r.0), Some(StatusCode::FORBIDDEN));
        assert_eq!(check_policy(&doc, &f, "b", "bar").err().map(|r| r.0), Some(StatusCode::FORBIDDEN));
        let extra = fields(&[("key", "foo"), ("acl", "private"), ("content-type", "text/x"), ("x-amz-meta-a", "1")]);
        assert_eq!(check_policy(&doc, &extra, "b", "foo").err().map(|r| r.1), Some("AccessDenied".to_owned()));
        let ignored = fields(&[("key", "foo"), ("acl", "private"), ("content-type", "text/x"), ("x-ignore-me", "1")]);
        assert!(check_policy(&doc, &ignored, "b", "foo").is_ok());
    }

    #[test]
    fn malformed_and_expired_policies() {
        let f = fields(&[("key", "k")]);
        for doc in [
            "not base64!",
            &b64("not json"),
            &b64(r#"{"conditions":[]}"#),
            &b64(r#"{"expiration":"tomorrow","conditions":[]}"#),
            &b64(r#"{"expiration":"2999-01-01 00:00:00.5+00:00","conditions":[]}"#),
            &b64(r#"{"expiration":"2999-01-01T00:00:00Z"}"#),
            &b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[{}]}"#),
            &b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["content-length-range",0]]}"#),
            &b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["content-length-range",-1,0]]}"#),
            &b64(r#"{"expiration":"2999-01-01T00:00:00Z","conditions":[["between","$key","a"]]}"#),
        ] {
            assert_eq!(check_policy(doc, &f, "b", "k").err().map(|r| r.0), Some(StatusCode::BAD_REQUEST), "{doc}");
        }
        let expired = b64(r#"{"expiration":"2001-01-01T00:00:00Z","conditions":[]}"#);
        assert_eq!(check_policy(&expired, &f, "b", "k").err().map(|r| r.0), Some(StatusCode::FORBIDDEN));
    }

    #[test]
    fn tagging_documents_become_headers() {
        let xml = "<Tagging><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>";
        assert_eq!(tagging_header(xml).ok().as_deref(), Some("a%20b=1%262&c="));
        assert!(tagging_header("<Tagging>").is_err());
    }
}
