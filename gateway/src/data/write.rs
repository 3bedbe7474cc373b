//! Deletes: a cloud object at the backend first (then its cached copy), an AIS-local one on disk.

use trove_namespace::BucketEntry;

use super::{backend, blocking, drop_cached, Error};
use crate::state::SharedState;

/// Deletes `key`; `Ok(false)` when an AIS-local object did not exist (a cloud backend does not say).
pub async fn delete(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<bool, Error> {
    if entry.bck.provider.is_remote() {
        backend(state, entry)?.delete(&entry.bck.name, key).await?;
        drop_cached(state, entry, key).await?;
        return Ok(true);
    }
    let (st, bck, key) = (state.clone(), entry.bck.clone(), key.to_owned());
    blocking(move || Ok(st.store.delete(&bck, &key)?)).await
}
