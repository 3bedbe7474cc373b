//! Plain object reads answered below hyper, on connections that begin with them.
//!
//! A data loader's connection is a run of GETs. For those, this loop parses each request head once, asks the
//! fast path (`s3::fast_get::decide`) whether it is a plain signed read this node serves, and writes the
//! response head and body straight to the socket: a small body in the same write as its head, a page-cached
//! large body with `sendfile`, so its bytes never cross into user space (hyper can only send bodies it was
//! given as buffers). The first request the loop does not answer itself (an error, anything for s3s or the
//! native API, a body, HTTP/1.0, HTTP/2, an upgrade) hands the connection, with the bytes already read, to
//! hyper for the rest of its life (`Watched::replay`); hyper then parses that request again from the start.
//! In a cluster, a read of an object another node owns is relayed to that node here (`cluster::relay`).

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::cluster::relay::{self, Ask, Relayed};
use crate::conn::{Activity, Watched};
use crate::request::{Api, Target};
use crate::s3::fast_get::{self, Hit};
use crate::state::AppState;

/// A head longer than this goes to hyper (which answers 431 when it is too long for it too).
const MAX_HEAD: usize = 16 << 10;
const MAX_HEADERS: usize = 48;
/// Bodies up to this size are read into the buffer of the response head and written with it.
const INLINE_MAX: u64 = 64 << 10;
/// `sendfile` goes a chunk at a time: each is checked for being page-cached, and the runtime's other
/// connections get a turn between chunks.
const SENDFILE_CHUNK: usize = 1 << 20;

/// How the loop left the connection.
pub enum Outcome {
    /// Closed (by the client, `Connection: close`, or the node stopping).
    Closed,
    /// Hyper serves the rest, starting with these bytes already read.
    HandOver(Bytes),
}

/// One request head the loop may answer.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// The head's length in the buffer.
    len: usize,
    /// `Connection: close`.
    close: bool,
}

// Lives on the stack for one parse; boxing the head would cost an allocation per read.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Complete(Head),
    Partial,
    /// Not for this loop: hyper takes the connection.
    Other,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Other,
    };
    let Some(path) = req.path.filter(|p| p.starts_with('/')) else { return Parsed::Other };
    if req.version != Some(1) {
        return Parsed::Other;
    }
    let Ok(uri) = path.parse::<Uri>() else { return Parsed::Other };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut close = false;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return Parsed::Other;
        };
        match name.as_str() {
            // A body, or something other than one plain exchange: hyper's business.
            "transfer-encoding" | "expect" | "upgrade" | "te" => return Parsed::Other,
            "content-length" if value.as_bytes() != b"0" => return Parsed::Other,
            "connection" => {
                let v = value.to_str().unwrap_or_default().to_ascii_lowercase();
                if v.split(',').any(|t| t.trim() == "upgrade") {
                    return Parsed::Other;
                }
                close |= v.split(',').any(|t| t.trim() == "close");
            }
            _ => {}
        }
        headers.append(name, value);
    }
    Parsed::Complete(Head { method, uri, headers, len, close })
}

/// Serves requests from `sock` until one is not a plain read (handed over), the connection closes, or `stop`.
pub async fn serve(
    sock: &mut Watched<TcpStream>,
    state: &AppState,
    domain: Option<&str>,
    activity: &Arc<Activity>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> io::Result<Outcome> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    Parsed::Complete(h) => break h,
                    Parsed::Other => return Ok(Outcome::HandOver(buf.freeze())),
                    Parsed::Partial if buf.len() > MAX_HEAD => return Ok(Outcome::HandOver(buf.freeze())),
                    Parsed::Partial => {}
                }
            }
            if *stop.borrow() {
                return Ok(Outcome::Closed);
            }
            let n = tokio::select! {
                n = sock.read_buf(&mut buf) => n?,
                _ = stop.changed() => continue,
            };
            if n == 0 {
                return Ok(Outcome::Closed);
            }
        };
        let started = Instant::now();
        let target = Target::parse(&head.method, &head.uri, &head.headers, domain);
        let ask = Ask { method: &head.method, uri: &head.uri, headers: &head.headers, close: head.close };
        // Another node's object: relayed to it (cluster only; nothing spent on signatures here).
        if let Some(owner) = relay::owner_of(state, &ask, &target) {
            let in_flight = activity.request_started();
            match relay::relay(sock, activity, state, &owner, &ask).await? {
                Relayed::NotTaken => return Ok(Outcome::HandOver(buf.freeze())),
                Relayed::Done { status, bytes } => {
                    state.metrics.requests.record(target.op, status, started.elapsed(), 0, bytes);
                }
            }
            drop(in_flight);
            buf.advance(head.len);
            if head.close {
                let _ = sock.shutdown().await;
                return Ok(Outcome::Closed);
            }
            continue;
        }
        if target.api != Api::S3 || target.virtual_host {
            return Ok(Outcome::HandOver(buf.freeze()));
        }
        let Some(hit) = fast_get::decide(state, &head.method, &head.uri, &head.headers, &target) else {
            return Ok(Outcome::HandOver(buf.freeze()));
        };
        buf.advance(head.len);
        let in_flight = activity.request_started();
        let (status, size) = (hit.status.as_u16(), hit.end - hit.start);
        let metrics = &state.metrics;
        metrics.direct_reads.fetch_add(1, Ordering::Relaxed);
        respond(sock, activity, metrics, hit, head.close, started, |took| {
            metrics.requests.record(target.op, status, took, 0, size);
        })
        .await?;
        drop(in_flight);
        if head.close {
            let _ = sock.shutdown().await;
            return Ok(Outcome::Closed);
        }
    }
}

/// Writes the answer to one read. An error after the head went out can only close the connection.
async fn respond(
    sock: &mut Watched<TcpStream>,
    activity: &Activity,
    metrics: &crate::metrics::Metrics,
    hit: Hit,
    close: bool,
    started: Instant,
    record: impl FnOnce(std::time::Duration),
) -> io::Result<()> {
    let size = hit.end - hit.start;
    let inline = !hit.head && size <= INLINE_MAX;
    let mut out = Vec::with_capacity(512 + if inline { size as usize } else { 0 });
    out.extend_from_slice(if hit.status == http::StatusCode::OK {
        b"HTTP/1.1 200 OK\r\n"
    } else {
        b"HTTP/1.1 206 Partial Content\r\n"
    });
    out.extend_from_slice(hit.lines());
    out.extend_from_slice(b"x-amz-request-id: ");
    let id = rand::random::<u64>();
    out.extend((0..16).rev().map(|nibble| b"0123456789ABCDEF"[(id >> (nibble * 4)) as usize & 0xF]));
    out.extend_from_slice(b"\r\ndate: ");
    date::with(|d| out.extend_from_slice(d));
    out.extend_from_slice(if close { b"\r\nconnection: close\r\n\r\n" } else { b"\r\n\r\n" });
    record(started.elapsed());
    if hit.head {
        return sock.write_all(&out).await;
    }
    if inline {
        let out = read_into(hit.open.file.clone(), out, hit.start, size).await?;
        return sock.write_all(&out).await;
    }
    sock.write_all(&out).await?;
    send_file(sock, activity, metrics, hit.open.file.clone(), hit.start, hit.end).await
}

/// Appends `size` bytes of `file` from `from` to `out`: from the page cache inline, else on the blocking pool.
async fn read_into(file: Arc<std::fs::File>, mut out: Vec<u8>, from: u64, size: u64) -> io::Result<Vec<u8>> {
    let at = out.len();
    out.resize(at + size as usize, 0);
    let mut got = 0;
    let flags = rustix::io::ReadWriteFlags::NOWAIT;
    while got < size as usize {
        match rustix::io::preadv2(&*file, &mut [io::IoSliceMut::new(&mut out[at + got..])], from + got as u64, flags) {
            Ok(0) => return Err(short_object()),
            Ok(n) => got += n,
            Err(_) => break,
        }
    }
    if got == size as usize {
        return Ok(out);
    }
    tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut out[at + got..], from + got as u64).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                short_object()
            } else {
                e
            }
        })?;
        Ok(out)
    })
    .await
    .map_err(io::Error::other)?
}

fn short_object() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "object shorter than its metadata")
}

/// Whether the bytes at both ends of `[from, to)` are in the page cache: a one-byte `RWF_NOWAIT` read only
/// succeeds from it. (Checking every page needs `cachestat` or `mincore`, out of reach without `unsafe`; a
/// chunk evicted in its middle costs one disk read on this thread, bounded by the chunk size.)
fn cached(file: &std::fs::File, from: u64, to: u64) -> bool {
    let flags = rustix::io::ReadWriteFlags::NOWAIT;
    let mut byte = [0u8; 1];
    [from, to - 1]
        .into_iter()
        .all(|at| matches!(rustix::io::preadv2(file, &mut [io::IoSliceMut::new(&mut byte)], at, flags), Ok(1)))
}

/// `sendfile` from `file` to the socket, chunk by chunk while the chunks are page-cached, waiting for room as
/// the socket drains; from the first chunk that is not, the rest goes through the body reader, whose cold
/// reads run on the blocking pool (a disk read must not stall this runtime's other connections).
async fn send_file(
    sock: &mut Watched<TcpStream>,
    activity: &Activity,
    metrics: &crate::metrics::Metrics,
    file: Arc<std::fs::File>,
    start: u64,
    end: u64,
) -> io::Result<()> {
    let mut offset = start;
    while offset < end {
        let chunk_end = (offset + SENDFILE_CHUNK as u64).min(end);
        if !cached(&file, offset, chunk_end) {
            let mut body = crate::data::FileBody::shared(file, offset, end);
            while let Some(chunk) = body.next().await {
                sock.write_all(&chunk.map_err(io::Error::other)?).await?;
            }
            return Ok(());
        }
        while offset < chunk_end {
            let tcp = sock.get_ref();
            let left = (chunk_end - offset) as usize;
            match tcp.try_io(Interest::WRITABLE, || Ok(rustix::fs::sendfile(tcp, &*file, Some(&mut offset), left)?)) {
                Ok(0) => return Err(short_object()),
                Ok(n) => {
                    activity.wrote(true);
                    metrics.sendfile_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    activity.wrote(false);
                    tcp.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
        // Let the runtime's other connections run between chunks.
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// The `Date` header, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static NOW: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
    }

    pub fn with(f: impl FnOnce(&[u8])) {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        NOW.with(|now| {
            let mut now = now.borrow_mut();
            if now.0 != secs || now.1.is_empty() {
                let t = s3s::dto::Timestamp::from(SystemTime::now());
                now.1 = crate::s3::object::http_date(&t).unwrap_or_default().into_bytes();
                now.0 = secs;
            }
            f(&now.1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Parsed};

    fn complete(raw: &str) -> super::Head {
        match parse(raw.as_bytes()) {
            Parsed::Complete(h) => h,
            Parsed::Partial => panic!("partial: {raw:?}"),
            Parsed::Other => panic!("other: {raw:?}"),
        }
    }

    fn other(raw: &str) -> bool {
        matches!(parse(raw.as_bytes()), Parsed::Other)
    }

    #[test]
    fn plain_reads_are_taken() {
        let h = complete("GET /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /b/k2");
        assert_eq!(h.method, http::Method::GET);
        assert_eq!(h.uri.path(), "/b/k");
        assert_eq!(h.len, "GET /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".len());
        assert!(!h.close);
        assert!(complete("HEAD /b/k HTTP/1.1\r\nConnection: Close\r\n\r\n").close);
        assert!(matches!(parse(b"GET /b/k HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        assert!(other("PUT /b/k HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"));
        assert!(other("GET /b/k HTTP/1.0\r\n\r\n"));
        assert!(other("GET /b/k HTTP/1.1\r\nContent-Length: 5\r\n\r\n"));
        assert!(other("GET /b/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(other("GET /b/k HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
        assert!(other("GET /b/k HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n"));
        assert!(other("GET http://h/b/k HTTP/1.1\r\n\r\n"));
        assert!(other("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(other("GET /b/k HTTP/1.1\r\nBad Header: x\r\n\r\n"));
    }
}
