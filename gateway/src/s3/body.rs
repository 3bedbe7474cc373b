//! Request bodies into staged files (with MD5 and S3 checksums computed on the way), and files out as
//! response bodies.
//!
//! Reads of stored objects happen inline on the runtime thread with positioned reads on an already open file:
//! DESIGN §10 measured every blocking-pool hop as the largest cost of a cache hit, and these files are usually
//! in the page cache.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result};
use tokio::io::AsyncWriteExt;
use trove_cache::Staged;

use crate::s3::errors;

/// S3's single-PUT limit.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The checksum algorithms S3 knows, by their wire names.
pub const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// A received body: its size, MD5, and the checksums that were asked for.
#[derive(Debug)]
pub struct Received {
    pub size: u64,
    pub md5: [u8; 16],
    /// Algorithm -> base64 value.
    pub checksums: BTreeMap<String, String>,
}

impl Received {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }
}

pub fn hasher_for(algorithms: &[String]) -> ChecksumHasher {
    let mut h = ChecksumHasher::default();
    for a in algorithms {
        match a.as_str() {
            "CRC32" => h.crc32 = Some(Default::default()),
            "CRC32C" => h.crc32c = Some(Default::default()),
            "CRC64NVME" => h.crc64nvme = Some(Default::default()),
            "SHA1" => h.sha1 = Some(Default::default()),
            "SHA256" => h.sha256 = Some(Default::default()),
            _ => {}
        }
    }
    h
}

pub fn checksum_map(c: s3s::dto::Checksum) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (name, v) in [
        ("CRC32", c.checksum_crc32),
        ("CRC32C", c.checksum_crc32c),
        ("CRC64NVME", c.checksum_crc64nvme),
        ("SHA1", c.checksum_sha1),
        ("SHA256", c.checksum_sha256),
    ] {
        if let Some(v) = v {
            m.insert(name.to_owned(), v);
        }
    }
    m
}

/// Streams `body` into the staged work file, hashing as it goes. A body that ends early or fails leaves the
/// staged file to be dropped (and deleted) by the caller, so the previous object stays intact.
pub async fn receive(
    staged: &Staged,
    body: Option<StreamingBlob>,
    algorithms: &[String],
    limit: u64,
) -> S3Result<Received> {
    let std_file = staged.file.try_clone().map_err(errors::internal)?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file));
    let mut md5 = Md5::new();
    let mut hasher = hasher_for(algorithms);
    let mut size = 0u64;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(body_error)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
            }
            md5.update(&chunk);
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(errors::internal)?;
        }
    }
    // Durability (fsync) is the commit's job, per the configured policy.
    file.flush().await.map_err(errors::internal)?;
    Ok(Received { size, md5: md5.finalize().into(), checksums: checksum_map(hasher.finalize()) })
}

/// A body stream error is the client's doing (disconnect, bad aws-chunked framing or signature), unless s3s
/// tells otherwise.
fn body_error(e: s3s::StdError) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(s3) => *s3,
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("Sha256Mismatch") {
                // s3s hashes single-chunk payloads against x-amz-content-sha256 as they stream.
                let mut e = S3Error::with_message(
                    s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                );
                e.set_status_code(http::StatusCode::BAD_REQUEST);
                e
            } else if msg.contains("Signature") || msg.contains("signature") {
                s3_error!(
                    SignatureDoesNotMatch,
                    "The request signature we calculated does not match the signature you provided."
                )
            } else {
                tracing::debug!(error = %msg, "request body ended with an error");
                s3_error!(IncompleteBody, "{msg}")
            }
        }
    }
}

/// Checks client-supplied MD5 and checksums against what was received.
pub fn verify(received: &Received, content_md5: Option<&str>, expected: &BTreeMap<String, String>) -> S3Result<()> {
    if let Some(md5) = content_md5 {
        use base64::Engine;
        let given = base64::engine::general_purpose::STANDARD
            .decode(md5.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."))?;
        if given != received.md5 {
            return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
        }
    }
    for (algo, want) in expected {
        if received.checksums.get(algo) != Some(want) {
            return Err(s3_error!(BadDigest, "The {algo} you specified did not match the calculated checksum."));
        }
    }
    Ok(())
}

/// A positioned, chunked reader of `[start, end)` of an open file.
pub struct FileBody {
    file: File,
    pos: u64,
    end: u64,
}

const READ_CHUNK: u64 = 256 * 1024;

impl FileBody {
    pub fn new(file: File, start: u64, end: u64) -> Self {
        FileBody { file, pos: start, end }
    }

    pub fn into_blob(self) -> StreamingBlob {
        StreamingBlob::new(self)
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        let len = (self.end - self.pos).min(READ_CHUNK) as usize;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            match self.file.read_at(&mut buf[filled..], self.pos + filled as u64) {
                Ok(0) => {
                    let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object shorter than its metadata");
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
            }
        }
        self.pos += len as u64;
        Poll::Ready(Some(Ok(Bytes::from(buf))))
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
