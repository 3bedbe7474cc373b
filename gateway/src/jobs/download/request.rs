//! A download request as AIS's `POST /v1/download` takes it: one flat JSON object with a `type` (`single`,
//! `range`, `multi`, `backend`) and that type's fields. Everything a job needs is checked here, before any node
//! starts its part, and becomes a [`DownloadSpec`] that travels to the other nodes.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::guard::HostPolicy;
use crate::jobs::template::{Names, Template};

/// What a download fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sources {
    /// Objects named by the request, each with its link (`single`, `multi`).
    Links(Vec<(String, String)>),
    /// Links from a brace template, each stored as `subdir/<last segment>`.
    Range { template: String, subdir: String },
    /// A cloud bucket's objects under a prefix (and with a suffix) into its cache; `sync` also refetches
    /// changed copies and drops copies of objects the backend no longer has.
    Backend { prefix: String, suffix: String, sync: bool },
}

/// A checked download request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadSpec {
    /// AIS's type name: `single`, `range`, `multi` or `backend`.
    pub kind: String,
    pub description: String,
    /// The destination bucket's name in the namespace.
    pub bucket: String,
    /// Per file; `None`: the configured default.
    pub timeout: Option<Duration>,
    /// Concurrent downloads per node (0: the default).
    pub connections: usize,
    /// For the whole cluster (0: unlimited).
    pub bytes_per_hour: u64,
    /// Sent with every GET of a link.
    pub headers: Vec<(String, String)>,
    pub sources: Sources,
}

/// The destination bucket a request names: `(name, provider)`.
pub fn destination(body: &Value) -> Result<(String, String), String> {
    let bck = body.get("bucket").ok_or("missing 'bucket.name'")?;
    let name = bck.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or("missing 'bucket.name'")?;
    let provider = bck.get("provider").and_then(Value::as_str).filter(|p| !p.is_empty()).unwrap_or("ais");
    Ok((name.to_owned(), provider.to_owned()))
}

/// Checks a request for the destination bucket `bucket` (its S3 name; `remote`: a cloud bucket).
pub fn parse(body: &Value, bucket: &str, remote: bool, policy: &HostPolicy) -> Result<DownloadSpec, String> {
    let text = |k: &str| -> Result<String, String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("'{k}' must be a string, not {other}")),
        }
    };
    let kind = text("type")?;
    if !text("etl_name")?.is_empty() {
        return Err("downloads through an ETL (etl_name) are not supported by Trove".into());
    }
    let timeout = match text("timeout")?.as_str() {
        "" => None,
        t => Some(go_duration(t).map_err(|e| format!("failed to parse timeout field: {e}"))?),
    }
    .filter(|d| !d.is_zero());
    let interval = text("progress_interval")?;
    if !interval.is_empty() {
        go_duration(&interval).map_err(|e| format!("failed to parse progress_interval field: {e}"))?;
    }
    let limit = |k: &str| -> Result<u64, String> {
        match body.get("limits").and_then(|l| l.get(k)) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Ok(n as u64),
                Some(n) => Err(format!("'limit.{k}' must be non-negative (got: {n})")),
                None => Err(format!("'limit.{k}' must be an integer")),
            },
        }
    };
    let (connections, bytes_per_hour) = (limit("connections")? as usize, limit("bytes_per_hour")?);
    let headers = headers(body.get("headers"))?;
    let sources = match kind.as_str() {
        "" => return Err("'type' field is empty".into()),
        "single" => {
            if body.get("from_remote").and_then(Value::as_bool).unwrap_or(false) {
                return Err("'from_remote' downloads are not supported by Trove (use the backend type)".into());
            }
            let link = text("link")?;
            if link.is_empty() {
                return Err("missing 'link' in the request body".into());
            }
            let link = with_scheme(&link);
            let name = match text("object_name")? {
                n if n.is_empty() => {
                    base_name(&link).ok_or("can not extract a valid 'object_name' from the provided download 'link'")?
                }
                n => normalize(&n),
            };
            Sources::Links(vec![(name, link)])
        }
        "multi" => Sources::Links(multi(body.get("objects"))?),
        "range" => {
            let template = text("template")?;
            if template.is_empty() {
                return Err("missing 'template' in the request body".into());
            }
            let template = with_scheme(&template);
            match Template::parse(&template).map_err(|e| e.to_string())? {
                Names::Prefix(_) => return Err(format!("invalid template {template:?}: no brace range")),
                Names::Template(t) => {
                    let first = t.names().next().unwrap_or_default();
                    check_link(policy, &first)?;
                    base_name(&first).ok_or_else(|| format!("failed to extract object name from {first:?}"))?;
                }
            }
            Sources::Range { template, subdir: text("subdir")? }
        }
        "backend" => {
            if !remote {
                return Err("bucket download requires a remote bucket".into());
            }
            let sync = body.get("synchronize").and_then(Value::as_bool).unwrap_or(false);
            Sources::Backend { prefix: text("prefix")?, suffix: text("suffix")?, sync }
        }
        _ => return Err("input does not match any of the supported formats (single, range, multi, backend)".into()),
    };
    if let Sources::Links(links) = &sources {
        for (name, link) in links {
            check_name(name)?;
            check_link(policy, link)?;
        }
    }
    let description = match text("description")? {
        d if !d.is_empty() => d,
        _ => match &sources {
            Sources::Links(l) if kind == "single" => format!("{} -> ais://{bucket}/{}", l[0].1, l[0].0),
            Sources::Links(_) => format!("multi-download -> ais://{bucket}"),
            Sources::Range { template, .. } => format!("{template} -> ais://{bucket}"),
            Sources::Backend { .. } => format!("remote bucket prefetch -> {bucket}"),
        },
    };
    Ok(DownloadSpec {
        kind,
        description,
        bucket: bucket.to_owned(),
        timeout,
        connections,
        bytes_per_hour,
        headers,
        sources,
    })
}

/// The object a range download stores a link under.
pub fn range_name(subdir: &str, link: &str) -> Option<String> {
    let base = base_name(link)?;
    let dir = subdir.trim_matches('/');
    Some(if dir.is_empty() { base } else { format!("{dir}/{base}") })
}

pub fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 1024
        || name.split('/').any(|seg| seg == ".." || seg == ".")
        || name.starts_with('/')
        || name.chars().any(char::is_control);
    if bad || crate::s3::ctx::check_key(name).is_err() {
        return Err(format!("invalid object name {name:?}"));
    }
    Ok(())
}

pub fn check_link(policy: &HostPolicy, link: &str) -> Result<Url, String> {
    let url = Url::parse(link).map_err(|e| format!("invalid link {link:?}: {e}"))?;
    policy.check_url(&url).map_err(|e| e.to_string())?;
    Ok(url)
}

/// AIS prepends `http://` to a link without a scheme.
fn with_scheme(link: &str) -> String {
    if link.contains("://") {
        link.to_owned()
    } else {
        format!("http://{link}")
    }
}

/// The last segment of a link's path, percent-decoded (its query and fragment dropped).
fn base_name(link: &str) -> Option<String> {
    let url = Url::parse(link).ok()?;
    let last = url.path_segments()?.next_back()?;
    let name = percent_encoding::percent_decode_str(last).decode_utf8().ok()?.into_owned();
    (!name.is_empty() && name != "." && name != "..").then_some(name)
}

/// AIS's `NormalizeObjName`: a name given in a request loses a query and fragment and is percent-decoded.
fn normalize(name: &str) -> String {
    let cut = name.find(['?', '#']).map_or(name, |i| &name[..i]);
    percent_encoding::percent_decode_str(cut).decode_utf8().map(|s| s.into_owned()).unwrap_or_else(|_| cut.to_owned())
}

/// `objects`: a list of links (named by their last segment; a repeated name keeps its last link) or a map of
/// names to links.
fn multi(objects: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut add = |name: String, link: String| match at.get(&name) {
        Some(&i) => out[i].1 = link,
        None => {
            at.insert(name.clone(), out.len());
            out.push((name, link));
        }
    };
    match objects {
        None | Some(Value::Null) => return Err("body should not be empty".into()),
        Some(Value::Array(links)) => {
            for l in links {
                let link = l.as_str().ok_or_else(|| format!("expected download link to be a string, got: {l}"))?;
                let link = with_scheme(link);
                let name = base_name(&link)
                    .ok_or_else(|| format!("failed to extract object name from the download {link:?}"))?;
                add(name, link);
            }
        }
        Some(Value::Object(map)) => {
            for (name, l) in map {
                let link = l.as_str().ok_or_else(|| format!("values in map should be strings, found: {l}"))?;
                add(normalize(name), with_scheme(link));
            }
        }
        Some(other) => {
            return Err(format!("JSON body should be map (string -> string) or array of strings, found: {other}"))
        }
    }
    if out.is_empty() {
        return Err("body should not be empty".into());
    }
    Ok(out)
}

/// `headers` as Go's `http.Header` marshals: `{"Name": ["value", ...]}` (a plain string is taken too).
fn headers(v: Option<&Value>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let Some(Value::Object(map)) = v else {
        return match v {
            None | Some(Value::Null) => Ok(out),
            Some(other) => Err(format!("'headers' must be an object, not {other}")),
        };
    };
    for (name, values) in map {
        http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
        let values: Vec<&Value> = match values {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for v in values {
            let v = v.as_str().ok_or_else(|| format!("header {name} must have string values"))?;
            http::HeaderValue::from_str(v).map_err(|_| format!("invalid value of header {name}"))?;
            out.push((name.clone(), v.to_owned()));
        }
    }
    Ok(out)
}

/// A Go duration (`"30s"`, `"1m30s"`, `"1.5h"`, `"500ms"`, `"0"`); the error is empty for an empty string.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err(String::new());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("invalid duration {s:?}");
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> HostPolicy {
        HostPolicy::new(&trove_config::DownloadConfig {
            allow_hosts: vec!["127.0.0.1".into()],
            allow_public: true,
            timeout_secs: 1,
        })
    }

    fn ok(body: Value) -> DownloadSpec {
        parse(&body, "dst", false, &policy()).unwrap()
    }

    fn err(body: Value) -> String {
        parse(&body, "dst", false, &policy()).unwrap_err()
    }

    #[test]
    fn names_come_from_links_as_ais_makes_them() {
        let s = ok(json!({"type": "single", "bucket": {"name": "dst"}, "link": "127.0.0.1:8/a/b%20c.tar?sig=1#x"}));
        assert_eq!(
            s.sources,
            Sources::Links(vec![("b c.tar".into(), "http://127.0.0.1:8/a/b%20c.tar?sig=1#x".into())])
        );
        assert_eq!(s.description, "http://127.0.0.1:8/a/b%20c.tar?sig=1#x -> ais://dst/b c.tar");
        let s = ok(
            json!({"type": "multi", "objects": ["http://127.0.0.1/a/x", "http://127.0.0.1/b/x", "http://127.0.0.1/y"]}),
        );
        assert_eq!(
            s.sources,
            Sources::Links(vec![
                ("x".into(), "http://127.0.0.1/b/x".into()),
                ("y".into(), "http://127.0.0.1/y".into())
            ])
        );
        let s = ok(json!({"type": "multi", "objects": {"d/n%201?q": "http://127.0.0.1/z"}}));
        assert_eq!(s.sources, Sources::Links(vec![("d/n 1".into(), "http://127.0.0.1/z".into())]));
        assert_eq!(range_name("some/dir/", "http://h/f-01.tgz?x"), Some("some/dir/f-01.tgz".into()));
        assert_eq!(range_name("", "http://h/f"), Some("f".into()));
    }

    #[test]
    fn options_and_refusals() {
        let s = ok(json!({"type": "range", "template": "http://127.0.0.1/s-{0..9}.tar", "timeout": "1m30s",
            "limits": {"connections": 2, "bytes_per_hour": 1000}, "headers": {"Authorization": ["Bearer x"]}}));
        assert_eq!(s.timeout, Some(Duration::from_secs(90)));
        assert_eq!((s.connections, s.bytes_per_hour), (2, 1000));
        assert_eq!(s.headers, vec![("Authorization".into(), "Bearer x".into())]);
        for (body, want) in [
            (json!({}), "'type' field is empty"),
            (json!({"type": "x"}), "supported formats"),
            (json!({"type": "single"}), "missing 'link'"),
            (json!({"type": "single", "link": "http://127.0.0.1/"}), "can not extract"),
            (json!({"type": "range"}), "missing 'template'"),
            (json!({"type": "range", "template": "http://127.0.0.1/a"}), "no brace range"),
            (json!({"type": "range", "template": "http://127.0.0.1/{9..1}"}), "invalid template"),
            (json!({"type": "multi", "objects": 5}), "map (string -> string)"),
            (json!({"type": "multi", "objects": [1]}), "to be a string"),
            (json!({"type": "multi", "objects": {"a": 1}}), "should be strings"),
            (json!({"type": "multi"}), "should not be empty"),
            (json!({"type": "backend"}), "requires a remote bucket"),
            (json!({"type": "single", "link": "http://127.0.0.1/x", "etl_name": "md5"}), "ETL"),
            (json!({"type": "single", "link": "http://127.0.0.1/x", "timeout": "soon"}), "timeout"),
            (json!({"type": "single", "link": "http://127.0.0.1/x", "limits": {"connections": -1}}), "non-negative"),
            (json!({"type": "single", "link": "http://10.0.0.1/x"}), "not a public address"),
            (json!({"type": "single", "link": "http://localhost/x"}), "not allowed"),
            (json!({"type": "single", "link": "file:///etc/passwd"}), "not allowed"),
            (json!({"type": "single", "link": "http://127.0.0.1/x", "object_name": "../x"}), "invalid object name"),
            (json!({"type": "multi", "objects": {"a": "http://169.254.169.254/x"}}), "not a public address"),
        ] {
            let e = err(body.clone());
            assert!(e.contains(want), "{body}: {e}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
        assert_eq!(go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(go_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(go_duration("0s").unwrap(), Duration::ZERO);
        for bad in ["1", "s", "1x", "-1s", "1h-"] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }
}
