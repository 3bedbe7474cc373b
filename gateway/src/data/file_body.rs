//! Stored objects out as response bodies. Reads happen inline on the runtime thread with positioned reads on
//! an already open file when the data is in the page cache (DESIGN §10 measured every blocking-pool hop as the
//! largest cost of a cache hit); data that would wait for the disk is read on the blocking pool.

use std::fs::File;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::dto::StreamingBlob;

/// A positioned, chunked reader of `[start, end)` of an open file.
///
/// Each chunk is first read with `RWF_NOWAIT`, which only succeeds from the page cache: cached data (the cache
/// hit the server is built for) is read inline on the runtime thread. Data that would block on the disk is
/// read on the blocking pool instead, so a cold read cannot stall the other connections of this runtime.
pub struct FileBody {
    file: Arc<File>,
    pos: u64,
    end: u64,
    /// The filesystem does not support `RWF_NOWAIT`: read inline, as the best remaining choice.
    no_nowait: bool,
    cold_read: Option<tokio::task::JoinHandle<std::io::Result<Vec<u8>>>>,
}

const READ_CHUNK: u64 = 256 * 1024;

fn boxed(e: std::io::Error) -> s3s::StdError {
    Box::new(e)
}

fn short_object() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object shorter than its metadata")
}

/// Reads exactly `buf.len()` bytes at `pos` (blocking).
fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
    file.read_exact_at(buf, pos)
        .map_err(|e| if e.kind() == std::io::ErrorKind::UnexpectedEof { short_object() } else { e })
}

impl FileBody {
    pub fn new(file: File, start: u64, end: u64) -> Self {
        Self::shared(Arc::new(file), start, end)
    }

    /// A reader of a file others read too (an object kept open for repeated reads).
    pub fn shared(file: Arc<File>, start: u64, end: u64) -> Self {
        FileBody { file, pos: start, end, no_nowait: false, cold_read: None }
    }

    pub fn into_blob(self) -> StreamingBlob {
        StreamingBlob::new(self)
    }

    /// A page-cache-only read of up to `len` bytes; `None` when the data is not (all) cached.
    fn read_cached(&mut self, len: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; len];
        if self.no_nowait {
            read_exact_at(&self.file, &mut buf, self.pos)?;
            return Ok(Some(buf));
        }
        let flags = rustix::io::ReadWriteFlags::NOWAIT;
        match rustix::io::preadv2(&*self.file, &mut [std::io::IoSliceMut::new(&mut buf)], self.pos, flags) {
            Ok(0) => Err(short_object()),
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(rustix::io::Errno::AGAIN) => Ok(None),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL) => {
                self.no_nowait = true;
                self.read_cached(len)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(handle) = self.cold_read.as_mut() {
            let done = std::task::ready!(Pin::new(handle).poll(cx));
            self.cold_read = None;
            return Poll::Ready(Some(match done {
                Ok(Ok(buf)) => {
                    self.pos += buf.len() as u64;
                    Ok(Bytes::from(buf))
                }
                Ok(Err(e)) => Err(boxed(e)),
                Err(join) => Err(boxed(std::io::Error::other(join))),
            }));
        }
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        let len = (self.end - self.pos).min(READ_CHUNK) as usize;
        match self.read_cached(len) {
            Ok(Some(buf)) => {
                self.pos += buf.len() as u64;
                Poll::Ready(Some(Ok(Bytes::from(buf))))
            }
            Ok(None) => {
                let (file, pos) = (self.file.clone(), self.pos);
                self.cold_read = Some(tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    read_exact_at(&file, &mut buf, pos).map(|()| buf)
                }));
                self.poll_next(cx)
            }
            Err(e) => Poll::Ready(Some(Err(boxed(e)))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let chunks = (self.end.saturating_sub(self.pos)).div_ceil(READ_CHUNK) as usize;
        (chunks, Some(chunks))
    }
}

impl s3s::stream::ByteStream for FileBody {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        s3s::stream::RemainingLength::new_exact(self.end.saturating_sub(self.pos) as usize)
    }
}

/// A backend stream made `Sync` for s3s's body type. Only ever polled through `&mut`, so the mutex is never
/// contended; it exists to satisfy the bound.
pub struct SyncBody(std::sync::Mutex<trove_backends::ByteStream>);

impl SyncBody {
    pub fn new(s: trove_backends::ByteStream) -> SyncBody {
        SyncBody(std::sync::Mutex::new(s))
    }
}

impl futures::Stream for SyncBody {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let inner = self.get_mut().0.get_mut().unwrap_or_else(|e| e.into_inner());
        inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    async fn read_all(body: FileBody) -> Vec<u8> {
        let mut out = Vec::new();
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn reads_ranges_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(READ_CHUNK as usize * 2 + 1000)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let whole = read_all(FileBody::new(File::open(&path).unwrap(), 0, data.len() as u64)).await;
        assert_eq!(whole, data);
        let part = read_all(FileBody::new(File::open(&path).unwrap(), 10, 300_000)).await;
        assert_eq!(part, &data[10..300_000]);
        // The path for filesystems without RWF_NOWAIT reads the same bytes.
        let mut fallback = FileBody::new(File::open(&path).unwrap(), 5, 70_000);
        fallback.no_nowait = true;
        assert_eq!(read_all(fallback).await, &data[5..70_000]);
    }

    #[tokio::test]
    async fn a_truncated_file_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"short").unwrap();
        let mut body = FileBody::new(File::open(&path).unwrap(), 0, 100);
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(&first[..], b"short");
        assert!(body.next().await.unwrap().is_err());
    }
}
