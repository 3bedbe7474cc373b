//! Server-side encryption at rest of AIS-local objects (S3's SSE-S3, SSE-KMS and SSE-C).
//!
//! Every object has its own random data key, kept in its metadata wrapped (AES-256-GCM) by a key-encryption
//! key: the SSE-S3 master key, a named KMS key of the configuration, or the customer's key (SSE-C: never kept;
//! only its MD5, which tells a wrong key before anything is decrypted). The bytes are stored as segments, one
//! per part (a single PUT is one part): an 8-byte random salt, then the segment's plaintext in 64 KiB chunks,
//! each sealed with AES-256-GCM under the data key (nonce: salt and chunk index; the segment's last chunk is
//! marked in the associated data, so a cut segment never verifies) and followed by its 16-byte tag. A range is
//! read by opening only the chunks it touches, and every byte served has been authenticated.
//!
//! Stored bytes move between nodes, disks and parts as they are (rebalance, mirrors, multipart assembly); only
//! the edges (receiving a body, serving a read, copying between objects) seal or open them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use aes_gcm::Aes256Gcm;
use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};
use trove_cache::{ObjMeta, SseMeta};

use super::Error;

/// Plaintext bytes per sealed chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const SALT: usize = 8;

/// `x-amz-server-side-encryption` values.
pub const AES256: &str = "AES256";
pub const AWS_KMS: &str = "aws:kms";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A customer-provided key (SSE-C), checked against its MD5.
#[derive(Clone)]
pub struct CustomerKey {
    key: [u8; 32],
    /// Base64 MD5 of the key, as S3 reports it.
    pub md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKey").field("md5", &self.md5).finish_non_exhaustive()
    }
}

impl CustomerKey {
    /// The key from its base64 form and the MD5 the client gave; `None` when either is malformed or they
    /// disagree.
    pub fn parse(key_b64: &str, md5_b64: &str) -> Option<CustomerKey> {
        let key: [u8; 32] = B64.decode(key_b64.trim()).ok()?.try_into().ok()?;
        let md5 = B64.encode(Md5::digest(key));
        (md5 == md5_b64.trim()).then_some(CustomerKey { key, md5 })
    }
}

/// How a new object is to be encrypted.
#[derive(Debug, Clone)]
pub enum Encryption {
    /// SSE-S3.
    S3,
    /// SSE-KMS with this key id.
    Kms(String),
    /// SSE-C.
    Customer(CustomerKey),
}

/// The node's key-encryption keys.
pub struct Keys {
    master: [u8; 32],
    kms: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kms", &self.kms.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

fn key32(what: &str, b64: &str) -> Result<[u8; 32], String> {
    B64.decode(b64.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| format!("{what}: want 32 bytes in base64"))
}

impl Keys {
    /// From the `[sse]` configuration; without a master key, one derived from the cluster secret.
    pub fn new(cfg: &trove_config::SseConfig, cluster_secret: &str) -> Result<Keys, String> {
        let master = match &cfg.master_key {
            Some(k) => key32("sse.master_key", k)?,
            None => {
                use hmac::{KeyInit as _, Mac};
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(cluster_secret.as_bytes())
                    .map_err(|e| format!("deriving the SSE-S3 key: {e}"))?;
                mac.update(b"trove sse-s3 master key v1");
                mac.finalize().into_bytes().into()
            }
        };
        let mut kms = BTreeMap::new();
        for (id, k) in &cfg.kms_keys {
            kms.insert(id.clone(), key32(&format!("sse.kms_keys.{id}"), k)?);
        }
        Ok(Keys { master, kms })
    }

    pub fn has_kms_key(&self, id: &str) -> bool {
        self.kms.contains_key(id)
    }

    fn kek(&self, enc: &Encryption) -> Result<[u8; 32], Error> {
        match enc {
            Encryption::S3 => Ok(self.master),
            Encryption::Kms(id) => {
                self.kms.get(id).copied().ok_or_else(|| Error::InvalidSse(format!("no KMS key {id:?}")))
            }
            Encryption::Customer(c) => Ok(c.key),
        }
    }
}

/// An object's data key, ready to seal or open its chunks.
#[derive(Clone)]
pub struct DataKey(Arc<Aes256Gcm>);

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&(*key).into())
}

fn nonce(salt: &[u8; SALT], index: u32) -> Nonce<Aes256Gcm> {
    let mut n = [0u8; 12];
    n[..SALT].copy_from_slice(salt);
    n[SALT..].copy_from_slice(&index.to_be_bytes());
    n.into()
}

/// A new data key for `enc`, and the metadata that records it (wrapped).
pub fn new_key(keys: &Keys, enc: &Encryption) -> Result<(DataKey, SseMeta), Error> {
    let dek: [u8; 32] = rand::random();
    let kek = keys.kek(enc)?;
    let wrap_salt: [u8; SALT] = rand::random();
    let mut wrapped = dek.to_vec();
    let tag = cipher(&kek)
        .encrypt_inout_detached(&nonce(&wrap_salt, u32::MAX), b"trove data key", wrapped.as_mut_slice().into())
        .map_err(|_| Error::Internal("wrapping a data key".into()))?;
    let mut blob = wrap_salt.to_vec();
    blob.extend_from_slice(&wrapped);
    blob.extend_from_slice(&tag);
    let meta = SseMeta {
        algorithm: match enc {
            Encryption::Kms(_) => AWS_KMS.to_owned(),
            _ => AES256.to_owned(),
        },
        customer: matches!(enc, Encryption::Customer(_)),
        kms_key_id: match enc {
            Encryption::Kms(id) => Some(id.clone()),
            _ => None,
        },
        customer_key_md5: match enc {
            Encryption::Customer(c) => Some(c.md5.clone()),
            _ => None,
        },
        key: B64.encode(blob),
    };
    Ok((DataKey(Arc::new(cipher(&dek))), meta))
}

/// The data key of an encrypted object, unwrapped with the key its metadata names (for SSE-C, the customer's
/// key, which must be the one it was written with).
pub fn data_key(keys: &Keys, meta: &SseMeta, customer: Option<&CustomerKey>) -> Result<DataKey, Error> {
    let enc = if meta.customer {
        let c = customer.ok_or(Error::SseKeyRequired)?;
        if Some(&c.md5) != meta.customer_key_md5.as_ref() {
            return Err(Error::SseWrongKey);
        }
        Encryption::Customer(c.clone())
    } else {
        if customer.is_some() {
            return Err(Error::InvalidSse("the object is not encrypted with a customer key".into()));
        }
        match &meta.kms_key_id {
            Some(id) => Encryption::Kms(id.clone()),
            None => Encryption::S3,
        }
    };
    let kek = keys.kek(&enc)?;
    let blob = B64.decode(&meta.key).map_err(|_| Error::Internal("an object's data key is unreadable".into()))?;
    if blob.len() != SALT + 32 + TAG {
        return Err(Error::Internal("an object's data key is unreadable".into()));
    }
    let salt: [u8; SALT] = blob[..SALT].try_into().unwrap_or_default();
    let mut dek = blob[SALT..SALT + 32].to_vec();
    let tag = Tag::<Aes256Gcm>::try_from(&blob[SALT + 32..]).map_err(|_| Error::Internal("bad key tag".into()))?;
    cipher(&kek)
        .decrypt_inout_detached(&nonce(&salt, u32::MAX), b"trove data key", dek.as_mut_slice().into(), &tag)
        .map_err(|_| Error::SseWrongKey)?;
    let dek: [u8; 32] = dek.try_into().map_err(|_| Error::Internal("bad data key".into()))?;
    Ok(DataKey(Arc::new(cipher(&dek))))
}

fn chunks(plain: u64) -> u64 {
    plain.div_ceil(CHUNK as u64)
}

/// Stored length of a sealed segment of `plain` bytes.
pub fn segment_len(plain: u64) -> u64 {
    SALT as u64 + plain + TAG as u64 * chunks(plain)
}

/// Plaintext lengths of an object's segments (its parts; one for a single PUT).
fn segments(meta: &ObjMeta) -> Vec<u64> {
    if meta.parts.is_empty() {
        vec![meta.size]
    } else {
        meta.parts.clone()
    }
}

/// Stored length of an object's file: its plaintext size unless it is encrypted.
pub fn stored_len(meta: &ObjMeta) -> u64 {
    match &meta.sse {
        None => meta.size,
        Some(_) => segments(meta).into_iter().map(segment_len).sum(),
    }
}

/// Seals one segment as its plaintext arrives: bytes in, stored bytes out.
pub struct Sealer {
    key: DataKey,
    salt: [u8; SALT],
    index: u32,
    /// Plaintext not sealed yet: a full chunk waits here until more data shows it is not the last one.
    pending: Vec<u8>,
    header_done: bool,
}

impl Sealer {
    pub fn new(key: &DataKey) -> Sealer {
        Sealer {
            key: key.clone(),
            salt: rand::random(),
            index: 0,
            pending: Vec::with_capacity(CHUNK),
            header_done: false,
        }
    }

    fn seal_chunk(&mut self, last: bool, out: &mut Vec<u8>) -> std::io::Result<()> {
        let n = self.pending.len().min(CHUNK);
        let start = out.len();
        out.extend_from_slice(&self.pending[..n]);
        let tag = self
            .key
            .0
            .encrypt_inout_detached(&nonce(&self.salt, self.index), &[u8::from(last)], out[start..].as_mut().into())
            .map_err(|_| std::io::Error::other("sealing a chunk"))?;
        out.extend_from_slice(&tag);
        self.pending.drain(..n);
        self.index = self.index.checked_add(1).ok_or_else(|| std::io::Error::other("segment too large"))?;
        Ok(())
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if !self.header_done {
            out.extend_from_slice(&self.salt);
            self.header_done = true;
        }
    }

    /// Takes `data`; appends what can be sealed so far to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        self.header(out);
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                self.seal_chunk(false, out)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals what is left, the segment's last chunk.
    pub fn finish(mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.header(out);
        if !self.pending.is_empty() {
            self.seal_chunk(true, out)?;
        }
        Ok(())
    }
}

/// A writer that seals what is written to it into `inner` (one segment); `finish` ends the segment.
pub struct SealWriter<W: Write> {
    sealer: Option<Sealer>,
    inner: W,
    out: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    pub fn new(key: &DataKey, inner: W) -> Self {
        SealWriter { sealer: Some(Sealer::new(key)), inner, out: Vec::with_capacity(CHUNK + TAG + SALT) }
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        if let Some(s) = self.sealer.take() {
            s.finish(&mut self.out)?;
        }
        self.inner.write_all(&self.out)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let sealer = self.sealer.as_mut().ok_or_else(|| std::io::Error::other("segment finished"))?;
        sealer.push(buf, &mut self.out)?;
        self.inner.write_all(&self.out)?;
        self.out.clear();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the plaintext `[pos, end)` of an encrypted object from its file (blocking reads).
pub struct OpenReader {
    file: Arc<File>,
    key: DataKey,
    /// `(plaintext start, plaintext length, stored offset)` of each segment.
    segments: Vec<(u64, u64, u64)>,
    pos: u64,
    end: u64,
    /// The opened chunk that holds `pos`: its plaintext start and bytes.
    current: Option<(u64, Vec<u8>)>,
}

impl OpenReader {
    pub fn new(file: Arc<File>, meta: &ObjMeta, key: DataKey, start: u64, end: u64) -> OpenReader {
        let mut segs = Vec::new();
        let (mut plain, mut stored) = (0u64, 0u64);
        for len in segments(meta) {
            segs.push((plain, len, stored));
            plain += len;
            stored += segment_len(len);
        }
        OpenReader { file, key, segments: segs, pos: start, end: end.min(meta.size), current: None }
    }

    /// Opens the chunk that holds plaintext offset `at`.
    fn open_chunk(&self, at: u64) -> std::io::Result<(u64, Vec<u8>)> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let &(seg_start, seg_len, stored) = self
            .segments
            .iter()
            .find(|(s, l, _)| at >= *s && at < s + l)
            .ok_or_else(|| bad("read past the object's segments"))?;
        let mut salt = [0u8; SALT];
        self.file.read_exact_at(&mut salt, stored)?;
        let index = (at - seg_start) / CHUNK as u64;
        let chunk_start = index * CHUNK as u64;
        let len = (seg_len - chunk_start).min(CHUNK as u64) as usize;
        let last = chunk_start + len as u64 == seg_len;
        let offset = stored + SALT as u64 + index * (CHUNK + TAG) as u64;
        let mut buf = vec![0u8; len + TAG];
        self.file.read_exact_at(&mut buf, offset)?;
        let tag = Tag::<Aes256Gcm>::try_from(&buf[len..]).map_err(|_| bad("bad tag"))?;
        buf.truncate(len);
        let index32 = u32::try_from(index).map_err(|_| bad("chunk index"))?;
        self.key
            .0
            .decrypt_inout_detached(&nonce(&salt, index32), &[u8::from(last)], buf.as_mut_slice().into(), &tag)
            .map_err(|_| bad("an encrypted chunk does not verify (damaged or altered on disk)"))?;
        Ok((seg_start + chunk_start, buf))
    }
}

impl Read for OpenReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end || out.is_empty() {
            return Ok(0);
        }
        let fresh = match &self.current {
            Some((start, bytes)) => self.pos < *start || self.pos >= start + bytes.len() as u64,
            None => true,
        };
        if fresh {
            self.current = Some(self.open_chunk(self.pos)?);
        }
        let (start, bytes) = self.current.as_ref().ok_or_else(|| std::io::Error::other("no chunk"))?;
        let from = (self.pos - start) as usize;
        let n = (bytes.len() - from).min(out.len()).min((self.end - self.pos) as usize);
        out[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// The plaintext `[start, end)` of an encrypted object as a byte stream, opened on the blocking pool a batch
/// at a time.
pub fn open_stream(file: Arc<File>, meta: &ObjMeta, key: DataKey, start: u64, end: u64) -> trove_backends::ByteStream {
    const BATCH: usize = 1 << 20;
    let reader = OpenReader::new(file, meta, key, start, end);
    let stream = futures::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let res = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; BATCH];
            let mut filled = 0;
            while filled < BATCH {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return (Err(e), None),
                }
            }
            buf.truncate(filled);
            (Ok(buf), Some(reader))
        })
        .await;
        match res {
            Ok((Ok(buf), _)) if buf.is_empty() => None,
            Ok((Ok(buf), reader)) => Some((Ok(Bytes::from(buf)), reader)),
            Ok((Err(e), _)) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        let cfg =
            trove_config::SseConfig { master_key: None, kms_keys: [("k1".to_owned(), B64.encode([7u8; 32]))].into() };
        Keys::new(&cfg, "secret").unwrap()
    }

    fn seal(key: &DataKey, data: &[u8], piece: usize) -> Vec<u8> {
        let mut w = SealWriter::new(key, Vec::new());
        for p in data.chunks(piece.max(1)) {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn sealed_segments_read_back_in_any_range_and_detect_tampering() {
        let keys = keys();
        for enc in [Encryption::S3, Encryption::Kms("k1".into())] {
            let (key, sse) = new_key(&keys, &enc).unwrap();
            let parts: Vec<Vec<u8>> = vec![
                (0..CHUNK * 2).map(|i| (i % 251) as u8).collect(),
                (0..CHUNK + 17).map(|i| (i % 13) as u8).collect(),
                vec![],
                vec![9; 5],
            ];
            let mut stored = Vec::new();
            for (i, p) in parts.iter().enumerate() {
                stored.extend(seal(&key, p, 1000 + i * 7919));
            }
            let plain: Vec<u8> = parts.concat();
            let meta = ObjMeta {
                size: plain.len() as u64,
                parts: parts.iter().map(|p| p.len() as u64).collect(),
                sse: Some(sse.clone()),
                ..Default::default()
            };
            assert_eq!(stored_len(&meta), stored.len() as u64);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("o");
            std::fs::write(&path, &stored).unwrap();
            let file = Arc::new(File::open(&path).unwrap());
            let key2 = data_key(&keys, &sse, None).unwrap();
            for (s, e) in [(0, plain.len()), (1, 2), (CHUNK - 1, CHUNK + 1), (CHUNK * 2 - 3, CHUNK * 3 + 20), (0, 0)] {
                let mut out = Vec::new();
                OpenReader::new(file.clone(), &meta, key2.clone(), s as u64, e as u64).read_to_end(&mut out).unwrap();
                assert_eq!(out, &plain[s..e], "{s}..{e}");
            }
            // One flipped bit anywhere in a chunk: the read fails rather than return altered bytes.
            let mut bad = stored.clone();
            bad[SALT + 100] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let file = Arc::new(File::open(&path).unwrap());
            let mut out = Vec::new();
            assert!(OpenReader::new(file, &meta, key2, 0, 10).read_to_end(&mut out).is_err());
        }
    }

    #[test]
    fn customer_keys_are_checked() {
        let keys = keys();
        let k = CustomerKey::parse("pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=", "DWygnHRtgiJ77HCm+1rvHw==").unwrap();
        let other =
            CustomerKey::parse("6b+WOZ1T3cqZMxgThRcXAQBrS5mXKdDUphvpxptl9/4=", "arxBvwY2V4SiOne6yppVPQ==").unwrap();
        assert!(
            CustomerKey::parse("pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=", "AAAAAAAAAAAAAAAAAAAAAA==").is_none()
        );
        let (_, sse) = new_key(&keys, &Encryption::Customer(k.clone())).unwrap();
        assert!(!sse.key.is_empty() && sse.customer && sse.customer_key_md5.as_deref() == Some(k.md5.as_str()));
        assert!(data_key(&keys, &sse, Some(&k)).is_ok());
        assert!(matches!(data_key(&keys, &sse, Some(&other)), Err(Error::SseWrongKey)));
        assert!(matches!(data_key(&keys, &sse, None), Err(Error::SseKeyRequired)));
        assert!(matches!(new_key(&keys, &Encryption::Kms("nope".into())), Err(Error::InvalidSse(_))));
    }
}
