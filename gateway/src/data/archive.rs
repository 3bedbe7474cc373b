//! Files inside archive objects ("shards": TAR, TAR.GZ/TGZ, ZIP, TAR.LZ4), as AIS serves them: one file by its
//! path (`archpath`), the files whose names match (regex, prefix, suffix, substring or WebDataset key) as a new
//! TAR, and a shard's table of contents for listings. Archives are read on blocking threads and their bytes
//! stream out through a small bounded channel, so memory stays bounded whatever the shard's size. A file of an
//! uncompressed TAR is served straight from its byte range, found through the shard's table of contents, which
//! is kept per shard version (key, ETag, time) after the first read: later reads take one seek, not a scan.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use trove_backends::ByteStream;
use trove_cache::ObjMeta;

use super::Error;

mod index;
mod transcode;
pub use index::Index;
pub use transcode::from_tar;

/// The archive formats AIS reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    Zip,
    TarLz4,
}

impl Format {
    /// By the object name's extension (AIS's `.tar .tgz .tar.gz .zip .tar.lz4`).
    pub fn from_name(name: &str) -> Option<Format> {
        let n = name.to_ascii_lowercase();
        [
            (".tar.gz", Format::TarGz),
            (".tgz", Format::TarGz),
            (".tar.lz4", Format::TarLz4),
            (".tar", Format::Tar),
            (".zip", Format::Zip),
        ]
        .into_iter()
        .find(|(ext, _)| n.ends_with(ext))
        .map(|(_, f)| f)
    }

    /// A format named by a MIME-ish string (`archmime`): `application/zip`, `tar`, `.tgz`, `tar.gz`...
    pub fn from_mime(m: &str) -> Option<Format> {
        let m = m.to_ascii_lowercase();
        if m.contains("tar.gz") || m.contains("tgz") || m.contains("gzip") {
            Some(Format::TarGz)
        } else if m.contains("tar.lz4") || m.contains("lz4") {
            Some(Format::TarLz4)
        } else if m.contains("zip") {
            Some(Format::Zip)
        } else if m.contains("tar") {
            Some(Format::Tar)
        } else {
            None
        }
    }

    /// By the file's first bytes (`ustar` at 257, gzip, zip, lz4 frame magic).
    fn from_magic(file: &File) -> Option<Format> {
        let mut head = [0u8; 262];
        let n = read_at(file, 0, &mut head).ok()?;
        let head = &head[..n];
        if head.len() >= 262 && &head[257..262] == b"ustar" {
            Some(Format::Tar)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(Format::TarGz)
        } else if head.starts_with(b"PK") {
            Some(Format::Zip)
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some(Format::TarLz4)
        } else {
            None
        }
    }

    /// What a response carrying this format says it is.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::TarGz => "application/gzip",
            Format::Zip => "application/zip",
            Format::TarLz4 => "application/x-lz4",
        }
    }

    /// The extension a file of this format is named with (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tgz",
            Format::Zip => "zip",
            Format::TarLz4 => "tar.lz4",
        }
    }
}

fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Reads a shared file by position (`pread`): handles kept open for other readers share one file offset, so
/// nothing here may move it.
pub struct At {
    file: Arc<File>,
    pos: u64,
}

impl At {
    pub fn new(file: Arc<File>) -> At {
        At { file, pos: 0 }
    }
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for At {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let len = self.file.metadata()?.len();
        let target = match to {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// The format of the shard `name` (`mime` first, then its extension, then its bytes).
pub fn format_of(file: &File, name: &str, mime: Option<&str>) -> Result<Format, Error> {
    mime.filter(|m| !m.is_empty())
        .and_then(Format::from_mime)
        .or_else(|| Format::from_name(name))
        .or_else(|| Format::from_magic(file))
        .ok_or_else(|| Error::InvalidArchive(format!("{name} is not an archive (TAR, TGZ, ZIP or TAR.LZ4)")))
}

/// How archived names are selected (AIS's `archmode`).
#[derive(Debug, Clone)]
pub enum Selection {
    Regexp(regex::Regex),
    Prefix(String),
    Suffix(String),
    Substr(String),
    /// WebDataset key: the name without its last extension (`a/b.cls.txt` has key `a/b.cls`).
    WdsKey(String),
}

impl Selection {
    pub fn parse(mode: &str, pattern: &str) -> Result<Selection, Error> {
        Ok(match mode {
            "" | "*" | "prefix" => Selection::Prefix(pattern.to_owned()),
            "regexp" => Selection::Regexp(
                regex::RegexBuilder::new(pattern)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Error::InvalidArchive(format!("invalid archregx: {e}")))?,
            ),
            "suffix" => Selection::Suffix(pattern.to_owned()),
            "substr" => Selection::Substr(pattern.to_owned()),
            "wdskey" => Selection::WdsKey(pattern.to_owned()),
            other => {
                return Err(Error::InvalidArchive(format!(
                    "invalid matching mode {other:?}, expecting one of: [regexp prefix suffix substr wdskey]"
                )))
            }
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        match self {
            Selection::Regexp(r) => r.is_match(name),
            Selection::Prefix(p) => name.starts_with(p.as_str()),
            Selection::Suffix(s) => name.ends_with(s.as_str()),
            Selection::Substr(s) => name.contains(s.as_str()),
            Selection::WdsKey(k) => wds_key(name) == k,
        }
    }
}

fn wds_key(name: &str) -> &str {
    let name = name.strip_prefix('/').unwrap_or(name);
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[base_start..].rfind('.') {
        Some(dot) if dot > 0 => &name[..base_start + dot],
        _ => name,
    }
}

/// One archived file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub name: String,
    pub size: u64,
    /// Where its bytes start in an uncompressed TAR.
    pub offset: Option<u64>,
    pub mtime: u64,
}

/// Archived names compare without one leading `/`.
fn same_name(a: &str, b: &str) -> bool {
    a.strip_prefix('/').unwrap_or(a) == b.strip_prefix('/').unwrap_or(b)
}

/// Opens the decompressed TAR stream of a TAR-family shard.
fn tar_reader(file: Arc<File>, format: Format) -> Box<dyn Read + Send> {
    let file = std::io::BufReader::with_capacity(256 << 10, At::new(file));
    match format {
        Format::TarGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Format::TarLz4 => Box::new(lz4_flex::frame::FrameDecoder::new(file)),
        _ => Box::new(file),
    }
}

fn io(e: std::io::Error) -> Error {
    Error::InvalidArchive(format!("the archive cannot be read: {e}"))
}

fn zip_error(e: zip::result::ZipError) -> Error {
    Error::InvalidArchive(format!("the archive cannot be read: {e}"))
}

/// The shard's regular files in stored order (blocking).
pub fn contents(file: Arc<File>, format: Format) -> Result<Vec<Member>, Error> {
    let mut out = Vec::new();
    if format == Format::Zip {
        let mut z = zip::ZipArchive::new(At::new(file)).map_err(zip_error)?;
        for i in 0..z.len() {
            let f = z.by_index_raw(i).map_err(zip_error)?;
            if f.is_file() {
                let name = f.name().map_err(zip_error)?.into_owned();
                out.push(Member { name, size: f.size(), offset: None, mtime: 0 });
            }
        }
        return Ok(out);
    }
    let plain = format == Format::Tar;
    let mut archive = tar::Archive::new(tar_reader(file, format));
    for entry in archive.entries().map_err(io)? {
        let entry = entry.map_err(io)?;
        let h = entry.header();
        if !h.entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        out.push(Member {
            name,
            size: h.size().map_err(io)?,
            offset: plain.then(|| entry.raw_file_position()),
            mtime: h.mtime().unwrap_or(0),
        });
    }
    Ok(out)
}

/// The table of contents of this node's copy of shard `key` (`NoSuchKey` when there is none here).
pub async fn local_toc(
    state: &crate::state::SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
) -> Result<Arc<Vec<Member>>, Error> {
    let (st, bck, key) = (state.clone(), bck.clone(), key.to_owned());
    super::blocking(move || {
        let open = st.store.open_cached(&bck, &key)?;
        if open.meta.sse.is_some() {
            return Err(Error::NotImplemented("listing the files of an encrypted archive"));
        }
        let format = format_of(&open.file, &key, None)?;
        st.shards.toc(&bck.name, &open.meta, &open.file, format)
    })
    .await
}

/// The table of contents of shard `key`, wherever in the cluster it is kept.
pub async fn toc(
    state: &crate::state::SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
) -> Result<Arc<Vec<Member>>, Error> {
    match local_toc(state, bck, key).await {
        Err(Error::NoSuchKey) => match super::peers::archive_toc(state, bck, key).await? {
            Some(t) => Ok(Arc::new(t)),
            None => Err(Error::NoSuchKey),
        },
        other => other,
    }
}

/// What a read of an archived file gives: its size and its bytes.
pub enum Extracted {
    /// A byte range of the shard file itself (uncompressed TAR).
    Range { file: Arc<File>, start: u64, end: u64 },
    /// Bytes decompressed on a blocking thread.
    Stream { size: u64, body: ByteStream },
}

/// One archived file by name (404 when the shard has none by that name).
pub async fn read_one(
    index: &Index,
    bucket: &str,
    file: Arc<File>,
    meta: &ObjMeta,
    format: Format,
    archpath: &str,
) -> Result<Extracted, Error> {
    let archpath = archpath.to_owned();
    if format == Format::Tar {
        let f = file.clone();
        let toc = {
            let (bucket, meta, index) = (bucket.to_owned(), meta.clone(), index.clone());
            super::blocking(move || index.toc(&bucket, &meta, &f, format)).await?
        };
        let m = toc.iter().find(|m| same_name(&m.name, &archpath)).ok_or(Error::NoSuchKey)?;
        let start = m.offset.unwrap_or(0);
        return Ok(Extracted::Range { file, start, end: start + m.size });
    }
    // Compressed: find the file, then stream it out of the decoder.
    let (tx, body) = channel();
    let f = file.clone();
    let (size_tx, size_rx) = tokio::sync::oneshot::channel::<Result<u64, Error>>();
    tokio::task::spawn_blocking(move || {
        let mut size_tx = Some(size_tx);
        let mut report = |r: Result<u64, Error>| {
            if let Some(t) = size_tx.take() {
                let _ = t.send(r);
            }
        };
        let mut out = ChannelWriter::new(tx);
        if format == Format::Zip {
            let found = zip::ZipArchive::new(At::new(f)).map_err(zip_error).and_then(|mut z| {
                let idx = (0..z.len())
                    .find(|i| z.name_for_index(*i).is_some_and(|n| n.is_ok_and(|n| same_name(&n, &archpath))));
                let Some(idx) = idx else { return Err(Error::NoSuchKey) };
                let mut entry = z.by_index(idx).map_err(zip_error)?;
                report(Ok(entry.size()));
                std::io::copy(&mut entry, &mut out).map_err(io)?;
                Ok(())
            });
            if let Err(e) = found {
                report(Err(e));
            }
        } else {
            let mut archive = tar::Archive::new(tar_reader(f, format));
            let found = (|| {
                for entry in archive.entries().map_err(io)? {
                    let mut entry = entry.map_err(io)?;
                    if entry.header().entry_type().is_file()
                        && same_name(&String::from_utf8_lossy(&entry.path_bytes()), &archpath)
                    {
                        report(Ok(entry.header().size().map_err(io)?));
                        std::io::copy(&mut entry, &mut out).map_err(io)?;
                        return Ok(());
                    }
                }
                Err(Error::NoSuchKey)
            })();
            if let Err(e) = found {
                report(Err(e));
            }
        }
        let _ = out.flush();
    });
    let size = size_rx.await.map_err(|_| Error::Internal("archive reader stopped".into()))??;
    Ok(Extracted::Stream { size, body })
}

/// The files whose names `sel` selects, as a new TAR (their original names, sizes and times), streamed. The
/// first match is looked for before answering: no match is 404.
pub async fn select(file: Arc<File>, format: Format, sel: Selection) -> Result<ByteStream, Error> {
    let (tx, body) = channel();
    let f = file.clone();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), Error>>();
    tokio::task::spawn_blocking(move || {
        let mut first_tx = Some(first_tx);
        let mut report = |r: Result<(), Error>| {
            if let Some(t) = first_tx.take() {
                let _ = t.send(r);
            }
        };
        let mut builder = tar::Builder::new(ChannelWriter::new(tx));
        let mut add = |name: &str, size: u64, mtime: u64, data: &mut dyn Read| -> Result<(), Error> {
            report(Ok(()));
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut h, name, data).map_err(io)
        };
        let done: Result<(), Error> = (|| {
            if format == Format::Zip {
                let mut z = zip::ZipArchive::new(At::new(f)).map_err(zip_error)?;
                for i in 0..z.len() {
                    let mut entry = z.by_index(i).map_err(zip_error)?;
                    let name = entry.name().map_err(zip_error)?.into_owned();
                    if entry.is_file() && sel.matches(&name) {
                        let size = entry.size();
                        add(&name, size, 0, &mut entry)?;
                    }
                }
            } else {
                let mut archive = tar::Archive::new(tar_reader(f, format));
                for entry in archive.entries().map_err(io)? {
                    let mut entry = entry.map_err(io)?;
                    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                    if entry.header().entry_type().is_file() && sel.matches(&name) {
                        let (size, mtime) = (entry.header().size().map_err(io)?, entry.header().mtime().unwrap_or(0));
                        add(&name, size, mtime, &mut entry)?;
                    }
                }
            }
            Ok(())
        })();
        match done {
            Err(e) => report(Err(e)),
            Ok(()) => {
                report(Err(Error::NoSuchKey));
                let _ = builder.finish();
            }
        }
    });
    first_rx.await.map_err(|_| Error::Internal("archive reader stopped".into()))??;
    Ok(body)
}

/// A bounded channel of chunks read on a blocking thread, as a byte stream.
fn channel() -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, ByteStream) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (tx, Box::pin(body))
}

/// `Write` into the channel in 256 KiB chunks; fails once the reader is gone (the client left).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl ChannelWriter {
    fn new(tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> ChannelWriter {
        ChannelWriter { tx, buf: Vec::with_capacity(CHUNK) }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the reader went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// How a PUT into a shard treats the shard it finds (AIS's `Ais-Pine` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// No flag: a new archive holding only this file replaces the object.
    Replace,
    /// `1`: add the file to the existing archive (404 when there is none).
    Append,
    /// `2`: add the file, creating the archive when there is none.
    AppendOrCreate,
}

impl PutMode {
    pub fn parse(flags: Option<&str>) -> Result<PutMode, Error> {
        match flags.map(str::trim) {
            None | Some("" | "0") => Ok(PutMode::Replace),
            Some("1") => Ok(PutMode::Append),
            Some("2") => Ok(PutMode::AppendOrCreate),
            Some(other) => Err(Error::InvalidArchive(format!("invalid Ais-Pine flags {other:?}"))),
        }
    }
}

/// Writes into `out` a new archive of `format`: the files of `existing` (when given) in their order, then
/// `name` with the bytes of `file` (`size` bytes). Returns the archive's size and MD5 (blocking).
pub fn write_with(
    existing: Option<Arc<File>>,
    format: Format,
    name: &str,
    file: &mut File,
    size: u64,
    out: &File,
) -> Result<(u64, [u8; 16]), Error> {
    let mut w = ArchiveWriter::new(format, out.try_clone().map_err(io)?);
    if let Some(old) = existing {
        w.copy_from(old, format)?;
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    w.add(name, size, now, &mut file.take(size))?;
    w.finish()
}

type Sink = Hashing<Box<dyn Write + Send>>;

/// A new archive being written, one file after the other, into a file or a stream (blocking); its size and
/// MD5 are computed on the way.
pub struct ArchiveWriter {
    inner: Inner,
    /// The file written, synced at the end.
    file: Option<File>,
}

enum Inner {
    Tar(tar::Builder<Sink>),
    TarGz(tar::Builder<flate2::write::GzEncoder<Sink>>),
    TarLz4(tar::Builder<lz4_flex::frame::FrameEncoder<Sink>>),
    Zip(Box<zip::ZipWriter<zip::write::StreamWriter<Sink>>>),
}

impl ArchiveWriter {
    pub fn new(format: Format, out: File) -> ArchiveWriter {
        let file = out.try_clone().ok();
        ArchiveWriter { file, ..Self::into_writer(format, Box::new(std::io::BufWriter::with_capacity(1 << 20, out))) }
    }

    /// An archive written into `out` as it grows (nothing is synced).
    pub fn into_writer(format: Format, out: Box<dyn Write + Send>) -> ArchiveWriter {
        use md5::Digest as _;
        let sink = Hashing { out, md5: md5::Md5::new(), n: 0 };
        let inner = match format {
            Format::Tar => Inner::Tar(tar::Builder::new(sink)),
            Format::TarGz => {
                Inner::TarGz(tar::Builder::new(flate2::write::GzEncoder::new(sink, flate2::Compression::default())))
            }
            Format::TarLz4 => Inner::TarLz4(tar::Builder::new(lz4_flex::frame::FrameEncoder::new(sink))),
            Format::Zip => Inner::Zip(Box::new(zip::ZipWriter::new_stream(sink))),
        };
        ArchiveWriter { inner, file: None }
    }

    /// Adds one regular file.
    pub fn add(&mut self, name: &str, size: u64, mtime: u64, data: &mut dyn Read) -> Result<(), Error> {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        let data = &mut data.take(size);
        match &mut self.inner {
            Inner::Tar(b) => b.append_data(&mut h, name, data).map_err(io),
            Inner::TarGz(b) => b.append_data(&mut h, name, data).map_err(io),
            Inner::TarLz4(b) => b.append_data(&mut h, name, data).map_err(io),
            Inner::Zip(z) => {
                let opts =
                    zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
                z.start_file(name, opts).map_err(zip_error)?;
                std::io::copy(data, z.as_mut()).map(|_| ()).map_err(io)
            }
        }
    }

    /// Adds every regular file of the archive `existing` (of `format`), in its order.
    pub fn copy_from(&mut self, existing: Arc<File>, format: Format) -> Result<(), Error> {
        if format == Format::Zip {
            let mut r = zip::ZipArchive::new(At::new(existing)).map_err(zip_error)?;
            for i in 0..r.len() {
                let mut f = r.by_index(i).map_err(zip_error)?;
                if f.is_file() {
                    let (name, size) = (f.name().map_err(zip_error)?.into_owned(), f.size());
                    self.add(&name, size, 0, &mut f)?;
                }
            }
            return Ok(());
        }
        let mut archive = tar::Archive::new(tar_reader(existing, format));
        for entry in archive.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let (size, mtime) = (entry.header().size().map_err(io)?, entry.header().mtime().unwrap_or(0));
            self.add(&path, size, mtime, &mut entry)?;
        }
        Ok(())
    }

    /// Ends the archive; its size and MD5.
    pub fn finish(self) -> Result<(u64, [u8; 16]), Error> {
        let sink = match self.inner {
            Inner::Tar(b) => b.into_inner().map_err(io)?,
            Inner::TarGz(b) => b.into_inner().map_err(io)?.finish().map_err(io)?,
            Inner::TarLz4(b) => {
                b.into_inner().map_err(io)?.finish().map_err(|e| Error::InvalidArchive(format!("lz4: {e}")))?
            }
            Inner::Zip(z) => z.finish().map_err(zip_error)?.into_inner(),
        };
        let Hashing { mut out, md5, n } = sink;
        out.flush().map_err(io)?;
        drop(out);
        if let Some(f) = self.file {
            f.sync_data().map_err(io)?;
        }
        use md5::Digest as _;
        Ok((n, md5.finalize().into()))
    }
}

/// A writer that counts and hashes what passes through it.
pub struct Hashing<W: Write> {
    out: W,
    md5: md5::Md5,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        use md5::Digest as _;
        let n = self.out.write(data)?;
        self.md5.update(&data[..n]);
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
