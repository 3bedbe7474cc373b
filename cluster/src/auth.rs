//! Intra-cluster authentication. Every call between nodes carries `Trove-Cluster: <uuid>.<unix seconds>.<mac>`,
//! the MAC an HMAC-SHA256 under the cluster secret of the UUID, the time, the method and the path. A node of
//! another cluster (other UUID or secret), a stale or replayed-late call, or a request from outside posing as
//! a node is refused. Bodies are not covered: the intra-cluster network is trusted not to rewrite them (run it
//! on a private network, or behind TLS).

use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header every intra-cluster call carries.
pub const HEADER: &str = "trove-cluster";

/// How far a caller's clock may be from ours.
const MAX_SKEW_SECS: u64 = 300;

/// The shortest cluster secret accepted.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("not an intra-cluster call (no {HEADER} header)")]
    Missing,
    #[error("malformed {HEADER} header")]
    Malformed,
    #[error("a call of another cluster ({0})")]
    OtherCluster(String),
    #[error("the call's time is more than {MAX_SKEW_SECS} s from this node's")]
    Stale,
    #[error("the call is not signed with this cluster's secret")]
    BadSignature,
}

/// The cluster secret and, once known, the cluster's UUID.
#[derive(Debug)]
pub struct ClusterAuth {
    secret: String,
    uuid: RwLock<String>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl ClusterAuth {
    pub fn new(secret: impl Into<String>, uuid: impl Into<String>) -> ClusterAuth {
        ClusterAuth { secret: secret.into(), uuid: RwLock::new(uuid.into()) }
    }

    pub fn uuid(&self) -> String {
        self.uuid.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adopts the UUID of the cluster this node joined.
    pub fn set_uuid(&self, uuid: &str) {
        *self.uuid.write().unwrap_or_else(|e| e.into_inner()) = uuid.to_owned();
    }

    fn mac(&self, uuid: &str, secs: u64, method: &str, path: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(format!("{uuid}\n{secs}\n{method}\n{path}").as_bytes());
        mac
    }

    /// The header value for a call of `method` on `path` (path only, no query).
    pub fn sign(&self, method: &str, path: &str) -> String {
        let uuid = self.uuid();
        let secs = now_secs();
        let tag = self.mac(&uuid, secs, method, path).finalize().into_bytes();
        format!("{uuid}.{secs}.{}", hex::encode(tag))
    }

    /// Checks a call's header. `joining` accepts a caller that does not know the cluster's UUID yet (a node
    /// joining with the secret alone).
    pub fn verify(&self, header: Option<&str>, method: &str, path: &str, joining: bool) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let mut parts = header.splitn(3, '.');
        let (Some(uuid), Some(secs), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AuthError::Malformed);
        };
        let secs: u64 = secs.parse().map_err(|_| AuthError::Malformed)?;
        let tag = hex::decode(tag).map_err(|_| AuthError::Malformed)?;
        // The MAC first: an unsigned caller learns nothing from the other answers.
        self.mac(uuid, secs, method, path).verify_slice(&tag).map_err(|_| AuthError::BadSignature)?;
        if now_secs().abs_diff(secs) > MAX_SKEW_SECS {
            return Err(AuthError::Stale);
        }
        let ours = self.uuid();
        if uuid != ours && !(joining && uuid.is_empty()) && !ours.is_empty() {
            return Err(AuthError::OtherCluster(uuid.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_calls_verify_and_others_do_not() {
        let a = ClusterAuth::new("s".repeat(20), "uuid-1");
        let h = a.sign("POST", "/v1/raft/vote");
        assert_eq!(a.verify(Some(&h), "POST", "/v1/raft/vote", false), Ok(()));
        assert_eq!(a.verify(Some(&h), "POST", "/v1/raft/append", false), Err(AuthError::BadSignature));
        assert_eq!(a.verify(None, "POST", "/v1/raft/vote", false), Err(AuthError::Missing));
        assert_eq!(a.verify(Some("x"), "POST", "/v1/raft/vote", false), Err(AuthError::Malformed));
        let other_secret = ClusterAuth::new("t".repeat(20), "uuid-1");
        assert_eq!(other_secret.verify(Some(&h), "POST", "/v1/raft/vote", false), Err(AuthError::BadSignature));
        let other_cluster = ClusterAuth::new("s".repeat(20), "uuid-2");
        assert!(matches!(
            other_cluster.verify(Some(&h), "POST", "/v1/raft/vote", false),
            Err(AuthError::OtherCluster(_))
        ));
        // A node that has not joined yet signs with an empty UUID: accepted for joining only.
        let newcomer = ClusterAuth::new("s".repeat(20), "");
        let h = newcomer.sign("POST", "/v1/raft/join");
        assert_eq!(a.verify(Some(&h), "POST", "/v1/raft/join", true), Ok(()));
        assert!(a.verify(Some(&h), "POST", "/v1/raft/join", false).is_err());
    }

    #[test]
    fn stale_calls_are_refused() {
        let a = ClusterAuth::new("s".repeat(20), "u");
        let secs = now_secs() - 3600;
        let tag = a.mac("u", secs, "POST", "/p").finalize().into_bytes();
        let h = format!("u.{secs}.{}", hex::encode(tag));
        assert_eq!(a.verify(Some(&h), "POST", "/p", false), Err(AuthError::Stale));
    }
}
