//! Store tests on real temporary directories.

use std::io::{Read, Write};

use trove_namespace::Bck;

use crate::multipart::{CompleteError, CompletedPart, Upload, MIN_PART_SIZE};
use crate::{Error, ObjMeta, Store};

fn store(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = (0..n).map(|i| dir.path().join(format!("mp{i}"))).collect();
    let s = Store::open(&paths, false).unwrap();
    (dir, s)
}

fn put(s: &Store, b: &Bck, key: &str, data: &[u8]) {
    let mut st = s.stage(b, key).unwrap();
    st.file.write_all(data).unwrap();
    let meta = ObjMeta { key: key.into(), size: data.len() as u64, etag: hex::encode(data), ..Default::default() };
    s.commit(st, b, key, &meta).unwrap();
}

fn get(s: &Store, b: &Bck, key: &str) -> Vec<u8> {
    let (mut f, meta) = s.open_object(b, key).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(meta.key, key);
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

fn keys(s: &Store, b: &Bck, start: &str, prefix: &str, limit: usize) -> Vec<String> {
    s.list(b, start.as_bytes(), prefix, limit).unwrap().into_iter().map(|(k, _)| k).collect()
}

const HOSTILE: &[&str] = &[
    "a",
    "a/b",
    "a/b/c",
    "a-c",
    "dir/",
    "dir/x",
    "x//y",
    "//",
    "./p",
    "../q",
    "a/./b",
    "a/../b",
    "%",
    "%%obj",
    "sp ace+plus%pct#hash~tilde",
    "日本語/ключ ü",
    "B",
    "é",
    "trailing/",
];

#[test]
fn hostile_keys_round_trip_and_list_in_byte_order() {
    for n in [1, 3] {
        let (_d, s) = store(n);
        let b = Bck::ais("bkt");
        let long_seg = "L".repeat(300);
        let long_dir_key = format!("{long_seg}/inner");
        let long_file_key = format!("d/{long_seg}");
        let max_key = "k/".repeat(511) + "ab";
        let mut all: Vec<String> = HOSTILE.iter().map(|k| (*k).to_owned()).collect();
        all.extend([long_dir_key, long_file_key, max_key]);
        for k in &all {
            put(&s, &b, k, k.as_bytes());
        }
        for k in &all {
            assert_eq!(get(&s, &b, k), k.as_bytes(), "{k}");
        }
        let mut expect = all.clone();
        expect.sort();
        assert_eq!(keys(&s, &b, "", "", 1000), expect);
        // Paging one key at a time gives the same order.
        let mut paged = Vec::new();
        let mut pos = String::new();
        while let Some(k) = keys(&s, &b, &pos, "", 1).pop() {
            paged.push(k.clone());
            pos = k;
        }
        assert_eq!(paged, expect);
        // Prefix filtering.
        let want: Vec<_> = expect.iter().filter(|k| k.starts_with("a/")).cloned().collect();
        assert_eq!(keys(&s, &b, "", "a/", 1000), want);
    }
}

#[test]
fn file_and_directory_of_the_same_name_coexist() {
    let (_d, s) = store(1);
    let b = Bck::ais("bkt");
    put(&s, &b, "a", b"file");
    put(&s, &b, "a/b", b"child");
    assert_eq!(get(&s, &b, "a"), b"file");
    put(&s, &b, "a", b"file2");
    assert_eq!(get(&s, &b, "a"), b"file2");
    assert!(s.delete(&b, "a/b").unwrap());
    assert_eq!(get(&s, &b, "a"), b"file2");
    assert!(s.delete(&b, "a").unwrap());
    assert!(!s.delete(&b, "a").unwrap());
    assert!(s.bucket_is_empty(&b).unwrap());
    // Nothing but the empty objects root remains.
    let root = s.objects_root(0, &b);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn overwrite_keeps_open_readers_intact() {
    let (_d, s) = store(1);
    let b = Bck::ais("bkt");
    put(&s, &b, "k", b"old-data");
    let (mut f, _) = s.open_object(&b, "k").unwrap();
    put(&s, &b, "k", b"new");
    s.delete(&b, "k").unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    assert_eq!(v, b"old-data");
    assert!(matches!(s.open_object(&b, "k"), Err(Error::NotFound)));
}

#[test]
fn uncommitted_writes_vanish_and_work_dir_is_cleaned_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("mp")];
    let b = Bck::ais("bkt");
    {
        let s = Store::open(&paths, true).unwrap();
        put(&s, &b, "k", b"v1");
        let mut st = s.stage(&b, "k").unwrap();
        st.file.write_all(b"torn").unwrap();
        std::mem::forget(st); // as if the process died mid-write
        assert_eq!(std::fs::read_dir(dir.path().join("mp/%wk")).unwrap().count(), 1);
    }
    let s = Store::open(&paths, true).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("mp/%wk")).unwrap().count(), 0);
    assert_eq!(get(&s, &b, "k"), b"v1");
}

#[test]
fn interrupted_conversion_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let paths = vec![dir.path().join("mp")];
    let b = Bck::ais("bkt");
    let s = Store::open(&paths, false).unwrap();
    put(&s, &b, "a", b"file");
    // Simulate a crash after the file moved into the conversion directory, before that moved back.
    let root = s.objects_root(0, &b);
    let conv = dir.path().join("mp/%wk/conv-1");
    std::fs::create_dir_all(&conv).unwrap();
    std::fs::write(conv.join("%%target"), root.join("a").to_str().unwrap()).unwrap();
    std::fs::rename(root.join("a"), conv.join("%%obj")).unwrap();
    drop(s);
    let s = Store::open(&paths, false).unwrap();
    assert_eq!(get(&s, &b, "a"), b"file");
    assert_eq!(keys(&s, &b, "", "", 10), vec!["a"]);
}

#[test]
fn buckets_are_separate_and_removable() {
    let (_d, s) = store(2);
    let b1 = Bck::ais("one");
    let b2: Bck = "s3://#ns/one".parse().unwrap();
    put(&s, &b1, "k", b"1");
    put(&s, &b2, "k", b"2");
    assert_eq!(get(&s, &b1, "k"), b"1");
    assert_eq!(get(&s, &b2, "k"), b"2");
    s.remove_bucket(&b1).unwrap();
    assert!(s.bucket_is_empty(&b1).unwrap());
    assert_eq!(get(&s, &b2, "k"), b"2");
}

#[test]
fn multipart_assembles_and_validates() {
    let (_d, s) = store(2);
    let b = Bck::ais("bkt");
    let up = Upload {
        key: "big".into(),
        upload_id: "00ff".into(),
        initiated_ms: 1,
        owner: "me".into(),
        meta: ObjMeta { content_type: Some("text/plain".into()), ..Default::default() },
        checksum_algorithm: None,
        backend_upload: None,
    };
    s.create_upload(&b, &up).unwrap();
    let part1 = vec![b'x'; MIN_PART_SIZE as usize];
    let part2 = b"tail".to_vec();
    for (n, data) in [(1u32, &part1), (2, &part2)] {
        let mut st = s.stage_part(&b, "big", "00ff").unwrap();
        st.file.write_all(data).unwrap();
        let etag = hex::encode(md5::Md5::digest(data));
        let meta = ObjMeta { size: data.len() as u64, etag, ..Default::default() };
        s.commit_part(st, &b, "big", "00ff", n, &meta).unwrap();
    }
    let parts = s.list_parts(&b, "big", "00ff").unwrap();
    assert_eq!(parts.len(), 2);
    let cp = |n: u32| CompletedPart { number: n, etag: parts[n as usize - 1].meta.etag.clone() };
    let err = |r: crate::Result<Result<crate::multipart::Assembled, CompleteError>>| r.unwrap().err();
    assert_eq!(err(s.assemble_upload(&b, "big", "00ff", &[cp(2), cp(1)], None)), Some(CompleteError::InvalidPartOrder));
    let bad = CompletedPart { number: 1, etag: "nope".into() };
    assert_eq!(err(s.assemble_upload(&b, "big", "00ff", &[bad], None)), Some(CompleteError::InvalidPart(1)));
    assert_eq!(s.list_uploads(&b).unwrap().len(), 1);
    let mut seen = 0usize;
    let mut count = |d: &[u8]| seen += d.len();
    let (up, parts, staged) = s.assemble_upload(&b, "big", "00ff", &[cp(1), cp(2)], Some(&mut count)).unwrap().unwrap();
    let meta = ObjMeta {
        key: up.key.clone(),
        etag: crate::multipart::multipart_etag(&parts),
        size: parts.iter().map(|p| p.meta.size).sum(),
        parts: parts.iter().map(|p| p.meta.size).collect(),
        ..up.meta.clone()
    };
    s.commit(staged, &b, "big", &meta).unwrap();
    s.finish_upload(&b, "big", "00ff").unwrap();
    assert_eq!(seen as u64, MIN_PART_SIZE + 4);
    assert!(meta.etag.ends_with("-2"));
    assert_eq!(meta.parts, vec![MIN_PART_SIZE, 4]);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    let data = get(&s, &b, "big");
    assert_eq!(data.len() as u64, MIN_PART_SIZE + 4);
    assert!(s.list_uploads(&b).unwrap().is_empty());
    assert!(matches!(s.list_parts(&b, "big", "00ff"), Err(Error::NoSuchUpload)));
}

use md5::Digest;

#[test]
fn small_pages_over_mixed_files_and_directories() {
    // Files and directories interleaved in one directory: every page size must give the same order,
    // whatever order the filesystem returns the entries in.
    let keys = ["a.txt", "b/1", "b/2", "b/c/3", "c", "d/x", "e", "f/g/h", "g", "h/"];
    for rotation in 0..keys.len() {
        let (_d, s) = store(1);
        let b = Bck::ais("bkt");
        for k in keys.iter().cycle().skip(rotation).take(keys.len()) {
            put(&s, &b, k, k.as_bytes());
        }
        for page in 1..=4 {
            let mut got = Vec::new();
            let mut pos = String::new();
            loop {
                let batch = keys_after(&s, &b, &pos, page);
                if batch.is_empty() {
                    break;
                }
                pos.clone_from(batch.last().unwrap());
                got.extend(batch);
            }
            let mut want: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            want.sort();
            assert_eq!(got, want, "rotation {rotation}, page {page}");
        }
    }
}

fn keys_after(s: &Store, b: &Bck, pos: &str, limit: usize) -> Vec<String> {
    keys(s, b, pos, "", limit)
}

#[test]
fn complete_takes_the_part_copy_the_client_names() {
    let (_d, s) = store(1);
    let b = Bck::ais("bkt");
    let up = Upload {
        key: "k".into(),
        upload_id: "0a".into(),
        initiated_ms: 1,
        owner: "me".into(),
        meta: ObjMeta::default(),
        checksum_algorithm: None,
        backend_upload: None,
    };
    s.create_upload(&b, &up).unwrap();
    let mut etags = Vec::new();
    for (t, data) in [(1, b"first".as_slice()), (2, b"second".as_slice())] {
        let mut st = s.stage_part(&b, "k", "0a").unwrap();
        st.file.write_all(data).unwrap();
        let etag = hex::encode(md5::Md5::digest(data));
        let meta = ObjMeta { size: data.len() as u64, etag: etag.clone(), mtime_ms: t, ..Default::default() };
        s.commit_part(st, &b, "k", "0a", 1, &meta).unwrap();
        etags.push(etag);
    }
    // ListParts shows the latest upload of part 1...
    assert_eq!(s.list_parts(&b, "k", "0a").unwrap()[0].meta.etag, etags[1]);
    // ...but Complete assembles the copy whose ETag is listed (the later entry of a duplicated number wins).
    let wanted =
        [CompletedPart { number: 1, etag: etags[1].clone() }, CompletedPart { number: 1, etag: etags[0].clone() }];
    let (_, parts, staged) = s.assemble_upload(&b, "k", "0a", &wanted, None).unwrap().unwrap();
    let meta =
        ObjMeta { key: "k".into(), size: 5, etag: crate::multipart::multipart_etag(&parts), ..Default::default() };
    s.commit(staged, &b, "k", &meta).unwrap();
    assert_eq!(get(&s, &b, "k"), b"first");
}

#[test]
fn readers_never_miss_an_object_while_its_path_turns_into_a_directory() {
    // A writer turns file "rN" into directory "rN/" (moving the object to "rN/%%obj") and overwrites it,
    // while this thread reads "rN": the object must never appear missing.
    let (_d, s) = store(1);
    let s = std::sync::Arc::new(s);
    let b = Bck::ais("bkt");
    for round in 0..20 {
        let base = format!("r{round}");
        put(&s, &b, &base, b"first");
        let writer = {
            let (s, b, base) = (s.clone(), b.clone(), base.clone());
            std::thread::spawn(move || {
                for i in 0..20 {
                    put(&s, &b, &format!("{base}/child{i}"), b"c");
                    put(&s, &b, &base, b"again");
                }
            })
        };
        for _ in 0..200 {
            if let Err(e) = s.open_object(&b, &base) {
                panic!("round {round}: {base} vanished: {e}");
            }
            let listed = s.list(&b, base.as_bytes().strip_suffix(b"0").unwrap_or(b""), &base, 1000);
            if let Err(e) = listed {
                panic!("round {round}: listing failed: {e}");
            }
        }
        writer.join().unwrap();
        assert_eq!(get(&s, &b, &base), b"again");
    }
}

#[test]
fn index_and_walk_list_alike_from_every_position() {
    let (d, s) = store(2);
    let b = Bck::ais("bkt");
    let mut all: Vec<String> = HOSTILE.iter().map(|k| (*k).to_owned()).collect();
    all.extend(["a/b/d", "a/z", "ab", "dir/y/z", "é/x", "日本語/a"].map(String::from));
    for k in &all {
        put(&s, &b, k, k.as_bytes());
    }
    let walked = |start: &[u8], prefix: &str, limit: usize| -> Vec<String> {
        s.list_walking(&b, start, prefix, limit).unwrap().into_iter().map(|(k, _)| k).collect()
    };
    let indexed = |start: &[u8], prefix: &str, limit: usize| -> Vec<String> {
        s.list(&b, start, prefix, limit).unwrap().into_iter().map(|(k, _)| k).collect()
    };
    let mut starts: Vec<Vec<u8>> = vec![Vec::new()];
    for k in &all {
        starts.push(k.as_bytes().to_vec());
        // Right after every key with this prefix, as listings with a delimiter skip a common prefix.
        let mut past = k.as_bytes().to_vec();
        past.push(0xFF);
        starts.push(past);
        starts.push(k.as_bytes()[..k.len() / 2].to_vec());
    }
    starts.retain(|st| std::str::from_utf8(st).is_ok() || st.last() == Some(&0xFF));
    for start in &starts {
        for prefix in ["", "a", "a/", "dir/", "é", "z", "日本語/"] {
            for limit in [1, 3, 1000] {
                assert_eq!(indexed(start, prefix, limit), walked(start, prefix, limit), "{start:?} {prefix} {limit}");
            }
        }
    }
    // Deletes and overwrites show at once; a fresh store (restart) lists the same after its scan.
    s.delete(&b, "a/b").unwrap();
    put(&s, &b, "new", b"n");
    assert_eq!(indexed(b"", "", 1000), walked(b"", "", 1000));
    let before = indexed(b"", "", 1000);
    drop(s);
    let paths: Vec<_> = (0..2).map(|i| d.path().join(format!("mp{i}"))).collect();
    let s = Store::open(&paths, false).unwrap();
    let listed: Vec<String> = s.list(&b, b"", "", 1000).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(listed, before);
    assert_eq!(s.index().usage().objects, before.len() as u64);
}

#[test]
fn a_ghost_in_the_index_is_skipped_and_dropped() {
    let (_d, s) = store(1);
    let b = Bck::ais("bkt");
    for k in ["a", "b", "c"] {
        put(&s, &b, k, b"x");
    }
    assert_eq!(keys(&s, &b, "", "", 10), ["a", "b", "c"]);
    // An object removed behind the index's back (as a scan racing a delete could leave it).
    let path = s.objects_root(0, &b).join(crate::layout::key_path("b").0);
    std::fs::remove_file(path).unwrap();
    assert_eq!(keys(&s, &b, "", "", 10), ["a", "c"]);
    assert_eq!(s.index().usage().objects, 2);
}

#[test]
fn objects_kept_open_follow_every_change() {
    let (_d, s) = store(2);
    let b = Bck::ais("bkt");
    put(&s, &b, "k", b"one");
    let first = s.open_cached(&b, "k").unwrap();
    assert_eq!(first.meta.etag, hex::encode(b"one"));
    assert!(std::sync::Arc::ptr_eq(&first, &s.open_cached(&b, "k").unwrap()), "kept open");
    put(&s, &b, "k", b"two");
    let second = s.open_cached(&b, "k").unwrap();
    assert_eq!(second.meta.etag, hex::encode(b"two"));
    let mut v = Vec::new();
    (&*second.file).read_to_end(&mut v).unwrap();
    assert_eq!(v, b"two");
    s.update_meta(&b, "k", |m| m.tags = vec![("t".into(), "1".into())]).unwrap();
    assert_eq!(s.open_cached(&b, "k").unwrap().meta.tags.len(), 1);
    // The file turns into a directory (another key under it): the kept handle still reads the same object.
    put(&s, &b, "k/under", b"x");
    assert_eq!(s.open_cached(&b, "k").unwrap().meta.etag, hex::encode(b"two"));
    s.delete(&b, "k").unwrap();
    assert!(matches!(s.open_cached(&b, "k"), Err(Error::NotFound)));
    put(&s, &b, "gone", b"g");
    s.open_cached(&b, "gone").unwrap();
    s.remove_bucket(&b).unwrap();
    assert!(matches!(s.open_cached(&b, "gone"), Err(Error::NotFound)));
}

#[test]
fn a_bucket_filled_after_start_lists_from_the_index_without_a_scan() {
    let (d, s) = store(2);
    let b = Bck::ais("fresh");
    assert!(!s.index.is_scanned(&b));
    put(&s, &b, "k1", b"1");
    assert!(s.index.is_scanned(&b), "its first object makes the bucket's index complete");
    put(&s, &b, "k2", b"2");
    assert_eq!(keys(&s, &b, "", "", 10), ["k1", "k2"]);
    // After a restart the objects on disk predate the index: a new object does not mark the bucket scanned,
    // and its first listing scans the rest in.
    drop(s);
    let paths: Vec<_> = (0..2).map(|i| d.path().join(format!("mp{i}"))).collect();
    let s = Store::open(&paths, false).unwrap();
    put(&s, &b, "k3", b"3");
    assert!(!s.index.is_scanned(&b));
    assert_eq!(keys(&s, &b, "", "", 10), ["k1", "k2", "k3"]);
}
