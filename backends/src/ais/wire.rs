//! AIS's wire shapes as a client reads them: object properties in response headers, list-objects pages (JSON
//! with AIS's Go names or Trove's, or msgpack), and error bodies (`{"message", "status", ...}`).

use serde::Deserialize;

use crate::{Error, ObjectMeta};

/// One page of a listing (`LsoRes`), whichever encoding and field names the cluster used.
#[derive(Debug, Default, Deserialize)]
pub struct LsoRes {
    #[serde(default, alias = "ContinuationToken")]
    pub continuation_token: String,
    #[serde(default, alias = "Entries")]
    pub entries: Vec<LsoEnt>,
}

/// One entry of a listing page (`LsoEnt`: long names in AIS's JSON, short ones in msgpack and Trove's JSON).
#[derive(Debug, Default, Deserialize)]
pub struct LsoEnt {
    #[serde(alias = "n")]
    pub name: String,
    #[serde(default, alias = "cs")]
    pub checksum: String,
    #[serde(default, alias = "v")]
    pub version: String,
    #[serde(default, alias = "s", deserialize_with = "number_or_string")]
    pub size: u64,
}

/// AIS writes int64s as JSON strings; msgpack and Trove as numbers.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(n),
        N::Str(s) if s.is_empty() => Ok(0),
        N::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Decodes a listing page by its content type.
pub fn parse_page(content_type: &str, body: &[u8]) -> Result<LsoRes, Error> {
    if content_type.contains("msgpack") {
        rmp_serde::from_slice(body).map_err(|e| Error::Other(format!("a list page in msgpack: {e}")))
    } else {
        serde_json::from_slice(body).map_err(|e| Error::Other(format!("a list page: {e}")))
    }
}

/// An object's properties from the headers of a GET or HEAD. Its identity for the cache is the ETag when the
/// cluster sends one, else its checksum; its version is `Ais-Version`.
pub fn meta_of(headers: &http::HeaderMap) -> ObjectMeta {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let total = text("content-range")
        .and_then(|r| r.rsplit('/').next())
        .and_then(|t| t.parse().ok())
        .or_else(|| text("ais-size").and_then(|s| s.parse().ok()))
        .or_else(|| text("content-length").and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    let etag =
        text("etag").map(|e| e.trim_matches('"').to_owned()).or_else(|| text("ais-checksum-value").map(str::to_owned));
    let last_modified_ms = text("last-modified")
        .and_then(|d| time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc2822).ok())
        .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    ObjectMeta {
        size: total,
        etag: etag.unwrap_or_default(),
        last_modified_ms,
        version: text("ais-version").map(str::to_owned),
        content_type: text("content-type").map(str::to_owned),
        ..Default::default()
    }
}

/// The error of a failed call: AIS's JSON message when the body has one.
pub fn error_of(status: u16, body: &[u8], bucket: &str, key: &str) -> Error {
    #[derive(Deserialize)]
    struct AisError {
        message: String,
    }
    let message = serde_json::from_slice::<AisError>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).trim().chars().take(500).collect());
    Error::from_status(status, None, &message, bucket, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_in_every_shape() {
        // AIStore's JSON: long names, sizes as strings.
        let ais = br#"{"uuid":"x","continuation_token":"next","flags":"0",
            "entries":[{"name":"a/1","checksum":"c1","version":"2","size":"10","flags":64}]}"#;
        let p = parse_page("application/json", ais).unwrap();
        assert_eq!(p.continuation_token, "next");
        assert_eq!((p.entries[0].name.as_str(), p.entries[0].size, p.entries[0].version.as_str()), ("a/1", 10, "2"));
        // Trove's JSON and msgpack: the short names.
        let trove = br#"{"UUID":"x","ContinuationToken":"","Flags":0,"Entries":[{"n":"b","cs":"e","a":"","v":"","t":"","s":7,"c":1,"f":64}]}"#;
        let p = parse_page("application/json", trove).unwrap();
        assert_eq!((p.entries[0].name.as_str(), p.entries[0].size, p.entries[0].checksum.as_str()), ("b", 7, "e"));
        #[derive(serde::Serialize)]
        struct Ent<'a> {
            n: &'a str,
            s: u64,
        }
        #[derive(serde::Serialize)]
        struct Res<'a> {
            #[serde(rename = "ContinuationToken")]
            token: &'a str,
            #[serde(rename = "Entries")]
            entries: Vec<Ent<'a>>,
        }
        let packed = rmp_serde::to_vec_named(&Res { token: "t2", entries: vec![Ent { n: "m", s: 3 }] }).unwrap();
        let p = parse_page("application/msgpack", &packed).unwrap();
        assert_eq!((p.continuation_token.as_str(), p.entries[0].name.as_str(), p.entries[0].size), ("t2", "m", 3));
    }

    #[test]
    fn object_properties_from_headers() {
        let mut h = http::HeaderMap::new();
        h.insert("content-length", "5".parse().unwrap());
        h.insert("content-range", "bytes 0-4/100".parse().unwrap());
        h.insert("ais-checksum-value", "abc".parse().unwrap());
        h.insert("ais-version", "3".parse().unwrap());
        h.insert("last-modified", "Sun, 06 Dec 2026 10:00:00 GMT".parse().unwrap());
        let m = meta_of(&h);
        assert_eq!((m.size, m.etag.as_str(), m.version.as_deref()), (100, "abc", Some("3")));
        assert_eq!(m.last_modified_ms, 1_796_551_200_000);
        h.insert("etag", "\"md5hex\"".parse().unwrap());
        assert_eq!(meta_of(&h).etag, "md5hex");
    }

    #[test]
    fn ais_error_bodies() {
        let body = br#"{"message":"bucket \"ais://nope\" does not exist","method":"HEAD","status":404}"#;
        assert!(matches!(error_of(404, body, "nope", ""), Error::NoSuchBucket(_)));
        match error_of(400, br#"{"message":"bad flag","status":400}"#, "b", "k") {
            Error::Invalid(m) => assert!(m.contains("bad flag")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(error_of(503, b"busy", "b", "k"), Error::Unavailable { .. }));
    }
}
