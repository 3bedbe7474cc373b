//! Values that cross the backend seam.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

/// A body in flight. Errors are I/O errors so any byte source (file, socket, SDK stream) fits.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A resolved or suffix byte range, as S3 `Range` headers express them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive) or `bytes=first-` (`last = None`).
    FromTo { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
    pub fn header(&self) -> String {
        match *self {
            ByteRange::FromTo { first, last: Some(l) } => format!("bytes={first}-{l}"),
            ByteRange::FromTo { first, last: None } => format!("bytes={first}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }

    /// Parses a `Range` header of one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`); `None` for anything else.
    pub fn parse(header: &str) -> Option<ByteRange> {
        let spec = header.trim().strip_prefix("bytes=")?;
        let (a, b) = spec.split_once('-')?;
        let num = |t: &str| if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) { None } else { t.parse().ok() };
        if a.is_empty() {
            return num(b).map(ByteRange::Suffix);
        }
        let first = num(a)?;
        if b.is_empty() {
            return Some(ByteRange::FromTo { first, last: None });
        }
        let last = num(b)?;
        (last >= first).then_some(ByteRange::FromTo { first, last: Some(last) })
    }

    /// Turns the range into `[start, end)` for an object of `size` bytes; `None` when it is unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::FromTo { first, last } => {
                if first >= size {
                    return None;
                }
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                (end > first).then_some((first, end))
            }
            ByteRange::Suffix(n) => (n > 0 && size > 0).then(|| (size.saturating_sub(n), size)),
        }
    }
}

/// Object attributes as S3 describes them; cloud providers map theirs onto these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Without quotes. S3: its ETag; GCS: hex MD5 when the object has one, else its etag; Azure: its ETag.
    pub etag: String,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// The provider's version of the object (S3 version id, GCS generation), when it has one.
    pub version: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub user_meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    pub range: Option<ByteRange>,
    pub if_match: Option<String>,
}

pub struct GetResult {
    pub meta: ObjectMeta,
    /// `[start, end)` of the bytes in `body`.
    pub range: (u64, u64),
    pub body: ByteStream,
}

/// A body that can be read again from the start: uploads are retried, and cut into parts, from it.
#[derive(Clone)]
pub struct Payload {
    pub size: u64,
    /// Opens a stream of the body from `offset` to the end.
    pub open: Arc<dyn Fn(u64) -> ByteStream + Send + Sync>,
}

impl Payload {
    /// A payload held in memory (tests, small control objects).
    pub fn from_bytes(b: Bytes) -> Payload {
        Payload {
            size: b.len() as u64,
            open: Arc::new(move |off| {
                let rest = b.slice((off as usize).min(b.len())..);
                Box::pin(futures::stream::iter([Ok(rest)]))
            }),
        }
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.size)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub token: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone)]
pub struct ListEntry {
    pub key: String,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::ByteRange::*;

    #[test]
    fn resolve_ranges() {
        assert_eq!(FromTo { first: 0, last: Some(4) }.resolve(10), Some((0, 5)));
        assert_eq!(FromTo { first: 5, last: None }.resolve(10), Some((5, 10)));
        assert_eq!(FromTo { first: 5, last: Some(100) }.resolve(10), Some((5, 10)));
        assert_eq!(FromTo { first: 10, last: None }.resolve(10), None);
        assert_eq!(Suffix(3).resolve(10), Some((7, 10)));
        assert_eq!(Suffix(30).resolve(10), Some((0, 10)));
        assert_eq!(Suffix(0).resolve(10), None);
        assert_eq!(Suffix(3).resolve(0), None);
    }

    #[test]
    fn range_headers() {
        assert_eq!(FromTo { first: 1, last: Some(5) }.header(), "bytes=1-5");
        assert_eq!(FromTo { first: 7, last: None }.header(), "bytes=7-");
        assert_eq!(Suffix(9).header(), "bytes=-9");
    }
}

#[cfg(test)]
mod range_props {
    use super::ByteRange;
    use proptest::prelude::*;

    fn range() -> impl Strategy<Value = ByteRange> {
        prop_oneof![
            (0u64..1 << 40, proptest::option::of(0u64..1 << 40))
                .prop_map(|(first, len)| ByteRange::FromTo { first, last: len.map(|l| first + l) }),
            (0u64..1 << 40).prop_map(ByteRange::Suffix),
        ]
    }

    proptest! {
        #[test]
        fn header_parses_back(r in range()) {
            prop_assert_eq!(ByteRange::parse(&r.header()), Some(r));
        }

        #[test]
        fn resolved_ranges_stay_inside_the_object(r in range(), size in 0u64..1 << 41) {
            if let Some((start, end)) = r.resolve(size) {
                prop_assert!(start < end && end <= size);
            }
        }

        #[test]
        fn parse_never_panics(s in proptest::collection::vec(any::<char>(), 0..40).prop_map(|v| v.into_iter().collect::<String>())) {
            let _ = ByteRange::parse(&s);
            let _ = ByteRange::parse(&format!("bytes={s}"));
        }
    }

    #[test]
    fn malformed_ranges() {
        for bad in ["", "bytes=", "bytes=-", "bytes=5-3", "bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=+1-2"] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
        assert_eq!(ByteRange::parse("bytes=0-"), Some(ByteRange::FromTo { first: 0, last: None }));
        assert_eq!(ByteRange::parse("bytes=-5"), Some(ByteRange::Suffix(5)));
    }
}
