//! Publishing an AIS-local object: with `mirror.enabled`, on the first `mirror.copies` active nodes in HRW order
//! (this node, the owner, first). Every other node first receives and syncs its copy aside; then this node
//! commits its own (the write's precondition decides here, under the tree lock); then the others commit theirs.
//! The write is acknowledged only when every copy is published. A failure before this node's commit drops the
//! staged copies, so nothing of the write remains; a failure after it (a node lost between the phases) answers
//! 503 and asks for a repair walk, which restores the missing copy.

use trove_cache::{ObjMeta, Staged};
use trove_cluster::NodeInfo;
use trove_namespace::BucketEntry;

use super::copies::{finish_on, stage_on};
use super::{blocking, Error, Precondition};
use crate::state::SharedState;

/// The other nodes that keep copies of `key` of `entry` (none when the bucket is not mirrored or the cluster
/// has one active node).
pub fn other_holders(state: &SharedState, entry: &BucketEntry, key: &str) -> Vec<NodeInfo> {
    let copies = entry.props.copies(entry.bck.is_remote());
    if copies < 2 {
        return Vec::new();
    }
    let map = state.cluster.map();
    crate::cluster::ranked(&map, &entry.bck, key)
        .into_iter()
        .take(copies)
        .filter(|n| n.id != state.node_id)
        .cloned()
        .collect()
}

/// Commits `staged` as `meta.key` here and on the bucket's other holders, as a new version when the bucket is
/// versioned (`meta` then carries its id).
pub async fn publish(
    state: &SharedState,
    entry: &BucketEntry,
    staged: Staged,
    meta: &mut ObjMeta,
    check: Option<Precondition>,
) -> Result<(), Error> {
    super::versions::stamp(entry, meta);
    let meta = &*meta;
    let others = other_holders(state, entry, &meta.key);
    let (st, bck, m) = (state.clone(), entry.bck.clone(), meta.clone());
    if others.is_empty() {
        return blocking(move || {
            match check {
                Some(check) => st.store.commit_if(staged, &bck, &m.key, &m, check)?,
                None => st.store.commit(staged, &bck, &m.key, &m)?,
            }
            Ok(())
        })
        .await;
    }
    // A write its precondition refuses travels nowhere.
    let check = match check {
        Some(check) => {
            let (st, bck, key) = (state.clone(), entry.bck.clone(), meta.key.clone());
            blocking(move || {
                let current = match st.store.head(&bck, &key) {
                    Ok(m) => Some(m),
                    Err(trove_cache::Error::NotFound) => None,
                    Err(e) => return Err(e.into()),
                };
                check(current.as_ref())?;
                Ok(check)
            })
            .await
            .map(Some)?
        }
        None => None,
    };
    let staged_ref = &staged;
    let staging = others.iter().map(|n| async move { (n, stage_on(state, n, entry, staged_ref, meta).await) });
    let mut tokens = Vec::new();
    let mut failure = None;
    for (node, outcome) in futures::future::join_all(staging).await {
        match outcome {
            Ok(t) => tokens.push((node, t)),
            Err(e) => failure = Some(e),
        }
    }
    if let Some(e) = failure {
        finish_all(state, &tokens, false).await;
        return Err(Error::Unavailable(format!("could not keep {} copies: {e}", others.len() + 1)));
    }
    let committed = blocking(move || {
        match check {
            Some(check) => st.store.commit_if(staged, &bck, &m.key, &m, check)?,
            None => st.store.commit(staged, &bck, &m.key, &m)?,
        }
        Ok(())
    })
    .await;
    if let Err(e) = committed {
        finish_all(state, &tokens, false).await;
        return Err(e);
    }
    let failed = finish_all(state, &tokens, true).await;
    state.metrics.mirror_copies.fetch_add((tokens.len() - failed.len()) as u64, std::sync::atomic::Ordering::Relaxed);
    if let Some(e) = failed.into_iter().next() {
        state.request_walk(None);
        return Err(Error::Unavailable(format!("a copy was lost before it was published ({e}); being repaired")));
    }
    Ok(())
}

/// Commits (or drops) staged copies on their nodes; the errors of those that failed.
async fn finish_all(state: &SharedState, tokens: &[(&NodeInfo, u64)], commit: bool) -> Vec<Error> {
    let calls = tokens.iter().map(|(node, token)| finish_on(state, node, *token, commit));
    futures::future::join_all(calls).await.into_iter().filter_map(Result::err).collect()
}
