//! Request bodies into staged files, with the MD5 and the S3 checksums computed on the way, and the check of
//! what the client said it sent. Both frontends receive bodies here; each words a failed body stream itself.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use tokio::io::AsyncWriteExt;
use trove_cache::Staged;

use super::Error;

/// S3's single-PUT limit, and the largest part.
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

/// Why a body was not received: the client's stream failed (the frontend words it), or storing it did.
#[derive(Debug)]
pub enum Interrupted<E> {
    Body(E),
    Data(Error),
}

impl<E> From<Error> for Interrupted<E> {
    fn from(e: Error) -> Self {
        Interrupted::Data(e)
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
pub async fn receive<S, E>(
    staged: &Staged,
    body: Option<S>,
    algorithms: &[String],
    limit: u64,
) -> Result<Received, Interrupted<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    receive_sealed(staged, body, algorithms, limit, None).await
}

/// [`receive`], storing the body sealed by `sealer` (server-side encryption) when there is one; the hashes are
/// the plaintext's.
pub async fn receive_sealed<S, E>(
    staged: &Staged,
    body: Option<S>,
    algorithms: &[String],
    limit: u64,
    mut sealer: Option<super::sse::Sealer>,
) -> Result<Received, Interrupted<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let write_error = |e: std::io::Error| Interrupted::Data(Error::from(trove_cache::Error::io(staged.path(), e)));
    let std_file = staged.file.try_clone().map_err(write_error)?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file));
    let mut md5 = Md5::new();
    let mut hasher = hasher_for(algorithms);
    let mut size = 0u64;
    let mut sealed = Vec::new();
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Interrupted::Body)?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(Interrupted::Data(Error::EntityTooLarge));
            }
            md5.update(&chunk);
            hasher.update(&chunk);
            match sealer.as_mut() {
                Some(s) => {
                    sealed.clear();
                    s.push(&chunk, &mut sealed).map_err(write_error)?;
                    file.write_all(&sealed).await.map_err(write_error)?;
                }
                None => file.write_all(&chunk).await.map_err(write_error)?,
            }
        }
    }
    if let Some(s) = sealer {
        sealed.clear();
        s.finish(&mut sealed).map_err(write_error)?;
        file.write_all(&sealed).await.map_err(write_error)?;
    }
    // Durability (fsync) is the commit's job, per the configured policy.
    file.flush().await.map_err(write_error)?;
    Ok(Received { size, md5: md5.finalize().into(), checksums: checksum_map(hasher.finalize()) })
}

/// Checks the client's Content-MD5 (base64) and checksums against what was received.
pub fn verify(
    received: &Received,
    content_md5: Option<&str>,
    expected: &BTreeMap<String, String>,
) -> Result<(), Error> {
    if let Some(md5) = content_md5 {
        use base64::Engine;
        let given = base64::engine::general_purpose::STANDARD
            .decode(md5.trim())
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or(Error::InvalidDigest)?;
        if given != received.md5 {
            return Err(Error::BadDigest("Content-MD5".to_owned()));
        }
    }
    check_checksums(&received.checksums, expected)
}

/// Every checksum the client gave matches the computed one.
pub fn check_checksums(got: &BTreeMap<String, String>, expected: &BTreeMap<String, String>) -> Result<(), Error> {
    for (algo, want) in expected {
        if got.get(algo) != Some(want) {
            return Err(Error::BadDigest(algo.clone()));
        }
    }
    Ok(())
}
