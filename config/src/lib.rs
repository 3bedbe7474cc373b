//! Trove's settings, layered with figment: built-in defaults < TOML file < `TROVE_*` environment < CLI flags.
//!
//! [`Config::load`] is the only entry point; it returns a validated [`Config`] or one [`Error`] saying what is
//! wrong and where (file and key). Environment keys use `__` for nesting (`TROVE_SERVER__LISTEN`); the
//! documented short forms `TROVE_ACCESS_KEY`, `TROVE_SECRET_KEY` and `TROVE_ADMIN_TOKEN` map into `[auth]`.
//!
//! ```
//! let cfg = trove_config::Config::load(None, &trove_config::Overrides::default()).unwrap();
//! assert_eq!(cfg.server.listen.port(), 8080);
//! ```

mod error;
mod model;

pub use error::{Error, Result};
pub use model::{
    AttachConfig, AuthConfig, AwsConfig, AzureConfig, BackendsConfig, CacheConfig, ClusterConfig, Config,
    DownloadConfig, GcpConfig, JobsConfig, LifecycleConfig, Overrides, RebalanceConfig, RemoteConfig, S3Config,
    ServerConfig, SseConfig, StorageConfig, TelemetryConfig, User,
};
