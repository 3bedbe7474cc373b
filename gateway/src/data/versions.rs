//! S3 versioning of AIS-local buckets: which version a write makes (by the bucket's `versioning.s3` state),
//! deletes that leave a delete marker or remove one version, and reads of one version. The store keeps the
//! versions (`trove_cache::versions`); every version of a key lives on the key's owner, so a single-key request
//! is served where forwarding brings it, and a DeleteObjects goes to each key's owner.
//!
//! Cloud buckets keep their versions in their backend: Trove caches the latest and refuses version-addressed
//! requests for them (501), rather than answer from a cache that cannot know old versions.

use trove_cache::{new_version, valid_version_id, ObjMeta, NULL_VERSION};
use trove_namespace::{BucketEntry, S3Versioning};

use super::{blocking, now_ms, Error};
use crate::cluster::Owner;
use crate::state::{AppState, SharedState};

/// Gives a write to an AIS-local bucket its version: a new id when versioning is enabled, the null version
/// when it is suspended, none when the bucket was never versioned.
pub fn stamp(entry: &BucketEntry, meta: &mut ObjMeta) {
    let id = match entry.props.versioning.s3 {
        S3Versioning::Unversioned => return,
        S3Versioning::Enabled => None,
        S3Versioning::Suspended => Some(NULL_VERSION.to_owned()),
    };
    let (new, vt) = new_version();
    meta.vid = Some(id.unwrap_or(new));
    meta.vt = vt;
}

/// Whether versioning was ever enabled on `entry` (its answers then carry version ids).
pub fn is_versioned(entry: &BucketEntry) -> bool {
    !entry.props.versioning.s3.is_unversioned()
}

/// A version id as a client gave it; anything Trove never issued is S3's 400 InvalidArgument.
pub fn check_id(id: &str) -> Result<(), Error> {
    if valid_version_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidVersionId)
    }
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Deleted {
    /// The version removed, or the delete marker made.
    pub version_id: Option<String>,
    /// A delete marker was made, or the version removed was one.
    pub delete_marker: bool,
}

/// Whether a version may be removed now: not under a legal hold, not retained in compliance mode, and retained
/// in governance mode only when the caller bypasses it (`x-amz-bypass-governance-retention`).
pub fn removable(meta: &ObjMeta, bypass_governance: bool) -> Result<(), trove_cache::Error> {
    if meta.legal_hold {
        return Err(trove_cache::Error::Refused("The object is under a legal hold".into()));
    }
    let retained = meta.lock_until_ms.is_some_and(|until| until > now_ms());
    match meta.lock_mode.as_deref() {
        Some("GOVERNANCE") if retained && !bypass_governance => {
            Err(trove_cache::Error::Refused("The object is retained in governance mode".into()))
        }
        Some("COMPLIANCE") if retained => {
            Err(trove_cache::Error::Refused("The object is retained in compliance mode".into()))
        }
        _ => Ok(()),
    }
}

/// Deletes `key`, or with `version` one version of it, as S3 does in the bucket's versioning state. A version
/// under Object Lock is removed only as [`removable`] allows.
pub async fn delete(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: Option<String>,
    bypass_governance: bool,
) -> Result<Deleted, Error> {
    if let Some(v) = &version {
        check_id(v)?;
    }
    if entry.bck.is_remote() {
        if version.is_some() {
            return Err(Error::NotImplemented("deleting one version of a cloud object through the cache"));
        }
        super::delete(state, entry, key).await?;
        return Ok(Deleted::default());
    }
    if version.is_none() && !is_versioned(entry) {
        super::delete(state, entry, key).await?;
        return Ok(Deleted::default());
    }
    let (st, e, k) = (state.clone(), entry.clone(), key.to_owned());
    blocking(move || delete_here(&st, &e, &k, version.as_deref(), bypass_governance)).await
}

/// A versioned delete on this node (the key's owner).
fn delete_here(
    state: &AppState,
    entry: &BucketEntry,
    key: &str,
    version: Option<&str>,
    bypass_governance: bool,
) -> Result<Deleted, Error> {
    let bck = &entry.bck;
    match version {
        Some(v) => match state.store.remove_version(bck, key, v, |m| removable(m, bypass_governance)) {
            Ok(m) => Ok(Deleted { version_id: Some(v.to_owned()), delete_marker: m.delete_marker }),
            // Deleting what is not there succeeds, as S3's DeleteObject does.
            Err(trove_cache::Error::NoSuchVersion) => {
                Ok(Deleted { version_id: Some(v.to_owned()), delete_marker: false })
            }
            Err(e) => Err(e.into()),
        },
        None if !is_versioned(entry) => {
            state.remember_deletes(bck, &[key.to_owned()]);
            state.store.delete(bck, key)?;
            Ok(Deleted::default())
        }
        None => {
            let mut marker =
                ObjMeta { key: key.to_owned(), mtime_ms: now_ms(), delete_marker: true, ..Default::default() };
            stamp(entry, &mut marker);
            state.store.place_delete_marker(bck, key, &marker)?;
            Ok(Deleted { version_id: marker.vid, delete_marker: true })
        }
    }
}

/// One key (and maybe version) of a DeleteObjects, by its place in the request.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeleteVersions {
    pub entry: BucketEntry,
    pub deletes: Vec<(String, Option<String>)>,
    #[serde(default)]
    pub bypass_governance: bool,
}

/// DeleteObjects with version ids or in a versioned bucket: each key deleted on its owner (this node for its
/// own keys, the others asked for theirs). Outcomes in request order.
pub async fn delete_many(
    state: &SharedState,
    entry: &BucketEntry,
    deletes: Vec<(String, Option<String>)>,
    bypass_governance: bool,
) -> Vec<Result<Deleted, Error>> {
    let mut outcomes: Vec<Option<Result<Deleted, Error>>> = (0..deletes.len()).map(|_| None).collect();
    for (i, (_, v)) in deletes.iter().enumerate() {
        if let Some(Err(e)) = v.as_deref().map(check_id) {
            outcomes[i] = Some(Err(e));
        }
    }
    if entry.bck.is_remote() {
        for (i, (key, v)) in deletes.iter().enumerate() {
            if outcomes[i].is_none() {
                outcomes[i] = Some(delete(state, entry, key, v.clone(), bypass_governance).await);
            }
        }
    } else {
        let call = DeleteVersions { entry: entry.clone(), deletes: deletes.clone(), bypass_governance };
        let (mine, theirs) =
            tokio::join!(delete_owned(state, call.clone()), super::peers::delete_versions_elsewhere(state, &call));
        for (i, outcome) in mine.into_iter().chain(theirs) {
            if outcomes.get(i).is_some_and(Option::is_none) {
                outcomes[i] =
                    Some(outcome.map_err(
                        |(forbidden, why)| {
                            if forbidden {
                                Error::Forbidden(why)
                            } else {
                                Error::Internal(why)
                            }
                        },
                    ));
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(Error::Unavailable("the key's owner did not answer".into()))))
        .collect()
}

/// The deletes of `call` whose keys this node owns, carried out; by their place in the request.
/// A delete's failure as it travels between nodes: whether it was refused (Object Lock), and why.
pub type Failure = (bool, String);

pub async fn delete_owned(state: &SharedState, call: DeleteVersions) -> Vec<(usize, Result<Deleted, Failure>)> {
    let st = state.clone();
    blocking(move || {
        let mut done = Vec::new();
        for (i, (key, version)) in call.deletes.iter().enumerate() {
            if !matches!(st.owner(&call.entry.bck, key), Owner::Local) {
                continue;
            }
            if version.as_deref().is_some_and(|v| !valid_version_id(v)) {
                continue;
            }
            let outcome = delete_here(&st, &call.entry, key, version.as_deref(), call.bypass_governance)
                .map_err(|e| (matches!(e, Error::Forbidden(_)), e.to_string()));
            done.push((i, outcome));
        }
        Ok(done)
    })
    .await
    .unwrap_or_default()
}

/// One version of an AIS-local object: its file and metadata (a delete marker has no data; the caller decides
/// what reading one means).
pub async fn open(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: &str,
) -> Result<(std::fs::File, ObjMeta), Error> {
    check_id(version)?;
    if entry.bck.is_remote() {
        return Err(Error::NotImplemented("reading one version of a cloud object through the cache"));
    }
    let (st, bck, k, v) = (state.clone(), entry.bck.clone(), key.to_owned(), version.to_owned());
    match blocking(move || Ok(st.store.open_version(&bck, &k, &v)?)).await {
        // A copy's source may live on another node (its owner).
        Err(Error::NoSuchVersion) if !matches!(state.owner(&entry.bck, key), Owner::Local) => {
            super::peers::fetch_object(state, &entry.bck, key, Some(version)).await
        }
        other => other,
    }
}

/// The metadata of one version of an object (the current one without `version`).
pub async fn head(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: Option<&str>,
) -> Result<ObjMeta, Error> {
    match version {
        Some(v) => Ok(open(state, entry, key, v).await?.1),
        None => {
            let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
            blocking(move || Ok(st.store.head(&bck, &k)?)).await
        }
    }
}

/// The delete marker that hides `key` in a versioned bucket (for the headers of its 404).
pub async fn hiding_marker(state: &SharedState, entry: &BucketEntry, key: &str) -> Option<ObjMeta> {
    if entry.bck.is_remote() || !is_versioned(entry) {
        return None;
    }
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    blocking(move || Ok(st.store.current_marker(&bck, &k)?)).await.ok().flatten()
}

/// Changes the metadata of one version (the current one without `version`).
pub async fn update_meta(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: Option<String>,
    change: impl FnOnce(&mut ObjMeta) -> Result<(), trove_cache::Error> + Send + 'static,
) -> Result<ObjMeta, Error> {
    if let Some(v) = &version {
        check_id(v)?;
        if entry.bck.is_remote() {
            return Err(Error::NotImplemented("changing one version of a cloud object through the cache"));
        }
    }
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    blocking(move || Ok(st.store.update_version_meta(&bck, &k, version.as_deref(), change)?)).await
}
