//! AIStore's wire vocabulary, in one place: the native API's paths, query parameters, headers, actions and
//! control-message types, spelled exactly as AIS and its Python SDK spell them. The server, the CLI, and next
//! the cluster and a remote-AIS client use these names; no other crate writes them as literals.

use serde::{Deserialize, Serialize};

/// URL paths of the native API.
pub mod path {
    /// The native API's root; a bare `/v1` stays S3 (CreateBucket("v1") gets InvalidBucketName).
    pub const V1: &str = "/v1/";
    pub const HEALTH: &str = "/v1/health";
    pub const METRICS: &str = "/v1/metrics";
    /// `/v1/objects/<bucket>/<object>`.
    pub const OBJECTS: &str = "/v1/objects/";
    /// `/v1/buckets[/<bucket>]`.
    pub const BUCKETS: &str = "/v1/buckets";
    pub const CLUSTER: &str = "/v1/cluster";
    pub const ATTACH: &str = "/v1/cluster/attach";
    pub const DETACH: &str = "/v1/cluster/detach";
    pub const DAEMON: &str = "/v1/daemon";
    /// The downloader: `/v1/download`, `/v1/download/abort`, `/v1/download/remove`.
    pub const DOWNLOAD: &str = "/v1/download";
}

/// Query parameters.
pub mod query {
    pub const PROVIDER: &str = "provider";
    pub const NAMESPACE: &str = "namespace";
    pub const WHAT: &str = "what";
    /// `presence=2|3|4`: answer from local state only.
    pub const PRESENCE: &str = "presence";
    pub const LATEST_VER: &str = "latest-ver";
    pub const KEEP_BCK_MD: &str = "keep_bck_md";
    pub const DONT_HEAD_REMOTE_BCK: &str = "dont_head_remote_bck";
    pub const DONT_ADD_REMOTE_BCK_MD: &str = "dont_add_remote_bck_md";
    /// Which properties a HEAD reports.
    pub const PROPS: &str = "props";
    /// "Silent": do not log the error.
    pub const SILENT: &str = "sln";
    pub const SKIP_VC: &str = "skip_vc";
    pub const SYSTEM_BUCKETS: &str = "sys";
    pub const FORCE: &str = "frc";
    /// Health probes: primary ready to rebalance, readiness, ask primary.
    pub const PRIMARY_READY_REB: &str = "prr";
    pub const READINESS: &str = "readiness";
    pub const ASK_PRIMARY: &str = "apr";
    /// Files inside archive objects (a shard's member, a regex over members, the matching mode, the format).
    pub const ARCHPATH: &str = "archpath";
    pub const ARCHREGX: &str = "archregx";
    pub const ARCHMODE: &str = "archmode";
    pub const ARCHMIME: &str = "archmime";
}

/// Bits of the list-objects message's `flags` (AIS's `apc.Ls*`).
pub mod ls_flags {
    pub const CACHED: u64 = 1;
    pub const MISSING: u64 = 2;
    pub const DELETED: u64 = 4;
    pub const ARCH_DIR: u64 = 8;
    pub const NAME_ONLY: u64 = 16;
    pub const NAME_SIZE: u64 = 32;
    pub const BCK_PRESENT: u64 = 64;
    pub const DONT_HEAD_REMOTE: u64 = 128;
    pub const DONT_ADD_REMOTE: u64 = 256;
    pub const NOT_CACHED: u64 = 512;
    pub const WANT_ONLY_REMOTE_PROPS: u64 = 1024;
    pub const NO_RECURSION: u64 = 2048;
    pub const DIFF: u64 = 4096;
    pub const NO_DIRS: u64 = 8192;
    pub const NBI: u64 = 32768;
}

/// Values of `what=`.
pub mod what {
    pub const SMAP: &str = "smap";
    /// Attached remote clusters (`GET /v1/cluster?what=remote`; also `attach`/`detach`).
    pub const REMOTE: &str = "remote";
    pub const STATUS: &str = "status";
    pub const STATUS_ALL: &str = "status_all";
    pub const QUERY_XSTATS: &str = "qryxstats";
    pub const RUNNING_ALL: &str = "running_all";
}

/// Response headers.
pub mod header {
    pub const PRESENT: &str = "ais-present";
    pub const VERSION: &str = "ais-version";
    pub const BUCKET_PROPS: &str = "ais-bucket-props";
    /// Every AIS request header starts with this.
    pub const PREFIX: &str = "ais-";
    /// Blob-download hints on a GET (`Ais-Blob-Download`, `-Chunk`, `-Workers`, ...).
    pub const BLOB_PREFIX: &str = "ais-blob-";
    /// AIS carries a HEAD's error in this response header.
    pub const ERROR: &str = "hdr-error";
    /// Attaching a remote cluster (`PUT /v1/cluster/attach?what=remote`): its alias and URL(s).
    pub const REMOTE_AIS_ALIAS: &str = "ais-remote-ais-alias";
    pub const REMOTE_AIS_URL: &str = "ais-remote-ais-url";
    /// Trove's own: a remote cluster's bearer token on attach (AIS has no header for it).
    pub const TROVE_REMOTE_TOKEN: &str = "trove-remote-token";
}

/// Actions of control messages (`{"action": ...}`).
pub mod action {
    pub const LIST: &str = "list";
    pub const CREATE_BCK: &str = "create-bck";
    pub const DESTROY_BCK: &str = "destroy-bck";
    pub const EVICT_REMOTE_BCK: &str = "evict-remote-bck";
    pub const SET_BPROPS: &str = "set-bprops";
    pub const RESET_BPROPS: &str = "reset-bprops";
    /// Also the prefetch job's kind.
    pub const PREFETCH: &str = "prefetch-listrange";
    /// Also the evict job's kind.
    pub const EVICT: &str = "evict-listrange";
    /// Copies a bucket (`POST /v1/buckets/SRC?bck_to=<uname>`); also the job's kind.
    pub const COPY_BCK: &str = "copy-bck";
    /// Copies listed or templated objects (`{"tobck": ...}` in the value); also the job's kind.
    pub const COPY_LISTRANGE: &str = "copy-listrange";
    /// Makes one shard of many objects (`PUT /v1/buckets/SRC`); also the job's kind.
    pub const ARCHIVE: &str = "archive";
    /// Starts a job (`{"kind": ...}`); here: `rebalance`.
    pub const START: &str = "start";
    pub const STOP: &str = "stop";
    /// Node membership (`PUT /v1/cluster`, value `{"sid": ...}`).
    pub const START_MAINTENANCE: &str = "start-maintenance";
    pub const STOP_MAINTENANCE: &str = "stop-maintenance";
    pub const DECOMMISSION_NODE: &str = "decommission-node";
    pub const SHUTDOWN_NODE: &str = "shutdown-node";
    /// Removes a node from the cluster at once (AIS's `rm-unsafe`).
    pub const RM_NODE_UNSAFE: &str = "rm-unsafe";
}

/// The value of a node membership action (AIS's `apc.ActValRmNode`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeActionValue {
    #[serde(default)]
    pub sid: String,
    #[serde(default)]
    pub skip_rebalance: bool,
    #[serde(default)]
    pub rm_user_data: bool,
    #[serde(default)]
    pub keep_initial_config: bool,
    #[serde(default)]
    pub no_shutdown: bool,
}

/// Values of `presence` (AIS's `apc.Flt*`): 0 any, 1 present anywhere, 2 present here, 3 present and cached,
/// 4 exists outside with a local copy; 5 (outside only) is the one Trove cannot answer.
pub const PRESENCE_MAX: u8 = 4;

/// A control message: `{"action", "name", "value"}` (AIS's `apc.ActMsg`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionMsg {
    #[serde(default)]
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
}

impl ActionMsg {
    pub fn new(action: &str, value: serde_json::Value) -> ActionMsg {
        ActionMsg { action: action.to_owned(), name: String::new(), value }
    }
}

/// Which objects a multi-object message names (AIS's `apc.ListRange`): explicit names, a template (a template
/// without braces is a prefix), or, with neither, the whole bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRange {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objnames: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
}

/// Options of prefetch and evict messages (AIS's `apc.PrefetchMsg` / `apc.EvdMsg`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiObjMsg {
    #[serde(flatten)]
    pub names: ListRange,
    #[serde(default, rename = "num-workers")]
    pub num_workers: i64,
    /// Continue on error.
    #[serde(default)]
    pub coer: bool,
    #[serde(default, rename = "latest-ver")]
    pub latest_ver: bool,
    /// Objects at least this large are fetched with parallel ranged reads; 0 keeps the node's setting.
    #[serde(default, rename = "blob-threshold")]
    pub blob_threshold: u64,
}

impl MultiObjMsg {
    /// Workers: AIS's 0 is "auto", -1 is "serial".
    pub fn workers(&self) -> usize {
        match self.num_workers {
            n if n > 0 => (n as usize).min(64),
            -1 => 1,
            _ => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_with_ais_names() {
        let m: MultiObjMsg = serde_json::from_value(serde_json::json!({
            "template": "shard-{000..009}.tar", "num-workers": 3, "coer": true, "latest-ver": true, "blob-threshold": 5
        }))
        .unwrap();
        assert_eq!(
            (m.names.template.as_str(), m.workers(), m.coer, m.latest_ver, m.blob_threshold),
            ("shard-{000..009}.tar", 3, true, true, 5)
        );
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["num-workers"], 3);
        let a = ActionMsg::new(action::CREATE_BCK, serde_json::json!({}));
        assert_eq!(serde_json::to_value(&a).unwrap()["action"], "create-bck");
    }
}
