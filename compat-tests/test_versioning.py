"""S3 versioning of AIS-local buckets: bucket state, version ids on writes, reads and deletes by version, delete
markers, suspended buckets and the null version, ListObjectVersions paging, copies, multipart uploads, tags,
DeleteObjects, hostile keys and version ids, restarts; boto3 and aws-cli."""

import json

import pytest
import requests

from support import delete_bucket_recursively, s3_error


def enable(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def all_versions(s3, bucket, **kw):
    """Every (key, version id, is latest, is marker) of the bucket, paging with the given MaxKeys."""
    out, args = [], dict(kw)
    while True:
        page = s3.list_object_versions(Bucket=bucket, **args)
        entries = [(v["Key"], v["VersionId"], v["IsLatest"], False) for v in page.get("Versions", [])]
        entries += [(m["Key"], m["VersionId"], m["IsLatest"], True) for m in page.get("DeleteMarkers", [])]
        # Within a page S3 groups versions and markers in separate lists: restore the key order, newest first.
        order = {(k, v): i for i, (k, v) in enumerate(_page_order(page))}
        out += sorted(entries, key=lambda e: order[(e[0], e[1])])
        if not page["IsTruncated"]:
            return out
        args["KeyMarker"] = page["NextKeyMarker"]
        if page.get("NextVersionIdMarker"):
            args["VersionIdMarker"] = page["NextVersionIdMarker"]
        else:
            args.pop("VersionIdMarker", None)


def _page_order(page):
    """The server's order of a page's versions and markers, which botocore parses into two lists: keys
    ascending, then the latest, then newest first (Trove's version ids start with their time in hex; a null
    version has its modification time)."""
    def age(e):
        return int(e["VersionId"][:16], 16) if len(e["VersionId"]) == 32 else e["LastModified"].timestamp() * 1e9

    both = page.get("Versions", []) + page.get("DeleteMarkers", [])
    both.sort(key=lambda e: (e["Key"], not e["IsLatest"], -age(e)))
    return [(e["Key"], e["VersionId"]) for e in both]


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def test_bucket_states(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with s3_error("MalformedXML", 400):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Disabled"})
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_versioning(Bucket=bucket + "-none")


def test_only_the_owner_sets_versioning(s3_alt, bucket):
    with s3_error("AccessDenied", 403):
        s3_alt.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def test_versions_reads_and_promotion(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"v0")  # before versioning: the null version
    enable(s3, bucket)
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=f"v{i}".encode())["VersionId"] for i in (1, 2, 3)]
    assert len(set(ids)) == 3 and all(len(i) == 32 for i in ids)

    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"v3" and got["VersionId"] == ids[2]
    assert body(s3, bucket, "k", VersionId=ids[0]) == b"v1"
    assert body(s3, bucket, "k", VersionId="null") == b"v0"
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=ids[1])
    assert head["ContentLength"] == 2 and head["VersionId"] == ids[1]
    ranged = s3.get_object(Bucket=bucket, Key="k", VersionId=ids[0], Range="bytes=1-1")
    assert ranged["Body"].read() == b"1" and ranged["ResponseMetadata"]["HTTPStatusCode"] == 206

    listed = all_versions(s3, bucket)
    assert [v for _, v, _, _ in listed] == [ids[2], ids[1], ids[0], "null"]
    assert [latest for _, _, latest, _ in listed] == [True, False, False, False]

    # Removing the current version makes the previous one current; removing an old one leaves the rest.
    deleted = s3.delete_object(Bucket=bucket, Key="k", VersionId=ids[2])
    assert deleted["VersionId"] == ids[2] and "DeleteMarker" not in deleted
    assert body(s3, bucket, "k") == b"v2"
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert [v for _, v, _, _ in all_versions(s3, bucket)] == [ids[1], ids[0]]
    with s3_error("NoSuchVersion", 404):
        s3.get_object(Bucket=bucket, Key="k", VersionId=ids[2])
    # Deleting a version that is not there succeeds, as in S3.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=ids[2])


def test_delete_markers(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="doc")
    assert marker["DeleteMarker"] is True and marker["VersionId"] != v1

    with s3_error("NoSuchKey", 404) as info:
        s3.get_object(Bucket=bucket, Key="doc")
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker["VersionId"]
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket, Key="doc")
    with s3_error("MethodNotAllowed", 405):
        s3.get_object(Bucket=bucket, Key="doc", VersionId=marker["VersionId"])
    assert body(s3, bucket, "doc", VersionId=v1) == b"one"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)

    # Markers stack; removing the newest one leaves the next one in charge.
    second = s3.delete_object(Bucket=bucket, Key="doc")["VersionId"]
    listed = all_versions(s3, bucket)
    assert [(v, latest, dm) for _, v, latest, dm in listed] == [
        (second, True, True), (marker["VersionId"], False, True), (v1, False, False)]
    removed = s3.delete_object(Bucket=bucket, Key="doc", VersionId=second)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == second
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="doc")
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=marker["VersionId"])
    assert body(s3, bucket, "doc") == b"one"
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"] == "doc"


def test_suspended_null_version(s3, bucket):
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"versioned")["VersionId"]
    enable(s3, bucket, "Suspended")
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"null-1")
    assert "VersionId" not in put
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-2")  # replaces the null version
    assert [v for _, v, _, _ in all_versions(s3, bucket)] == ["null", kept]
    assert body(s3, bucket, "k", VersionId="null") == b"null-2"
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == "null"

    # A delete in a suspended bucket makes the null version a delete marker.
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert gone["DeleteMarker"] is True and gone["VersionId"] == "null"
    assert [(v, dm) for _, v, _, dm in all_versions(s3, bucket)] == [("null", True), (kept, False)]
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert body(s3, bucket, "k") == b"versioned"


def test_list_versions_pages_prefixes_and_markers(s3, bucket):
    enable(s3, bucket)
    expected = []
    for key in ["a", "b/1", "b/2", "c", "d"]:
        vids = [s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * n)["VersionId"] for n in (1, 2, 3)]
        expected += [(key, v) for v in reversed(vids)]
    s3.delete_object(Bucket=bucket, Key="c")
    full = all_versions(s3, bucket)
    assert len(full) == 16
    for max_keys in (1, 2, 3, 5, 7, 1000):
        assert all_versions(s3, bucket, MaxKeys=max_keys) == full, max_keys
    assert [(k, v) for k, v, _, dm in full if not dm] == expected

    page = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in page["Versions"]} == {"a", "c", "d"}
    page = s3.list_object_versions(Bucket=bucket, Prefix="b/", KeyMarker="b/1")
    assert {v["Key"] for v in page["Versions"]} == {"b/2"}
    with s3_error("InvalidArgument", 400):
        s3.list_object_versions(Bucket=bucket, VersionIdMarker=full[0][1])


def test_delete_objects_with_versions(s3, bucket):
    enable(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    a2 = s3.put_object(Bucket=bucket, Key="a", Body=b"2")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"1")
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "VersionId": a2}, {"Key": "b"}, {"Key": "c", "VersionId": "not-a-version"}]})
    deleted = {d["Key"]: d for d in res["Deleted"]}
    assert deleted["a"]["VersionId"] == a2 and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"]
    assert [(e["Key"], e["Code"]) for e in res["Errors"]] == [("c", "InvalidArgument")]
    assert body(s3, bucket, "a") == b"1"
    marker = deleted["b"]["DeleteMarkerVersionId"]
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b", "VersionId": marker},
                                                              {"Key": "a", "VersionId": a1}]})
    deleted = {d["Key"]: d for d in res["Deleted"]}
    assert deleted["b"]["DeleteMarker"] is True and deleted["b"]["DeleteMarkerVersionId"] == marker
    assert body(s3, bucket, "b") == b"1"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="a")


def test_copies_uploads_and_tags_by_version(s3, bucket):
    enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert copied["CopySourceVersionId"] == v1 and copied["VersionId"]
    assert body(s3, bucket, "dst") == b"first"
    # Restoring an old version onto its own key is a copy too.
    restored = s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert body(s3, bucket, "src") == b"first" and restored["VersionId"] != v1
    assert len(all_versions(s3, bucket, Prefix="src")) == 3

    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 10)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["VersionId"] and s3.head_object(Bucket=bucket, Key="mp")["VersionId"] == done["VersionId"]

    s3.put_object_tagging(Bucket=bucket, Key="src", VersionId=v1, Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="src", VersionId=v1)["TagSet"] == [{"Key": "t", "Value": "1"}]
    assert s3.get_object_tagging(Bucket=bucket, Key="src")["TagSet"] == []
    marker = s3.delete_object(Bucket=bucket, Key="src")["VersionId"]
    with s3_error("InvalidRequest", 400):
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src", "VersionId": marker})


@pytest.mark.parametrize("vid", ["../../etc/passwd", "%%obj", "NULL", "0" * 33, "", "a/b"])
def test_hostile_version_ids(s3, bucket, vid):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("InvalidArgument", 400):
        s3.get_object(Bucket=bucket, Key="k", VersionId=vid)
    with s3_error("InvalidArgument", 400):
        s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    assert body(s3, bucket, "k") == b"x"


def test_hostile_keys_keep_their_versions(s3, bucket):
    enable(s3, bucket)
    keys = ["a", "a/b", "dir/", "x//y", "%%obj", "100%", "..", "l" * 300 + "/f", "m/" + "é" * 200]
    ids = {k: [s3.put_object(Bucket=bucket, Key=k, Body=f"{k}-{i}".encode())["VersionId"] for i in (1, 2)]
           for k in keys}
    listed = all_versions(s3, bucket)
    assert sorted({k for k, _, _, _ in listed}) == sorted(keys)
    for k in keys:
        assert body(s3, bucket, k, VersionId=ids[k][0]) == f"{k}-1".encode()
        s3.delete_object(Bucket=bucket, Key=k, VersionId=ids[k][1])
        assert body(s3, bucket, k) == f"{k}-1".encode()


def test_versions_keep_a_bucket_from_being_deleted(s3, bucket_name):
    s3.create_bucket(Bucket=bucket_name)
    try:
        enable(s3, bucket_name)
        vid = s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")["VersionId"]
        marker = s3.delete_object(Bucket=bucket_name, Key="k")["VersionId"]
        with s3_error("BucketNotEmpty", 409):
            s3.delete_bucket(Bucket=bucket_name)
        s3.delete_object(Bucket=bucket_name, Key="k", VersionId=vid)
        with s3_error("BucketNotEmpty", 409):
            s3.delete_bucket(Bucket=bucket_name)
        s3.delete_object(Bucket=bucket_name, Key="k", VersionId=marker)
        s3.delete_bucket(Bucket=bucket_name)
    finally:
        delete_bucket_recursively(s3, bucket_name)


def test_versions_survive_a_restart(fresh_trove, bucket_name):
    s3 = fresh_trove.client()
    s3.create_bucket(Bucket=bucket_name)
    enable(s3, bucket_name)
    v1 = s3.put_object(Bucket=bucket_name, Key="k", Body=b"one")["VersionId"]
    s3.put_object(Bucket=bucket_name, Key="k", Body=b"two")
    marker = s3.delete_object(Bucket=bucket_name, Key="k")["VersionId"]
    fresh_trove.stop()
    fresh_trove.start()
    s3 = fresh_trove.client()
    assert s3.get_bucket_versioning(Bucket=bucket_name)["Status"] == "Enabled"
    assert [v for _, v, _, _ in all_versions(s3, bucket_name)][0] == marker
    assert body(s3, bucket_name, "k", VersionId=v1) == b"one"
    s3.delete_object(Bucket=bucket_name, Key="k", VersionId=marker)
    assert body(s3, bucket_name, "k") == b"two"


def test_fast_path_reports_the_version(trove, s3, bucket):
    enable(s3, bucket)
    vid = s3.put_object(Bucket=bucket, Key="hot", Body=b"x" * 4096)["VersionId"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "hot"})
    for _ in range(3):
        r = requests.get(url, timeout=10)
        assert r.status_code == 200 and r.headers["x-amz-version-id"] == vid
    vid2 = s3.put_object(Bucket=bucket, Key="hot", Body=b"y")["VersionId"]
    r = requests.get(url, timeout=10)
    assert r.content == b"y" and r.headers["x-amz-version-id"] == vid2


def test_aws_cli_versions(aws, s3, bucket):
    aws("s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    assert json.loads(aws("s3api", "get-bucket-versioning", "--bucket", bucket).stdout)["Status"] == "Enabled"
    s3.put_object(Bucket=bucket, Key="f", Body=b"1")
    s3.put_object(Bucket=bucket, Key="f", Body=b"2")
    aws("s3", "rm", f"s3://{bucket}/f")
    listed = json.loads(aws("s3api", "list-object-versions", "--bucket", bucket).stdout)
    assert len(listed["Versions"]) == 2 and len(listed["DeleteMarkers"]) == 1
    old = [v for v in listed["Versions"] if not v["IsLatest"]][0]["VersionId"]
    out = aws("s3api", "get-object", "--bucket", bucket, "--key", "f", "--version-id", old, "got").stdout
    assert json.loads(out)["VersionId"] == old


def test_kill9_amid_versioned_writes_and_deletes_loses_no_acknowledged_version(fresh_trove, bucket_name):
    """Writers add versions, delete markers and remove versions of a few keys while the server is killed: every
    acknowledged version is readable afterwards with its bytes, every key's newest entry is what reads see."""
    import threading

    s3 = fresh_trove.client(retries={"max_attempts": 1})
    s3.create_bucket(Bucket=bucket_name)
    enable(s3, bucket_name)
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def writer(n):
        i = 0
        while not stop.is_set():
            key, data = f"k{n % 3}", f"{n}-{i}".encode() * 100
            try:
                vid = s3.put_object(Bucket=bucket_name, Key=key, Body=data)["VersionId"]
                with lock:
                    acked[(key, vid)] = data
                if i % 4 == 3:
                    s3.delete_object(Bucket=bucket_name, Key=key)
                if i % 5 == 4:
                    s3.delete_object(Bucket=bucket_name, Key=key, VersionId=vid)
                    with lock:
                        acked.pop((key, vid), None)
            except Exception:  # the kill cuts requests off
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    import time

    time.sleep(1.5)
    fresh_trove.kill9()
    stop.set()
    for t in threads:
        t.join()
    fresh_trove.start()
    s3 = fresh_trove.client()
    assert len(acked) > 10
    listed = all_versions(s3, bucket_name)
    on_disk = {(k, v) for k, v, _, dm in listed if not dm}
    for (key, vid), data in acked.items():
        # A removal that was cut off before its answer may have happened: then the version is gone entirely.
        if (key, vid) in on_disk:
            assert body(s3, bucket_name, key, VersionId=vid) == data
    missing = [kv for kv in acked if kv not in on_disk]
    assert len(missing) <= len(threads), missing
    for key in {k for k, _, _, _ in listed}:
        newest = next(e for e in listed if e[0] == key)
        assert newest[2], "the first entry of a key is its latest"
        if newest[3]:
            with s3_error("NoSuchKey", 404):
                s3.get_object(Bucket=bucket_name, Key=key)
        else:
            assert s3.get_object(Bucket=bucket_name, Key=key)["VersionId"] == newest[1]
