//! SigV4 for header-signed requests: the signing key, the canonical request and the signature.
//!
//! Used by `trove bench` to sign and by the GET fast path to verify. The fast path only ever *accepts* a
//! signature this module reproduces exactly; anything else goes to s3s, which has the final word (and the
//! precise error). So a difference between the two can cost speed, never let a request in that s3s would refuse.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The day's signing key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// What a header-signed request is signed over.
pub struct Canonical<'a> {
    pub method: &'a str,
    /// The URI path exactly as it appears in the canonical request (already URI-encoded).
    pub path: &'a str,
    /// The canonical query string (`""` when there is none).
    pub query: &'a str,
    /// `(lowercase name, value)` of every signed header, sorted by name.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_hash: &'a str,
}

impl Canonical<'_> {
    fn request(&self) -> String {
        let mut s = String::with_capacity(256);
        s.push_str(self.method);
        s.push('\n');
        s.push_str(self.path);
        s.push('\n');
        s.push_str(self.query);
        s.push('\n');
        for (name, value) in self.headers {
            s.push_str(name);
            s.push(':');
            // Trim and collapse runs of spaces, as SigV4 prescribes.
            let mut first = true;
            for word in value.split(' ').filter(|w| !w.is_empty()) {
                if !first {
                    s.push(' ');
                }
                s.push_str(word);
                first = false;
            }
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.signed_headers());
        s.push('\n');
        s.push_str(self.payload_hash);
        s
    }

    pub fn signed_headers(&self) -> String {
        self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(";")
    }

    /// The raw signature for `amz_date` (`YYYYMMDDTHHMMSSZ`) and `scope` (`date/region/service/aws4_request`).
    pub fn signature_bytes(&self, key: &[u8; 32], amz_date: &str, scope: &str) -> [u8; 32] {
        let mut hash_hex = [0u8; 64];
        let digest = Sha256::digest(self.request().as_bytes());
        hex::encode_to_slice(digest, &mut hash_hex).expect("64 hex digits for 32 bytes");
        let mut to_sign = String::with_capacity(120);
        to_sign.push_str("AWS4-HMAC-SHA256\n");
        to_sign.push_str(amz_date);
        to_sign.push('\n');
        to_sign.push_str(scope);
        to_sign.push('\n');
        to_sign.push_str(std::str::from_utf8(&hash_hex).expect("hex is ASCII"));
        hmac(key, to_sign.as_bytes())
    }

    /// The hex signature, as it appears in the Authorization header.
    pub fn signature(&self, key: &[u8; 32], amz_date: &str, scope: &str) -> String {
        hex::encode(self.signature_bytes(key, amz_date, scope))
    }
}

/// SigV4's URI encoding of a query name or value: unreserved characters stay, every other byte (`/` too)
/// becomes `%XX` in uppercase hex.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend(['%', char::from(HEX[usize::from(b >> 4)]), char::from(HEX[usize::from(b & 0xF)])]);
        }
    }
    out
}

/// Whether a hex signature from a request is `expected`, compared in constant time. Only the canonical
/// lowercase form counts, as in s3s, so the fast path never accepts a spelling that s3s would refuse.
pub fn matches(given_hex: &str, expected: &[u8; 32]) -> bool {
    let mut given = [0u8; 32];
    if given_hex.bytes().any(|b| b.is_ascii_uppercase()) || hex::decode_to_slice(given_hex, &mut given).is_err() {
        return false;
    }
    crate::door::constant_time_eq(&given, expected)
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
/// SignedHeaders=a;b, Signature=hex`.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    pub fn parse(h: &'a str) -> Option<Authorization<'a>> {
        let rest = h.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => return None,
            }
        }
        let mut c = credential?.split('/');
        let (access_key, date, region, service, terminator) = (c.next()?, c.next()?, c.next()?, c.next()?, c.next()?);
        if terminator != "aws4_request" || c.next().is_some() {
            return None;
        }
        let signed_headers: Vec<&str> = signed?.split(';').collect();
        Some(Authorization { access_key, date, region, service, signed_headers, signature: signature? })
    }

    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encoding_keeps_unreserved_bytes_and_escapes_the_rest_in_uppercase() {
        assert_eq!(uri_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(uri_encode("a b/c+d=é*"), "a%20b%2Fc%2Bd%3D%C3%A9%2A");
        assert_eq!(uri_encode(""), "");
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// AWS's documented example: GET /test.txt of examplebucket with a Range header (S3 SigV4 docs,
    /// "Example: GET Object").
    fn example<'a>(headers: &'a [(&'a str, &'a str)]) -> Canonical<'a> {
        Canonical { method: "GET", path: "/test.txt", query: "", headers, payload_hash: EMPTY_SHA256 }
    }

    const HEADERS: [(&str, &str); 4] = [
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", "20130524T000000Z"),
    ];

    #[test]
    fn aws_documentation_vectors() {
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(hex::encode(key), "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
        let sig = example(&HEADERS).signature(&key, "20130524T000000Z", "20130524/us-east-1/s3/aws4_request");
        assert_eq!(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    }

    #[test]
    fn any_change_changes_the_signature() {
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        let scope = "20130524/us-east-1/s3/aws4_request";
        let good = example(&HEADERS).signature(&key, "20130524T000000Z", scope);
        let mut tampered = HEADERS;
        tampered[1] = ("range", "bytes=0-99");
        assert_ne!(example(&tampered).signature(&key, "20130524T000000Z", scope), good);
        let other = Canonical { path: "/test.txT", ..example(&HEADERS) };
        assert_ne!(other.signature(&key, "20130524T000000Z", scope), good);
        let wrong_key = signing_key("not-the-secret", "20130524", "us-east-1", "s3");
        assert_ne!(example(&HEADERS).signature(&wrong_key, "20130524T000000Z", scope), good);
        let raw = example(&HEADERS).signature_bytes(&key, "20130524T000000Z", scope);
        assert!(matches(&good, &raw));
        assert!(!matches(&good.to_uppercase(), &raw), "only the canonical lowercase form");
        assert!(!matches(&good[1..], &raw));
        assert!(!matches(&"0".repeat(64), &raw));
    }

    #[test]
    fn authorization_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let a = Authorization::parse(h).unwrap();
        assert_eq!(
            (a.access_key, a.date, a.region, a.service),
            ("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3")
        );
        assert_eq!(a.signed_headers, vec!["host", "range", "x-amz-content-sha256", "x-amz-date"]);
        assert_eq!(a.scope(), "20130524/us-east-1/s3/aws4_request");
        for bad in [
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
            "AWS Credential=x",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/other, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00, Extra=1",
        ] {
            assert!(Authorization::parse(bad).is_none(), "{bad}");
        }
    }

    fn header_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(prop_oneof![Just(' '), proptest::char::range('!', '~')], 1..30)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest::proptest! {
        /// SigV4 trims values and folds runs of spaces: spacing alone never changes a signature, any other
        /// change of a signed value does.
        #[test]
        fn canonical_values(value in header_value(), other in header_value()) {
            let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
            let scope = "20130524/us-east-1/s3/aws4_request";
            let sign = |v: &str| {
                let headers = [("host", "examplebucket.s3.amazonaws.com"), ("x-amz-meta-a", v)];
                Canonical { method: "GET", path: "/k", query: "", headers: &headers, payload_hash: EMPTY_SHA256 }
                    .signature(&key, "20130524T000000Z", scope)
            };
            let folded = value.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
            let spaced = format!("  {}  ", value.replace(' ', "   "));
            proptest::prop_assert_eq!(sign(&value), sign(&spaced));
            let other_folded = other.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
            if other_folded != folded {
                proptest::prop_assert_ne!(sign(&value), sign(&other));
            }
        }

        #[test]
        fn authorization_parse_never_panics(h in proptest::collection::vec(proptest::char::any(), 0..200)) {
            let h: String = h.into_iter().collect();
            let _ = Authorization::parse(&h);
            let _ = Authorization::parse(&format!("AWS4-HMAC-SHA256 {h}"));
        }
    }
}
