//! Multipart uploads: parts staged under the bucket's `%mp/<upload-id>/`, assembled on completion.
//!
//! An upload lives on the mountpath its key hashes to, so completion is a local copy (`copy_file_range`) of
//! the parts into one work file, followed by the ordinary atomic commit.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use trove_namespace::Bck;

use crate::layout::{self, UPLOADS_DIR};
use crate::meta::ObjMeta;
use crate::store::{is_missing, Staged, Store};
use crate::{Error, Result};

const UPLOAD_FILE: &str = "upload.json";
/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's part numbers run from 1 to 10,000: no completion lists more.
pub const MAX_PARTS: usize = 10_000;

/// What CreateMultipartUpload recorded: the final object's metadata and who started it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ms: i64,
    pub owner: String,
    /// Metadata the completed object gets (content type, user metadata, tags, checksum algorithm...).
    pub meta: ObjMeta,
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
    /// For a remote bucket: the backend's handle of the multipart upload that runs in lock-step with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_upload: Option<String>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub meta: ObjMeta,
}

/// Sees the bytes of an object being assembled, in order.
pub type DataSink<'a> = dyn FnMut(&[u8]) + 'a;

/// An assembled upload: what it recorded, the parts used, and the staged object, ready to commit.
pub type Assembled = (Upload, Vec<Part>, Staged);

/// A part named in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub number: u32,
    /// Without quotes.
    pub etag: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompleteError {
    #[error("part {0} was not uploaded or its ETag does not match")]
    InvalidPart(u32),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("part {0} is smaller than the minimum allowed size")]
    EntityTooSmall(u32),
    #[error("no parts given")]
    Empty,
    #[error("more than 10,000 parts listed")]
    TooManyParts,
}

impl Store {
    fn upload_dir(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<PathBuf> {
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NoSuchUpload);
        }
        let mp = self.mountpath_index(bck, key);
        Ok(layout::bucket_dir(&self.mountpaths()[mp].root, bck).join(UPLOADS_DIR).join(upload_id))
    }

    pub fn create_upload(&self, bck: &Bck, upload: &Upload) -> Result<()> {
        let dir = self.upload_dir(bck, &upload.key, &upload.upload_id)?;
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        if self.fsync() {
            // The upload's directory entry (and its parent's, on a first upload) must survive a crash like the
            // upload record inside it.
            for d in [Some(dir.as_path()), dir.parent()].into_iter().flatten() {
                crate::store::sync_dir(d)?;
            }
        }
        let bytes = serde_json::to_vec(upload).map_err(|e| Error::Internal(e.to_string()))?;
        let mut staged = self.stage(bck, &upload.key)?;
        io::Write::write_all(&mut staged.file, &bytes).map_err(|e| Error::io(staged.path(), e))?;
        self.publish(staged, &dir.join(UPLOAD_FILE))
    }

    pub fn get_upload(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<Upload> {
        let path = self.upload_dir(bck, key, upload_id)?.join(UPLOAD_FILE);
        let bytes =
            fs::read(&path).map_err(|e| if is_missing(&e) { Error::NoSuchUpload } else { Error::io(&path, e) })?;
        let up: Upload = serde_json::from_slice(&bytes).map_err(|_| Error::Corrupt { path })?;
        if up.key != key {
            return Err(Error::NoSuchUpload);
        }
        Ok(up)
    }

    /// Starts writing part `number`; commit it with [`Store::commit_part`].
    pub fn stage_part(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<Staged> {
        self.get_upload(bck, key, upload_id)?;
        self.stage(bck, key)
    }

    pub fn commit_part(
        &self,
        staged: Staged,
        bck: &Bck,
        key: &str,
        upload_id: &str,
        number: u32,
        meta: &ObjMeta,
    ) -> Result<()> {
        let dir = self.upload_dir(bck, key, upload_id)?;
        if !dir.join(UPLOAD_FILE).exists() {
            return Err(Error::NoSuchUpload); // aborted while the part was in flight
        }
        meta.write_to(&staged.file, staged.path())?;
        self.publish(staged, &dir.join(part_file_name(number, &meta.etag)))
    }

    fn publish(&self, mut staged: Staged, target: &std::path::Path) -> Result<()> {
        if self.fsync() {
            staged.file.sync_all().map_err(|e| Error::io(staged.path(), e))?;
        }
        fs::rename(staged.path(), target).map_err(|e| Error::io(target, e))?;
        staged.mark_done();
        if self.fsync() {
            if let Some(dir) = target.parent() {
                crate::store::sync_dir(dir)?;
            }
        }
        Ok(())
    }

    /// Parts uploaded so far, by part number: the latest upload of each number.
    pub fn list_parts(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<Vec<Part>> {
        let mut all = self.part_versions(bck, key, upload_id)?;
        // Sorted by number, then upload time: the last of each run of equal numbers is the latest.
        all.reverse();
        all.dedup_by_key(|p| p.number);
        all.reverse();
        Ok(all)
    }

    /// Every stored upload of every part, sorted by number and then upload time. A part number uploaded
    /// twice keeps both copies (named by their ETags) until the upload ends, so that Complete assembles
    /// exactly the bytes whose ETag the client lists, even when two uploads of one part race.
    fn part_versions(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<Vec<Part>> {
        self.get_upload(bck, key, upload_id)?;
        let dir = self.upload_dir(bck, key, upload_id)?;
        let mut parts = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let Some(number) = name.to_str().and_then(|n| n.split('.').next()).and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            match ObjMeta::read_at(&entry.path()) {
                Ok(meta) => parts.push(Part { number, meta }),
                Err(Error::Io { source, .. }) if is_missing(&source) => {}
                Err(e) => return Err(e),
            }
        }
        parts.sort_by_key(|p| (p.number, p.meta.mtime_ms));
        Ok(parts)
    }

    /// Every upload in progress in `bck`, sorted by key then initiation time.
    pub fn list_uploads(&self, bck: &Bck) -> Result<Vec<Upload>> {
        let mut uploads = Vec::new();
        for mp in self.mountpaths() {
            let dir = layout::bucket_dir(&mp.root, bck).join(UPLOADS_DIR);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for entry in entries.flatten() {
                if let Ok(bytes) = fs::read(entry.path().join(UPLOAD_FILE)) {
                    if let Ok(up) = serde_json::from_slice::<Upload>(&bytes) {
                        uploads.push(up);
                    }
                }
            }
        }
        uploads.sort_by(|a, b| (a.key.as_bytes(), a.initiated_ms).cmp(&(b.key.as_bytes(), b.initiated_ms)));
        Ok(uploads)
    }

    pub fn abort_upload(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<()> {
        self.get_upload(bck, key, upload_id)?;
        let dir = self.upload_dir(bck, key, upload_id)?;
        fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))
    }

    /// Checks the part list and concatenates the chosen parts into a staged file. `on_data`, when given, sees
    /// every byte in order (for full-object checksums); otherwise the copy stays in the kernel. The caller builds
    /// the final metadata (ETag from [`multipart_etag`]) and commits, then calls [`Store::finish_upload`].
    pub fn assemble_upload(
        &self,
        bck: &Bck,
        key: &str,
        upload_id: &str,
        wanted: &[CompletedPart],
        mut on_data: Option<&mut DataSink<'_>>,
    ) -> Result<std::result::Result<Assembled, CompleteError>> {
        let upload = self.get_upload(bck, key, upload_id)?;
        let have = self.part_versions(bck, key, upload_id)?;
        let chosen = match choose_parts(&have, wanted) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let dir = self.upload_dir(bck, key, upload_id)?;
        let mut staged = self.stage(bck, key)?;
        let mut buf = vec![0u8; if on_data.is_some() { 1 << 20 } else { 0 }];
        for part in &chosen {
            let path = dir.join(part_file_name(part.number, &part.meta.etag));
            let mut src = File::open(&path).map_err(|e| Error::io(&path, e))?;
            match on_data.as_mut() {
                None => {
                    io::copy(&mut src, &mut staged.file).map_err(|e| Error::io(staged.path(), e))?;
                }
                Some(f) => loop {
                    let n = io::Read::read(&mut src, &mut buf).map_err(|e| Error::io(&path, e))?;
                    if n == 0 {
                        break;
                    }
                    f(&buf[..n]);
                    io::Write::write_all(&mut staged.file, &buf[..n]).map_err(|e| Error::io(staged.path(), e))?;
                },
            }
        }
        Ok(Ok((upload, chosen, staged)))
    }

    /// Removes a completed upload's parts.
    pub fn finish_upload(&self, bck: &Bck, key: &str, upload_id: &str) -> Result<()> {
        let dir = self.upload_dir(bck, key, upload_id)?;
        fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))
    }
}

/// A stored part: its number and the MD5 of its bytes, so concurrent uploads of one number do not collide.
fn part_file_name(number: u32, etag: &str) -> String {
    format!("{number:05}.{etag}")
}

/// S3's multipart ETag: MD5 of the concatenated binary MD5s of the parts, then `-N`.
pub fn multipart_etag(parts: &[Part]) -> String {
    etag_of(parts.iter().map(|p| p.meta.etag.as_str()))
}

/// The multipart ETag from the part ETags a client listed (to recognise a repeated CompleteMultipartUpload).
pub fn multipart_etag_of_list(parts: &[CompletedPart]) -> String {
    etag_of(parts.iter().map(|p| p.etag.trim_matches('"')))
}

fn etag_of<'a>(etags: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = etags.len();
    let mut md5s = Md5::new();
    for e in etags {
        md5s.update(hex::decode(e).unwrap_or_default());
    }
    format!("{}-{n}", hex::encode(md5s.finalize()))
}

fn choose_parts(have: &[Part], wanted: &[CompletedPart]) -> std::result::Result<Vec<Part>, CompleteError> {
    if wanted.is_empty() {
        return Err(CompleteError::Empty);
    }
    if wanted.len() > MAX_PARTS {
        return Err(CompleteError::TooManyParts);
    }
    // Every stored version by (number, ETag), the newest winning: one pass, then a lookup per listed part.
    let mut by_tag: std::collections::HashMap<(u32, &str), &Part> =
        std::collections::HashMap::with_capacity(have.len());
    for p in have {
        by_tag.insert((p.number, p.meta.etag.as_str()), p);
    }
    let mut chosen: Vec<Part> = Vec::with_capacity(wanted.len());
    for w in wanted {
        // A part listed twice in a row (uploaded twice, e.g. racing itself) counts once: the later entry wins,
        // and its bytes are the copy with that ETag.
        if chosen.last().is_some_and(|p| p.number == w.number) {
            chosen.pop();
        }
        if chosen.last().is_some_and(|p| p.number > w.number) {
            return Err(CompleteError::InvalidPartOrder);
        }
        let etag = w.etag.trim_matches('"');
        let part = by_tag.get(&(w.number, etag)).ok_or(CompleteError::InvalidPart(w.number))?;
        chosen.push((*part).clone());
    }
    let last = chosen.len() - 1;
    if let Some(small) = chosen[..last].iter().find(|p| p.meta.size < MIN_PART_SIZE) {
        return Err(CompleteError::EntityTooSmall(small.number));
    }
    Ok(chosen)
}
