//! Attaching cloud buckets into the S3 namespace, and detaching them. One implementation serves the config
//! file (`[[buckets]]`), the native API (`create-bck`, `destroy-bck`), the CLI (through the native API) and
//! auto-attach on first S3 use, and AIS's adding of a remote bucket on first native use.

use trove_namespace::{validate_s3_bucket_name, Bck, BucketEntry, BucketProps, Change};

use super::{now_ms, Error};
use crate::state::SharedState;

/// Attaches `bck` under `s3_name` with `props` (AIS names, partial). With `check`, the backend bucket must
/// answer a HEAD first. Attaching the same bucket again under the same name updates its properties.
pub async fn attach(
    state: &SharedState,
    s3_name: &str,
    bck: Bck,
    props: &serde_json::Value,
    check: bool,
) -> Result<BucketEntry, Error> {
    validate_s3_bucket_name(s3_name).map_err(|e| Error::InvalidBucketName(e.to_string()))?;
    if !bck.is_remote() {
        return Err(Error::NotRemote(bck.to_string()));
    }
    let mut bck = bck;
    if bck.ns.is_remote() {
        // `@alias` and `@uuid` name the same cluster; the registry keeps the UUID (AIS's identity).
        let map = state.cluster.map();
        let (_, cluster) = map.remotes.find(&bck.ns.uuid).ok_or_else(|| Error::NoRemoteCluster(bck.ns.uuid.clone()))?;
        if cluster.uuid.is_empty() {
            return Err(Error::NoRemoteCluster(format!("{} (not reached yet: its UUID is unknown)", bck.ns.uuid)));
        }
        bck.ns.uuid.clone_from(&cluster.uuid);
    }
    bck.validate().map_err(|e| Error::InvalidBucketName(format!("{:?}: {e}", bck.name)))?;
    let backend = super::backend_of(state, &bck)?;
    if check {
        trove_backends::Backend::head_bucket(&*backend, &bck.name).await?;
    }
    let mut p = BucketProps::default();
    p.apply(props).map_err(Error::InvalidProps)?;
    p.backend_bck = None;
    let entry = BucketEntry {
        bck: bck.clone(),
        owner: state.root_id.clone(),
        created_ms: now_ms(),
        props: p,
        tags: Vec::new(),
        acl: None,
        bid: crate::data::new_bid(),
        sealed: false,
        configs: Default::default(),
    };
    match super::apply_registry(state, Change::Attach { name: s3_name.to_owned(), entry }).await {
        Ok(Some(attached)) => Ok(attached),
        Ok(None) => Err(Error::Internal("attach changed nothing".into())),
        Err(e) => Err(e),
    }
}

/// Removes an attached bucket from the namespace; every node then drops its cached copies (unless another name
/// still stands for the same cloud bucket). The cloud data is untouched.
pub async fn detach(state: &SharedState, s3_name: &str) -> Result<BucketEntry, Error> {
    let entry = state.registry.get(s3_name).ok_or(Error::NoSuchBucket)?;
    if !entry.bck.is_remote() {
        return Err(Error::NotRemote(entry.bck.to_string()));
    }
    super::apply_registry(state, Change::Remove { name: s3_name.to_owned() }).await?.ok_or(Error::NoSuchBucket)
}

/// Auto-attach (DESIGN §3): an S3 request for an unknown name tries `NAME` at each provider configured with
/// `auto_attach`, in order, and attaches the first that answers. Misses are remembered for a while.
pub async fn auto_attach(state: &SharedState, s3_name: &str) -> bool {
    if state.providers.auto_attach().is_empty() || state.registry.get(s3_name).is_some() {
        return false;
    }
    if validate_s3_bucket_name(s3_name).is_err() || !may_try(state, s3_name) {
        return false;
    }
    for &provider in state.providers.auto_attach() {
        let bck = Bck { provider, ns: Default::default(), name: s3_name.to_owned() };
        match attach(state, s3_name, bck, &serde_json::Value::Null, true).await {
            Ok(_) => {
                tracing::info!(bucket = s3_name, provider = provider.as_str(), "auto-attached");
                return true;
            }
            Err(e) => tracing::debug!(bucket = s3_name, provider = provider.as_str(), error = %e, "auto-attach"),
        }
    }
    missed(state, s3_name);
    false
}

/// AIS adds a remote bucket to its metadata the first time a call names it (`?provider=aws`, or a remote
/// cluster's `?namespace=@uuid`): Trove attaches it under its own name, if that name is free in the S3
/// namespace and the backend bucket answers. Misses are remembered like auto-attach's.
pub async fn on_first_use(state: &SharedState, bck: Bck) -> Result<(String, BucketEntry), Error> {
    let name = bck.name.clone();
    if !bck.is_remote() || state.registry.get(&name).is_some() {
        return Err(Error::NoSuchBucket);
    }
    let key = bck.to_string();
    if !may_try(state, &key) {
        return Err(Error::NoSuchBucket);
    }
    match attach(state, &name, bck, &serde_json::json!({}), true).await {
        Ok(entry) => {
            tracing::info!(bucket = %key, "added on first use");
            Ok((name, entry))
        }
        Err(e) => {
            if matches!(e, Error::BackendNoSuchBucket(_) | Error::NoSuchBucket) {
                missed(state, &key);
            }
            Err(e)
        }
    }
}

const MISS_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether an unknown bucket may be looked up at its backend now: not a recent miss, within the rate limit.
fn may_try(state: &SharedState, key: &str) -> bool {
    {
        let misses = state.auto_attach_misses.lock().unwrap_or_else(|e| e.into_inner());
        if misses.get(key).is_some_and(|t| t.elapsed() < MISS_TTL) {
            return false;
        }
    }
    if !state.auto_attach_rate.take() {
        tracing::debug!(bucket = key, "auto-attach rate limit reached");
        return false;
    }
    true
}

fn missed(state: &SharedState, key: &str) {
    let mut misses = state.auto_attach_misses.lock().unwrap_or_else(|e| e.into_inner());
    if misses.len() > 10_000 {
        misses.clear();
    }
    misses.insert(key.to_owned(), std::time::Instant::now());
}

/// Attaches the `[[buckets]]` of the config at start-up, without contacting the backends (a node must start
/// while a cloud is unreachable).
pub async fn attach_configured(state: &SharedState, list: &[trove_config::AttachConfig]) -> Result<(), Error> {
    for b in list {
        let bck: Bck = b.source.parse().map_err(|e: trove_namespace::Error| Error::NotRemote(e.to_string()))?;
        attach(state, &b.name, bck, &b.props, false).await?;
    }
    Ok(())
}
