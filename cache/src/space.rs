//! Housekeeping of a mountpath's work directory at start-up.
//!
//! Work files of writes that never committed are deleted. A `conv-*` directory is a file->directory conversion
//! interrupted by a crash (see `Store::file_to_dir`): its `%%obj` is moved back to where its key says.
//! `del-*` directories are bucket removals that did not finish.

use std::fs;

use std::os::unix::ffi::OsStringExt;

use crate::layout::{CONVERSION_TARGET, DIR_OBJECT};
use crate::store::Mountpath;
use crate::{Error, Result};

pub(crate) fn clean_work_dir(mp: &Mountpath) -> Result<()> {
    let wk = mp.work_dir();
    let entries = match fs::read_dir(&wk) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&wk, e)),
    };
    let mut removed = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&wk, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("conv-") && restore_conversion(&path) {
            continue;
        }
        let res = if entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(|e| Error::io(&path, e))?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(mountpath = %mp.root.display(), removed, "removed leftover work files");
    }
    Ok(())
}

/// Puts an interrupted conversion's directory where it was going: its `%%target` file names the place.
fn restore_conversion(dir: &std::path::Path) -> bool {
    let Ok(target) = fs::read(dir.join(CONVERSION_TARGET)) else {
        return false;
    };
    let target = std::path::PathBuf::from(std::ffi::OsString::from_vec(target));
    if target.exists() || !dir.join(DIR_OBJECT).exists() {
        return false;
    }
    let moved = fs::rename(dir, &target).is_ok();
    let _ = fs::remove_file(target.join(CONVERSION_TARGET));
    moved
}
