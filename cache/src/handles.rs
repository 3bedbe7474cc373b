//! Open objects kept for reads, as nginx's `open_file_cache` keeps them: the file handle and decoded metadata
//! of recently read objects, so that a repeated read skips the path lookup, the open, the metadata read and its
//! decoding.
//!
//! Every change to an object (commit, delete, metadata update, bucket removal) drops its entry after the
//! change is on disk, and bumps its shard's generation: a reader notes the generation before it opens the
//! object and keeps what it opened only if no change came in between, so an entry never outlives the object
//! version it holds.

use std::fs::File;
use std::hash::BuildHasher;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, OnceLock};

use trove_namespace::Bck;

use crate::ObjMeta;

/// An object opened for reading.
#[derive(Debug)]
pub struct Open {
    pub file: Arc<File>,
    pub meta: ObjMeta,
    /// What a reader derived from `meta` once for every later reader of this handle (the gateway keeps the
    /// header lines of a whole-object answer here); it goes with the handle, so it is never stale.
    pub rendered: OnceLock<Box<[u8]>>,
    /// When a read through this handle last updated the LRU index (ns since the epoch).
    pub(crate) touched: AtomicI64,
}

impl Open {
    pub fn new(file: File, meta: ObjMeta) -> Open {
        Open { file: Arc::new(file), meta, rendered: OnceLock::new(), touched: AtomicI64::new(crate::lru::now_ns()) }
    }
}

type Key = (Bck, String);

/// A borrowed [`Key`] for lookups: hashes exactly as the owned tuple, so lookups allocate nothing.
#[derive(Hash)]
struct Query<'a>(&'a Bck, &'a str);

impl hashbrown::Equivalent<Key> for Query<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0 == &key.0 && self.1 == key.1
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: hashbrown::HashMap<Key, Arc<Open>>,
    generation: u64,
}

#[derive(Debug)]
pub struct Handles {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: hashbrown::DefaultHashBuilder,
}

const SHARDS: usize = 16;

impl Handles {
    /// Room for about `capacity` open objects (0: none are kept).
    pub fn new(capacity: usize) -> Handles {
        Handles {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: Default::default(),
        }
    }

    fn shard(&self, bck: &Bck, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let h = self.hasher.hash_one(Query(bck, key)) as usize;
        self.shards[h % SHARDS].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, bck: &Bck, key: &str) -> Option<Arc<Open>> {
        self.shard(bck, key).map.get(&Query(bck, key)).cloned()
    }

    /// The generation to pass to [`Handles::keep`] for an object about to be opened.
    pub(crate) fn generation(&self, bck: &Bck, key: &str) -> u64 {
        self.shard(bck, key).generation
    }

    /// Keeps `open` unless the object's shard changed since `generation`.
    pub(crate) fn keep(&self, bck: &Bck, key: &str, generation: u64, open: Arc<Open>) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(bck, key);
        if shard.generation != generation {
            return;
        }
        if shard.map.len() >= self.per_shard {
            // Any entry makes room: recently read objects come back on their next read.
            if let Some(k) = shard.map.keys().next().cloned() {
                shard.map.remove(&k);
            }
        }
        shard.map.insert((bck.clone(), key.to_owned()), open);
    }

    /// The object changed on disk: forget what was opened before.
    pub(crate) fn changed(&self, bck: &Bck, key: &str) {
        let mut shard = self.shard(bck, key);
        shard.generation += 1;
        shard.map.remove(&Query(bck, key));
    }

    pub(crate) fn changed_bucket(&self, bck: &Bck) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.generation += 1;
            shard.map.retain(|(b, _), _| b != bck);
        }
    }
}
