//! Remote AIS clusters attached to this one, as AIS attaches them (`remote-attach alias=url`). The registry is
//! part of the replicated map (`trove_cluster::Remotes`); this adds what needs the network: attaching asks every
//! URL for its cluster map and records the UUID they report (they must agree; a cluster may also be offline
//! when attached, and its UUID is recorded when it first answers), and the live view of `what=remote` reads
//! each attached cluster's map again, reporting `defunct` for one that does not answer.

use std::collections::BTreeSet;

use trove_backends::ais::RemoteSmap;
use trove_cluster::RemoteCluster;

use crate::state::SharedState;

/// Why attaching or detaching failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Invalid(String),
    #[error("no remote cluster {0:?} is attached")]
    NotFound(String),
    #[error(transparent)]
    Cluster(trove_cluster::Error),
}

impl From<trove_cluster::Error> for RemoteError {
    fn from(e: trove_cluster::Error) -> Self {
        match e {
            trove_cluster::Error::InvalidRemote(m) => RemoteError::Invalid(m),
            trove_cluster::Error::NoSuchRemote(a) => RemoteError::NotFound(a),
            other => RemoteError::Cluster(other),
        }
    }
}

/// What `what=remote` shows of one attached cluster.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Live {
    pub url: String,
    pub alias: String,
    /// `defunct` while no URL answers.
    pub uuid: String,
    pub smap: serde_json::Value,
}

/// The UUID AIS reports for an attached cluster none of whose URLs answer.
pub const DEFUNCT: &str = "defunct";

/// Each URL's cluster map, or `None` where it did not answer.
async fn maps(state: &SharedState, urls: &[String], token: Option<&str>) -> Vec<Option<RemoteSmap>> {
    let asks = urls.iter().map(|u| async move {
        match state.ais_client.smap(u, token).await {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::info!(url = %u, error = %e, "a remote cluster's URL did not answer");
                None
            }
        }
    });
    futures::future::join_all(asks).await
}

/// Attaches `alias` with `urls` (added to its URLs if it is attached already).
pub async fn attach(
    state: &SharedState,
    alias: &str,
    urls: Vec<String>,
    token: Option<String>,
) -> Result<(), RemoteError> {
    if urls.is_empty() {
        return Err(RemoteError::Invalid(format!("{alias:?}: no URL given")));
    }
    let uuids: BTreeSet<String> =
        maps(state, &urls, token.as_deref()).await.into_iter().flatten().map(|m| m.uuid).collect();
    if uuids.len() > 1 {
        let list: Vec<_> = uuids.into_iter().collect();
        return Err(RemoteError::Invalid(format!(
            "the URLs of {alias:?} belong to different clusters: {}",
            list.join(", ")
        )));
    }
    let uuid = uuids.into_iter().next().unwrap_or_default();
    if uuid.is_empty() {
        tracing::warn!(alias, "attached a remote cluster that does not answer yet");
    }
    Ok(state.cluster.attach_remote(alias, RemoteCluster { urls, uuid, token }).await?)
}

/// Detaches the cluster named by alias or UUID.
pub async fn detach(state: &SharedState, alias_or_uuid: &str) -> Result<(), RemoteError> {
    Ok(state.cluster.detach_remote(alias_or_uuid).await?)
}

/// Every attached cluster as it answers now (the URL with the newest map, as AIS picks it), and the registry's
/// version. A cluster whose UUID was not known yet gets it recorded.
pub async fn live(state: &SharedState) -> (Vec<Live>, u64) {
    let remotes = state.cluster.map().remotes.clone();
    let views = remotes.clusters.iter().map(|(alias, c)| async move {
        let answers = maps(state, &c.urls, c.token.as_deref()).await;
        // A URL that answers as another cluster than the one attached is not this cluster.
        let best = c
            .urls
            .iter()
            .zip(answers)
            .filter_map(|(u, m)| m.map(|m| (u, m)))
            .filter(|(_, m)| c.uuid.is_empty() || m.uuid == c.uuid)
            .max_by_key(|(_, m)| m.version);
        match best {
            Some((url, m)) => {
                if c.uuid.is_empty() {
                    let learned = RemoteCluster { urls: Vec::new(), uuid: m.uuid.clone(), token: None };
                    if let Err(e) = state.cluster.attach_remote(alias, learned).await {
                        tracing::warn!(alias, error = %e, "could not record a remote cluster's UUID");
                    }
                }
                Live { url: url.clone(), alias: alias.clone(), uuid: m.uuid, smap: m.raw }
            }
            None => Live {
                url: c.urls.first().cloned().unwrap_or_default(),
                alias: alias.clone(),
                uuid: DEFUNCT.into(),
                smap: serde_json::Value::Null,
            },
        }
    });
    (futures::future::join_all(views).await, remotes.version)
}

/// The buckets of the attached clusters (those `only` names, by alias or UUID; all when `None`), as (UUID,
/// bucket name). A cluster that does not answer contributes nothing.
pub async fn buckets(state: &SharedState, only: Option<&str>) -> Vec<(String, String)> {
    let remotes = state.cluster.map().remotes.clone();
    let wanted: Vec<RemoteCluster> = remotes
        .clusters
        .iter()
        .filter(|(a, c)| !c.uuid.is_empty() && only.is_none_or(|o| o == a.as_str() || o == c.uuid))
        .map(|(_, c)| c.clone())
        .collect();
    let asks = wanted.iter().map(|c| async move {
        for url in &c.urls {
            match state.ais_client.buckets(url, c.token.as_deref()).await {
                Ok(names) => return names.into_iter().map(|n| (c.uuid.clone(), n)).collect(),
                Err(e) => tracing::info!(url = %url, error = %e, "a remote cluster did not list its buckets"),
            }
        }
        Vec::new()
    });
    futures::future::join_all(asks).await.into_iter().flatten().collect()
}

/// Attaches the `[[remotes]]` of the configuration (again at every start: URLs and tokens are merged).
pub async fn attach_configured(state: &SharedState, list: &[trove_config::RemoteConfig]) -> Result<(), RemoteError> {
    for r in list {
        let known = state.cluster.map().remotes.clusters.get(&r.alias).cloned();
        let same = known.is_some_and(|k| {
            r.urls.iter().all(|u| k.urls.contains(&u.trim_end_matches('/').to_owned()))
                && (r.token.is_none() || k.token == r.token)
        });
        if !same {
            attach(state, &r.alias, r.urls.clone(), r.token.clone()).await?;
        }
    }
    Ok(())
}
