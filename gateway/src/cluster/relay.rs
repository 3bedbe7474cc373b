//! Forwarding of reads below hyper: the forwarding node's half of a direct-read connection (`direct.rs`).
//!
//! A read of an object another node owns is passed on as bytes: the client's head goes to the owner over a
//! raw keep-alive connection pooled per worker thread, with the forwarding headers added and the hop-by-hop
//! ones dropped (as `forward::build` does for hyper's client); the owner's head comes back re-written the same
//! way, and a large body moves socket to socket with `splice`, so its bytes never enter user space. Going
//! through hyper's server and client instead cost this node about four times the owner's CPU per 4 KiB read.
//!
//! Only the plain exchange is relayed. Anything unexpected before the first byte reaches the client — no
//! connection to the owner, an answer not framed by Content-Length — leaves the request to hyper's forwarding
//! path (`forward::route`), which tries the next nodes and words the errors. A read is idempotent, so a
//! request the owner already saw may be sent again; a pooled connection found closed is retried once on a
//! fresh one for the same reason.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{HeaderMap, Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use trove_cluster::NodeInfo;

use super::forward::{self, FORWARDED, HOP_BY_HOP, SMAP_VERSION};
use crate::conn::{Activity, Watched};
use crate::request::Target;
use crate::state::AppState;

/// Idle connections kept per owner and worker thread.
const POOL_PER_NODE: usize = 64;
/// A pooled connection idle longer than this is closed rather than reused (the owner closes idle connections
/// after `server.idle_timeout_secs`, 60 s by default; a closed one still costs a retry).
const POOL_IDLE: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// An owner's response head longer than this is not relayed.
const MAX_HEAD: usize = 64 << 10;
const MAX_HEADERS: usize = 64;
/// Bodies longer than this (after what came with the head) are spliced; shorter ones are copied.
const SPLICE_MIN: u64 = 64 << 10;
/// The splice pipe's size: the most one round moves from the owner to the client.
const PIPE_SIZE: usize = 256 << 10;

thread_local! {
    /// Idle connections to other nodes by `host:port`. Per thread: a socket stays with the runtime that
    /// registered it.
    static IDLE: RefCell<HashMap<String, Vec<(TcpStream, Instant)>>> = RefCell::new(HashMap::new());
    /// An empty pipe for the next splice.
    static PIPE: RefCell<Option<(OwnedFd, OwnedFd)>> = const { RefCell::new(None) };
}

/// How a relay ended.
pub enum Relayed {
    /// The owner's answer went to the client: its status and body length.
    Done { status: u16, bytes: u64 },
    /// Nothing was written to the client: hyper's forwarding path takes the request.
    NotTaken,
}

/// A read to relay: the client's request head.
pub struct Ask<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The client asked to close after this answer.
    pub close: bool,
}

/// Where a relayed read goes: the owner's `host:port`, and the version of the Smap that chose it (the owner
/// catches up to it before answering).
pub struct Owner {
    addr: String,
    smap_version: u64,
}

/// The node that owns the object `ask` reads, when it is another node reachable over plain HTTP and the request
/// did not come from a node (a forwarded request is served where it lands).
pub fn owner_of(state: &AppState, ask: &Ask<'_>, target: &Target) -> Option<Owner> {
    if ask.headers.contains_key(FORWARDED) {
        return None;
    }
    let map = state.cluster.map();
    if map.smap.nodes.len() <= 1 {
        return None;
    }
    let (entry, key) = forward::object_of(state, target, ask.uri)?;
    let ranked = super::ranked(&map, &entry.bck, &key);
    let owner: &NodeInfo = ranked.first()?;
    if owner.id == state.node_id {
        return None;
    }
    let addr = owner.url.strip_prefix("http://")?.trim_end_matches('/');
    (!addr.contains('/')).then(|| Owner { addr: addr.to_owned(), smap_version: map.smap.version })
}

/// Relays `ask` to `owner` and its answer to the client on `sock`. An error after the answer's
/// first byte went out can only close the client's connection.
pub async fn relay(
    sock: &mut Watched<TcpStream>,
    activity: &Activity,
    state: &AppState,
    owner: &Owner,
    ask: &Ask<'_>,
) -> io::Result<Relayed> {
    let addr = owner.addr.as_str();
    let request = request_head(state, ask, owner.smap_version);
    let mut buf = BytesMut::with_capacity(8 << 10);
    let (mut conn, answer) = loop {
        let (mut conn, pooled) = match pooled(addr) {
            Some(c) => (c, true),
            None => match connect(addr).await {
                Ok(c) => (c, false),
                Err(e) => {
                    tracing::debug!(node = addr, error = %e, "relay: no connection; hyper forwards");
                    return Ok(Relayed::NotTaken);
                }
            },
        };
        buf.clear();
        match exchange(&mut conn, &request, &mut buf).await {
            Ok(Some(answer)) => break (conn, answer),
            // The owner answered in a way this relay does not pass on: hyper asks again.
            Ok(None) => return Ok(Relayed::NotTaken),
            // Closed while idle in the pool: once more on a new connection.
            Err(_) if pooled && buf.is_empty() => continue,
            Err(e) => {
                tracing::debug!(node = addr, error = %e, "relay: exchange failed; hyper forwards");
                return Ok(Relayed::NotTaken);
            }
        }
    };
    let body_len = if *ask.method == Method::HEAD || matches!(answer.status, 100..=199 | 204 | 304) {
        0
    } else {
        match answer.content_length {
            Some(n) => n,
            None => return Ok(Relayed::NotTaken),
        }
    };

    let mut out = Vec::with_capacity(answer.head.len() + 64 + buf.len().min(SPLICE_MIN as usize));
    out.extend_from_slice(&answer.head);
    out.extend_from_slice(if ask.close { b"connection: close\r\n\r\n" } else { b"\r\n" });
    let came = &buf[answer.len..];
    let with_head = came.len().min(body_len as usize);
    // Reused only while the owner serves it on its direct path (a read that went to its hyper — an error, an
    // unusual header — keeps the connection there for good), and never with bytes beyond the body (out of step).
    let mut reusable = !answer.close
        && came.len() == with_head
        && matches!(answer.status, 200 | 206)
        && crate::s3::fast_get::looks_plain(ask.uri, ask.headers);
    out.extend_from_slice(&came[..with_head]);
    sock.write_all(&out).await?;
    let mut left = body_len - with_head as u64;
    if left > SPLICE_MIN {
        pump(&conn, sock.get_ref(), left, activity, state).await?;
    } else {
        buf.clear();
        while left > 0 {
            let n = conn.read_buf(&mut buf).await?;
            if n == 0 {
                return Err(cut_short());
            }
            let take = n.min(left as usize);
            sock.write_all(&buf[..take]).await?;
            reusable &= take == n;
            left -= take as u64;
            buf.clear();
        }
    }
    if reusable {
        put_back(addr, conn);
    }
    state.metrics.relayed_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Relayed::Done { status: answer.status, bytes: body_len })
}

/// The request as the owner gets it: the client's method, target and headers minus hop-by-hop ones, plus the
/// cluster's forwarding signature and this node's Smap version.
fn request_head(state: &AppState, ask: &Ask<'_>, smap_version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(ask.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(ask.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in ask.headers {
        if HOP_BY_HOP.contains(&name.as_str()) || forward::is_internal(name.as_str()) {
            continue;
        }
        header(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    let signed = state.cluster.sign(&forward::forward_method(ask.method), ask.uri.path());
    header(&mut out, FORWARDED.as_bytes(), signed.as_bytes());
    header(&mut out, SMAP_VERSION.as_bytes(), smap_version.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The owner's response head, re-written for the client (status line and end-to-end headers, without the
/// blank line that ends it).
struct Answer {
    head: Vec<u8>,
    status: u16,
    content_length: Option<u64>,
    /// The owner closes its side after this answer.
    close: bool,
    /// The head's length in the buffer.
    len: usize,
}

/// Sends the request and reads the answer's head into `buf`. `None`: an answer this relay does not pass on
/// (chunked, interim, unparsable) — nothing of it has reached the client.
async fn exchange(conn: &mut TcpStream, request: &[u8], buf: &mut BytesMut) -> io::Result<Option<Answer>> {
    conn.write_all(request).await?;
    loop {
        if conn.read_buf(buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the owner closed the connection"));
        }
        match parse_answer(buf) {
            Parsed::Complete(a) => return Ok(Some(a)),
            Parsed::Unusable => return Ok(None),
            Parsed::Partial if buf.len() > MAX_HEAD => return Ok(None),
            Parsed::Partial => {}
        }
    }
}

enum Parsed {
    Complete(Answer),
    Partial,
    Unusable,
}

fn parse_answer(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Unusable,
    };
    let Some(status) = resp.code.filter(|c| *c >= 200) else { return Parsed::Unusable };
    let mut head = Vec::with_capacity(len + 64);
    head.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", resp.reason.unwrap_or_default()).as_bytes());
    let (mut content_length, mut close) = (None, resp.version != Some(1));
    for h in resp.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "transfer-encoding" => return Parsed::Unusable,
            "content-length" => {
                let Some(n) = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<u64>().ok()) else {
                    return Parsed::Unusable;
                };
                if content_length.replace(n).is_some_and(|m| m != n) {
                    return Parsed::Unusable;
                }
            }
            "connection" => {
                close |= std::str::from_utf8(h.value)
                    .unwrap_or_default()
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close"));
                continue;
            }
            _ if HOP_BY_HOP.contains(&name.as_str()) => continue,
            _ => {}
        }
        header(&mut head, h.name.as_bytes(), h.value);
    }
    Parsed::Complete(Answer { head, status, content_length, close, len })
}

/// Moves `left` body bytes from the owner to the client through a pipe: each round one `splice` in (the pipe
/// is empty, so only an empty socket can stop it) and as many out as the client takes.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    mut left: u64,
    activity: &Activity,
    state: &AppState,
) -> io::Result<()> {
    use rustix::pipe::{splice, SpliceFlags};
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    let pipe = match PIPE.take() {
        Some(p) => p,
        None => {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            // The default 64 KiB works too, only in more rounds.
            let _ = rustix::pipe::fcntl_setpipe_size(&w, PIPE_SIZE);
            (r, w)
        }
    };
    let (r, w) = (&pipe.0, &pipe.1);
    while left > 0 {
        let want = left.min(PIPE_SIZE as u64) as usize;
        let mut in_pipe = loop {
            match from.try_io(Interest::READABLE, || Ok(splice(from, None, w, None, want, flags)?)) {
                Ok(0) => return Err(cut_short()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => from.readable().await?,
                Err(e) => return Err(e),
            }
        };
        left -= in_pipe as u64;
        while in_pipe > 0 {
            match to.try_io(Interest::WRITABLE, || Ok(splice(r, None, to, None, in_pipe, flags)?)) {
                Ok(n) => {
                    in_pipe -= n;
                    activity.wrote(true);
                    state.metrics.spliced_bytes.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    activity.wrote(false);
                    to.writable().await?;
                }
                // The pipe may hold bytes: it is dropped with them.
                Err(e) => return Err(e),
            }
        }
    }
    PIPE.set(Some(pipe));
    Ok(())
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the owner's answer ended early")
}

async fn connect(addr: &str) -> io::Result<TcpStream> {
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    conn.set_nodelay(true)?;
    Ok(conn)
}

fn pooled(addr: &str) -> Option<TcpStream> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let conns = idle.get_mut(addr)?;
        while let Some((conn, since)) = conns.pop() {
            if since.elapsed() < POOL_IDLE {
                return Some(conn);
            }
        }
        None
    })
}

fn put_back(addr: &str, conn: TcpStream) {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let conns = match idle.get_mut(addr) {
            Some(c) => c,
            None => idle.entry(addr.to_owned()).or_default(),
        };
        // The oldest go first: they are the likeliest to be closed by the owner.
        conns.retain(|(_, since)| since.elapsed() < POOL_IDLE);
        if conns.len() < POOL_PER_NODE {
            conns.push((conn, Instant::now()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{parse_answer, Parsed};

    fn complete(raw: &str) -> super::Answer {
        match parse_answer(raw.as_bytes()) {
            Parsed::Complete(a) => a,
            Parsed::Partial => panic!("partial: {raw:?}"),
            Parsed::Unusable => panic!("unusable: {raw:?}"),
        }
    }

    #[test]
    fn answers_are_rewritten_without_hop_by_hop_headers() {
        let raw = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   etag: \"x\"\r\n\r\nhello";
        let a = complete(raw);
        assert_eq!(a.status, 200);
        assert_eq!(a.content_length, Some(5));
        assert!(!a.close);
        assert_eq!(a.len, raw.len() - 5);
        assert_eq!(String::from_utf8(a.head).unwrap(), "HTTP/1.1 200 OK\r\ncontent-length: 5\r\netag: \"x\"\r\n");
        assert!(complete("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").close);
        assert!(complete("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").close);
        assert_eq!(complete("HTTP/1.1 304 Not Modified\r\n\r\n").content_length, None);
    }

    #[test]
    fn unusual_answers_are_left_to_hyper() {
        for raw in [
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            assert!(matches!(parse_answer(raw.as_bytes()), Parsed::Unusable), "{raw:?}");
        }
        assert!(matches!(parse_answer(b"HTTP/1.1 200 OK\r\ncontent-len"), Parsed::Partial));
    }
}
