//! Bucket identity and placement for Trove.
//!
//! This crate owns what a bucket *is* — `(provider, namespace, name)` as in AIStore — the AIS URI grammar
//! (`ais://b`, `s3://#ns/b`, `ais://@uuid/b`, ...), bucket-name validation, the persisted and versioned bucket
//! registry (BMD) that maps S3 names to bucket identities, and HRW placement over nodes and mountpaths.
//! It depends on nothing else in Trove.
//!
//! ```
//! use trove_namespace::{Bck, Provider};
//! let b: Bck = "s3://#prod/imagenet".parse().unwrap();
//! assert_eq!(b.provider, Provider::Aws);
//! assert_eq!(b.ns.name, "prod");
//! ```

mod bucket;
mod change;
mod error;
pub mod hrw;
mod provider;
mod registry;
mod uri;

pub use bucket::{validate_s3_bucket_name, Bck, BucketNameError, Namespace};
pub use change::Change;
pub use error::{Error, Result};
pub use provider::Provider;
pub use registry::{
    BucketEntry, BucketProps, CacheProps, MirrorProps, Registry, RegistrySnapshot, S3Versioning, MAX_COPIES,
};
