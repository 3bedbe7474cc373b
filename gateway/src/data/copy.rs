//! Server-side copies: inside one cloud bucket the backend copies; otherwise the source is opened (filled into
//! the cache first when it is a cloud object, fetched from the node that holds it when it is an AIS object
//! another node owns; either way later changes of the source do not affect the copy) and its bytes are copied
//! into a new object or into a part of an upload.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use md5::{Digest, Md5};
use trove_cache::{ObjMeta, Staged};
use trove_namespace::BucketEntry;

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

/// Copies the opened source into `meta.key` of the AIS-local bucket `dest`. A copy of a multipart source is a
/// single-part object: its ETag is then the MD5 of the bytes (`rehash`); otherwise `meta.etag` is kept.
pub async fn copy_object(
    state: &SharedState,
    dest: &BucketEntry,
    src: File,
    mut meta: ObjMeta,
    rehash: bool,
) -> Result<ObjMeta, Error> {
    if dest.bck.is_remote() {
        return Err(Error::NotImplemented("a copy into a cloud bucket from a different bucket"));
    }
    let (st, bck, guard) = (state.clone(), dest.bck.clone(), bucket_guard(state, dest));
    let (staged, mut meta) = blocking(move || {
        let mut staged = st.store.stage(&bck, &meta.key)?;
        staged.guard(guard);
        if let Some(md5) = copy_bytes(src, &mut staged, 0, meta.size, rehash)? {
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
    src: File,
    start: u64,
    end: u64,
) -> Result<ObjMeta, Error> {
    let (mut staged, upload) = multipart::stage_part(state, dest, key, upload_id).await?;
    let (staged, md5) = blocking(move || {
        let md5 = copy_bytes(src, &mut staged, start, end, true)?;
        Ok((staged, md5.unwrap_or_default()))
    })
    .await?;
    let meta = ObjMeta { size: end - start, etag: hex::encode(md5), mtime_ms: now_ms(), ..Default::default() };
    multipart::commit_part(state, dest, &upload, number, staged, meta).await
}

/// Copies `[start, end)` of `src` into the staged file; returns the MD5 of the bytes when `hash` is set.
fn copy_bytes(mut src: File, staged: &mut Staged, start: u64, end: u64, hash: bool) -> Result<Option<[u8; 16]>, Error> {
    let path = staged.path().to_owned();
    let io = |e| Error::from(trove_cache::Error::io(&path, e));
    src.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut limited = src.take(end - start);
    if !hash {
        std::io::copy(&mut limited, &mut staged.file).map_err(io)?;
        return Ok(None);
    }
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = limited.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        staged.file.write_all(&buf[..n]).map_err(io)?;
    }
    Ok(Some(md5.finalize().into()))
}
