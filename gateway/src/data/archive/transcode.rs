//! A TAR stream re-encoded on the fly as another archive format (TGZ, TAR.LZ4, ZIP): a blocking thread reads
//! the TAR's entries as their bytes arrive and writes each into the new archive, whose bytes flow out through
//! a bounded channel. Nothing is held but the chunks in flight.

use std::io::Read;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use trove_backends::ByteStream;

use super::{channel, io, ArchiveWriter, ChannelWriter, Error, Format};

/// `tar` as `format` (`tar` itself for TAR).
pub fn from_tar(format: Format, tar: ByteStream) -> ByteStream {
    if format == Format::Tar {
        return tar;
    }
    let (tx, body) = channel();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let failed = tx.clone();
        let reader = StreamReader { stream: tar, handle, chunk: Bytes::new() };
        let written = (|| -> Result<(), Error> {
            let mut out = ArchiveWriter::into_writer(format, Box::new(ChannelWriter::new(tx)));
            let mut archive = tar::Archive::new(reader);
            let mut seen = std::collections::HashMap::new();
            for entry in archive.entries().map_err(io)? {
                let mut entry = entry.map_err(io)?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let mut name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                if format == Format::Zip {
                    name = unique(&mut seen, name);
                }
                let (size, mtime) = (entry.header().size().map_err(io)?, entry.header().mtime().unwrap_or(0));
                out.add(&name, size, mtime, &mut entry)?;
            }
            out.finish().map(|_| ())
        })();
        if let Err(e) = written {
            let _ = failed.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    body
}

/// A ZIP cannot hold two files of one name (a batch can ask for an object twice): the n-th repeat of a name
/// gets `~n` before its extension (`a/0001.jpg`, `a/0001~1.jpg`), so the entries stay in order and keep
/// their WebDataset key's extension.
fn unique(seen: &mut std::collections::HashMap<String, usize>, name: String) -> String {
    let n = seen.entry(name.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        return name;
    }
    let base = name.rfind('/').map_or(0, |i| i + 1);
    let renamed = match name[base..].find('.') {
        Some(dot) => format!("{}~{}{}", &name[..base + dot], *n - 1, &name[base + dot..]),
        None => format!("{name}~{}", *n - 1),
    };
    // The new name may itself be taken.
    unique(seen, renamed)
}

/// `Read` over a byte stream, for a blocking thread (each read may wait for the stream's next chunk).
struct StreamReader {
    stream: ByteStream,
    handle: tokio::runtime::Handle,
    chunk: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tar_stream_becomes_each_format() {
        let long = format!("{}/x.bin", "d".repeat(200));
        let big = vec![7u8; 300_000];
        let files: Vec<(&str, &[u8])> =
            vec![("a/1.txt", b"one"), (long.as_str(), &big), ("__404__/b/m", b""), ("a/1.txt", b"again")];
        let tar = tar_of(&files);
        for format in [Format::Tar, Format::TarGz, Format::TarLz4, Format::Zip] {
            // In small chunks, as a batch arrives.
            let chunks: Vec<std::io::Result<Bytes>> = tar.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            let out: Vec<u8> = from_tar(format, Box::pin(futures::stream::iter(chunks)))
                .map(|c| c.unwrap())
                .collect::<Vec<_>>()
                .await
                .concat();
            let file = tempfile_of(&out);
            let got = super::super::contents(std::sync::Arc::new(file), format).unwrap();
            let names: Vec<_> = got.iter().map(|m| (m.name.as_str(), m.size)).collect();
            let again = if format == Format::Zip { "a/1~1.txt" } else { "a/1.txt" };
            assert_eq!(names, [("a/1.txt", 3), (long.as_str(), 300_000), ("__404__/b/m", 0), (again, 5)], "{format:?}");
        }
    }

    fn tempfile_of(bytes: &[u8]) -> std::fs::File {
        use std::io::{Seek, Write};
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }
}
