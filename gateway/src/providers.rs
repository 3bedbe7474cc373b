//! The configured cloud providers of a node: one resilient client per provider, built at start-up from
//! `[backends.*]`, and which of them may attach buckets on first use; and a client per attached remote AIS
//! cluster, built on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trove_backends::ais::{AisBackend, AisClient};
use trove_backends::aws::{Aws, AwsOptions};
use trove_backends::azure::{Azure, AzureOptions};
use trove_backends::gcp::{Gcp, GcpOptions};
use trove_backends::retry::{Policy, Resilient, Stats};
use trove_backends::Backend;
use trove_cluster::RemoteCluster;
use trove_config::BackendsConfig;
use trove_namespace::Provider;

pub struct Providers {
    clients: HashMap<Provider, Arc<Resilient>>,
    auto_attach: Vec<Provider>,
    policy: Policy,
    /// Clients of attached remote AIS clusters, by UUID, with the registry entry each was built from.
    remote: Mutex<HashMap<String, (RemoteCluster, Arc<Resilient>)>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers").field("configured", &self.clients.keys().collect::<Vec<_>>()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Gcp(#[from] trove_backends::gcp::ConnectError),
    #[error(transparent)]
    Azure(#[from] trove_backends::azure::ConnectError),
}

impl Providers {
    pub async fn connect(cfg: &BackendsConfig) -> Result<Providers, ProviderError> {
        let policy = Policy {
            timeout: Duration::from_secs_f64(cfg.timeout_secs),
            max_attempts: cfg.max_attempts,
            backoff: Duration::from_millis(200),
        };
        let mut clients: HashMap<Provider, Arc<Resilient>> = HashMap::new();
        let mut auto_attach = Vec::new();
        let wrap = |b: Arc<dyn Backend>| Arc::new(Resilient::new(b, policy));
        let (aws, gcp, azure) = with_standard_environment(cfg);
        if let Some(a) = &aws {
            let opts = AwsOptions {
                endpoint: a.endpoint.clone(),
                region: a.region.clone(),
                credentials: a.access_key.clone().zip(a.secret_key.clone()),
                path_style: a.path_style,
                connect_timeout: Some(Duration::from_secs_f64(cfg.connect_timeout_secs)),
            };
            clients.insert(Provider::Aws, wrap(Arc::new(Aws::connect(&opts).await)));
            if a.auto_attach {
                auto_attach.push(Provider::Aws);
            }
        }
        if let Some(g) = &gcp {
            let opts = GcpOptions { endpoint: g.endpoint.clone(), credentials_file: g.credentials_file.clone() };
            clients.insert(Provider::Gcp, wrap(Arc::new(Gcp::connect(&opts).await?)));
            if g.auto_attach {
                auto_attach.push(Provider::Gcp);
            }
        }
        if let Some(z) = &azure {
            let opts = AzureOptions {
                account: z.account.clone(),
                key: z.key.clone(),
                sas: z.sas.clone(),
                connection_string: z.connection_string.clone(),
                endpoint: z.endpoint.clone(),
            };
            clients.insert(Provider::Azure, wrap(Arc::new(Azure::connect(&opts)?)));
            if z.auto_attach {
                auto_attach.push(Provider::Azure);
            }
        }
        Ok(Providers { clients, auto_attach, policy, remote: Mutex::default() })
    }

    pub fn get(&self, p: Provider) -> Option<Arc<Resilient>> {
        self.clients.get(&p).cloned()
    }

    /// The client of an attached remote AIS cluster (built on first use, again when its URLs or token change).
    pub fn remote_ais(&self, cluster: &RemoteCluster, client: &AisClient) -> Arc<Resilient> {
        let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built, b)) = remote.get(&cluster.uuid) {
            if built == cluster {
                return b.clone();
            }
        }
        let ais = AisBackend::new(client.clone(), cluster.urls.clone(), cluster.token.clone());
        let b = Arc::new(Resilient::new(ais, self.policy));
        remote.insert(cluster.uuid.clone(), (cluster.clone(), b.clone()));
        b
    }

    pub fn auto_attach(&self) -> &[Provider] {
        &self.auto_attach
    }

    /// Request counters per configured provider, for metrics; remote AIS clusters add up under `ais`.
    pub fn stats(&self) -> Vec<(Provider, Arc<Stats>)> {
        let mut v: Vec<_> = self.clients.iter().map(|(p, c)| (*p, c.stats())).collect();
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        v.extend(remote.values().map(|(_, b)| (Provider::Ais, b.stats())));
        v.sort_by_key(|(p, _)| p.as_str());
        v
    }
}

fn env_set(names: &[&str]) -> bool {
    names.iter().any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// The providers to set up: each configured section, and each provider whose ecosystem's standard environment
/// is present (as aws-cli, gsutil and az find their credentials); a section only overrides.
fn with_standard_environment(
    cfg: &BackendsConfig,
) -> (Option<trove_config::AwsConfig>, Option<trove_config::GcpConfig>, Option<trove_config::AzureConfig>) {
    let aws = cfg.aws.clone().or_else(|| {
        let endpoint = env_set(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]);
        let creds = env_set(&[
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]);
        // A custom endpoint is an S3-compatible store (MinIO, Ceph, moto): those address buckets by path.
        (endpoint || creds).then(|| trove_config::AwsConfig { path_style: endpoint, ..Default::default() })
    });
    let gcp = cfg
        .gcp
        .clone()
        .or_else(|| env_set(&["STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"]).then(Default::default));
    let azure = cfg
        .azure
        .clone()
        .or_else(|| env_set(&["AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT"]).then(Default::default));
    (aws, gcp, azure)
}
