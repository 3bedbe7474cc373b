//! Local object storage and the cache tier of a Trove node.
//!
//! [`Store`] owns a node's mountpaths: the AIS-like on-disk [`layout`], per-object metadata ([`ObjMeta`], kept
//! in an xattr), atomic staged writes ([`Staged`], published by rename), ordered bounded listing, multipart
//! uploads, and start-up cleanup of work files. AIS-local buckets keep their primary data here; cached copies of
//! remote objects live here too, filled by [`ReadThrough`] (single-flight streaming cold GETs).
//!
//! All `Store` methods do blocking file I/O; async callers run them on a blocking thread.

mod error;
mod group_sync;
mod handles;
pub mod layout;
mod list;
mod lru;
mod meta;
pub mod multipart;
mod readthrough;
mod space;
mod store;
pub mod versions;

pub use error::{Error, Result};
pub use handles::Open;
pub use lru::{Index, Usage};
pub use meta::{ObjMeta, SseMeta};
pub use multipart::{CompleteError, CompletedPart, Part, Upload};
pub use readthrough::{file_stream, Counters, FetchConfig, Fill, ReadThrough};
pub use store::{open_objects, BucketGuard, Mountpath, Staged, Store};
pub use versions::{new_version, valid_version_id, Versions, NULL_VERSION};

#[cfg(test)]
mod tests;
