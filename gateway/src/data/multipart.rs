//! Multipart uploads: the upload record and parts in the store, in lock-step with the backend's own upload for
//! cloud buckets whose backend has one (S3 multipart, Azure blocks); assembly with the multipart ETag and
//! composite or full-object checksums; commit under the write's precondition and the bucket incarnation.

use std::collections::BTreeMap;

use base64::Engine;
use trove_cache::multipart::{multipart_etag, multipart_etag_of_list, DataSink};
use trove_cache::{CompleteError, CompletedPart, ObjMeta, Part, Staged, Upload};
use trove_namespace::BucketEntry;

use super::receive::{check_checksums, checksum_map, hasher_for};
use super::{adopt, backend, blocking, bucket_guard, now_ms, payload_of, write_through, Error, Precondition};
use crate::state::SharedState;

/// S3's largest part number.
pub const MAX_PART_NUMBER: i32 = 10_000;

/// The checksum type of an upload that names only its algorithm (AWS: CRC64NVME is always full-object).
pub const FULL_OBJECT: &str = "FULL_OBJECT";
pub const COMPOSITE: &str = "COMPOSITE";

/// Records a new upload (starting the backend's, when the bucket's backend uploads in lock-step).
pub async fn create(state: &SharedState, entry: &BucketEntry, mut upload: Upload) -> Result<Upload, Error> {
    if entry.bck.is_remote() {
        let b = backend(state, entry)?;
        if b.lockstep_multipart() {
            upload.backend_upload =
                Some(b.create_multipart(&entry.bck.name, &upload.key, &upload.meta.to_backend()).await?);
        }
    }
    let (st, bck, up) = (state.clone(), entry.bck.clone(), upload.clone());
    blocking(move || Ok(st.store.create_upload(&bck, &up)?)).await?;
    Ok(upload)
}

/// A work file for a part of the upload, and the upload record (its checksum algorithm applies to every part).
pub async fn stage_part(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    upload_id: &str,
) -> Result<(Staged, Upload), Error> {
    let (st, bck, key, upload_id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    blocking(move || {
        let upload = st.store.get_upload(&bck, &key, &upload_id)?;
        let staged = st.store.stage_part(&bck, &key, &upload_id)?;
        Ok((staged, upload))
    })
    .await
}

/// The upload `upload_id` of `key`.
pub async fn upload_of(state: &SharedState, entry: &BucketEntry, key: &str, upload_id: &str) -> Result<Upload, Error> {
    let (st, bck, key, upload_id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    blocking(move || Ok(st.store.get_upload(&bck, &key, &upload_id)?)).await
}

/// Stores a received (verified) part as `number`, after sending it on to the backend's upload if there is one;
/// `meta.version` then holds the backend's token for the part.
pub async fn commit_part(
    state: &SharedState,
    entry: &BucketEntry,
    upload: &Upload,
    number: u32,
    staged: Staged,
    mut meta: ObjMeta,
) -> Result<ObjMeta, Error> {
    if let Some(handle) = &upload.backend_upload {
        let b = backend(state, entry)?;
        let payload = payload_of(&staged, meta.size)?;
        meta.version = Some(b.upload_part(&entry.bck.name, &upload.key, handle, number, payload).await?);
    }
    let (st, bck, key, upload_id, m) =
        (state.clone(), entry.bck.clone(), upload.key.clone(), upload.upload_id.clone(), meta.clone());
    blocking(move || Ok(st.store.commit_part(staged, &bck, &key, &upload_id, number, &m)?)).await?;
    Ok(meta)
}

/// Completes the upload with the client's part list: the parts are assembled, checked against the client's
/// `expected` checksums, sent through to the backend (its upload completed, or the object uploaded whole),
/// and committed if `check` allows. A repeated Complete of a finished upload answers the same object.
pub async fn complete(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    upload_id: &str,
    wanted: Vec<CompletedPart>,
    expected: BTreeMap<String, String>,
    check: Option<Precondition>,
) -> Result<ObjMeta, Error> {
    if wanted.is_empty() {
        return Err(Error::MalformedParts);
    }
    let (st, bck, k, id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    let assembled = blocking(move || {
        let upload = match st.store.get_upload(&bck, &k, &id) {
            Ok(u) => u,
            Err(trove_cache::Error::NoSuchUpload) => return already_completed(&st, &bck, &k, &wanted).map(Err),
            Err(e) => return Err(e.into()),
        };
        assemble(&st, &bck, &k, &id, &upload, &wanted, &expected).map(Ok)
    })
    .await?;
    let (mut staged, mut meta, handle, tokens) = match assembled {
        Err(done) => return Ok(done),
        Ok(a) => a,
    };
    staged.guard(bucket_guard(state, entry));
    match handle {
        Some(handle) => {
            let parts =
                tokens.into_iter().map(|(n, t)| t.map(|t| (n, t))).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    Error::BackendInvalid("a part was not uploaded to the backend; upload it again".into())
                })?;
            let b = backend(state, entry)?;
            let m = b.complete_multipart(&entry.bck.name, key, &handle, &parts, &meta.to_backend()).await?;
            adopt(state, entry, &mut meta, m);
        }
        // Backends without lock-step uploads (GCS) get the assembled object in one upload.
        None if entry.bck.is_remote() => write_through(state, entry, &staged, &mut meta).await?,
        None => {}
    }
    if entry.bck.is_remote() {
        let (st, bck, k, m) = (state.clone(), entry.bck.clone(), key.to_owned(), meta.clone());
        blocking(move || {
            match check {
                Some(check) => st.store.commit_if(staged, &bck, &k, &m, check)?,
                None => st.store.commit(staged, &bck, &k, &m)?,
            }
            Ok(())
        })
        .await?;
    } else {
        super::mirror::publish(state, entry, staged, &mut meta, check).await?;
    }
    let (st, bck, k, id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    blocking(move || Ok(st.store.finish_upload(&bck, &k, &id)?)).await?;
    Ok(meta)
}

type Assembled = (Staged, ObjMeta, Option<String>, Vec<(u32, Option<String>)>);

/// Concatenates the chosen parts into a work file and computes the object's metadata (blocking).
fn assemble(
    st: &SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
    upload_id: &str,
    upload: &Upload,
    wanted: &[CompletedPart],
    expected: &BTreeMap<String, String>,
) -> Result<Assembled, Error> {
    let algorithm = upload.checksum_algorithm.clone();
    let full_object = upload.meta.checksum_type.as_deref() == Some(FULL_OBJECT);
    let mut hasher = algorithm.as_ref().filter(|_| full_object).map(|a| hasher_for(std::slice::from_ref(a)));
    let mut feed = |d: &[u8]| {
        if let Some(h) = hasher.as_mut() {
            h.update(d);
        }
    };
    let on_data: Option<&mut DataSink<'_>> = if full_object && algorithm.is_some() { Some(&mut feed) } else { None };
    let (upload, chosen, staged) =
        st.store.assemble_upload(bck, key, upload_id, wanted, on_data)?.map_err(|e| match e {
            CompleteError::InvalidPart(_) => Error::InvalidPart,
            CompleteError::InvalidPartOrder => Error::InvalidPartOrder,
            CompleteError::EntityTooSmall(_) => Error::EntityTooSmall,
            CompleteError::Empty | CompleteError::TooManyParts => Error::MalformedParts,
        })?;
    let mut meta = ObjMeta {
        key: key.to_owned(),
        size: chosen.iter().map(|p| p.meta.size).sum(),
        etag: multipart_etag(&chosen),
        mtime_ms: now_ms(),
        parts: chosen.iter().map(|p| p.meta.size).collect(),
        ..upload.meta.clone()
    };
    if let Some(algo) = &algorithm {
        let part_values: Vec<String> = chosen.iter().filter_map(|p| p.meta.checksums.get(algo).cloned()).collect();
        let value = if full_object {
            hasher.and_then(|h| checksum_map(h.finalize()).remove(algo))
        } else if part_values.len() == chosen.len() {
            composite_checksum(algo, &part_values)
        } else {
            None
        };
        if let Some(v) = value {
            meta.checksums = BTreeMap::from([(algo.clone(), v)]);
            meta.part_checksums = part_values;
        }
    }
    check_checksums(&meta.checksums, expected)?;
    let tokens = chosen.iter().map(|p| (p.number, p.meta.version.clone())).collect();
    Ok((staged, meta, upload.backend_upload.clone(), tokens))
}

/// The composite checksum of a multipart object: the checksum of the concatenated binary part checksums, `-N`.
fn composite_checksum(algorithm: &str, part_values: &[String]) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut h = hasher_for(&[algorithm.to_owned()]);
    for v in part_values {
        h.update(&b64.decode(v).ok()?);
    }
    let value = checksum_map(h.finalize()).remove(algorithm)?;
    Some(format!("{value}-{}", part_values.len()))
}

/// The object a finished upload produced, if the part list names it.
fn already_completed(
    st: &SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
    wanted: &[CompletedPart],
) -> Result<ObjMeta, Error> {
    let etag = multipart_etag_of_list(wanted);
    match st.store.head(bck, key) {
        Ok(meta) if meta.etag == etag => Ok(meta),
        _ => Err(Error::NoSuchUpload),
    }
}

/// Aborts the upload, the backend's first.
pub async fn abort(state: &SharedState, entry: &BucketEntry, key: &str, upload_id: &str) -> Result<(), Error> {
    let (st, bck, k, id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    let upload = blocking(move || Ok(st.store.get_upload(&bck, &k, &id)?)).await?;
    if let Some(handle) = &upload.backend_upload {
        backend(state, entry)?.abort_multipart(&entry.bck.name, key, handle).await?;
    }
    let (st, bck, k, id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    blocking(move || Ok(st.store.abort_upload(&bck, &k, &id)?)).await
}

/// The upload and its parts (the latest of each number).
pub async fn parts(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    upload_id: &str,
) -> Result<(Upload, Vec<Part>), Error> {
    let (st, bck, k, id) = (state.clone(), entry.bck.clone(), key.to_owned(), upload_id.to_owned());
    blocking(move || Ok((st.store.get_upload(&bck, &k, &id)?, st.store.list_parts(&bck, &k, &id)?))).await
}

/// The bucket's uploads in progress on every node, by key then initiation.
pub async fn uploads(state: &SharedState, entry: &BucketEntry) -> Result<Vec<Upload>, Error> {
    super::peers::uploads_everywhere(state, entry).await
}
