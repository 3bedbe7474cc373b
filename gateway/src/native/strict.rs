//! No silent ignores. Every query parameter, `ais-*` header and list flag a native call carries is either one
//! Trove implements, a hint that changes nothing Trove returns or does (listed per route in
//! `docs/native-api.md`), or refused with AIS's 400 naming it, so that a client asking for something Trove does
//! not do (an ETL, an append) never gets a different answer with 200.

use http::{HeaderMap, Method, StatusCode};
use trove_ais::{header, ls_flags, query as q, PRESENCE_MAX};

/// The native routes, as far as their parameters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ObjectGet,
    ObjectHead,
    ObjectPut,
    /// DELETE, POST and PATCH of objects: control messages.
    ObjectControl,
    BucketList,
    Bucket,
    BucketHead,
    Cluster,
    /// `PUT /v1/cluster/attach|detach?what=remote`, which take their arguments in `ais-remote-ais-*` headers.
    RemoteAttach,
    Health,
}

impl Route {
    pub fn object(method: &Method) -> Route {
        match *method {
            Method::GET => Route::ObjectGet,
            Method::HEAD => Route::ObjectHead,
            Method::PUT => Route::ObjectPut,
            _ => Route::ObjectControl,
        }
    }

    pub fn bucket(method: &Method, name: &str) -> Route {
        match *method {
            Method::HEAD => Route::BucketHead,
            Method::GET if name.is_empty() => Route::BucketList,
            _ => Route::Bucket,
        }
    }

    /// Parameters implemented on this route, and hints it may ignore.
    fn accepts(self, name: &str) -> bool {
        let both = |list: &[&str]| list.contains(&name);
        match self {
            Route::ObjectGet => both(&[q::LATEST_VER, q::SILENT, q::DONT_ADD_REMOTE_BCK_MD]),
            Route::ObjectHead => both(&[q::LATEST_VER, q::PROPS, q::SILENT, q::DONT_ADD_REMOTE_BCK_MD]),
            Route::ObjectPut => both(&[q::SKIP_VC]),
            Route::ObjectControl => false,
            Route::BucketList => both(&[q::SYSTEM_BUCKETS]),
            // `bck_to` and `presence`: copy-bck's destination and source selection.
            Route::Bucket => {
                both(&[q::DONT_HEAD_REMOTE_BCK, q::KEEP_BCK_MD, q::DONT_ADD_REMOTE_BCK_MD, "bck_to", q::PRESENCE])
            }
            Route::BucketHead => both(&[q::DONT_ADD_REMOTE_BCK_MD]),
            Route::Cluster => both(&[q::WHAT, q::FORCE]),
            Route::RemoteAttach => both(&[q::WHAT]),
            Route::Health => both(&[q::PRIMARY_READY_REB, q::READINESS, q::ASK_PRIMARY]),
        }
    }

    fn has_presence(self) -> bool {
        matches!(self, Route::ObjectGet | Route::ObjectHead | Route::BucketList | Route::BucketHead)
    }
}

fn refuse(what: String) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, format!("{what} is not supported by Trove"))
}

/// Checks the query and the `ais-*` headers of a call on `route`.
pub fn check(route: Route, query: &[(String, String)], headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    for (k, v) in query {
        let ok = match k.as_str() {
            q::PROVIDER => true,
            // The global namespace, and remote clusters' default ones (`@uuid`, `@alias`); no named namespaces.
            q::NAMESPACE => trove_namespace::Namespace::parse_uname(v).is_some_and(|ns| ns.name.is_empty()),
            // Files inside shards are read on GET; elsewhere the SDK's empty pairs mean absent.
            // A file added to a shard (PUT with archpath, `Ais-Pine`).
            q::ARCHPATH | q::ARCHMIME if route == Route::ObjectPut => true,
            q::ARCHPATH | q::ARCHREGX | q::ARCHMODE | q::ARCHMIME => route == Route::ObjectGet || v.is_empty(),
            q::PRESENCE if route.has_presence() => v.parse::<u8>().is_ok_and(|p| p <= PRESENCE_MAX),
            name => route.accepts(name),
        };
        if !ok {
            return Err(refuse(if v.is_empty() {
                format!("query parameter {k}")
            } else {
                format!("query parameter {k}={v}")
            }));
        }
    }
    for name in headers.keys() {
        let n = name.as_str();
        let allowed = (route == Route::ObjectGet && n.starts_with(header::BLOB_PREFIX))
            || (route == Route::ObjectPut && n == "ais-pine")
            || (route == Route::RemoteAttach && (n == header::REMOTE_AIS_ALIAS || n == header::REMOTE_AIS_URL));
        if n.starts_with(header::PREFIX) && !allowed {
            return Err(refuse(format!("header {name}")));
        }
    }
    Ok(())
}

/// List-objects flags Trove does not implement: "not cached", non-recursive listings, diffs and inventories
/// would each return something other than what was asked.
pub fn check_list_flags(flags: u64) -> Result<(), (StatusCode, String)> {
    const UNSUPPORTED: [(u64, &str); 4] = [
        (ls_flags::NOT_CACHED, "LsNotCached"),
        (ls_flags::NO_RECURSION, "LsNoRecursion"),
        (ls_flags::DIFF, "LsDiff"),
        (ls_flags::NBI, "LsNBI"),
    ];
    match UNSUPPORTED.iter().find(|(bit, _)| flags & bit != 0) {
        Some((bit, name)) => Err(refuse(format!("list-objects flag {name} ({bit})"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn unknown_or_unimplemented_names_are_refused_by_name() {
        let h = HeaderMap::new();
        assert!(check(Route::ObjectGet, &q(&[("provider", "ais"), ("archpath", "a.jpg")]), &h).is_ok());
        assert!(check(Route::ObjectPut, &q(&[("provider", "ais"), ("archpath", "a.jpg")]), &h).is_ok());
        let e = check(Route::ObjectHead, &q(&[("provider", "ais"), ("archpath", "a.jpg")]), &h).unwrap_err();
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(e.1.contains("archpath"), "{}", e.1);
        assert!(check(Route::ObjectGet, &q(&[("archpath", ""), ("archregx", "")]), &h).is_ok());
        assert!(check(Route::ObjectPut, &q(&[("object_to", "x")]), &h).unwrap_err().1.contains("object_to"));
        assert!(check(Route::ObjectHead, &q(&[("presence", "5")]), &h).is_err());
        assert!(check(Route::ObjectHead, &q(&[("presence", "2"), ("props", "size")]), &h).is_ok());
        assert!(check(Route::Bucket, &q(&[("namespace", "@#prod")]), &h).is_err());
        assert!(check(Route::Bucket, &q(&[("namespace", "@#")]), &h).is_ok());
        let mut hs = HeaderMap::new();
        hs.insert("ais-checksum-type", "md5".parse().unwrap());
        assert!(check(Route::ObjectPut, &[], &hs).unwrap_err().1.contains("ais-checksum-type"));
        let mut blob = HeaderMap::new();
        blob.insert("ais-blob-download", "true".parse().unwrap());
        assert!(check(Route::ObjectGet, &[], &blob).is_ok());
        assert!(check_list_flags(ls_flags::CACHED | ls_flags::NAME_ONLY).is_ok());
        assert!(check_list_flags(ls_flags::ARCH_DIR).is_ok());
        assert!(check_list_flags(ls_flags::DIFF).unwrap_err().1.contains("LsDiff"));
    }
}
