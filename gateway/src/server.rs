//! The listener: one port serves S3 at the root and the native API under `/v1/`. Handles graceful shutdown
//! (SIGINT/SIGTERM: stop accepting, let in-flight requests finish within a grace period) and turns a panic
//! inside one request into a 500 for that request only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::service::{S3Service, S3ServiceBuilder};
use trove_config::Config;

use crate::cluster::forward::Routed;
use crate::conn::{self, Activity, Gate, Limits, TimedBody, TrackedBody, Watched};
use crate::native;
use crate::providers::Providers;
use crate::request::{content_length, Api, AuthKind, Target};
use crate::s3::{Access, Auth, TroveS3};
use crate::state::{AppState, SharedState};

struct Frontend {
    state: SharedState,
    s3: S3Service,
    domain: Option<String>,
    limits: Limits,
    gate: Arc<Gate>,
    /// `server.direct_reads`: connections begin in `direct::serve`.
    direct_reads: bool,
}

/// Runs a node until SIGINT/SIGTERM. One current-thread runtime per worker thread (one per core by default)
/// accepts on the shared listening socket: DESIGN §10 measured this +12–20 % over one multi-thread runtime
/// for small objects. Shared state is `Send + Sync` and holds no runtime handles, so any runtime can serve any
/// request.
pub fn serve(cfg: Config) -> anyhow::Result<()> {
    crate::conn::raise_open_files_limit();
    // Bind first: a taken port is the most common start-up mistake and should fail before touching data.
    let listener = std::net::TcpListener::bind(cfg.server.listen)
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    listener.set_nonblocking(true)?;

    // Backend clients and attach work run on a small runtime of their own that lives as long as the node, so
    // anything the SDKs keep running in the background (connection pools, token refresh) has a home.
    let background = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("trove-background")
        .enable_all()
        .build()?;
    let providers = background.block_on(Providers::connect(&cfg.backends)).context("cannot set up the backends")?;
    let local: SocketAddr = listener.local_addr()?;
    let (state, generated) =
        AppState::open(&cfg, providers, local, &background).context("cannot open the data directory")?;
    let state = Arc::new(state);

    let mut builder = S3ServiceBuilder::new(TroveS3 { state: state.clone() });
    let mut s3_config = s3s::config::S3Config::default();
    s3_config.xml_max_body_size = crate::s3::XML_MAX_BODY;
    // Browser form uploads never reach s3s (`s3::post_object` streams them): it gets no room to hold one.
    s3_config.post_object_max_file_size = 0;
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(s3_config))));
    builder.set_auth(Auth(state.clone()));
    builder.set_access(Access(state.clone()));
    if let Some(domain) = &cfg.s3.domain {
        let host =
            s3s::host::SingleDomain::new(domain).map_err(|e| anyhow::anyhow!("invalid s3.domain {domain:?}: {e}"))?;
        builder.set_host(DomainHost(host));
    }
    let frontend = Arc::new(Frontend {
        state: state.clone(),
        s3: builder.build(),
        domain: cfg.s3.domain.clone(),
        limits: Limits::from_config(&cfg.server),
        gate: Arc::new(Gate::default()),
        direct_reads: cfg.server.direct_reads,
    });

    let threads = cfg.server.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::with_capacity(threads + 1);
    let mut queues = Vec::with_capacity(threads);
    for n in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        queues.push(tx);
        let (fe, stop) = (frontend.clone(), stop_rx.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = std::thread::Builder::new()
            .name(format!("trove-worker-{n}"))
            .spawn(move || rt.block_on(worker(rx, fe, stop, grace)))?;
        workers.push(handle);
    }
    {
        let (fe, stop) = (frontend.clone(), stop_rx.clone());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = std::thread::Builder::new()
            .name("trove-accept".to_owned())
            .spawn(move || rt.block_on(accept(listener, fe, queues, stop)))?;
        workers.push(handle);
    }
    // Serving first: a joining node must be reachable by the leader before it is a member.
    background.block_on(state.enter_cluster(&cfg)).context("cannot enter the cluster")?;
    background
        .block_on(crate::data::attach::attach_configured(&state, &cfg.buckets))
        .context("cannot attach [[buckets]]")?;
    background
        .block_on(crate::cluster::remotes::attach_configured(&state, &cfg.remotes))
        .context("cannot attach [[remotes]]")?;
    state.ready.store(true, std::sync::atomic::Ordering::Release);
    background.spawn(crate::jobs::rebalance::watch(state.clone()));
    background.spawn(crate::cluster::liveness::watch(state.clone()));
    background.spawn(crate::jobs::lifecycle::watch(state.clone()));
    background.spawn(crate::s3::log_delivery::deliver_forever(state.clone()));
    crate::capacity::start(state.clone());
    if let Some((ak, sk)) = &generated.credential {
        println!("Generated S3 credential (kept in the data directory):\n  access key: {ak}\n  secret key: {sk}");
    }
    if let Some(t) = &generated.admin_token {
        println!("Generated admin token (kept in the data directory): {t}");
    }
    if let Some(t) = &generated.cluster_secret {
        println!("Generated cluster secret (kept in the data directory; nodes joining need it): {t}");
    }
    tracing::info!(listen = %local, node = %state.node_id, mountpaths = state.store.mountpaths().len(), threads, "trove serving");
    println!("Trove listening on http://{local}");

    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(shutdown_signal());
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = stop_tx.send(true);
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "worker stopped with an error"),
            Err(_) => tracing::error!("worker thread panicked"),
        }
    }
    Ok(())
}

/// Accepts connections and deals them to the workers in turn. (Workers accepting on a shared socket left
/// most connections to whichever worker polled first: one core busy, the other idle.)
async fn accept(
    listener: std::net::TcpListener,
    frontend: Arc<Frontend>,
    queues: Vec<tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, conn::Admitted)>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut next = 0usize;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Above the limit the socket is closed at once: a client retries, a flood costs one accept each.
                let Some(admitted) = frontend.gate.admit(frontend.limits.max_connections) else {
                    tracing::debug!(open = frontend.gate.open(), "connection limit reached; closing a new connection");
                    drop(stream);
                    continue;
                };
                let Ok(stream) = stream.into_std() else { continue };
                next = (next + 1) % queues.len();
                if queues[next].send((stream, admitted)).is_err() {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    Ok(())
}

/// One runtime's connections, dealt to it by [`accept`]; on stop, it waits (up to `grace`) for the requests in
/// flight on its connections.
async fn worker(
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, conn::Admitted)>,
    frontend: Arc<Frontend>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let http = auto::Builder::new(TokioExecutor::new());
    let live = Arc::new(());
    loop {
        tokio::select! {
            dealt = incoming.recv() => {
                let Some((stream, admitted)) = dealt else { break };
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take over a connection");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let peer = stream.peer_addr().ok();
                let activity = Activity::new();
                let (fe, act) = (frontend.clone(), activity.clone());
                let svc = hyper::service::service_fn(move |req| {
                    let (fe, act) = (fe.clone(), act.clone());
                    async move {
                        let in_flight = act.request_started();
                        let resp = fe.handle(req, peer).await;
                        Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
                    }
                });
                let (fe, http, watcher, mut stop, live) =
                    (frontend.clone(), http.clone(), graceful.watcher(), stop.clone(), live.clone());
                tokio::spawn(async move {
                    let (_admitted, _live) = (admitted, live);
                    let served = async {
                        let mut sock = Watched::new(stream, activity.clone());
                        let prefix = if fe.direct_reads {
                            let direct = crate::direct::serve(&mut sock, &fe.state, fe.domain.as_deref(), &activity, &mut stop);
                            match std::panic::AssertUnwindSafe(direct).catch_unwind().await {
                                Ok(Ok(crate::direct::Outcome::HandOver(prefix))) => prefix,
                                Ok(Ok(crate::direct::Outcome::Closed)) => return,
                                Ok(Err(e)) => return tracing::debug!(error = %e, "connection ended with an error"),
                                Err(_) => return tracing::error!("a direct read panicked; connection closed"),
                            }
                        } else {
                            bytes::Bytes::new()
                        };
                        sock.replay(prefix);
                        let io = TokioIo::new(sock);
                        if let Err(e) = watcher.watch(http.serve_connection(io, svc).into_owned()).await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    };
                    let watchdog = conn::watchdog(activity.clone(), fe.limits);
                    tokio::select! {
                        () = served => {},
                        () = watchdog => tracing::debug!("closed a stalled connection"),
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(incoming);
    // Hyper's connections close once idle; those still in the direct loop close between requests (they watch
    // `stop`). Every connection task holds a clone of `live`.
    let drained = async {
        graceful.shutdown().await;
        while Arc::strong_count(&live) > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(?grace, "in-flight requests did not finish in time");
    }
    Ok(())
}

impl Frontend {
    /// Serves one request and records it in the request metrics (operation, status, time to the response
    /// head, bytes by Content-Length). The request target is parsed here, once.
    async fn handle(&self, req: Request<Incoming>, peer: Option<std::net::SocketAddr>) -> Response<s3s::Body> {
        let started = std::time::Instant::now();
        let target = Target::parse(req.method(), req.uri(), req.headers(), self.domain.as_deref());
        let op = target.op;
        let bytes_in = content_length(req.headers());
        let request_id = format!("{:016X}", rand::random::<u64>());
        let resp = match self.fast_path(&req, &target, &request_id).await {
            Some(resp) => resp,
            None => {
                // A span per request with the id S3 clients see, so every error logged inside names its
                // request. The fast path above logs nothing and stays without one (its cost is measured).
                let span = tracing::info_span!(target: "trove::request", "request", id = %request_id, op, method = %req.method(), status = tracing::field::Empty);
                let body_timeout = self.limits.body;
                let req = req.map(|b| s3s::Body::http_body(TimedBody::new(b, body_timeout)));
                let close_after = expects_continue_without_body(&req);
                let served = async {
                    let mut resp = match crate::cluster::forward::route(&self.state, req, &target).await {
                        Routed::Local(req) => {
                            // Kept for the access log (a bucket's logs are written by the node that served).
                            let head = crate::s3::log_delivery::is_logged(&self.state, &target).then(|| {
                                (target.clone(), req.method().clone(), req.uri().clone(), req.headers().clone())
                            });
                            let wall = time::OffsetDateTime::now_utc();
                            let resp = self.serve(req, target, &request_id).await;
                            if let Some((target, method, uri, headers)) = head {
                                let served = crate::s3::log_delivery::Served {
                                    target: &target,
                                    method: &method,
                                    uri: &uri,
                                    requester: crate::s3::log_delivery::requester(&self.state, &headers, &target),
                                    headers: &headers,
                                    remote: peer,
                                    request_id: &request_id,
                                    started: wall,
                                    elapsed: started.elapsed(),
                                };
                                self.state.server_logs.record(&self.state, &served, &resp);
                            }
                            resp
                        }
                        Routed::Answered(resp) => resp,
                    };
                    if close_after {
                        resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
                    }
                    resp
                };
                let resp = tracing::Instrument::instrument(served, span.clone()).await;
                span.record("status", resp.status().as_u16());
                resp
            }
        };
        let bytes_out = content_length(resp.headers());
        self.state.metrics.requests.record(op, resp.status().as_u16(), started.elapsed(), bytes_in, bytes_out);
        resp
    }

    /// A plain signed read answered without s3s (see `s3::fast_get`); `None` hands the request on. Traced as a
    /// debug span, which costs nothing unless traces are exported.
    async fn fast_path(
        &self,
        req: &Request<Incoming>,
        target: &Target,
        request_id: &str,
    ) -> Option<Response<s3s::Body>> {
        if target.api != Api::S3 || target.virtual_host {
            return None;
        }
        let span = tracing::debug_span!(target: "trove::request", "request", op = target.op, method = %req.method());
        let resp = span.in_scope(|| crate::s3::fast_get::try_serve(&self.state, req, target))?;
        Some(with_request_id(resp, request_id).await)
    }

    async fn serve(&self, mut req: Request<s3s::Body>, target: Target, request_id: &str) -> Response<s3s::Body> {
        if let Some(resp) = self.intra_cluster(&mut req).await {
            return resp;
        }
        if target.api == Api::Native {
            return native::handle(&self.state, req, target.query).await;
        }
        // CORS: a preflight is answered from the bucket's configuration (it carries no credentials); an actual
        // request from an allowed origin gets the Access-Control headers whatever its outcome.
        // Looked at in the shared snapshot; an entry is cloned only for a bucket with CORS (or a preflight).
        let cors_bucket = target.bucket.as_deref().and_then(|b| {
            let snap = self.state.registry.snapshot();
            snap.buckets
                .get(b)
                .filter(|e| e.configs.contains_key(crate::s3::cors::CONFIG) || req.method() == http::Method::OPTIONS)
                .cloned()
        });
        if req.method() == http::Method::OPTIONS {
            return crate::s3::cors::preflight(cors_bucket.as_ref(), req.headers());
        }
        // The rule is matched on the method the request says it stands for, if it names one (as RGW does).
        let cors_method = req
            .headers()
            .get(http::header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .map_or_else(|| req.method().to_string(), str::to_owned);
        let cors = match (cors_bucket, req.headers().get(http::header::ORIGIN).and_then(|o| o.to_str().ok())) {
            (Some(entry), Some(origin)) => Some((entry, origin.to_owned(), cors_method)),
            _ => None,
        };
        if let Some(refusal) = self.front_check(&mut req, &target) {
            return refusal;
        }
        if crate::s3::post_object::is_form_upload(req.method(), req.headers()) {
            let mut resp = crate::s3::post_object::serve(&self.state, req, &target).await;
            if let Some((entry, origin, method)) = &cors {
                crate::s3::cors::decorate(entry, origin, method, &mut resp);
            }
            return with_request_id(resp, request_id).await;
        }
        req.extensions_mut().insert(target);
        let call = std::panic::AssertUnwindSafe(self.s3.call(req));
        match call.catch_unwind().await {
            Ok(Ok(mut resp)) => {
                if resp.extensions().get::<crate::s3::PartialContent>().is_some() {
                    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                }
                if resp.extensions().get::<crate::s3::UnquotedETag>().is_some() {
                    resp = unquote_etag(resp).await;
                }
                if let Some((entry, origin, method)) = &cors {
                    crate::s3::cors::decorate(entry, origin, method, &mut resp);
                }
                with_request_id(resp, request_id).await
            }
            Ok(Err(e)) => {
                tracing::error!(error = ?e, "request failed");
                internal_error()
            }
            Err(_) => {
                tracing::error!("request handler panicked");
                internal_error()
            }
        }
    }

    /// Calls between nodes (Raft's and the gateways'), each checked against the cluster secret by its handler.
    async fn intra_cluster(&self, req: &mut Request<s3s::Body>) -> Option<Response<s3s::Body>> {
        let path = req.uri().path();
        let raft = path.strip_prefix(trove_cluster::PREFIX).map(str::to_owned);
        let intra = path.starts_with(crate::data::peers::PREFIX).then(|| path.to_owned());
        if raft.is_none() && intra.is_none() {
            return None;
        }
        if req.method() != http::Method::POST {
            return Some(plain(StatusCode::METHOD_NOT_ALLOWED, "intra-cluster calls are POSTs".into()));
        }
        let header = req.headers().get(trove_cluster::AUTH_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if intra.as_deref() == Some(crate::data::copies::COPY_PATH) {
            // An object handed over by another node: its body streams to disk.
            let body = std::mem::take(req.body_mut());
            return Some(crate::data::copies::receive(&self.state, header.as_deref(), req.headers(), body).await);
        }
        let limit = if raft.is_some() { RAFT_MAX_BODY } else { crate::data::peers::MAX_BODY };
        let body = std::mem::take(req.body_mut());
        let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Some(plain(StatusCode::BAD_REQUEST, format!("request body: {e}"))),
        };
        match (raft, intra) {
            (Some(call), _) => {
                let (status, answer) = self.state.cluster.handle(&call, header.as_deref(), body).await;
                Some(plain(status, String::from_utf8_lossy(&answer).into_owned()))
            }
            (None, Some(path)) => Some(crate::data::peers::handle(&self.state, &path, header.as_deref(), body).await),
            (None, None) => None,
        }
    }

    /// What is refused from the request head alone, before anything reads the body: presigned URLs with an
    /// out-of-range lifetime, and SigV2 requests S3 would refuse (see `s3::sigv2`).
    fn front_check(&self, req: &mut Request<s3s::Body>, target: &Target) -> Option<Response<s3s::Body>> {
        if target.auth == AuthKind::SigV4Presigned && presigned_expiry_out_of_range(target.param("X-Amz-Expires")) {
            let msg = "X-Amz-Expires must be non-negative and less than a week (in seconds) that is 604800";
            return Some(crate::s3::errors::xml_response(StatusCode::FORBIDDEN, "AccessDenied", msg));
        }
        if let AuthKind::SigV2 | AuthKind::SigV2Presigned = target.auth {
            let signed = crate::s3::sigv2::Signed {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                query: &target.query,
                vh_bucket: target.bucket.as_deref().filter(|_| target.virtual_host),
            };
            let presigned = target.auth == AuthKind::SigV2Presigned;
            match crate::s3::sigv2::check(&self.state, &signed, presigned, time::OffsetDateTime::now_utc()) {
                Err(r) => return Some(crate::s3::errors::xml_response(r.status, r.code, r.message)),
                Ok(crate::s3::sigv2::Matched::WithSlash) => {
                    let uri = req.uri();
                    let with_slash = match uri.query() {
                        Some(q) => format!("{}/?{q}", uri.path()),
                        None => format!("{}/", uri.path()),
                    };
                    if let Ok(pq) = with_slash.parse::<http::uri::PathAndQuery>() {
                        let mut parts = uri.clone().into_parts();
                        parts.path_and_query = Some(pq);
                        if let Ok(u) = http::Uri::from_parts(parts) {
                            *req.uri_mut() = u;
                        }
                    }
                }
                Ok(crate::s3::sigv2::Matched::AsSent) => {}
            }
        }
        None
    }
}

/// s3s's `SingleDomain` with the port stripped from the Host header first (clients send `bucket.domain:port`).
struct DomainHost(s3s::host::SingleDomain);

impl s3s::host::S3Host for DomainHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        self.0.parse_host_header(name)
    }
}

/// `Expect: 100-continue` with an empty body: hyper answers without a `100 Continue`, and botocore (aws-cli,
/// boto3) then mishandles the reused connection, so that the next request on it hangs. Closing the connection
/// after such a response avoids it; zero-byte uploads are rare enough for the extra connect not to matter.
fn expects_continue_without_body<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    h.get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        && h.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0")
}

/// SigV4 allows presigned URLs to live 0 s to 7 days; s3s does not check the bounds itself.
fn presigned_expiry_out_of_range(expires: Option<&str>) -> bool {
    const MAX_SECS: i64 = 604_800;
    expires.is_some_and(|v| v.parse::<i64>().map_or(true, |n| !(0..=MAX_SECS).contains(&n)))
}

/// Every S3 response carries `x-amz-request-id`; an error body names the same id in `<RequestId>`, as S3's do.
/// Takes the quotes off the `<ETag>` of a small XML answer (GetObjectAttributes).
async fn unquote_etag(resp: Response<s3s::Body>) -> Response<s3s::Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = match http_body_util::BodyExt::collect(body).await {
        Ok(c) => c.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes).replacen("<ETag>\"", "<ETag>", 1).replacen("\"</ETag>", "</ETag>", 1);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, s3s::Body::from(text))
}

async fn with_request_id(mut resp: Response<s3s::Body>, id: &str) -> Response<s3s::Body> {
    if let Ok(v) = http::HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    let is_xml_error = resp.status().as_u16() >= 400
        && resp.headers().get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/xml"));
    if !is_xml_error {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match http_body_util::BodyExt::collect(body).await {
        Ok(c) => c.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    let text = String::from_utf8_lossy(&bytes);
    if let Some(code) = text.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")) {
        parts.extensions.insert(crate::s3::log_delivery::ErrorCode(code.0.to_owned()));
    }
    let body = match text.rfind("</Error>") {
        Some(at) if !text.contains("<RequestId>") => {
            format!("{}<RequestId>{id}</RequestId>{}", &text[..at], &text[at..])
        }
        _ => text.into_owned(),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, s3s::Body::from(body))
}

/// The largest Raft call body (snapshot chunks of a few MiB, batches of log entries).
const RAFT_MAX_BODY: usize = 64 << 20;

fn plain(status: StatusCode, body: String) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn internal_error() -> Response<s3s::Body> {
    crate::s3::errors::xml_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "We encountered an internal error. Please try again.",
    )
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::presigned_expiry_out_of_range;

    #[test]
    fn presigned_expiry_bounds() {
        assert!(!presigned_expiry_out_of_range(None));
        assert!(!presigned_expiry_out_of_range(Some("0")));
        assert!(!presigned_expiry_out_of_range(Some("604800")));
        assert!(presigned_expiry_out_of_range(Some("604801")));
        assert!(presigned_expiry_out_of_range(Some("-7")));
        assert!(presigned_expiry_out_of_range(Some("soon")));
    }
}
