//! Calls between nodes: JSON over HTTP/1.1 to `/v1/raft/<call>` on the peer's URL, signed with the cluster
//! secret (`auth.rs`). The Raft RPCs (append, vote, snapshot) and the cluster's own calls (join, a metadata
//! write passed to the leader, waiting for a node to apply) share one client with a per-call deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::{ClusterAuth, HEADER};
use crate::TypeConfig;

type NodeId = u64;

/// The largest intra-cluster response read (snapshot chunks are a few MiB).
const MAX_RESPONSE: usize = 64 << 20;

/// Path prefix of every intra-cluster call.
pub const PREFIX: &str = "/v1/raft/";

/// Why a call to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing answered (refused, reset, timed out): the node may be down.
    #[error("{url}: unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The node answered with an error status.
    #[error("{url}: {status}: {message}")]
    Status { url: String, status: u16, message: String },
    #[error("{url}: unreadable answer: {reason}")]
    Protocol { url: String, reason: String },
}

impl CallError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CallError::Unreachable { .. })
    }
}

/// The HTTP client for intra-cluster calls.
#[derive(Clone)]
pub struct Peers {
    client: Client<HttpConnector, Full<Bytes>>,
    auth: Arc<ClusterAuth>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").finish_non_exhaustive()
    }
}

impl Peers {
    pub fn new(auth: Arc<ClusterAuth>) -> Peers {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(http);
        Peers { client, auth }
    }

    /// POSTs `body` as JSON to `<base>/v1/raft/<call>` and decodes the JSON answer, within `deadline`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        call: &str,
        body: &Req,
        deadline: Duration,
    ) -> Result<Resp, CallError> {
        self.post(base, &format!("{PREFIX}{call}"), body, deadline).await
    }

    /// POSTs `body` as JSON to `<base><path>`, signed, and decodes the JSON answer, within `deadline`.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &Req,
        deadline: Duration,
    ) -> Result<Resp, CallError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let unreachable = |reason: String| CallError::Unreachable { url: url.clone(), reason };
        let protocol = |reason: String| CallError::Protocol { url: url.clone(), reason };
        let bytes = serde_json::to_vec(body).map_err(|e| protocol(e.to_string()))?;
        let req = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(HEADER, self.auth.sign("POST", path))
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| protocol(e.to_string()))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| unreachable(error_chain(&e)))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, CallError>((status, body))
        };
        let (status, body) = tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {deadline:?}")))??;
        if !status.is_success() {
            return Err(CallError::Status {
                url: url.clone(),
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Creates a [`PeerNetwork`] per target node for openraft.
#[derive(Debug, Clone)]
pub struct Network {
    pub peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        PeerNetwork { target, url: node.addr.clone(), peers: self.peers.clone() }
    }
}

/// The connection to one peer, as openraft sees it.
#[derive(Debug)]
pub struct PeerNetwork {
    target: NodeId,
    url: String,
    peers: Peers,
}

impl PeerNetwork {
    async fn rpc<Req, Resp, E>(
        &self,
        call: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> =
            self.peers.call(&self.url, call, req, option.hard_ttl()).await.map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                other => RPCError::Network(NetworkError::new(&other)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.rpc("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("vote", &rpc, &option).await
    }
}
