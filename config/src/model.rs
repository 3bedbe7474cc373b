//! The settings model, its defaults, and layering.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub s3: S3Config,
    #[serde(default)]
    pub backends: BackendsConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub rebalance: RebalanceConfig,
    #[serde(default)]
    pub sse: SseConfig,
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    #[serde(default)]
    pub download: DownloadConfig,
    #[serde(default)]
    pub get_batch: GetBatchConfig,
    /// Cloud buckets attached at start-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<AttachConfig>,
    /// Remote AIS clusters attached at start-up (AIS's `backend.ais`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteConfig>,
}

/// Access to the providers behind remote buckets, and how hard Trove tries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendsConfig {
    /// Bound of one backend call (time to the first byte; idle gap inside a stream).
    pub timeout_secs: f64,
    pub connect_timeout_secs: f64,
    /// Attempts in all for a retryable failure (5xx, throttling, connection errors).
    pub max_attempts: u32,
    pub aws: Option<AwsConfig>,
    pub gcp: Option<GcpConfig>,
    pub azure: Option<AzureConfig>,
}

impl Default for BackendsConfig {
    fn default() -> Self {
        BackendsConfig {
            timeout_secs: 30.0,
            connect_timeout_secs: 5.0,
            max_attempts: 3,
            aws: None,
            gcp: None,
            azure: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AwsConfig {
    /// Any S3-compatible origin; `AWS_ENDPOINT_URL` or AWS itself when unset.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Without these the AWS SDK's chain is used (`AWS_*` environment, profiles, instance roles).
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub path_style: bool,
    /// An S3 request for an unknown bucket name checks `s3://NAME` and attaches it.
    pub auto_attach: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GcpConfig {
    /// JSON API endpoint (an emulator); `STORAGE_EMULATOR_HOST` or Google when unset.
    pub endpoint: Option<String>,
    /// Service-account JSON; `GOOGLE_APPLICATION_CREDENTIALS` when unset. Anonymous with an emulator endpoint.
    pub credentials_file: Option<PathBuf>,
    pub auto_attach: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AzureConfig {
    pub account: Option<String>,
    pub key: Option<String>,
    pub sas: Option<String>,
    pub connection_string: Option<String>,
    /// Blob service URL (an emulator: `http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: Option<String>,
    pub auto_attach: bool,
}

/// How cold objects are fetched into the cache, and how much of the disks the node may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Objects larger than this (bytes) are fetched with parallel ranged reads.
    pub parallel_fetch_threshold: u64,
    pub parallel_fetch_chunk: u64,
    pub parallel_fetch_workers: usize,
    /// Bytes of objects the node may hold; 0 = the mountpaths' filesystems (their used share counts).
    pub capacity: u64,
    /// Eviction starts above this share (percent) of the capacity ...
    pub highwm: u8,
    /// ... and stops at this one.
    pub lowwm: u8,
    /// Above this share, PUTs and cold GETs fail with 507 InsufficientStorage.
    pub out_of_space: u8,
    /// How often capacity is checked (seconds).
    pub check_interval_secs: f64,
    /// How often access times are written to disk (seconds).
    pub atime_flush_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            parallel_fetch_threshold: 64 << 20,
            parallel_fetch_chunk: 16 << 20,
            parallel_fetch_workers: 4,
            capacity: 0,
            highwm: 90,
            lowwm: 75,
            out_of_space: 95,
            check_interval_secs: 1.0,
            atime_flush_secs: 60,
        }
    }
}

/// Trace export.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL (`http://collector:4318`); traces go to `<url>/v1/traces`. Unset: the
    /// standard `OTEL_EXPORTER_OTLP_ENDPOINT` variable, else no export.
    pub otlp_endpoint: Option<String>,
}

/// Prefetch and evict jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    /// How long a finished job stays queryable.
    pub keep_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { keep_secs: 3600 }
    }
}

/// How a node moves objects after a membership change, and repairs mirrored copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RebalanceConfig {
    /// Bytes per second this node sends to other nodes while rebalancing or repairing (0: unthrottled).
    pub rate_bytes_per_sec: u64,
    /// Objects in flight at once.
    pub parallel: usize,
    /// Seconds the Raft leader waits on an unreachable active node before it marks it `down` (its objects
    /// then belong to the others, and mirrored copies are repaired there).
    pub down_after_secs: u64,
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        RebalanceConfig { rate_bytes_per_sec: 0, parallel: 4, down_after_secs: 10 }
    }
}

/// `[[remotes]]`: a remote AIS cluster (AIStore or Trove) attached under an alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteConfig {
    pub alias: String,
    /// URLs of its nodes (`http(s)://host:port`); any one that answers will do.
    pub urls: Vec<String>,
    /// A bearer token, for clusters that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `[[buckets]]`: a cloud bucket exposed under an S3 name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachConfig {
    /// The S3 bucket name clients use.
    pub name: String,
    /// `s3://origin`, `gs://origin` or `az://container`.
    pub source: String,
    /// Bucket properties with AIS names, e.g. `{ versioning = { validate_warm_get = true } }`.
    #[serde(default)]
    pub props: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Stable node id; generated once and kept in the first mountpath when unset.
    pub node_id: Option<String>,
    /// How long in-flight requests may run after SIGINT/SIGTERM before the process exits.
    pub shutdown_grace_secs: u64,
    /// Worker threads, each with its own single-threaded runtime; one per core when unset.
    pub threads: Option<usize>,
    /// A client must send a whole request head within this time once it has begun.
    pub header_read_timeout_secs: f64,
    /// A keep-alive connection with no request is closed after this time.
    pub idle_timeout_secs: f64,
    /// A request body that sends nothing, or a response the client does not read, for this long ends the
    /// request (400 RequestTimeout) or the connection.
    pub body_timeout_secs: f64,
    /// Connections held open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Plain signed object reads are answered below hyper, page-cached bodies with `sendfile` (off: every
    /// request goes through hyper, for comparison).
    pub direct_reads: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node_id: None,
            shutdown_grace_secs: 30,
            threads: None,
            header_read_timeout_secs: 30.0,
            idle_timeout_secs: 60.0,
            body_timeout_secs: 60.0,
            max_connections: 4096,
            direct_reads: true,
        }
    }
}

/// `[cluster]`: how this node finds and proves membership of its cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// The URL of any node of the cluster to join (`--join`); unset, the node founds (or stays in) its own.
    pub join: Option<String>,
    /// The secret that authenticates calls between nodes (`TROVE_CLUSTER_SECRET`, `--cluster-secret`);
    /// generated on the first node when unset, and required to join.
    pub secret: Option<String>,
    /// The URL other nodes and clients reach this node at (`--advertise`); `http://<listen>` when unset.
    pub advertise: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// One directory per disk. Objects are spread over them by HRW.
    pub mountpaths: Vec<PathBuf>,
    /// fsync data and directories on every commit. Off trades crash safety of recent writes for speed.
    pub fsync: bool,
    /// With fsync: concurrent writes on a mountpath share filesystem syncs (`syncfs`: one for their data, one
    /// for their renames) instead of an fsync of each file and directory. The same guarantee, fewer syncs
    /// under load; every other writer on that filesystem pays for the dirty data it leaves there too.
    pub group_commit: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { mountpaths: vec![PathBuf::from("./trove-data")], fsync: true, group_commit: false }
    }
}

/// One S3 user: the credential and the owner identity reported in ListBuckets and Owner fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub access_key: String,
    pub secret_key: String,
    /// Canonical owner id; defaults to the access key.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    /// E-mail address ACL grants may name this user by (`emailAddress="..."`).
    #[serde(default)]
    pub email: Option<String>,
}

/// Bucket lifecycle rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleConfig {
    /// How long a lifecycle "day" is, in seconds: 86400; shorter only to test rules (as RGW's
    /// `rgw_lc_debug_interval`).
    pub day_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig { day_secs: 86_400 }
    }
}

/// GetBatch (`/v1/ml/moss`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetBatchConfig {
    /// Missing entries one batch with `coer` tolerates before it fails (AIS's `get_batch.max_soft_errs`).
    pub max_soft_errs: usize,
}

impl Default for GetBatchConfig {
    fn default() -> Self {
        GetBatchConfig { max_soft_errs: 6 }
    }
}

/// Where download jobs may fetch from. A download is a request the cluster makes on a client's behalf, so by
/// default it reaches only public addresses: never the cluster's own network, loopback, link-local or
/// cloud metadata addresses, whatever name points there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownloadConfig {
    /// Hosts downloads may reach whatever they resolve to: names (`data.example.com`), subdomain patterns
    /// (`*.example.com`) or IP addresses (`10.0.0.7`).
    pub allow_hosts: Vec<String>,
    /// Whether hosts not in `allow_hosts` may be reached when every address they resolve to is public.
    pub allow_public: bool,
    /// Seconds one file's GET may take when the job sets no `timeout`.
    pub timeout_secs: u64,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig { allow_hosts: Vec::new(), allow_public: true, timeout_secs: 3600 }
    }
}

/// Server-side encryption keys (S3's SSE-S3 and SSE-KMS; SSE-C keys come with each request and are never kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SseConfig {
    /// SSE-S3 master key: 32 bytes, base64. Unset: derived from the cluster secret (every node of a cluster
    /// shares it, so objects stay readable wherever they move).
    pub master_key: Option<String>,
    /// SSE-KMS keys by key id (`SSEKMSKeyId`): 32 bytes each, base64. A request naming another id is refused.
    pub kms_keys: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub users: Vec<User>,
    /// Root credential (`TROVE_ACCESS_KEY` / `TROVE_SECRET_KEY`); generated and persisted when unset.
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Bearer token of the native API (`TROVE_ADMIN_TOKEN`); generated and persisted when unset.
    pub admin_token: Option<String>,
    /// Serve `/v1/metrics` without the admin token (the default, as Prometheus scrapers expect).
    pub public_metrics: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { users: Vec::new(), access_key: None, secret_key: None, admin_token: None, public_metrics: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// Enables virtual-hosted-style addressing: `bucket.<domain>`.
    pub domain: Option<String>,
    pub region: String,
    /// Accept SigV2-signed requests (checked as strictly as S3 does); SigV4 is always accepted.
    pub sigv2: bool,
    /// Server access logs (bucket logging): how long a node gathers a bucket's records before it writes them
    /// as one log object, in seconds.
    pub log_roll_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config { domain: None, region: "us-east-1".to_owned(), sigv2: true, log_roll_secs: 300 }
    }
}

/// Shortest secret key Trove accepts (S3's are 40 characters).
pub const MIN_SECRET_KEY_LEN: usize = 8;
/// Shortest admin token Trove accepts.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// Shortest cluster secret Trove accepts.
pub const MIN_CLUSTER_SECRET_LEN: usize = 16;

/// Values given as command-line flags; `None`/empty means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub mountpaths: Vec<PathBuf>,
    pub node_id: Option<String>,
    pub join: Option<String>,
    pub cluster_secret: Option<String>,
    pub advertise: Option<String>,
}

impl Config {
    /// Layers defaults, the TOML file (if any), `TROVE_*` variables and `flags`, then validates.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config> {
        Self::from_figment(Self::figment(file, flags)?)
    }

    fn figment(file: Option<&Path>, flags: &Overrides) -> Result<Figment> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::MissingFile(path.to_owned()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("TROVE_").map(|key| {
            let key = key.as_str().to_ascii_lowercase();
            match key.as_str() {
                "access_key" | "secret_key" | "admin_token" => format!("auth.{key}").into(),
                "cluster_secret" => "cluster.secret".into(),
                other => other.replace("__", ".").into(),
            }
        }));
        if let Some(listen) = flags.listen {
            fig = fig.merge(("server.listen", listen));
        }
        if !flags.mountpaths.is_empty() {
            fig = fig.merge(("storage.mountpaths", &flags.mountpaths));
        }
        if let Some(id) = &flags.node_id {
            fig = fig.merge(("server.node_id", id));
        }
        for (key, v) in [
            ("cluster.join", &flags.join),
            ("cluster.secret", &flags.cluster_secret),
            ("cluster.advertise", &flags.advertise),
        ] {
            if let Some(v) = v {
                fig = fig.merge((key, v));
            }
        }
        Ok(fig)
    }

    fn from_figment(fig: Figment) -> Result<Config> {
        let cfg: Config = fig.extract()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.rebalance.parallel == 0 || self.rebalance.down_after_secs == 0 {
            return Err(Error::Setting {
                key: "rebalance",
                reason: "parallel and down_after_secs must be at least 1".into(),
            });
        }
        if self.storage.mountpaths.is_empty() {
            return Err(Error::Setting {
                key: "storage.mountpaths",
                reason: "at least one mountpath is required".into(),
            });
        }
        let mut seen = HashSet::new();
        for u in &self.auth.users {
            if u.access_key.is_empty() || u.secret_key.chars().count() < MIN_SECRET_KEY_LEN {
                return Err(Error::Setting {
                    key: "auth.users",
                    reason: format!(
                        "user {:?}: access_key must not be empty and secret_key must have at least \
                         {MIN_SECRET_KEY_LEN} characters",
                        u.access_key
                    ),
                });
            }
            if !seen.insert(&u.access_key) {
                return Err(Error::Setting {
                    key: "auth.users",
                    reason: format!("access key {:?} is listed twice", u.access_key),
                });
            }
        }
        if self.auth.access_key.is_some() != self.auth.secret_key.is_some() {
            return Err(Error::Setting {
                key: "auth.access_key",
                reason: "TROVE_ACCESS_KEY and TROVE_SECRET_KEY must be set together".into(),
            });
        }
        if let Some(ak) = &self.auth.access_key {
            if ak.is_empty() {
                return Err(Error::Setting { key: "auth.access_key", reason: "TROVE_ACCESS_KEY is empty".into() });
            }
        }
        if let Some(sk) = &self.auth.secret_key {
            if sk.chars().count() < MIN_SECRET_KEY_LEN {
                return Err(Error::Setting {
                    key: "auth.secret_key",
                    reason: format!("TROVE_SECRET_KEY must have at least {MIN_SECRET_KEY_LEN} characters"),
                });
            }
        }
        if let Some(t) = &self.auth.admin_token {
            if t.chars().count() < MIN_ADMIN_TOKEN_LEN {
                return Err(Error::Setting {
                    key: "auth.admin_token",
                    reason: format!(
                        "TROVE_ADMIN_TOKEN must have at least {MIN_ADMIN_TOKEN_LEN} characters (it is {}); unset it \
                         to have one generated",
                        if t.is_empty() { "empty" } else { "too short" }
                    ),
                });
            }
        }
        if let Some(t) = &self.cluster.secret {
            if t.chars().count() < MIN_CLUSTER_SECRET_LEN {
                return Err(Error::Setting {
                    key: "cluster.secret",
                    reason: format!(
                        "TROVE_CLUSTER_SECRET must have at least {MIN_CLUSTER_SECRET_LEN} characters (it is {})",
                        if t.is_empty() { "empty" } else { "too short" }
                    ),
                });
            }
        }
        for (key, url) in [("cluster.join", &self.cluster.join), ("cluster.advertise", &self.cluster.advertise)] {
            if let Some(u) = url {
                let ok = u
                    .strip_prefix("http://")
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
                if !ok {
                    return Err(Error::Setting { key, reason: format!("{u:?} is not an http:// URL of a node") });
                }
            }
        }
        // A node told to join itself (the first pod of a StatefulSet) founds the cluster and may generate it.
        let joins_itself = self.cluster.join.is_some() && self.cluster.join == self.cluster.advertise;
        if self.cluster.join.is_some() && self.cluster.secret.is_none() && !joins_itself {
            return Err(Error::Setting {
                key: "cluster.secret",
                reason: "joining a cluster needs its secret: set TROVE_CLUSTER_SECRET or --cluster-secret (the first \
                         node printed it, and keeps it in its data directory)"
                    .into(),
            });
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let s = &self.server;
        for (key, v) in [
            ("server.header_read_timeout_secs", s.header_read_timeout_secs),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            ("server.body_timeout_secs", s.body_timeout_secs),
        ] {
            if !positive(v) || v > 86_400.0 {
                return Err(Error::Setting { key, reason: "must be between 0 and 86400 seconds".into() });
            }
        }
        if s.max_connections == 0 {
            return Err(Error::Setting { key: "server.max_connections", reason: "must be at least 1".into() });
        }
        if !positive(self.backends.timeout_secs) || !positive(self.backends.connect_timeout_secs) {
            return Err(Error::Setting { key: "backends.timeout_secs", reason: "timeouts must be positive".into() });
        }
        if self.backends.max_attempts == 0 {
            return Err(Error::Setting { key: "backends.max_attempts", reason: "must be at least 1".into() });
        }
        if self.cache.parallel_fetch_chunk == 0 || self.cache.parallel_fetch_workers == 0 {
            return Err(Error::Setting {
                key: "cache.parallel_fetch_chunk",
                reason: "chunk and workers must be at least 1".into(),
            });
        }
        let c = &self.cache;
        if !(c.lowwm < c.highwm && c.highwm <= c.out_of_space && c.out_of_space <= 100) {
            return Err(Error::Setting {
                key: "cache.highwm",
                reason: "watermarks must satisfy lowwm < highwm <= out_of_space <= 100".into(),
            });
        }
        if !positive(c.check_interval_secs) {
            return Err(Error::Setting { key: "cache.check_interval_secs", reason: "must be positive".into() });
        }
        if self.server.threads == Some(0) {
            return Err(Error::Setting { key: "server.threads", reason: "must be at least 1".into() });
        }
        if let Some(d) = &self.s3.domain {
            if d.is_empty() || d.contains('/') {
                return Err(Error::Setting { key: "s3.domain", reason: format!("{d:?} is not a host name") });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures must return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    fn load(file: Option<&str>, flags: &Overrides) -> Result<Config> {
        Config::load(file.map(Path::new), flags)
    }

    #[test]
    fn defaults_without_anything() {
        Jail::expect_with(|_| {
            let c = load(None, &Overrides::default()).unwrap();
            assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(c.storage.mountpaths, vec![PathBuf::from("./trove-data")]);
            assert!(c.storage.fsync);
            assert_eq!(c.s3.region, "us-east-1");
            Ok(())
        });
    }

    #[test]
    fn layering_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "t.toml",
                r#"
                [server]
                listen = "127.0.0.1:9000"
                node_id = "from-file"
                [storage]
                mountpaths = ["/a", "/b"]
                [s3]
                region = "eu-west-1"
                [[auth.users]]
                access_key = "AK"
                secret_key = "SK-0123456789"
                id = "owner"
                display_name = "Owner"
                "#,
            )?;
            // file beats defaults
            let c = load(Some("t.toml"), &Overrides::default()).unwrap();
            assert_eq!(c.server.listen.port(), 9000);
            assert_eq!(c.storage.mountpaths.len(), 2);
            assert_eq!(c.auth.users[0].display_name.as_deref(), Some("Owner"));
            // env beats file
            jail.set_env("TROVE_SERVER__LISTEN", "127.0.0.1:9100");
            jail.set_env("TROVE_S3__REGION", "ap-south-1");
            jail.set_env("TROVE_ACCESS_KEY", "root");
            jail.set_env("TROVE_SECRET_KEY", "rootsecret");
            let c = load(Some("t.toml"), &Overrides::default()).unwrap();
            assert_eq!(c.server.listen.port(), 9100);
            assert_eq!(c.s3.region, "ap-south-1");
            assert_eq!(c.auth.access_key.as_deref(), Some("root"));
            // flags beat env
            let flags = Overrides {
                listen: Some("127.0.0.1:9200".parse().unwrap()),
                mountpaths: vec!["/c".into()],
                node_id: Some("flag".into()),
                ..Default::default()
            };
            let c = load(Some("t.toml"), &flags).unwrap();
            assert_eq!(c.server.listen.port(), 9200);
            assert_eq!(c.storage.mountpaths, vec![PathBuf::from("/c")]);
            assert_eq!(c.server.node_id.as_deref(), Some("flag"));
            Ok(())
        });
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server\nlisten = 1")?;
            let e = load(Some("bad.toml"), &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains("bad.toml"), "{e}");
            jail.create_file("badval.toml", "[server]\nlisten = \"nope\"")?;
            let e = load(Some("badval.toml"), &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains("listen"), "{e}");
            let e = load(Some("missing.toml"), &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains("missing.toml"), "{e}");
            jail.set_env("TROVE_ACCESS_KEY", "only-half");
            let r = load(None, &Overrides::default());
            assert!(r.is_err(), "{r:?}");
            Ok(())
        });
    }

    #[test]
    fn cluster_settings_are_checked() {
        figment::Jail::expect_with(|jail| {
            let flags = Overrides { join: Some("http://10.0.0.1:8080".into()), ..Default::default() };
            let e = load(None, &flags).unwrap_err().to_string();
            assert!(e.contains("cluster.secret"), "{e}");
            jail.set_env("TROVE_CLUSTER_SECRET", "short");
            assert!(load(None, &flags).unwrap_err().to_string().contains("at least"));
            jail.set_env("TROVE_CLUSTER_SECRET", "a-long-enough-cluster-secret");
            let c = load(None, &flags).unwrap();
            assert_eq!(c.cluster.secret.as_deref(), Some("a-long-enough-cluster-secret"));
            let bad = Overrides { join: Some("10.0.0.1:8080".into()), ..Default::default() };
            assert!(load(None, &bad).unwrap_err().to_string().contains("cluster.join"));
            Ok(())
        });
    }

    #[test]
    fn empty_and_short_secrets_rejected() {
        Jail::expect_with(|jail| {
            for (k, v) in [("TROVE_ADMIN_TOKEN", ""), ("TROVE_ADMIN_TOKEN", "short")] {
                jail.set_env(k, v);
                let e = load(None, &Overrides::default()).unwrap_err().to_string();
                assert!(e.contains("auth.admin_token"), "{e}");
            }
            jail.set_env("TROVE_ADMIN_TOKEN", "a-long-enough-admin-token");
            assert!(load(None, &Overrides::default()).is_ok());
            jail.set_env("TROVE_ACCESS_KEY", "root");
            jail.set_env("TROVE_SECRET_KEY", "");
            let e = load(None, &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains("auth.secret_key"), "{e}");
            jail.set_env("TROVE_SECRET_KEY", "root-secret");
            jail.create_file("u.toml", "[[auth.users]]\naccess_key='a'\nsecret_key='abc'\n")?;
            let e = load(Some("u.toml"), &Overrides::default()).unwrap_err().to_string();
            assert!(e.contains("auth.users"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn duplicate_users_rejected() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "d.toml",
                "[[auth.users]]\naccess_key='a'\nsecret_key='bbbbbbbbbb'\n[[auth.users]]\naccess_key='a'\nsecret_key='cccccccccc'\n",
            )?;
            assert!(load(Some("d.toml"), &Overrides::default()).is_err());
            Ok(())
        });
    }
}
