//! The one shared handle of a node: storage, bucket registry, users. `Send + Sync`, free of runtime handles,
//! so any number of runtimes can share it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use trove_cache::{FetchConfig, ReadThrough, Store};

use crate::capacity::Capacity;
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::providers::Providers;
use trove_cluster::Cluster;
use trove_config::Config;
use trove_namespace::Registry;

/// An S3 user: credential plus the owner identity S3 reports.
#[derive(Debug, Clone)]
pub struct User {
    pub secret_key: String,
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
}

pub struct AppState {
    pub store: Arc<Store>,
    /// The bucket registry as this node has applied the cluster's log; written only through `cluster`.
    pub registry: Arc<Registry>,
    /// By access key.
    pub users: HashMap<String, User>,
    pub admin_token: String,
    pub region: String,
    pub node_id: String,
    /// This node's part of the cluster: the replicated map, metadata writes, membership.
    pub cluster: Arc<Cluster>,
    /// When AIS objects were deleted here: an older copy another node hands over (a rebalance that read it
    /// before the delete, a node that was down) is refused, so a delete is never undone by a late move.
    pub tombstones: crate::data::Tombstones,
    /// Copies other nodes sent for a mirrored write, received and synced, waiting for the writer's commit.
    pub pending_replicas: crate::data::copies::PendingReplicas,
    /// Talks to remote AIS clusters (their maps; next, their data).
    pub ais_client: trove_backends::ais::AisClient,
    /// Rebalance and repair settings (`[rebalance]`).
    pub rebalance: trove_config::RebalanceConfig,
    /// Asks for a rebalance walk outside a map change (a mirrored write that could not keep every copy, an
    /// operator's start), with the job id to run it under when one was chosen.
    pub walk_wanted: tokio::sync::Notify,
    pub walk_id: std::sync::Mutex<Option<String>>,
    /// Incarnations of buckets this node is deleting: no write lands in them meanwhile.
    pub sealed_here: std::sync::Mutex<std::collections::HashSet<u64>>,
    /// Set once the node has founded or joined its cluster (`/v1/health` answers 503 before).
    pub ready: std::sync::atomic::AtomicBool,
    /// Passes requests for objects other nodes own on to them.
    pub forwarder: crate::cluster::forward::Forwarder,
    /// Canonical id of the root user, the owner of attached cloud buckets.
    pub root_id: String,
    pub providers: Providers,
    pub readthrough: Arc<ReadThrough>,
    pub metrics: Metrics,
    pub jobs: Jobs,
    pub capacity: Capacity,
    pub public_metrics: bool,
    /// Whether SigV2-signed requests are accepted (`[s3] sigv2`).
    pub sigv2: bool,
    /// Server access log records waiting for delivery (S3 bucket logging), and how long they wait
    /// (`[s3] log_roll_secs`).
    pub server_logs: crate::s3::log_delivery::Logs,
    /// Download jobs' parts on this node, and the hosts downloads may reach (`[download]`).
    pub downloads: crate::jobs::download::Downloads,
    pub download_policy: crate::jobs::download::guard::HostPolicy,
    /// Seconds one file of a download may take when its job sets no timeout.
    pub download_timeout_secs: u64,
    /// Missing entries a GetBatch with `coer` tolerates (`[get_batch] max_soft_errs`).
    pub get_batch_max_soft_errs: usize,
    /// Tables of contents of TAR shards read by archpath.
    pub shards: crate::data::archive::Index,
    pub log_roll_secs: u64,
    /// Key-encryption keys of server-side encryption (SSE-S3, SSE-KMS).
    pub sse: crate::data::sse::Keys,
    /// Length of a lifecycle "day" (`lifecycle.day_secs`).
    pub lifecycle_day_secs: u64,
    /// Names recently found on no auto-attach provider, with the time of the check (no HEAD storm on typos).
    pub auto_attach_misses: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    /// Auto-attach checks allowed per second.
    pub auto_attach_rate: crate::rate_limit::RateLimit,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("node_id", &self.node_id).field("providers", &self.providers).finish()
    }
}

pub type SharedState = Arc<AppState>;

/// Credentials generated on first start when none are configured, kept in the data directory (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratedSecrets {
    pub access_key: String,
    pub secret_key: String,
    pub admin_token: String,
    pub node_id: String,
    /// Authenticates calls between the nodes of this node's cluster (absent in files written before clusters).
    #[serde(default)]
    pub cluster_secret: Option<String>,
}

/// What a cluster shares with a node that joins it: the credentials its nodes generated (configured ones are
/// each node's own configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shared {
    access_key: String,
    secret_key: String,
    admin_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] trove_cache::Error),
    #[error(transparent)]
    Registry(#[from] trove_namespace::Error),
    #[error("{}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: unreadable (not the JSON Trove wrote)", path.display())]
    Secrets { path: PathBuf, source: serde_json::Error },
    #[error(transparent)]
    Cluster(#[from] trove_cluster::Error),
    #[error(transparent)]
    Backend(#[from] trove_backends::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// What start-up generated and must tell the operator once.
pub struct Generated {
    pub credential: Option<(String, String)>,
    pub admin_token: Option<String>,
    pub cluster_secret: Option<String>,
}

impl AppState {
    /// Opens the node's data directory and starts its part of the cluster on `rt` (Raft lives there); the
    /// node then founds or joins its cluster with [`AppState::enter_cluster`] once it serves HTTP. A node about
    /// to join first asks the cluster for its shared credentials, so it serves with them from the start.
    pub fn open(
        cfg: &Config,
        providers: Providers,
        listen: std::net::SocketAddr,
        rt: &tokio::runtime::Runtime,
    ) -> Result<(AppState, Generated), StartError> {
        let mut store = Store::open(&cfg.storage.mountpaths, cfg.storage.fsync)?;
        store.set_group_commit(cfg.storage.group_commit)?;
        let store = Arc::new(store);
        let shards = crate::data::archive::Index::on_disk(store.mountpaths().iter().map(|m| m.root.as_path()));
        let sys = store.mountpaths()[0].root.join(".trove");
        std::fs::create_dir_all(&sys).map_err(|source| StartError::Io { path: sys.clone(), source })?;
        let registry = Arc::new(Registry::open(sys.join("bmd.json"))?);
        let tombstones_path = sys.join("tombstones.log");
        let tombstones = crate::data::Tombstones::open(&tombstones_path, cfg.storage.fsync)
            .map_err(|source| StartError::Io { path: tombstones_path, source })?;
        let secrets_path = sys.join("secrets.json");
        let (mut secrets, fresh) = load_or_generate_secrets(&secrets_path)?;
        let raft_dir = sys.join("raft");
        let url = cfg.cluster.advertise.clone().unwrap_or_else(|| format!("http://{listen}"));
        let joining = join_target(cfg, &url).filter(|_| !raft_dir.join("state").join("sm.json").exists());
        let mut new_cluster_secret = None;
        match (&cfg.cluster.secret, &joining) {
            (Some(_), _) => {}
            (None, Some(_)) => unreachable!("config validation requires the secret to join"),
            (None, None) if secrets.cluster_secret.is_none() => {
                let secret = random_string(40, ANY);
                secrets.cluster_secret = Some(secret.clone());
                new_cluster_secret = Some(secret);
                save_secrets(&secrets_path, &secrets)?;
            }
            (None, None) => {}
        }
        let cluster_secret = cfg.cluster.secret.clone().or_else(|| secrets.cluster_secret.clone()).unwrap_or_default();
        let mut hello_uuid = None;
        if let Some(url) = &joining {
            // The cluster's generated credentials replace this node's own, unless configured here.
            let hello = rt.block_on(trove_cluster::hello(url, &cluster_secret))?;
            hello_uuid = Some(hello.uuid.clone());
            if let Ok(shared) = serde_json::from_value::<Shared>(hello.shared) {
                secrets.access_key = shared.access_key;
                secrets.secret_key = shared.secret_key;
                secrets.admin_token = shared.admin_token;
                save_secrets(&secrets_path, &secrets)?;
            }
        }
        let fresh = fresh && joining.is_none();
        let joining_uuid = hello_uuid.unwrap_or_default();

        let mut users = HashMap::new();
        let (root_ak, root_sk) = match (&cfg.auth.access_key, &cfg.auth.secret_key) {
            (Some(ak), Some(sk)) => (ak.clone(), sk.clone()),
            _ => (secrets.access_key.clone(), secrets.secret_key.clone()),
        };
        let configured_root = cfg.auth.access_key.is_some();
        let root_key = root_ak.clone();
        users.insert(
            root_ak.clone(),
            User { secret_key: root_sk.clone(), id: canonical_id(&root_ak), display_name: "trove".into(), email: None },
        );
        for u in &cfg.auth.users {
            let id = u.id.clone().unwrap_or_else(|| canonical_id(&u.access_key));
            let display_name = u.display_name.clone().unwrap_or_else(|| id.clone());
            let user = User { secret_key: u.secret_key.clone(), id, display_name, email: u.email.clone() };
            users.insert(u.access_key.clone(), user);
        }
        let admin_token = cfg.auth.admin_token.clone().unwrap_or_else(|| secrets.admin_token.clone());
        let generated = Generated {
            credential: (fresh && !configured_root).then_some((root_ak, root_sk)),
            admin_token: (fresh && cfg.auth.admin_token.is_none()).then(|| admin_token.clone()),
            cluster_secret: new_cluster_secret,
        };
        let node_id = cfg.server.node_id.clone().unwrap_or_else(|| secrets.node_id.clone());
        let capacity = if cfg.cache.capacity > 0 {
            cfg.cache.capacity
        } else {
            store.mountpaths().iter().filter_map(|m| crate::capacity::filesystem(&m.root)).map(|(t, _)| t).sum()
        };
        let shared = Shared {
            access_key: secrets.access_key.clone(),
            secret_key: secrets.secret_key.clone(),
            admin_token: secrets.admin_token.clone(),
        };
        let fetch = FetchConfig {
            parallel_threshold: cfg.cache.parallel_fetch_threshold,
            chunk_size: cfg.cache.parallel_fetch_chunk,
            workers: cfg.cache.parallel_fetch_workers,
        };
        let readthrough = Arc::new(ReadThrough::new(store.clone(), fetch));
        let on_remove: trove_cluster::RemoveHook = {
            let (store, registry, readthrough) = (store.clone(), registry.clone(), readthrough.clone());
            Arc::new(move |gone| crate::data::on_bucket_removed(&store, &registry, &readthrough, gone))
        };
        let sse = crate::data::sse::Keys::new(&cfg.sse, &cluster_secret).map_err(StartError::Config)?;
        let opts = trove_cluster::StartOpts {
            dir: raft_dir,
            daemon_id: node_id.clone(),
            url,
            capacity,
            secret: cluster_secret,
            shared: serde_json::to_value(&shared).unwrap_or_default(),
            on_remove: Some(on_remove),
            uuid: joining_uuid,
        };
        let cluster = rt.block_on(Cluster::open(opts, registry.clone()))?;
        let root_id = users.get(&root_key).map(|u| u.id.clone()).unwrap_or(root_key);
        Ok((
            AppState {
                store,
                registry,
                users,
                admin_token,
                region: cfg.s3.region.clone(),
                node_id,
                cluster,
                forwarder: Default::default(),
                ready: Default::default(),
                sealed_here: Default::default(),
                tombstones,
                pending_replicas: Default::default(),
                rebalance: cfg.rebalance.clone(),
                ais_client: trove_backends::ais::AisClient::new(std::time::Duration::from_secs_f64(
                    cfg.backends.timeout_secs,
                ))?,
                walk_wanted: Default::default(),
                walk_id: Default::default(),
                root_id,
                providers,
                readthrough,
                metrics: Metrics::default(),
                jobs: Jobs::new(std::time::Duration::from_secs(cfg.jobs.keep_secs)),
                capacity: Capacity::new(&cfg.cache),
                public_metrics: cfg.auth.public_metrics,
                sigv2: cfg.s3.sigv2,
                server_logs: Default::default(),
                downloads: Default::default(),
                download_policy: crate::jobs::download::guard::HostPolicy::new(&cfg.download),
                download_timeout_secs: cfg.download.timeout_secs,
                get_batch_max_soft_errs: cfg.get_batch.max_soft_errs,
                shards,
                log_roll_secs: cfg.s3.log_roll_secs.max(1),
                sse,
                lifecycle_day_secs: cfg.lifecycle.day_secs,
                auto_attach_misses: Default::default(),
                auto_attach_rate: crate::rate_limit::RateLimit::new(10),
            },
            generated,
        ))
    }

    /// Founds this node's cluster (a single node, or an existing data directory upgrading in place, keeps
    /// its identity) or joins the one behind `join`; then brings registries written before canonical ids up
    /// to date. Runs once the node serves HTTP: joining needs the leader to reach it.
    pub async fn enter_cluster(self: &Arc<Self>, cfg: &Config) -> Result<(), StartError> {
        let sys = self.store.mountpaths()[0].root.join(".trove");
        match join_target(cfg, self.cluster.url()).as_deref() {
            Some(url) => self.cluster.join(url).await?,
            None => {
                let identity = load_or_create_identity(&sys.join("cluster.json"))?;
                self.cluster.found(&identity.uuid, &identity.creation_time).await?;
            }
        }
        adopt_canonical_ids(self).await
    }

    /// Starts a rebalance walk on this node now (under job id `id`, or one of its own).
    pub fn request_walk(&self, id: Option<String>) {
        *self.walk_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
        self.walk_wanted.notify_one();
    }

    /// Notes that `keys` of an AIS bucket were deleted here now (blocking: the tombstones are synced). A node
    /// alone in its map skips it: no other node holds a copy that could come back, and a delete costs no
    /// extra sync.
    pub fn remember_deletes(&self, bck: &trove_namespace::Bck, keys: &[String]) {
        if self.cluster.map().smap.nodes.len() <= 1 {
            return;
        }
        if let Err(e) = self.tombstones.record(bck, keys, crate::data::now_ms()) {
            tracing::error!(bucket = %bck, error = %e, "could not record deletes: a node that was away may bring them back");
        }
    }

    /// Which node owns an object under the committed cluster map.
    pub fn owner(&self, bck: &trove_namespace::Bck, key: &str) -> crate::cluster::Owner {
        crate::cluster::owner(&self.cluster.map(), &self.node_id, bck, key)
    }

    pub fn user(&self, access_key: &str) -> Option<&User> {
        self.users.get(access_key)
    }
}

/// The node to join, unless it is this node itself (every pod of a StatefulSet can be told to join the first
/// one, which then founds the cluster).
fn join_target(cfg: &Config, own_url: &str) -> Option<String> {
    cfg.cluster.join.clone().filter(|j| j.trim_end_matches('/') != own_url.trim_end_matches('/'))
}

/// The canonical user id S3 reports in Owner fields for a user configured without one: 64 hex digits derived
/// from the access key, so that no response ever names an access key.
pub fn canonical_id(access_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("trove-canonical-user:{access_key}").as_bytes()))
}

/// Registries written before canonical ids existed name owners by access key: they become the users' ids.
async fn adopt_canonical_ids(state: &Arc<AppState>) -> Result<(), StartError> {
    let snap = state.registry.snapshot();
    let stale = |owner: &str| state.users.get(owner).is_some_and(|u| u.id != owner);
    if !snap.buckets.values().any(|e| stale(&e.owner)) {
        return Ok(());
    }
    let renames = state.users.iter().filter(|(ak, u)| *ak != &u.id).map(|(ak, u)| (ak.clone(), u.id.clone())).collect();
    let change = trove_namespace::Change::RenameOwners { renames };
    state.cluster.propose(trove_cluster::Command::Bucket { change: Box::new(change) }).await?;
    Ok(())
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    (0..len).map(|_| alphabet[rand::random_range(0..alphabet.len())] as char).collect()
}

/// A cluster's identity as AIS reports it in the cluster map: generated on the first start, kept in
/// `.trove/cluster.json`, so remote clusters that attached this one by UUID keep finding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub uuid: String,
    /// RFC 3339.
    pub creation_time: String,
}

fn load_or_create_identity(path: &Path) -> Result<ClusterIdentity, StartError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            return serde_json::from_slice(&bytes)
                .map_err(|source| StartError::Secrets { path: path.to_owned(), source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(StartError::Io { path: path.to_owned(), source }),
    }
    let now = time::OffsetDateTime::now_utc();
    let id = ClusterIdentity {
        uuid: random_string(9, ANY),
        creation_time: now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    };
    let bytes =
        serde_json::to_vec_pretty(&id).map_err(|source| StartError::Secrets { path: path.to_owned(), source })?;
    let io = |source| StartError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(id)
}

fn load_or_generate_secrets(path: &Path) -> Result<(GeneratedSecrets, bool), StartError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let s = serde_json::from_slice(&bytes)
                .map_err(|source| StartError::Secrets { path: path.to_owned(), source })?;
            return Ok((s, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(StartError::Io { path: path.to_owned(), source }),
    }
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let s = GeneratedSecrets {
        access_key: format!("TROVE{}", random_string(15, UPPER)),
        secret_key: random_string(40, ANY),
        admin_token: random_string(48, ANY),
        node_id: random_string(8, ANY),
        cluster_secret: None,
    };
    save_secrets(path, &s)?;
    Ok((s, true))
}

const ANY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Writes the node's secrets file (mode 0600) durably.
fn save_secrets(path: &Path, s: &GeneratedSecrets) -> Result<(), StartError> {
    let bytes = serde_json::to_vec_pretty(s).map_err(|source| StartError::Secrets { path: path.to_owned(), source })?;
    let io = |source| StartError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
