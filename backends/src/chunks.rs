//! Cutting a byte stream into fixed-size chunks, so providers that take uploads in pieces (S3 parts, GCS
//! resumable chunks, Azure blocks) stream an object of any size with one chunk in memory.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::ByteStream;

pub struct Chunker {
    body: ByteStream,
    size: usize,
    carry: Option<Bytes>,
    done: bool,
}

impl Chunker {
    pub fn new(body: ByteStream, size: usize) -> Chunker {
        Chunker { body, size, carry: None, done: false }
    }

    /// The next chunk of exactly `size` bytes, or fewer for the last one; `None` at the end. An empty stream
    /// yields one empty chunk, so "upload nothing" is still one upload.
    pub async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = BytesMut::new();
        loop {
            let piece = match self.carry.take() {
                Some(p) => p,
                None => match self.body.next().await {
                    Some(p) => p?,
                    None => {
                        self.done = true;
                        return Ok(Some(buf.freeze()));
                    }
                },
            };
            let room = self.size - buf.len();
            if piece.len() > room {
                buf.extend_from_slice(&piece[..room]);
                self.carry = Some(piece.slice(room..));
            } else {
                buf.extend_from_slice(&piece);
            }
            if buf.len() == self.size {
                // Look ahead so a stream that ends exactly at a chunk boundary does not produce an empty tail.
                if self.carry.is_none() {
                    match self.body.next().await {
                        Some(p) => self.carry = Some(p?),
                        None => self.done = true,
                    }
                }
                return Ok(Some(buf.freeze()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pieces: &[&'static [u8]]) -> ByteStream {
        Box::pin(futures::stream::iter(pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>()))
    }

    async fn all(mut c: Chunker) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(b) = c.next().await.unwrap() {
            v.push(b.to_vec());
        }
        v
    }

    #[tokio::test]
    async fn cuts_at_boundaries() {
        assert_eq!(
            all(Chunker::new(stream(&[b"abc", b"defg", b"h"]), 3)).await,
            vec![b"abc".to_vec(), b"def".to_vec(), b"gh".to_vec()]
        );
        assert_eq!(all(Chunker::new(stream(&[b"abcdef"]), 3)).await, vec![b"abc".to_vec(), b"def".to_vec()]);
        assert_eq!(all(Chunker::new(stream(&[]), 3)).await, vec![Vec::<u8>::new()]);
        assert_eq!(all(Chunker::new(stream(&[b"ab"]), 3)).await, vec![b"ab".to_vec()]);
    }
}
