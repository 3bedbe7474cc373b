//! AIStore's native API as seen from a client: a remote AIS cluster (NVIDIA AIStore or another Trove) attached
//! by alias or UUID. The cluster's map (`GET /v1/daemon?what=smap`) tells its UUID — how an attached cluster is
//! identified — and the URLs of its nodes, over which [`AisBackend`] spreads the data calls.

mod backend;
mod wire;

use std::time::Duration;

pub use backend::AisBackend;

use crate::{Error, Result};

/// The parts of a remote cluster's Smap Trove uses, and the whole map as it came (shown in `what=remote`).
#[derive(Debug, Clone)]
pub struct RemoteSmap {
    pub uuid: String,
    pub version: u64,
    /// Direct URLs of its storage nodes (AIS targets), in id order.
    pub targets: Vec<String>,
    pub raw: serde_json::Value,
}

/// A client of remote AIS clusters (rustls for `https://`).
#[derive(Debug, Clone)]
pub struct AisClient {
    http: reqwest::Client,
}

impl AisClient {
    /// Every call is bounded by `timeout`; redirects are followed by the caller (AIS proxies redirect data
    /// calls to targets, and a body must be sent again).
    pub fn new(timeout: Duration) -> Result<AisClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Other(format!("building the AIS client: {e}")))?;
        Ok(AisClient { http })
    }

    /// The cluster map of the cluster at `url`.
    pub async fn smap(&self, url: &str, token: Option<&str>) -> Result<RemoteSmap> {
        let mut req = self.http.get(format!("{}/v1/daemon", url.trim_end_matches('/'))).query(&[("what", "smap")]);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let unreachable = |e: reqwest::Error| Error::unavailable(format!("{url}: {e}"));
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(Error::Other(format!("{url}: the cluster map: HTTP {status}: {}", body.trim())));
        }
        let raw: serde_json::Value = resp.json().await.map_err(|e| Error::Other(format!("{url}: {e}")))?;
        parse_smap(raw).map_err(|e| Error::Other(format!("{url}: {e}")))
    }
}

impl AisClient {
    /// The names of the AIS buckets of the cluster at `url` (`GET /v1/buckets/?provider=ais`).
    pub async fn buckets(&self, url: &str, token: Option<&str>) -> Result<Vec<String>> {
        let mut req = self
            .http
            .get(format!("{}/v1/buckets/", url.trim_end_matches('/')))
            .query(&[("provider", "ais")])
            .json(&serde_json::json!({"action": "list", "name": "", "value": null}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| Error::unavailable(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| Error::unavailable(format!("{url}: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(wire::error_of(status, &body, "", ""));
        }
        #[derive(serde::Deserialize)]
        struct Listed {
            name: String,
            #[serde(default)]
            namespace: Option<serde_json::Value>,
        }
        let listed: Vec<Listed> = serde_json::from_slice(&body).map_err(|e| Error::Other(format!("{url}: {e}")))?;
        // Its own AIS buckets only (not those it has from clusters attached to it).
        Ok(listed
            .into_iter()
            .filter(|b| b.namespace.as_ref().is_none_or(|n| n["uuid"].as_str().unwrap_or("").is_empty()))
            .map(|b| b.name)
            .collect())
    }
}

/// Reads an AIS Smap (`version` is a number, or a string as AIS's Go JSON writes int64s).
pub fn parse_smap(raw: serde_json::Value) -> std::result::Result<RemoteSmap, String> {
    let uuid = raw["uuid"].as_str().filter(|u| !u.is_empty()).ok_or("not a cluster map: no uuid")?.to_owned();
    let version = match &raw["version"] {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let mut targets: Vec<(String, String)> = raw["tmap"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(id, n)| Some((id.clone(), n["public_net"]["direct_url"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    targets.sort();
    Ok(RemoteSmap { uuid, version, targets: targets.into_iter().map(|(_, u)| u).collect(), raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ais_smap() {
        // As AIStore writes it: int64 as a string, targets keyed by id.
        let raw = serde_json::json!({
            "uuid": "cKEuiUYz-l", "version": "17", "creation_time": "",
            "tmap": {
                "t2": {"public_net": {"direct_url": "http://10.0.0.2:51081"}},
                "t1": {"public_net": {"direct_url": "http://10.0.0.1:51081"}}
            },
            "pmap": {"p1": {"public_net": {"direct_url": "http://10.0.0.1:51080"}}}
        });
        let s = parse_smap(raw).unwrap();
        assert_eq!((s.uuid.as_str(), s.version), ("cKEuiUYz-l", 17));
        assert_eq!(s.targets, ["http://10.0.0.1:51081", "http://10.0.0.2:51081"]);
        assert!(parse_smap(serde_json::json!({"version": 1})).is_err());
    }
}
