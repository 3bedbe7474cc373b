//! Property tests of the XML request bodies Trove accepts (parsed by s3s before a handler runs): arbitrary
//! bytes and mangled documents never panic the parser, and documents with hostile keys round-trip exactly.

use proptest::prelude::*;
use s3s::dto::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag, Tagging};
use s3s::xml::{Deserialize, Deserializer, Serialize, Serializer};

fn serialize<T: Serialize>(v: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut ser = Serializer::new(&mut buf);
    v.serialize(&mut ser).expect("serializes");
    buf
}

fn parse<'a, T: Deserialize<'a>>(xml: &'a [u8]) -> Option<T> {
    let mut de = Deserializer::new(xml);
    T::deserialize(&mut de).ok()
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('<'),
            Just('>'),
            Just('&'),
            Just('"'),
            Just('\''),
            Just('/'),
            Just(' '),
            proptest::char::range('a', 'z'),
            proptest::char::any().prop_filter("XML 1.0 characters", |c| {
                matches!(*c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            }),
        ],
        1..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse::<Delete>(&bytes);
        let _ = parse::<Tagging>(&bytes);
        let _ = parse::<CompletedMultipartUpload>(&bytes);
    }

    #[test]
    fn truncated_documents_never_panic(keys in proptest::collection::vec(text(), 1..5), cut in 0usize..400) {
        let d = Delete {
            objects: keys.into_iter().map(|k| ObjectIdentifier { key: k, ..Default::default() }).collect(),
            quiet: Some(true),
        };
        let xml = serialize(&d);
        let _ = parse::<Delete>(&xml[..cut.min(xml.len())]);
    }

    #[test]
    fn delete_keys_round_trip(keys in proptest::collection::vec(text(), 1..20)) {
        let d = Delete {
            objects: keys.iter().map(|k| ObjectIdentifier { key: k.clone(), ..Default::default() }).collect(),
            quiet: None,
        };
        let back: Delete = parse(&serialize(&d)).expect("parses its own output");
        let got: Vec<String> = back.objects.into_iter().map(|o| o.key).collect();
        prop_assert_eq!(got, keys);
    }

    #[test]
    fn tags_round_trip(pairs in proptest::collection::vec((text(), text()), 0..10)) {
        let t = Tagging {
            tag_set: pairs.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect(),
        };
        let back: Tagging = parse(&serialize(&t)).expect("parses its own output");
        let got: Vec<(String, String)> =
            back.tag_set.into_iter().map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())).collect();
        prop_assert_eq!(got, pairs);
    }

    #[test]
    fn completed_parts_round_trip(parts in proptest::collection::vec((1i32..=10_000, "[0-9a-f]{32}"), 1..50)) {
        let c = CompletedMultipartUpload {
            parts: Some(parts.iter().map(|(n, e)| CompletedPart {
                part_number: Some(*n),
                e_tag: Some(s3s::dto::ETag::Strong(e.clone())),
                ..Default::default()
            }).collect()),
        };
        let back: CompletedMultipartUpload = parse(&serialize(&c)).expect("parses its own output");
        let got: Vec<(i32, String)> = back.parts.unwrap_or_default().into_iter()
            .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(|e| e.value().to_owned()).unwrap_or_default()))
            .collect();
        prop_assert_eq!(got, parts);
    }
}
