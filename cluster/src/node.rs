//! This node's membership: starting Raft on the node's disk, founding a cluster or joining one, writing
//! commands through the leader (from any node), waiting until every node has applied a write, membership
//! changes (voters grow 1 → 3 → 5, the rest are learners), and answering the other nodes' calls.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use trove_namespace::Registry;

use crate::auth::{AuthError, ClusterAuth, HEADER};
use crate::log_store::{read_json, write_durably, LogStore};
use crate::map::{ClusterMap, Command, NodeInfo, NodeState, Outcome};
use crate::network::{CallError, Network, Peers};
use crate::state_machine::{RemoveHook, StateMachine};
use crate::TypeConfig;

/// How long a metadata write may wait for a quorum before it fails (503 at the frontends).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write waits for the other nodes to apply it before returning anyway.
const APPLY_WAIT: Duration = Duration::from_secs(3);
/// How long a joining node keeps trying to reach the cluster.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No leader, or the leader cannot reach a quorum, within the bound.
    #[error("the cluster has no quorum for metadata writes (no answer within {0:?})")]
    NoQuorum(Duration),
    #[error("raft: {0}")]
    Raft(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("joining the cluster through {url}: {reason}")]
    Join { url: String, reason: String },
    #[error("no node {0:?} in the cluster map")]
    NoSuchNode(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    InvalidRemote(String),
    #[error("no remote cluster {0:?} is attached")]
    NoSuchRemote(String),
}

/// What a node needs to start its part of the cluster.
#[derive(Clone)]
pub struct StartOpts {
    /// Where the Raft log, vote, state and snapshots live (`<data>/.trove/raft`).
    pub dir: PathBuf,
    pub daemon_id: String,
    /// The URL the other nodes and clients reach this node at.
    pub url: String,
    pub capacity: u64,
    pub secret: String,
    /// What this node hands to a node about to join (the cluster's shared credentials), opaque here.
    pub shared: serde_json::Value,
    /// Drops this node's local data of a bucket incarnation that left the registry.
    pub on_remove: Option<RemoveHook>,
    /// The UUID of the cluster this node is about to join (from [`hello`]), so its calls carry it from the
    /// start; empty otherwise (the map's own is used once there is one).
    pub uuid: String,
}

/// What a cluster tells a node before it joins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub uuid: String,
    pub creation_time: String,
    pub shared: serde_json::Value,
}

/// Asks the node at `url` for its cluster's identity and shared settings, proving knowledge of `secret`. Run
/// before this node joins, so it can serve with the cluster's credentials from its first request.
pub async fn hello(url: &str, secret: &str) -> Result<Hello, Error> {
    let peers = Peers::new(Arc::new(ClusterAuth::new(secret, "")));
    let started = tokio::time::Instant::now();
    loop {
        match peers.call::<_, Hello>(url, "hello", &(), JOIN_TIMEOUT).await {
            Ok(h) => return Ok(h),
            Err(e) if e.is_unreachable() && started.elapsed() < JOIN_TIMEOUT => {
                tracing::info!(error = %e, "cluster not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(Error::Join { url: url.to_owned(), reason: e.to_string() }),
        }
    }
}

/// A node's view of the cluster's Raft state, for `cluster show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub role: String,
    pub term: u64,
    /// Daemon id of the leader, when known.
    pub leader: Option<String>,
    pub voters: Vec<String>,
    pub learners: Vec<String>,
    pub last_applied: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct JoinRequest {
    node: NodeInfo,
}

#[derive(Debug, Serialize, Deserialize)]
struct JoinAnswer {
    uuid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct WriteAnswer {
    outcome: Outcome,
    index: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct MembershipRequest {
    id: String,
}

/// Status of a call that reached a node that is no longer (or not yet) the leader.
const NOT_LEADER: StatusCode = StatusCode::MISDIRECTED_REQUEST;

/// This node's part of the cluster. Cheap to share (`Arc`).
pub struct Cluster {
    raft: Raft<TypeConfig>,
    raft_id: u64,
    me: NodeInfo,
    map: watch::Receiver<Arc<ClusterMap>>,
    peers: Peers,
    auth: Arc<ClusterAuth>,
    shared: serde_json::Value,
    /// Serializes membership changes on the leader.
    membership: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("raft_id", &self.raft_id).field("me", &self.me).finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RaftId {
    raft_id: u64,
}

impl Cluster {
    /// Starts Raft on the node's disk (replaying what it has), without contacting anyone: the node then
    /// [`found`](Cluster::found)s a cluster or [`join`](Cluster::join)s one once it serves HTTP.
    pub async fn open(opts: StartOpts, registry: Arc<Registry>) -> Result<Arc<Cluster>, Error> {
        let io = |path: PathBuf| move |source| Error::Io { path: path.clone(), source };
        std::fs::create_dir_all(&opts.dir).map_err(io(opts.dir.clone()))?;
        // A Raft id per incarnation of the data directory: a wiped node rejoins as a new member, never as an
        // old one whose log it no longer has.
        let id_path = opts.dir.join("id.json");
        let raft_id = match read_json::<RaftId>(&id_path).map_err(io(id_path.clone()))? {
            Some(r) => r.raft_id,
            None => {
                let r = RaftId { raft_id: rand::random::<u64>() >> 1 };
                write_durably(&id_path, &r).map_err(io(id_path.clone()))?;
                r.raft_id
            }
        };
        let log = LogStore::open(&opts.dir.join("log-store")).map_err(io(opts.dir.join("log-store")))?;
        let sm = StateMachine::open(&opts.dir.join("state"), registry, opts.on_remove.clone())
            .map_err(io(opts.dir.join("state")))?;
        let map = sm.map();
        let known = Some(map.borrow().uuid.clone()).filter(|u| !u.is_empty()).unwrap_or_else(|| opts.uuid.clone());
        let auth = Arc::new(ClusterAuth::new(opts.secret.clone(), known));
        let peers = Peers::new(auth.clone());
        let config = openraft::Config {
            cluster_name: "trove".into(),
            // Relaxed for busy machines: a slow heartbeat must not start elections.
            heartbeat_interval: 300,
            election_timeout_min: 1500,
            election_timeout_max: 3000,
            install_snapshot_timeout: 10_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(500),
            max_in_snapshot_log_to_keep: 50,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Raft(e.to_string()))?;
        let raft = Raft::new(raft_id, Arc::new(config), Network { peers: peers.clone() }, log, sm)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let me =
            NodeInfo { id: opts.daemon_id, raft_id, url: opts.url, state: NodeState::Active, capacity: opts.capacity };
        let shared = opts.shared;
        Ok(Arc::new(Cluster { raft, raft_id, me, map, peers, auth, shared, membership: Default::default() }))
    }

    pub fn map(&self) -> Arc<ClusterMap> {
        self.map.borrow().clone()
    }

    /// Watches the cluster map as this node applies it.
    pub fn watch(&self) -> watch::Receiver<Arc<ClusterMap>> {
        self.map.clone()
    }

    pub fn daemon_id(&self) -> &str {
        &self.me.id
    }

    pub fn url(&self) -> &str {
        &self.me.url
    }

    pub async fn is_initialized(&self) -> bool {
        self.raft.is_initialized().await.unwrap_or(false)
    }

    /// Starts (or resumes) this node as a cluster of its own when it is not a member of one yet, with the
    /// identity `uuid` (an existing single node keeps its own). Then makes sure the map names this node with
    /// its current URL and capacity.
    pub async fn found(self: &Arc<Self>, uuid: &str, creation_time: &str) -> Result<(), Error> {
        if !self.is_initialized().await {
            let members = BTreeMap::from([(self.raft_id, BasicNode { addr: self.me.url.clone() })]);
            self.raft.initialize(members).await.map_err(|e| Error::Raft(e.to_string()))?;
            self.raft
                .wait(Some(Duration::from_secs(30)))
                .state(ServerState::Leader, "founding the cluster")
                .await
                .map_err(|e| Error::Raft(e.to_string()))?;
        }
        if self.map().uuid.is_empty() {
            let cmd = Command::Found { uuid: uuid.to_owned(), creation_time: creation_time.to_owned() };
            self.propose(cmd).await?;
        }
        self.auth.set_uuid(&self.map().uuid);
        self.refresh_self().await
    }

    /// Joins the cluster behind `url` (any of its nodes), unless this node is a member already (a restart).
    pub async fn join(self: &Arc<Self>, url: &str) -> Result<(), Error> {
        if self.is_initialized().await {
            self.auth.set_uuid(&self.map().uuid);
            return self.refresh_self().await;
        }
        let started = tokio::time::Instant::now();
        let req = JoinRequest { node: self.me.clone() };
        loop {
            match self.peers.call::<_, JoinAnswer>(url, "join", &req, JOIN_TIMEOUT).await {
                Ok(a) => {
                    self.auth.set_uuid(&a.uuid);
                    break;
                }
                Err(e) if e.is_unreachable() && started.elapsed() < JOIN_TIMEOUT => {
                    tracing::info!(error = %e, "cluster not reachable yet; retrying the join");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(Error::Join { url: url.to_owned(), reason: e.to_string() }),
            }
        }
        // The leader added us once we had caught up; wait until our own copy of the map names us.
        let mut map = self.map.clone();
        let me = self.me.id.clone();
        let named = map.wait_for(|m| m.smap.nodes.contains_key(&me));
        tokio::time::timeout(JOIN_TIMEOUT, named)
            .await
            .map_err(|_| Error::Join { url: url.to_owned(), reason: "the cluster map never named this node".into() })?
            .map_err(|e| Error::Raft(e.to_string()))?;
        Ok(())
    }

    /// Puts this node's current URL and capacity in the map when they changed (a restart), keeping its state.
    async fn refresh_self(&self) -> Result<(), Error> {
        let current = self.map().smap.nodes.get(&self.me.id).cloned();
        let mut want = self.me.clone();
        if let Some(c) = &current {
            want.state = c.state;
        }
        if current.as_ref() == Some(&want) {
            return Ok(());
        }
        self.propose(Command::PutNode { node: want }).await.map(drop)
    }

    /// Writes `cmd` through the leader (wherever it is) and returns once every reachable node has applied it
    /// (at most [`APPLY_WAIT`] later). Without a quorum it fails within [`WRITE_TIMEOUT`].
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, Error> {
        let (outcome, index) = tokio::time::timeout(WRITE_TIMEOUT, self.write_via_leader(&cmd))
            .await
            .map_err(|_| Error::NoQuorum(WRITE_TIMEOUT))??;
        self.await_applied_everywhere(index).await;
        Ok(outcome)
    }

    async fn write_via_leader(&self, cmd: &Command) -> Result<(Outcome, u64), Error> {
        loop {
            let leader = match self.raft.client_write(cmd.clone()).await {
                Ok(r) => return Ok((r.data, r.log_id.index)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f.leader_node,
                Err(e) => return Err(Error::Raft(e.to_string())),
            };
            let Some(leader) = leader.filter(|n| n.addr != self.me.url) else {
                // No leader known yet (an election): try again shortly.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            match self.peers.call::<_, WriteAnswer>(&leader.addr, "write", cmd, WRITE_TIMEOUT).await {
                Ok(a) => return Ok((a.outcome, a.index)),
                Err(CallError::Status { status, .. }) if status == NOT_LEADER.as_u16() => {}
                Err(e) if e.is_unreachable() => {}
                Err(e) => return Err(Error::Raft(e.to_string())),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (bounded) until every node in the map has applied log `index`, so a read on any node right after a
    /// write sees it.
    async fn await_applied_everywhere(&self, index: u64) {
        let mut waits = tokio::task::JoinSet::new();
        for node in self.map().smap.nodes.values() {
            if node.id == self.me.id {
                let raft = self.raft.clone();
                waits.spawn(async move {
                    let _ = raft.wait(Some(APPLY_WAIT)).applied_index_at_least(Some(index), "write").await;
                });
            } else {
                let (peers, url) = (self.peers.clone(), node.url.clone());
                waits.spawn(async move {
                    if let Err(e) = peers.call::<_, bool>(&url, "applied", &index, APPLY_WAIT).await {
                        tracing::debug!(error = %e, "a node did not confirm a metadata write in time");
                    }
                });
            }
        }
        while waits.join_next().await.is_some() {}
    }

    /// This node's view of the Raft state.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let map = self.map();
        let name = |id: u64| map.smap.by_raft_id(id).map_or_else(|| format!("raft-{id}"), |n| n.id.clone());
        let membership = m.membership_config.membership();
        Status {
            role: format!("{:?}", m.state).to_lowercase(),
            term: m.current_term,
            leader: m.current_leader.map(name),
            voters: membership.voter_ids().map(name).collect(),
            learners: membership.learner_ids().map(name).collect(),
            last_applied: m.last_applied.map_or(0, |l| l.index),
        }
    }

    /// Sets a node's state (maintenance, leaving, back to active) through the leader.
    pub async fn set_state(&self, id: &str, state: NodeState) -> Result<(), Error> {
        let map = self.map();
        if !map.smap.nodes.contains_key(id) {
            return Err(Error::NoSuchNode(id.to_owned()));
        }
        if state != NodeState::Active && map.smap.active().all(|n| n.id == id) {
            return Err(Error::Refused(format!("{id} is the last active node: nothing would own the objects")));
        }
        self.refused(self.propose(Command::SetState { id: id.to_owned(), state }).await?)
    }

    /// Attaches a remote AIS cluster, or adds to one (URLs, its UUID, its token), through the leader.
    pub async fn attach_remote(&self, alias: &str, cluster: crate::RemoteCluster) -> Result<(), Error> {
        match self.propose(Command::AttachRemote { alias: alias.to_owned(), cluster }).await?.refused {
            None => Ok(()),
            Some(crate::Refusal::InvalidRemote(e)) => Err(Error::InvalidRemote(e)),
            Some(r) => Err(Error::Refused(r.to_string())),
        }
    }

    /// Detaches a remote AIS cluster named by alias or UUID, through the leader.
    pub async fn detach_remote(&self, alias: &str) -> Result<(), Error> {
        match self.propose(Command::DetachRemote { alias: alias.to_owned() }).await?.refused {
            None => Ok(()),
            Some(crate::Refusal::NoSuchRemote(a)) => Err(Error::NoSuchRemote(a)),
            Some(r) => Err(Error::Refused(r.to_string())),
        }
    }

    /// Removes a node from the cluster: from the Raft membership and from the map.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        let map = self.map();
        let node = map.smap.nodes.get(id).cloned().ok_or_else(|| Error::NoSuchNode(id.to_owned()))?;
        if map.smap.nodes.len() == 1 {
            return Err(Error::Refused(format!("{id} is the only node of the cluster")));
        }
        self.on_leader("remove", &MembershipRequest { id: id.to_owned() }, || self.remove_on_leader(node)).await
    }

    fn refused(&self, o: Outcome) -> Result<(), Error> {
        match o.refused {
            Some(r) => Err(Error::Refused(r.to_string())),
            None => Ok(()),
        }
    }

    /// Runs `f` here when this node leads, else asks the leader to run `call`.
    async fn on_leader<F, Fut>(&self, call: &str, req: &MembershipRequest, f: F) -> Result<(), Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), Error>>,
    {
        let leader = self.raft.current_leader().await;
        if leader == Some(self.raft_id) {
            return f().await;
        }
        let url = leader
            .and_then(|l| self.map().smap.by_raft_id(l).map(|n| n.url.clone()))
            .ok_or(Error::NoQuorum(Duration::ZERO))?;
        self.peers.call::<_, bool>(&url, call, req, WRITE_TIMEOUT * 2).await.map(drop).map_err(|e| {
            if e.is_unreachable() {
                Error::NoQuorum(WRITE_TIMEOUT)
            } else {
                Error::Refused(e.to_string())
            }
        })
    }

    async fn remove_on_leader(&self, node: NodeInfo) -> Result<(), Error> {
        let _one = self.membership.lock().await;
        self.drop_member(node.raft_id).await?;
        self.refused(self.propose(Command::RemoveNode { id: node.id }).await?)?;
        self.fit_voters().await
    }

    /// Takes a Raft id out of the membership (voter or learner).
    async fn drop_member(&self, raft_id: u64) -> Result<(), Error> {
        let membership = self.raft.metrics().borrow().membership_config.membership().clone();
        if membership.get_node(&raft_id).is_none() {
            return Ok(());
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.contains(&raft_id) {
            let mut rest: BTreeSet<u64> = voters.iter().copied().filter(|v| *v != raft_id).collect();
            if rest.is_empty() {
                return Err(Error::Refused("the last voter cannot leave the cluster".into()));
            }
            // Keep the voter count up: a learner takes the leaving voter's place.
            if let Some(l) = membership.learner_ids().find(|l| *l != raft_id) {
                rest.insert(l);
            }
            self.timed(self.raft.change_membership(rest, true)).await?;
        }
        let remove = openraft::ChangeMembers::RemoveNodes(BTreeSet::from([raft_id]));
        self.timed(self.raft.change_membership(remove, false)).await
    }

    async fn timed<T, E: std::fmt::Display>(
        &self,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<(), Error> {
        match tokio::time::timeout(WRITE_TIMEOUT * 6, f).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::Raft(e.to_string())),
            Err(_) => Err(Error::NoQuorum(WRITE_TIMEOUT * 6)),
        }
    }

    /// Promotes learners until the cluster has its voter count: 1 below three members, 3 below five, else 5.
    async fn fit_voters(&self) -> Result<(), Error> {
        let membership = self.raft.metrics().borrow().membership_config.membership().clone();
        let members = membership.nodes().count();
        let target = match members {
            0..=2 => 1,
            3 | 4 => 3,
            _ => 5,
        };
        let mut voters: BTreeSet<u64> = membership.voter_ids().collect();
        if voters.len() >= target {
            return Ok(());
        }
        for l in membership.learner_ids() {
            if voters.len() == target {
                break;
            }
            voters.insert(l);
        }
        tracing::info!(voters = voters.len(), members, "changing the cluster's voters");
        self.timed(self.raft.change_membership(voters, true)).await
    }

    /// On the leader: adds a node that asked to join (through any node).
    async fn admit(&self, node: NodeInfo) -> Result<JoinAnswer, Error> {
        let _one = self.membership.lock().await;
        // The same daemon back with a new data directory: its old member goes first.
        if let Some(old) = self.map().smap.nodes.get(&node.id).filter(|o| o.raft_id != node.raft_id) {
            tracing::info!(node = %node.id, "a node rejoins with a new data directory; dropping its old member");
            self.drop_member(old.raft_id).await?;
        }
        // The newcomer catches up from a snapshot (the registry may predate the log) and the log after it.
        self.raft.trigger().snapshot().await.map_err(|e| Error::Raft(e.to_string()))?;
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
        self.raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.snapshot.map(|s| s.index) >= applied, "snapshot for a joining node")
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        if let Some(upto) = applied {
            self.raft.trigger().purge_log(upto).await.map_err(|e| Error::Raft(e.to_string()))?;
        }
        self.timed(self.raft.add_learner(node.raft_id, BasicNode { addr: node.url.clone() }, true)).await?;
        let joined = NodeInfo { state: NodeState::Active, ..node };
        self.refused(self.propose(Command::PutNode { node: joined }).await?)?;
        self.fit_voters().await?;
        Ok(JoinAnswer { uuid: self.map().uuid.clone() })
    }

    /// Answers another node's call to `/v1/raft/<call>`: checks that it comes from this cluster, then runs it.
    /// Returns the status and JSON body.
    pub async fn handle(&self, call: &str, header: Option<&str>, body: Bytes) -> (StatusCode, Bytes) {
        let path = format!("{}{call}", crate::network::PREFIX);
        if let Err(e) = self.auth.verify(header, "POST", &path, call == "join" || call == "hello") {
            let status = match e {
                AuthError::Missing | AuthError::Malformed => StatusCode::UNAUTHORIZED,
                _ => StatusCode::FORBIDDEN,
            };
            tracing::warn!(error = %e, call, "refused an intra-cluster call");
            return (status, Bytes::from(e.to_string()));
        }
        match self.dispatch(call, &body).await {
            Ok(b) => (StatusCode::OK, b),
            Err((status, msg)) => (status, Bytes::from(msg)),
        }
    }

    async fn dispatch(&self, call: &str, body: &[u8]) -> Result<Bytes, (StatusCode, String)> {
        fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
            serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("malformed call: {e}")))
        }
        fn answer<T: Serialize>(v: &T) -> Result<Bytes, (StatusCode, String)> {
            serde_json::to_vec(v).map(Bytes::from).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        let failed = |e: Error| match e {
            Error::NoQuorum(_) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            Error::NoSuchNode(_) => (StatusCode::NOT_FOUND, e.to_string()),
            Error::Refused(_) => (StatusCode::CONFLICT, e.to_string()),
            other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        };
        match call {
            "hello" => {
                let map = self.map();
                if map.uuid.is_empty() {
                    return Err((StatusCode::SERVICE_UNAVAILABLE, "this node has not joined a cluster yet".into()));
                }
                answer(&Hello {
                    uuid: map.uuid.clone(),
                    creation_time: map.creation_time.clone(),
                    shared: self.shared.clone(),
                })
            }
            "append" => answer(&self.raft.append_entries(parse(body)?).await),
            "vote" => answer(&self.raft.vote(parse(body)?).await),
            "snapshot" => answer(&self.raft.install_snapshot(parse(body)?).await),
            "write" => match self.raft.client_write(parse::<Command>(body)?).await {
                Ok(r) => answer(&WriteAnswer { outcome: r.data, index: r.log_id.index }),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    Err((NOT_LEADER, "not the leader".into()))
                }
                Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
            },
            "applied" => {
                let index: u64 = parse(body)?;
                let done = self.raft.wait(Some(APPLY_WAIT)).applied_index_at_least(Some(index), "applied").await;
                answer(&done.is_ok())
            }
            "join" => {
                let req: JoinRequest = parse(body)?;
                match self.raft.current_leader().await {
                    Some(l) if l == self.raft_id => answer(&self.admit(req.node).await.map_err(failed)?),
                    Some(l) => {
                        let url = self
                            .map()
                            .smap
                            .by_raft_id(l)
                            .map(|n| n.url.clone())
                            .ok_or((StatusCode::SERVICE_UNAVAILABLE, "the leader is not in the map yet".into()))?;
                        let a: JoinAnswer = self
                            .peers
                            .call(&url, "join", &req, JOIN_TIMEOUT)
                            .await
                            .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))?;
                        answer(&a)
                    }
                    None => Err((StatusCode::SERVICE_UNAVAILABLE, "no leader".into())),
                }
            }
            "remove" => {
                let req: MembershipRequest = parse(body)?;
                if self.raft.current_leader().await != Some(self.raft_id) {
                    return Err((NOT_LEADER, "not the leader".into()));
                }
                let node = self.map().smap.nodes.get(&req.id).cloned();
                let node = node.ok_or_else(|| failed(Error::NoSuchNode(req.id.clone())))?;
                self.remove_on_leader(node).await.map_err(failed)?;
                answer(&true)
            }
            _ => Err((StatusCode::NOT_FOUND, format!("no intra-cluster call {call:?}"))),
        }
    }

    /// Signs a call of `method` on `path` to another node of this cluster (the gateway's own intra-cluster
    /// calls and forwarded requests).
    pub fn sign(&self, method: &str, path: &str) -> String {
        self.auth.sign(method, path)
    }

    /// Checks that a call of `method` on `path` comes from a node of this cluster.
    pub fn verify(&self, header: Option<&str>, method: &str, path: &str) -> Result<(), AuthError> {
        self.auth.verify(header, method, path, false)
    }

    /// A signed JSON call to `path` on the node at `url`.
    pub async fn call<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        path: &str,
        body: &Req,
        deadline: Duration,
    ) -> Result<Resp, CallError> {
        self.peers.post(url, path, body, deadline).await
    }

    /// Stops Raft (on shutdown).
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

/// The header name intra-cluster calls carry (for the HTTP server's routing).
pub const AUTH_HEADER: &str = HEADER;
