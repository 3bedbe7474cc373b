//! Listing a bucket, one page at a time, for both frontends. An AIS-local bucket (or the cached copies of a
//! cloud bucket) is walked on disk in byte order: keys that contain the delimiter after the prefix fold into a
//! common prefix, and the walk then jumps past everything under it. In a cluster every node walks its own
//! objects and the pages are merged: each node returns its first `max` entries after the marker, so the first
//! `max` of the merge are the cluster's, and memory stays bounded by nodes × `max`. A node that does not
//! answer fails the listing (503) rather than shorten it. A cloud bucket is paged from its backend, never walked
//! in full. Continuation tokens are opaque to clients: where the page ended, and for a backend listing the
//! backend's own token to go on.

use base64::Engine;
use trove_backends::ListRequest;
use trove_cache::ObjMeta;
use trove_namespace::{Bck, BucketEntry};

use super::{backend, blocking, Error};
use crate::state::SharedState;

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    pub objects: Vec<(String, ObjMeta)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub last: Option<String>,
    /// The ListObjectsV2 continuation token, when the page source makes its own (remote buckets).
    pub next_token: Option<String>,
    /// A listing of versions ([`ListOpts::versions`]): each key with all its versions, newest first (instead
    /// of `objects`).
    pub versions: Vec<(String, trove_cache::Versions)>,
}

/// What one page asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Keys after this one (S3's marker / start-after); a token overrides it.
    pub after: String,
    pub token: Option<String>,
    pub max: usize,
    /// Only cached copies, walked on disk (a cloud bucket is otherwise paged from its backend).
    pub cached_only: bool,
    /// Every version of each key (an AIS-local bucket), in [`Page::versions`].
    pub versions: bool,
    /// With `versions`: the key `after` itself is listed too (a page of versions may end inside a key).
    pub after_inclusive: bool,
}

/// One page of `entry`'s objects. A truncated page carries the token of the next one.
pub async fn list(state: &SharedState, entry: &BucketEntry, opts: ListOpts) -> Result<Page, Error> {
    let ListOpts { prefix, delimiter, after, token, max, cached_only, versions, after_inclusive } = opts;
    if entry.bck.is_remote() && !cached_only {
        let (after, resume) = match token.as_deref() {
            Some(t) => decode_remote_token(t).ok_or(Error::InvalidToken)?,
            None => (after, None),
        };
        return remote_page(state, entry, &prefix, delimiter.as_deref(), &after, resume, max).await;
    }
    let after = match token.as_deref() {
        Some(t) => decode_token(t)?,
        None => after,
    };
    let walk = Walk { bck: entry.bck.clone(), prefix, delimiter, after, max, versions, after_inclusive };
    let mut page = crate::data::peers::walk_everywhere(state, &walk).await?;
    if page.truncated {
        page.next_token = page.last.as_deref().map(encode_token);
    }
    Ok(page)
}

/// One node's part of a listing: its first `max` entries after `after`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Walk {
    pub bck: Bck,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub after: String,
    pub max: usize,
    #[serde(default)]
    pub versions: bool,
    #[serde(default)]
    pub after_inclusive: bool,
}

/// A page of one node's walk, as it travels between nodes.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WalkPage {
    pub objects: Vec<(String, ObjMeta)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<(String, trove_cache::Versions)>,
}

/// Walks this node's objects (or versions).
pub async fn walk_local(state: &SharedState, walk: Walk) -> Result<WalkPage, Error> {
    let st = state.clone();
    blocking(move || {
        let (bck, prefix, delimiter) = (&walk.bck, walk.prefix.as_str(), walk.delimiter.as_deref());
        if !walk.versions {
            let p = local_page(prefix, delimiter, &walk.after, walk.max, |pos, n| st.store.list(bck, pos, prefix, n))?;
            return Ok(WalkPage {
                objects: p.items,
                prefixes: p.prefixes,
                truncated: p.truncated,
                ..Default::default()
            });
        }
        let mut p = local_page(prefix, delimiter, &walk.after, walk.max, |pos, n| {
            st.store.list_versioned(bck, pos, prefix, n)
        })?;
        if walk.after_inclusive && walk.after.starts_with(prefix) && walk.max > 0 {
            let here = st.store.versions_of(bck, &walk.after)?;
            if !here.is_empty() {
                p.items.insert(0, (walk.after.clone(), here));
                if p.items.len() + p.prefixes.len() > walk.max {
                    p.truncated = true;
                    // Drop the last entry of the page, a key or a prefix, whichever sorts last.
                    match (p.items.last(), p.prefixes.last()) {
                        (Some((k, _)), Some(cp)) if cp > k => p.prefixes.pop(),
                        _ => p.items.pop().map(|(k, _)| k),
                    };
                }
            }
        }
        Ok(WalkPage { versions: p.items, prefixes: p.prefixes, truncated: p.truncated, ..Default::default() })
    })
    .await
}

/// An entry of a merged page.
enum Item {
    Object(Box<ObjMeta>),
    Versions(trove_cache::Versions),
    Prefix,
}

/// Merges the nodes' pages into the cluster's page of `max` entries (common prefixes that several nodes fold
/// into count once).
pub fn merge(pages: Vec<WalkPage>, max: usize) -> Page {
    use std::collections::BTreeMap;
    let mut any_truncated = false;
    // Key -> entry. Objects win over an equal prefix (they cannot collide: a prefix ends with the delimiter,
    // which the key then would have to end with too, and would be folded).
    let mut all: BTreeMap<String, Item> = BTreeMap::new();
    for p in pages {
        any_truncated |= p.truncated;
        for (k, m) in p.objects {
            all.insert(k, Item::Object(Box::new(m)));
        }
        for (k, v) in p.versions {
            all.insert(k, Item::Versions(v));
        }
        for cp in p.prefixes {
            all.entry(cp).or_insert(Item::Prefix);
        }
    }
    let mut page = Page { truncated: any_truncated || all.len() > max, ..Default::default() };
    for (k, item) in all.into_iter().take(max) {
        page.last = Some(k.clone());
        match item {
            Item::Object(m) => page.objects.push((k, *m)),
            Item::Versions(v) => page.versions.push((k, v)),
            Item::Prefix => page.prefixes.push(k),
        }
    }
    if page.objects.len() + page.versions.len() + page.prefixes.len() < max {
        // Every node's entries fit: nothing is left anywhere.
        page.truncated = false;
    }
    page
}

/// One node's page before it travels: keyed items (objects, or keys with their versions) and common prefixes.
struct LocalPage<T> {
    items: Vec<(String, T)>,
    prefixes: Vec<String>,
    truncated: bool,
}

/// The first `max_keys` entries after `after`: keys from `fetch(position, how many)` (in order, after the
/// position), with those that contain the delimiter after the prefix folded into common prefixes.
fn local_page<T>(
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max_keys: usize,
    mut fetch: impl FnMut(&[u8], usize) -> trove_cache::Result<Vec<(String, T)>>,
) -> trove_cache::Result<LocalPage<T>> {
    let mut page = LocalPage { items: Vec::new(), prefixes: Vec::new(), truncated: false };
    if max_keys == 0 {
        return Ok(page);
    }
    let delimiter = delimiter.filter(|d| !d.is_empty());
    // Start at the marker, or right before the prefix: nothing sorts between them that could match.
    let mut pos: Vec<u8> = if after.as_bytes() >= prefix.as_bytes() { after.as_bytes().to_vec() } else { Vec::new() };
    let mut count = 0usize;
    loop {
        let batch = fetch(&pos, max_keys - count + 1)?;
        if batch.is_empty() {
            return Ok(page);
        }
        let mut skip: Option<String> = None;
        for (key, meta) in batch {
            if skip.as_deref().is_some_and(|cp| key.starts_with(cp)) {
                continue;
            }
            let folded = delimiter
                .and_then(|d| key[prefix.len()..].find(d).map(|i| key[..prefix.len() + i + d.len()].to_owned()));
            match folded {
                Some(cp) => {
                    if cp.as_bytes() > after.as_bytes() {
                        if count == max_keys {
                            page.truncated = true;
                            return Ok(page);
                        }
                        page.prefixes.push(cp.clone());
                        count += 1;
                    }
                    pos = cp.as_bytes().to_vec();
                    pos.push(0xFF);
                    skip = Some(cp);
                }
                None => {
                    if count == max_keys {
                        page.truncated = true;
                        return Ok(page);
                    }
                    pos = key.as_bytes().to_vec();
                    page.items.push((key, meta));
                    count += 1;
                }
            }
        }
    }
}

fn encode_token(pos: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pos.as_bytes())
}

fn decode_token(token: &str) -> Result<String, Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Error::InvalidToken)
}

/// A continuation token of a remote listing: where the page ended, and the backend's own token to go on.
#[derive(serde::Serialize, serde::Deserialize)]
struct Token {
    after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backend: Option<String>,
}

fn decode_remote_token(t: &str) -> Option<(String, Option<String>)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    let tok: Token = serde_json::from_slice(&raw).ok()?;
    Some((tok.after, tok.backend))
}

fn encode_remote_token(after: String, backend: Option<String>) -> String {
    use base64::Engine;
    let raw = serde_json::to_vec(&Token { after, backend }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// One page of a listing of a remote bucket, paged from the backend: keys after `after`, continuing the
/// backend's own listing when `resume` holds its token. Backends that cannot start after a key (Azure) are
/// paged from their start, skipping what was returned already.
async fn remote_page(
    state: &SharedState,
    entry: &BucketEntry,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    resume: Option<String>,
    max_keys: usize,
) -> Result<Page, Error> {
    let mut page = Page::default();
    if max_keys == 0 {
        return Ok(page);
    }
    let b = backend(state, entry)?;
    let mut token = resume;
    loop {
        let req = ListRequest {
            prefix: prefix.to_owned(),
            delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            start_after: (!after.is_empty()).then(|| after.to_owned()),
            token: token.clone(),
            max_keys: max_keys - page.objects.len() - page.prefixes.len(),
        };
        let got = b.list(&entry.bck.name, req).await?;
        let mut items: Vec<(String, Option<ObjMeta>)> = got
            .entries
            .into_iter()
            .filter(|e| e.key.as_str() > after)
            .map(|e| (e.key.clone(), Some(ObjMeta::from_backend(&e.key, &e.meta))))
            .chain(got.common_prefixes.into_iter().filter(|p| p.as_str() > after).map(|p| (p, None)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, m) in items {
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.truncated = true;
                break;
            }
            page.last = Some(k.clone());
            match m {
                Some(m) => page.objects.push((k, m)),
                None => page.prefixes.push(k),
            }
        }
        token = got.next_token;
        if page.truncated {
            // Stopped inside a backend page: the next page starts after our last key.
            page.next_token = page.last.clone().map(|l| encode_remote_token(l, None));
            return Ok(page);
        }
        match token {
            None => return Ok(page),
            Some(t) if page.objects.len() + page.prefixes.len() == max_keys => {
                page.truncated = true;
                page.next_token = Some(encode_remote_token(page.last.clone().unwrap_or_default(), Some(t)));
                return Ok(page);
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use trove_cache::Store;

    fn store_with(keys: &[&str]) -> (tempfile::TempDir, Store, Bck) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&[dir.path().join("mp")], false).unwrap();
        let bck = Bck::ais("b");
        for k in keys {
            let mut st = store.stage(&bck, k).unwrap();
            st.file.write_all(k.as_bytes()).unwrap();
            store.commit(st, &bck, k, &ObjMeta { key: (*k).into(), ..Default::default() }).unwrap();
        }
        (dir, store, bck)
    }

    fn page(
        s: &Store,
        b: &Bck,
        prefix: &str,
        delim: Option<&str>,
        after: &str,
        max: usize,
    ) -> (Vec<String>, Vec<String>, bool) {
        let p = local_page(prefix, delim, after, max, |pos, n| s.list(b, pos, prefix, n)).unwrap();
        (p.items.into_iter().map(|(k, _)| k).collect(), p.prefixes, p.truncated)
    }

    #[test]
    fn merged_pages_are_the_cluster_s_first_entries() {
        let (_d1, s1, b) = store_with(&["a/1", "c", "e", "g/1"]);
        let (_d2, s2, _) = store_with(&["a/2", "b", "d", "g/2", "h"]);
        let walk = |s: &Store, after: &str, max| {
            let p = local_page("", Some("/"), after, max, |pos, n| s.list(&b, pos, "", n)).unwrap();
            WalkPage { objects: p.items, prefixes: p.prefixes, truncated: p.truncated, ..Default::default() }
        };
        let mut after = String::new();
        let mut seen = Vec::new();
        loop {
            let page = merge(vec![walk(&s1, &after, 3), walk(&s2, &after, 3)], 3);
            let mut keys: Vec<String> = page.objects.iter().map(|(k, _)| k.clone()).collect();
            keys.extend(page.prefixes.iter().cloned());
            keys.sort();
            seen.extend(keys);
            if !page.truncated {
                break;
            }
            after = page.last.unwrap();
        }
        assert_eq!(seen, ["a/", "b", "c", "d", "e", "g/", "h"]);
    }

    #[test]
    fn delimiter_folds_and_pages() {
        let (_d, s, b) = store_with(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let (o, p, t) = page(&s, &b, "", Some("/"), "", 1000);
        assert_eq!((o, p, t), (vec!["b".into(), "d".into()], vec!["a/".into(), "c/".into()], false));
        // Paging by two: the marker may be a common prefix, which is then skipped as a whole.
        let (o, p, t) = page(&s, &b, "", Some("/"), "", 2);
        assert_eq!((o, p, t), (vec!["b".into()], vec!["a/".into()], true));
        let (o, p, t) = page(&s, &b, "", Some("/"), "b", 2);
        assert_eq!((o, p, t), (vec!["d".into()], vec!["c/".into()], false));
        let (o, p, _) = page(&s, &b, "", Some("/"), "a/", 10);
        assert_eq!((o, p), (vec!["b".into(), "d".into()], vec!["c/".into()]));
        // Prefix plus delimiter, and a multi-character delimiter.
        let (o, p, _) = page(&s, &b, "c/", Some("/"), "", 10);
        assert_eq!((o, p), (vec!["c/y".into()], vec!["c/x/".into()]));
        let (o, p, _) = page(&s, &b, "", Some("/1"), "", 10);
        assert_eq!(
            (o, p),
            (vec!["a/2".into(), "b".into(), "c/y".into(), "d".into()], vec!["a/1".into(), "c/x/1".into()])
        );
        assert_eq!(page(&s, &b, "", None, "", 0), (vec![], vec![], false));
    }
}
