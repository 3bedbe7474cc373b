//! The registry of remote AIS clusters (AIS's `backend.ais` config): each attached under an alias with one or
//! more URLs, and the UUID the cluster reported (empty while it has not been reached). Replicated with the rest
//! of the map, so every node addresses `ais://@alias/b` and `ais://@uuid/b` the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One attached cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCluster {
    /// Its nodes' URLs as given (`http(s)://host:port`), tried in order.
    pub urls: Vec<String>,
    /// The UUID its Smap reported; empty until one of the URLs answered.
    #[serde(default)]
    pub uuid: String,
    /// A bearer token for clusters that require one; never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Every attached cluster, by alias, and a version that every change increments (AIS's `ver`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remotes {
    pub version: u64,
    pub clusters: BTreeMap<String, RemoteCluster>,
}

impl Remotes {
    /// The alias and cluster an `@alias` or `@uuid` names.
    pub fn find(&self, alias_or_uuid: &str) -> Option<(&str, &RemoteCluster)> {
        if let Some((a, c)) = self.clusters.get_key_value(alias_or_uuid) {
            return Some((a.as_str(), c));
        }
        self.clusters.iter().find(|(_, c)| !c.uuid.is_empty() && c.uuid == alias_or_uuid).map(|(a, c)| (a.as_str(), c))
    }

    /// Attaches `alias` (or adds URLs to it, learns its UUID, replaces its token), after the checks AIS makes.
    /// `own_uuid` is this cluster's: a cluster is not attached to itself.
    pub fn attach(&mut self, alias: &str, add: &RemoteCluster, own_uuid: &str) -> Result<(), String> {
        check_alias(alias)?;
        for url in &add.urls {
            check_url(url)?;
        }
        if self.clusters.values().any(|c| c.uuid == alias) {
            return Err(format!("alias {alias:?} is the UUID of an attached cluster"));
        }
        if !add.uuid.is_empty() {
            if add.uuid == own_uuid {
                return Err(format!("{} is this cluster's own UUID", add.uuid));
            }
            if let Some((other, _)) = self.clusters.iter().find(|(a, c)| *a != alias && c.uuid == add.uuid) {
                return Err(format!("cluster {} is attached already, as {other:?}", add.uuid));
            }
        }
        let entry = self.clusters.entry(alias.to_owned()).or_default();
        if !add.uuid.is_empty() && !entry.uuid.is_empty() && entry.uuid != add.uuid {
            return Err(format!("{alias:?} is cluster {}, but a URL answered as {}", entry.uuid, add.uuid));
        }
        if add.urls.is_empty() && entry.urls.is_empty() {
            self.clusters.remove(alias);
            return Err(format!("{alias:?}: no URL"));
        }
        for url in &add.urls {
            let url = url.trim_end_matches('/').to_owned();
            if !entry.urls.contains(&url) {
                entry.urls.push(url);
            }
        }
        if !add.uuid.is_empty() {
            entry.uuid.clone_from(&add.uuid);
        }
        if add.token.is_some() {
            entry.token.clone_from(&add.token);
        }
        self.version += 1;
        Ok(())
    }

    /// Detaches the cluster named by alias or UUID; its alias.
    pub fn detach(&mut self, alias_or_uuid: &str) -> Option<String> {
        let alias = self.find(alias_or_uuid)?.0.to_owned();
        self.clusters.remove(&alias);
        self.version += 1;
        Some(alias)
    }
}

/// AIS's alias rule: at least two characters of letters, digits, `-` and `_`, and not `what`.
fn check_alias(alias: &str) -> Result<(), String> {
    let ok = alias.len() >= 2
        && alias.len() <= 64
        && alias.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && alias != "what";
    if ok {
        Ok(())
    } else {
        Err(format!("invalid alias {alias:?}: 2 to 64 letters, digits, '-' or '_' (not \"what\")"))
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.trim_end_matches('/')).unwrap_or_default();
    if host.is_empty() || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!("invalid URL {url:?}: http(s)://host[:port] expected"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(urls: &[&str], uuid: &str) -> RemoteCluster {
        RemoteCluster { urls: urls.iter().map(|u| (*u).to_owned()).collect(), uuid: uuid.into(), token: None }
    }

    #[test]
    fn attach_detach_and_the_rules_ais_checks() {
        let mut r = Remotes::default();
        r.attach("remais", &at(&["http://10.0.0.1:8080/"], ""), "me").unwrap();
        // Offline at first; the UUID is learned later and a second URL added.
        r.attach("remais", &at(&["http://10.0.0.2:8080"], "Uu1"), "me").unwrap();
        let (alias, c) = r.find("Uu1").unwrap();
        assert_eq!(alias, "remais");
        assert_eq!(c.urls, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
        assert_eq!(r.version, 2);
        // A URL of the same alias answering as another cluster; the UUID used as an alias; a second alias of
        // the same cluster; this cluster itself; bad names and URLs.
        assert!(r.attach("remais", &at(&["http://10.0.0.3:8080"], "Other"), "me").is_err());
        assert!(r.attach("Uu1", &at(&["http://10.0.0.4:8080"], ""), "me").is_err());
        assert!(r.attach("again", &at(&["http://10.0.0.5:8080"], "Uu1"), "me").is_err());
        assert!(r.attach("self", &at(&["http://10.0.0.6:8080"], "me"), "me").is_err());
        for bad in ["a", "what", "has space", "dot.ted"] {
            assert!(r.attach(bad, &at(&["http://h:1"], ""), "me").is_err(), "{bad}");
        }
        for bad in ["ftp://h", "http://", "http://h/path", "h:80"] {
            assert!(r.attach("ok-alias", &at(&[bad], ""), "me").is_err(), "{bad}");
        }
        assert!(!r.clusters.contains_key("ok-alias"));
        assert_eq!(r.version, 2, "refused changes change nothing");
        assert_eq!(r.detach("Uu1").as_deref(), Some("remais"));
        assert!(r.detach("remais").is_none());
        assert_eq!(r.version, 3);
    }
}
