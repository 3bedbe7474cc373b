//! A remote AIS cluster's buckets behind [`Backend`]: the native API (`/v1/objects/…`, `/v1/buckets/…`,
//! `provider=ais`), requests spread over the cluster's nodes (from its Smap) and moved to the next node when one
//! does not answer, AIS's proxy → target redirects followed (a PUT body is sent again from its payload).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::wire::{error_of, meta_of, parse_page};
use super::AisClient;
use crate::{Backend, Error, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, Payload, Result};

/// Characters kept as they are in a path segment (object names keep their `/`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
const OBJECT_PATH: &AsciiSet = &SEGMENT.remove(b'/');

/// Redirects followed per call (proxy → target is one).
const MAX_REDIRECTS: usize = 3;
/// How long the node list read from the cluster's map is used before it is read again.
const NODES_TTL: Duration = Duration::from_secs(60);

/// One attached remote cluster.
pub struct AisBackend {
    client: AisClient,
    /// The URLs it was attached with: where the map is read, and the fallback when no map was read.
    seeds: Vec<String>,
    token: Option<String>,
    nodes: RwLock<(Vec<String>, Option<Instant>)>,
    next: AtomicUsize,
}

impl std::fmt::Debug for AisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AisBackend").field("seeds", &self.seeds).finish()
    }
}

impl AisBackend {
    pub fn new(client: AisClient, seeds: Vec<String>, token: Option<String>) -> Arc<AisBackend> {
        let seeds: Vec<String> = seeds.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
        Arc::new(AisBackend {
            client,
            nodes: RwLock::new((seeds.clone(), None)),
            seeds,
            token,
            next: AtomicUsize::new(0),
        })
    }

    /// The nodes to try, starting with the next in turn; the map is read again when it is old.
    async fn nodes(&self) -> Vec<String> {
        let stale = self.nodes.read().unwrap_or_else(|e| e.into_inner()).1.is_none_or(|at| at.elapsed() > NODES_TTL);
        if stale {
            for seed in &self.seeds {
                if let Ok(m) = self.client.smap(seed, self.token.as_deref()).await {
                    if !m.targets.is_empty() {
                        *self.nodes.write().unwrap_or_else(|e| e.into_inner()) = (m.targets, Some(Instant::now()));
                        break;
                    }
                }
            }
        }
        let mut nodes = self.nodes.read().unwrap_or_else(|e| e.into_inner()).0.clone();
        if !nodes.is_empty() {
            let first = self.next.fetch_add(1, Ordering::Relaxed) % nodes.len();
            nodes.rotate_left(first);
        }
        nodes
    }

    /// Sends `method path?query` to the cluster: to each node in turn until one answers, following redirects.
    /// `body` is sent (again, on a redirect) from its start.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<&Payload>,
        json: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response> {
        let mut last = None;
        for node in self.nodes().await {
            let mut url = format!("{node}{path}");
            let mut query = query.to_vec();
            for _ in 0..=MAX_REDIRECTS {
                let mut req = self.client.http.request(method.clone(), &url).query(&query);
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                for (k, v) in headers {
                    req = req.header(*k, v);
                }
                if let Some(p) = body {
                    req =
                        req.header(http::header::CONTENT_LENGTH, p.size).body(reqwest::Body::wrap_stream((p.open)(0)));
                }
                if let Some(j) = json {
                    req = req.json(j);
                }
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) if e.is_connect() || e.is_timeout() => {
                        last = Some(Error::unavailable(format!("{node}: {e}")));
                        break;
                    }
                    Err(e) => return Err(Error::unavailable(format!("{node}: {e}"))),
                };
                if !resp.status().is_redirection() {
                    return Ok(resp);
                }
                // AIS's proxy names the target (with its own query); the redirect carries everything.
                let location = resp.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok());
                url =
                    location.ok_or_else(|| Error::Other(format!("{node}: a redirect without a location")))?.to_owned();
                query.clear();
            }
            if last.is_none() {
                return Err(Error::Other(format!("{node}: more than {MAX_REDIRECTS} redirects")));
            }
        }
        Err(last.unwrap_or_else(|| Error::unavailable("the remote cluster has no node to ask")))
    }

    /// The error of a failed call, from AIS's JSON in the body (or, for a HEAD, in `Hdr-Error`).
    async fn fail(resp: reqwest::Response, bucket: &str, key: &str) -> Error {
        let status = resp.status().as_u16();
        let in_header = resp.headers().get("hdr-error").map(|v| bytes::Bytes::copy_from_slice(v.as_bytes()));
        let body = resp.bytes().await.unwrap_or_default();
        error_of(status, if body.is_empty() { in_header.as_deref().unwrap_or_default() } else { &body }, bucket, key)
    }
}

fn object_path(bucket: &str, key: &str) -> String {
    format!("/v1/objects/{}/{}", utf8_percent_encode(bucket, SEGMENT), utf8_percent_encode(key, OBJECT_PATH))
}

fn bucket_path(bucket: &str) -> String {
    format!("/v1/buckets/{}", utf8_percent_encode(bucket, SEGMENT))
}

const AIS: [(&str, &str); 1] = [("provider", "ais")];

#[async_trait]
impl Backend for AisBackend {
    fn provider(&self) -> &'static str {
        "ais"
    }

    async fn head_bucket(&self, bucket: &str) -> Result<()> {
        let resp = self.send(reqwest::Method::HEAD, &bucket_path(bucket), &AIS, &[], None, None).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(Self::fail(resp, bucket, "").await)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let resp = self.send(reqwest::Method::HEAD, &object_path(bucket, key), &AIS, &[], None, None).await?;
        if resp.status().is_success() {
            return Ok(meta_of(resp.headers()));
        }
        Err(Self::fail(resp, bucket, key).await)
    }

    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult> {
        let mut headers = Vec::new();
        if let Some(r) = opts.range {
            headers.push(("range", r.header()));
        }
        if let Some(m) = &opts.if_match {
            headers.push(("if-match", format!("\"{}\"", m.trim_matches('"'))));
        }
        let resp = self.send(reqwest::Method::GET, &object_path(bucket, key), &AIS, &headers, None, None).await?;
        if !resp.status().is_success() {
            return Err(Self::fail(resp, bucket, key).await);
        }
        let meta = meta_of(resp.headers());
        let length = resp.content_length().unwrap_or(meta.size);
        let first = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let body = resp.bytes_stream().map_err(std::io::Error::other);
        Ok(GetResult { meta, range: (first, first + length), body: Box::pin(body) })
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let mut headers = Vec::new();
        if let Some(ct) = &meta.content_type {
            headers.push(("content-type", ct.clone()));
        }
        let resp =
            self.send(reqwest::Method::PUT, &object_path(bucket, key), &AIS, &headers, Some(&body), None).await?;
        if !resp.status().is_success() {
            return Err(Self::fail(resp, bucket, key).await);
        }
        // The stored object's identity (checksum, version) as the cluster reports it.
        self.head(bucket, key).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let resp = self.send(reqwest::Method::DELETE, &object_path(bucket, key), &AIS, &[], None, None).await?;
        match resp.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(Self::fail(resp, bucket, key).await),
        }
    }

    /// AIS pages by continuation token; a delimiter is applied here (AIS's non-recursive listing is not
    /// offered by every cluster), each common prefix reported once, continuing after the last name returned.
    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage> {
        let max = req.max_keys.clamp(1, 10_000);
        let mut page = ListPage::default();
        let mut after = req.token.clone().or(req.start_after.clone()).unwrap_or_default();
        let mut token = String::new();
        let delimiter = req.delimiter.clone().filter(|d| !d.is_empty());
        loop {
            let msg = serde_json::json!({"action": "list", "value": {
                "prefix": req.prefix, "start_after": if token.is_empty() { after.as_str() } else { "" },
                "continuation_token": token, "pagesize": max, "props": "name,size,checksum,version",
                "flags": "0",
            }});
            let headers = [("accept", "application/json".to_owned())];
            let resp = self.send(reqwest::Method::GET, &bucket_path(bucket), &AIS, &headers, None, Some(&msg)).await?;
            if !resp.status().is_success() {
                return Err(Self::fail(resp, bucket, "").await);
            }
            let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let body = resp.bytes().await.map_err(|e| Error::unavailable(e.to_string()))?;
            let res = parse_page(&ct, &body)?;
            for e in res.entries {
                if e.name <= after {
                    continue;
                }
                let grouped = delimiter.as_deref().and_then(|d| {
                    let rest = e.name.strip_prefix(&req.prefix)?;
                    rest.find(d).map(|i| format!("{}{}", req.prefix, &rest[..i + d.len()]))
                });
                let name = match grouped {
                    Some(cp) if page.common_prefixes.last() == Some(&cp) => continue,
                    Some(cp) => {
                        page.common_prefixes.push(cp.clone());
                        cp
                    }
                    None => {
                        let meta = ObjectMeta {
                            size: e.size,
                            etag: e.checksum,
                            version: Some(e.version).filter(|v| !v.is_empty()),
                            ..Default::default()
                        };
                        page.entries.push(ListEntry { key: e.name.clone(), meta });
                        e.name
                    }
                };
                if page.entries.len() + page.common_prefixes.len() >= max {
                    // Resume after this name (after the whole group for a common prefix).
                    let resume = if name.ends_with(delimiter.as_deref().unwrap_or("\0")) {
                        format!("{name}\u{10FFFF}")
                    } else {
                        name
                    };
                    page.next_token = Some(resume);
                    return Ok(page);
                }
                after = name;
            }
            if res.continuation_token.is_empty() {
                return Ok(page);
            }
            token = res.continuation_token;
        }
    }

    async fn copy(&self, bucket: &str, _src: &str, _dst: &str, _meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        Err(Error::Invalid(format!("server-side copies inside the remote AIS bucket {bucket} are not offered")))
    }

    fn lockstep_multipart(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    //! Against a recorded AIS-shaped exchange: a proxy that redirects data calls to a target (as AIStore does,
    //! and a Trove remote never does), AIS error JSON, and list pages in msgpack.

    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// One HTTP/1.1 exchange as the fake cluster saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        body: Vec<u8>,
    }

    /// A canned answer: status, headers, body.
    type Answer = (u16, Vec<(String, String)>, Vec<u8>);

    /// Serves `answer(seen)` on a loopback port; returns its URL and what it saw.
    async fn fake(answer: impl Fn(&Seen, &str) -> Answer + Send + Sync + 'static) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, base, answer) = (seen.clone(), url.clone(), Arc::new(answer));
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (log, base, answer) = (log.clone(), base.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, target) =
                            (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
                        let mut length = 0usize;
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).await.unwrap();
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        r.read_exact(&mut body).await.unwrap();
                        let s = Seen { method, target, body };
                        log.lock().unwrap().push(s.clone());
                        let (status, headers, out) = answer(&s, &base);
                        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", out.len());
                        for (k, v) in headers {
                            head.push_str(&format!("{k}: {v}\r\n"));
                        }
                        head.push_str("\r\n");
                        let sock = r.get_mut();
                        sock.write_all(head.as_bytes()).await.unwrap();
                        if s.method != "HEAD" {
                            sock.write_all(&out).await.unwrap();
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    fn smap(target: &str) -> Vec<u8> {
        serde_json::json!({"uuid": "Rem1", "version": "4",
            "tmap": {"t1": {"public_net": {"direct_url": target}}}, "pmap": {}})
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn follows_proxy_redirects_and_reads_ais_errors_and_msgpack_pages() {
        // The "target": objects and listings.
        let (target, at_target) = fake(|s, _| match (s.method.as_str(), s.target.as_str()) {
            ("GET", t) if t.starts_with("/v1/daemon") => (200, vec![], b"{}".to_vec()),
            ("GET", t) if t.starts_with("/v1/objects/bkt/dir/a%20b") => (
                206,
                vec![("content-range".into(), "bytes 2-4/10".into()), ("ais-version".into(), "7".into())],
                b"cde".to_vec(),
            ),
            ("PUT", _) => (200, vec![], vec![]),
            ("HEAD", t) if t.starts_with("/v1/objects/bkt/new") => {
                (200, vec![("ais-checksum-value".into(), "ck".into()), ("ais-size".into(), "5".into())], vec![])
            }
            ("HEAD", _) => (404, vec![], vec![]),
            ("GET", t) if t.starts_with("/v1/buckets/bkt") => {
                #[derive(serde::Serialize)]
                struct Ent {
                    n: String,
                    s: u64,
                }
                #[derive(serde::Serialize)]
                struct Res {
                    #[serde(rename = "ContinuationToken")]
                    token: String,
                    #[serde(rename = "Entries")]
                    entries: Vec<Ent>,
                }
                let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
                let first = body["value"]["continuation_token"].as_str().unwrap_or("").is_empty();
                let res = if first {
                    Res {
                        token: "p2".into(),
                        entries: vec![Ent { n: "a/1".into(), s: 1 }, Ent { n: "a/2".into(), s: 2 }],
                    }
                } else {
                    Res { token: String::new(), entries: vec![Ent { n: "b".into(), s: 3 }] }
                };
                (
                    200,
                    vec![("content-type".into(), "application/msgpack".into())],
                    rmp_serde::to_vec_named(&res).unwrap(),
                )
            }
            _ => (400, vec![], br#"{"message":"unexpected call","status":400}"#.to_vec()),
        })
        .await;
        // The "proxy": its map names the target; data calls are redirected there, bucket errors answered here.
        let t = target.clone();
        let (proxy, at_proxy) = fake(move |s, _| match (s.method.as_str(), s.target.as_str()) {
            ("GET", p) if p.starts_with("/v1/daemon") => (200, vec![], smap(&t)),
            // A HEAD has no body: AIS sends its error JSON in a header.
            ("HEAD", p) if p.starts_with("/v1/buckets/missing") => (
                404,
                vec![("hdr-error".into(), r#"{"message":"bucket ais://missing does not exist","status":404}"#.into())],
                vec![],
            ),
            (_, p) => (307, vec![("location".into(), format!("{t}{p}&pid=proxy"))], vec![]),
        })
        .await;
        let client = AisClient::new(Duration::from_secs(5)).unwrap();
        // Seeded with the proxy only, and a node that is down first in line: moved on from, then the map read.
        let b = AisBackend::new(client, vec!["http://127.0.0.1:1".into(), proxy.clone()], None);
        assert_eq!(b.nodes().await, vec![target.clone()], "the map's targets replace the seeds");
        *b.nodes.write().unwrap() = (vec!["http://127.0.0.1:1".into(), proxy.clone()], Some(Instant::now()));
        b.next.store(0, Ordering::Relaxed);

        let got = b
            .get(
                "bkt",
                "dir/a b",
                GetOptions { range: Some(crate::ByteRange::FromTo { first: 2, last: Some(4) }), if_match: None },
            )
            .await
            .unwrap();
        assert_eq!((got.range, got.meta.size, got.meta.version.as_deref()), ((2, 5), 10, Some("7")));
        let chunks: Vec<bytes::Bytes> = got.body.try_collect().await.unwrap();
        let bytes = chunks.concat();
        assert_eq!(bytes, b"cde");
        assert!(at_proxy.lock().unwrap().iter().any(|s| s.target.starts_with("/v1/objects/bkt/dir/a%20b")));

        // A PUT redirected by the proxy sends its body again to the target.
        let hello = Payload::from_bytes(bytes::Bytes::from_static(b"hello"));
        let meta = b.put("bkt", "new", hello, &ObjectMeta::default()).await.unwrap();
        assert_eq!((meta.etag.as_str(), meta.size), ("ck", 5));
        let puts: Vec<Seen> = at_target.lock().unwrap().iter().filter(|s| s.method == "PUT").cloned().collect();
        assert_eq!(puts.len(), 1);
        assert_eq!(puts[0].body, b"hello");
        assert!(puts[0].target.contains("pid=proxy"), "{}", puts[0].target);

        // AIS error JSON, and a missing object.
        b.nodes.write().unwrap().0 = vec![proxy.clone()];
        assert!(matches!(b.head_bucket("missing").await, Err(Error::NoSuchBucket(_))));
        let missing = b.head("bkt", "nope").await;
        assert!(matches!(missing, Err(Error::NotFound { .. })), "{missing:?}");

        // Two msgpack pages, folded by a delimiter.
        let req = ListRequest { delimiter: Some("/".into()), max_keys: 100, ..Default::default() };
        let page = b.list("bkt", req).await.unwrap();
        assert_eq!(page.common_prefixes, ["a/"]);
        assert_eq!(page.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["b"]);
        assert!(page.next_token.is_none());
        let page = b.list("bkt", ListRequest { max_keys: 2, ..Default::default() }).await.unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.next_token.as_deref(), Some("a/2"));
    }
}
