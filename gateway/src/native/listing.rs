//! List objects over the native API (`GET /v1/buckets/B` with `{"action":"list","value":LsoMsg}`), answered in
//! msgpack when asked (AIS's Python SDK only decodes msgpack here) and JSON otherwise.
//!
//! A remote bucket pages the backend and marks the entries some node holds (`EntryIsCached`); with the
//! `LsCached` flag, or for an AIS-local bucket, the listing walks the local copies instead.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use trove_namespace::BucketEntry;

use super::json;
use crate::state::SharedState;

type Reply = Result<http::Response<s3s::Body>, (StatusCode, String)>;

/// `LsCached`: only objects present in the cluster.
const LS_CACHED: u64 = 1;
/// `EntryIsCached`.
const ENTRY_CACHED: u64 = 64;
/// `LsArchDir`: list the files inside archive objects too.
const LS_ARCH_DIR: u64 = 8;
/// `EntryInArch`: a file inside an archive object.
const ENTRY_IN_ARCH: u64 = 128;
/// `EntryIsArchive`: an archive object whose files follow it.
const ENTRY_IS_ARCHIVE: u64 = 512;

#[derive(Debug, Default, Deserialize)]
struct LsoMsg {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    pagesize: i64,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    continuation_token: String,
    /// A decimal string in AIS's messages; a number is accepted too.
    #[serde(default)]
    flags: serde_json::Value,
    #[serde(default)]
    start_after: String,
}

/// AIS's `LsoRes`, with the field names its msgpack encoding uses.
#[derive(Debug, Serialize)]
struct LsoRes {
    #[serde(rename = "UUID")]
    uuid: String,
    #[serde(rename = "ContinuationToken")]
    continuation_token: String,
    #[serde(rename = "Flags")]
    flags: u64,
    #[serde(rename = "Entries")]
    entries: Vec<LsoEnt>,
}

/// AIS's `LsoEnt`: name, checksum, atime, version, location, size, copies, flags.
#[derive(Debug, Serialize)]
struct LsoEnt {
    n: String,
    cs: String,
    a: String,
    v: String,
    t: String,
    s: u64,
    c: u64,
    f: u64,
}

fn entry(name: String, meta: &trove_cache::ObjMeta, cached: bool) -> LsoEnt {
    LsoEnt {
        n: name,
        cs: meta.etag.clone(),
        a: String::new(),
        v: meta.version.clone().unwrap_or_default(),
        t: String::new(),
        s: meta.size,
        c: u64::from(cached),
        f: if cached { ENTRY_CACHED } else { 0 },
    }
}

/// Each archive object followed by its files (`<object>/<file>`, sorted, with the archive's flags and
/// `EntryInArch`); archives are known by their names' extensions.
async fn with_archived(
    state: &SharedState,
    e: &BucketEntry,
    entries: Vec<LsoEnt>,
) -> Result<Vec<LsoEnt>, (StatusCode, String)> {
    let mut out = Vec::with_capacity(entries.len());
    for mut ent in entries {
        if crate::data::archive::Format::from_name(&ent.n).is_none() {
            out.push(ent);
            continue;
        }
        let toc = crate::data::archive::toc(state, &e.bck, &ent.n)
            .await
            .map_err(|err| super::errors::about(err, &format!("{}/{}", e.bck, ent.n)))?;
        let mut files: Vec<&crate::data::archive::Member> = toc.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let (flags, copies, parent) = (ent.f, ent.c, ent.n.clone());
        ent.f |= ENTRY_IS_ARCHIVE;
        out.push(ent);
        for m in files {
            let inner = m.name.trim_start_matches("./").trim_start_matches('/').trim_end_matches('/');
            out.push(LsoEnt {
                n: format!("{parent}/{inner}"),
                cs: String::new(),
                a: String::new(),
                v: String::new(),
                t: String::new(),
                s: m.size,
                c: copies,
                f: flags | ENTRY_IN_ARCH,
            });
        }
    }
    Ok(out)
}

fn bad(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, e.to_string())
}

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub async fn list_objects(state: &SharedState, e: &BucketEntry, value: &serde_json::Value, accept: &str) -> Reply {
    let msg: LsoMsg = serde_json::from_value(value.clone()).map_err(bad)?;
    let flags = match &msg.flags {
        serde_json::Value::String(s) if !s.is_empty() => s.parse::<u64>().map_err(bad)?,
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    };
    super::strict::check_list_flags(flags)?;
    let remote = e.bck.is_remote();
    // Archive contents are listed from the copies in the cluster only (as AIS does).
    let archives = flags & LS_ARCH_DIR != 0;
    let local_walk = !remote || flags & LS_CACHED != 0 || archives;
    let max = match msg.pagesize {
        n if n > 0 => (n as usize).min(if remote { 1000 } else { 10_000 }),
        _ => 1000,
    };
    let opts = crate::data::ListOpts {
        prefix: msg.prefix.clone(),
        after: msg.start_after.clone(),
        token: Some(msg.continuation_token.clone()).filter(|t| !t.is_empty()),
        max,
        cached_only: local_walk,
        ..Default::default()
    };
    let page = crate::data::list(state, e, opts).await.map_err(|err| super::errors::about(err, &e.bck.to_string()))?;
    let next = if page.truncated { page.next_token.clone() } else { None };
    // A backend listing says nothing about the cache: the cluster is asked which entries some node holds.
    let held = if local_walk {
        Default::default()
    } else {
        let keys = page.objects.iter().map(|(k, _)| k.clone()).collect();
        crate::data::peers::held_anywhere(state, &e.bck, keys)
            .await
            .map_err(|err| super::errors::about(err, &e.bck.to_string()))?
    };
    let entries: Vec<_> = page
        .objects
        .into_iter()
        .map(|(k, m)| {
            let cached = local_walk || held.contains(&k);
            entry(k, &m, cached)
        })
        .collect();
    let entries = if archives { with_archived(state, e, entries).await? } else { entries };
    let res = LsoRes {
        uuid: if msg.uuid.is_empty() { format!("{:016x}", rand::random::<u64>()) } else { msg.uuid },
        continuation_token: next.unwrap_or_default(),
        flags: 0,
        entries,
    };
    if accept.contains("msgpack") {
        let body = rmp_serde::to_vec_named(&res).map_err(internal)?;
        let mut r = json(StatusCode::OK, Bytes::from(body));
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/msgpack"));
        return Ok(r);
    }
    Ok(json(StatusCode::OK, Bytes::from(serde_json::to_vec(&res).map_err(internal)?)))
}
