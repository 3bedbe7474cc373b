//! Server-side copies: inside one cloud bucket the backend copies; otherwise the source is opened (filled into
//! the cache first when it is a cloud object, fetched from the node that holds it when it is an AIS object
//! another node owns; either way later changes of the source do not affect the copy) and its bytes are copied
//! into a new object or into a part of an upload.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use std::sync::Arc;

use md5::{Digest, Md5};
use trove_cache::{ObjMeta, Staged};
use trove_namespace::BucketEntry;

use super::sse::{DataKey, OpenReader, SealWriter};
use super::{backend, blocking, bucket_guard, drop_cached, ensure_cached, multipart, now_ms, Error};
use crate::state::SharedState;

/// Server-side copy inside one backend bucket; the destination's cached copy (if any) is dropped.
pub async fn copy_within(
    state: &SharedState,
    entry: &BucketEntry,
    src: &str,
    dst: &str,
    replace: Option<&ObjMeta>,
) -> Result<ObjMeta, Error> {
    let b = backend(state, entry)?;
    let m = b.copy(&entry.bck.name, src, dst, replace.map(ObjMeta::to_backend).as_ref()).await?;
    drop_cached(state, entry, dst).await?;
    Ok(ObjMeta::from_backend(dst, &m))
}

/// The source of a copy, opened: its file and metadata (the frontend checks its copy-source conditions).
pub async fn open_source(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<(File, ObjMeta), Error> {
    if entry.bck.is_remote() {
        ensure_cached(state, entry, key).await?;
    }
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    match blocking(move || Ok(st.store.open_object(&bck, &k)?)).await {
        // In a cluster the source may live on another node (its owner, or where it was before a join).
        Err(Error::NoSuchKey) if !entry.bck.is_remote() && state.cluster.map().smap.nodes.len() > 1 => {
            super::peers::fetch_object(state, &entry.bck, key, None).await
        }
        other => other,
    }
}

/// The opened source of a copy: its file, and for an encrypted object what opens its sealed bytes.
pub struct Source {
    file: File,
    sealed: Option<(ObjMeta, DataKey)>,
}

impl Source {
    pub fn new(file: File, meta: &ObjMeta, key: Option<DataKey>) -> Source {
        Source { file, sealed: key.map(|k| (meta.clone(), k)) }
    }

    /// A reader of the plaintext `[start, end)`.
    fn reader(self, start: u64, end: u64) -> std::io::Result<Box<dyn Read + Send>> {
        match self.sealed {
            Some((meta, key)) => Ok(Box::new(OpenReader::new(Arc::new(self.file), &meta, key, start, end))),
            None => {
                let mut f = self.file;
                f.seek(SeekFrom::Start(start))?;
                Ok(Box::new(f.take(end - start)))
            }
        }
    }
}

/// Copies the opened source into `meta.key` of the AIS-local bucket `dest`, sealed with `seal` when the copy is
/// to be encrypted (`meta.sse` then records it). A copy of a multipart source is a single-part object: its ETag
/// is then the MD5 of the bytes (`rehash`); otherwise `meta.etag` is kept.
pub async fn copy_object(
    state: &SharedState,
    dest: &BucketEntry,
    src: Source,
    mut meta: ObjMeta,
    rehash: bool,
    seal: Option<DataKey>,
) -> Result<ObjMeta, Error> {
    if dest.bck.is_remote() {
        return Err(Error::NotImplemented("a copy into a cloud bucket from a different bucket"));
    }
    let (st, bck, guard) = (state.clone(), dest.bck.clone(), bucket_guard(state, dest));
    let (staged, mut meta) = blocking(move || {
        let mut staged = st.store.stage(&bck, &meta.key)?;
        staged.guard(guard);
        if let Some(md5) = copy_bytes(src, &mut staged, 0, meta.size, rehash, seal)? {
            meta.etag = hex::encode(md5);
        }
        Ok((staged, meta))
    })
    .await?;
    super::mirror::publish(state, dest, staged, &mut meta, None).await?;
    Ok(meta)
}

/// Copies `[start, end)` of the opened source into part `number` of an upload to `dest`.
#[allow(clippy::too_many_arguments)]
pub async fn copy_part(
    state: &SharedState,
    dest: &BucketEntry,
    key: &str,
    upload_id: &str,
    number: u32,
    src: Source,
    start: u64,
    end: u64,
    seal: Option<DataKey>,
) -> Result<ObjMeta, Error> {
    let (mut staged, upload) = multipart::stage_part(state, dest, key, upload_id).await?;
    let (staged, md5) = blocking(move || {
        let md5 = copy_bytes(src, &mut staged, start, end, true, seal)?;
        Ok((staged, md5.unwrap_or_default()))
    })
    .await?;
    let meta = ObjMeta { size: end - start, etag: hex::encode(md5), mtime_ms: now_ms(), ..Default::default() };
    multipart::commit_part(state, dest, &upload, number, staged, meta).await
}

/// Copies the plaintext `[start, end)` of `src` into the staged file, sealed with `seal` when given; returns
/// the MD5 of the plaintext when `hash` is set.
fn copy_bytes(
    src: Source,
    staged: &mut Staged,
    start: u64,
    end: u64,
    hash: bool,
    seal: Option<DataKey>,
) -> Result<Option<[u8; 16]>, Error> {
    let path = staged.path().to_owned();
    let io = |e| Error::from(trove_cache::Error::io(&path, e));
    let plain = src.sealed.is_none();
    let mut limited = src.reader(start, end).map_err(io)?;
    if !hash && plain && seal.is_none() {
        std::io::copy(&mut limited, &mut staged.file).map_err(io)?;
        return Ok(None);
    }
    let mut md5 = Md5::new();
    let mut pump = |out: &mut dyn Write| -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = limited.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            md5.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
    };
    match &seal {
        Some(key) => {
            let mut w = SealWriter::new(key, &mut staged.file);
            pump(&mut w).map_err(io)?;
            w.finish().map_err(io)?;
        }
        None => pump(&mut staged.file).map_err(io)?,
    }
    Ok(hash.then(|| md5.finalize().into()))
}
