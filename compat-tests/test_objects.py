"""Object operations: put/get/head/delete, integrity checks, metadata, ranges, conditional requests,
copy, tagging, multi-object delete and keys that are hard to map onto a file system."""

import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from support import b64, crc32_b64, crc32c_b64, delete_bucket_recursively, etag, s3_error, sha1_b64, sha256_b64

BODY = b"0123456789"


def status(response) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def headers(response) -> dict:
    return response["ResponseMetadata"]["HTTPHeaders"]


# ---------------------------------------------------------------------------------------------
# Basic CRUD
# ---------------------------------------------------------------------------------------------


def test_put_get_head_delete(s3, bucket):
    body = b"hello, trove\n"
    put = s3.put_object(Bucket=bucket, Key="greeting.txt", Body=body)
    assert status(put) == 200
    assert put["ETag"] == etag(body)

    got = s3.get_object(Bucket=bucket, Key="greeting.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == etag(body)
    assert got["ContentLength"] == len(body)
    assert got["LastModified"] is not None
    assert got["AcceptRanges"] == "bytes"

    head = s3.head_object(Bucket=bucket, Key="greeting.txt")
    assert status(head) == 200
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == etag(body)
    assert head["LastModified"] == got["LastModified"]

    assert status(s3.delete_object(Bucket=bucket, Key="greeting.txt")) == 204
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="greeting.txt")
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket, Key="greeting.txt")


def test_empty_object(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["ContentLength"] == 0
    assert got["Body"].read() == b""


def test_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second version"
    assert got["Metadata"] == {}


def test_default_content_type(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] in ("binary/octet-stream", "application/octet-stream")


def test_delete_missing_key(s3, bucket):
    assert status(s3.delete_object(Bucket=bucket, Key="never-existed")) == 204


def test_get_missing_key(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="missing")


def test_missing_bucket(s3, bucket_name):
    with s3_error("NoSuchBucket", 404):
        s3.get_object(Bucket=bucket_name, Key="k")
    with s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=bucket_name, Key="k", Body=b"x")
    with s3_error("NoSuchBucket", 404):
        s3.delete_object(Bucket=bucket_name, Key="k")
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket_name, Key="k")


# ---------------------------------------------------------------------------------------------
# Integrity: Content-MD5 and flexible checksums
# ---------------------------------------------------------------------------------------------


def test_content_md5_correct(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=BODY, ContentMD5=b64(hashlib.md5(BODY).digest()))
    assert put["ETag"] == etag(BODY)


def test_content_md5_mismatch(s3, bucket):
    with s3_error("BadDigest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=BODY, ContentMD5=b64(hashlib.md5(b"other").digest()))
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


def test_content_md5_malformed(s3, bucket):
    with s3_error("InvalidDigest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=BODY, ContentMD5="not-an-md5")


CHECKSUMS = {"CRC32": crc32_b64, "CRC32C": crc32c_b64, "SHA1": sha1_b64, "SHA256": sha256_b64}


@pytest.mark.parametrize("algorithm", sorted(CHECKSUMS))
def test_put_with_checksum(s3, bucket, algorithm):
    body = b"checksummed body " * 100
    expected = CHECKSUMS[algorithm](body)
    if algorithm == "CRC32C":
        # botocore needs awscrt to compute CRC32C itself, so send the value we computed.
        args = {"ChecksumCRC32C": expected}
    else:
        args = {"ChecksumAlgorithm": algorithm}
    put = s3.put_object(Bucket=bucket, Key="k", Body=body, **args)
    assert put[f"Checksum{algorithm}"] == expected

    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got[f"Checksum{algorithm}"] == expected
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == expected


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_checksum_mismatch(s3, bucket, algorithm):
    wrong = CHECKSUMS[algorithm](b"something else")
    with s3_error(("BadDigest", "InvalidRequest", "XAmzContentChecksumMismatch"), 400):
        s3.put_object(Bucket=bucket, Key="k", Body=BODY, **{f"Checksum{algorithm}": wrong})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="k")


# ---------------------------------------------------------------------------------------------
# Metadata and standard headers
# ---------------------------------------------------------------------------------------------

EXPIRES = "Thu, 01 Dec 2044 16:00:00 GMT"


def test_user_metadata_round_trip(s3, bucket):
    metadata = {"color": "blue", "with-dash": "a b c", "number": "42"}
    s3.put_object(Bucket=bucket, Key="k", Body=BODY, Metadata=metadata)
    assert s3.head_object(Bucket=bucket, Key="k")["Metadata"] == metadata
    assert s3.get_object(Bucket=bucket, Key="k")["Metadata"] == metadata


def test_user_metadata_keys_are_lower_cased(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY, Metadata={"Mixed-Case": "Value"})
    assert s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {"mixed-case": "Value"}


def test_standard_headers_round_trip(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="k",
        Body=BODY,
        ContentType="text/plain; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="digits.txt"',
        ContentLanguage="en-US",
        CacheControl="max-age=3600, public",
        Expires=datetime(2044, 12, 1, 16, 0, 0, tzinfo=timezone.utc),
    )
    for response in (s3.head_object(Bucket=bucket, Key="k"), s3.get_object(Bucket=bucket, Key="k")):
        assert response["ContentType"] == "text/plain; charset=utf-8"
        assert response["ContentEncoding"] == "identity"
        assert response["ContentDisposition"] == 'attachment; filename="digits.txt"'
        assert response["ContentLanguage"] == "en-US"
        assert response["CacheControl"] == "max-age=3600, public"
        assert headers(response)["expires"] == EXPIRES


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY, ContentType="application/octet-stream")
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="text/csv",
        ResponseContentDisposition="inline",
        ResponseContentEncoding="identity",
        ResponseContentLanguage="de",
        ResponseCacheControl="no-cache",
    )
    assert got["ContentType"] == "text/csv"
    assert got["ContentDisposition"] == "inline"
    assert got["ContentEncoding"] == "identity"
    assert got["ContentLanguage"] == "de"
    assert got["CacheControl"] == "no-cache"
    assert got["Body"].read() == BODY
    # Overrides change only that response.
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "application/octet-stream"


# ---------------------------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "range_header, body, content_range",
    [
        ("bytes=0-4", b"01234", "bytes 0-4/10"),
        ("bytes=5-", b"56789", "bytes 5-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=3-3", b"3", "bytes 3-3/10"),
        ("bytes=0-9", BODY, "bytes 0-9/10"),
        ("bytes=5-100", b"56789", "bytes 5-9/10"),  # end beyond the object is clamped
        ("bytes=-100", BODY, "bytes 0-9/10"),  # suffix longer than the object is the whole object
    ],
)
def test_range_get(s3, bucket, range_header, body, content_range):
    s3.put_object(Bucket=bucket, Key="digits", Body=BODY)
    got = s3.get_object(Bucket=bucket, Key="digits", Range=range_header)
    assert status(got) == 206
    assert got["Body"].read() == body
    assert got["ContentRange"] == content_range
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == etag(BODY)


@pytest.mark.parametrize("range_header", ["bytes=100-", "bytes=10-", "bytes=10-20"])
def test_range_not_satisfiable(s3, bucket, range_header):
    s3.put_object(Bucket=bucket, Key="digits", Body=BODY)
    with s3_error("InvalidRange", 416):
        s3.get_object(Bucket=bucket, Key="digits", Range=range_header)


def test_range_on_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    with s3_error("InvalidRange", 416):
        s3.get_object(Bucket=bucket, Key="empty", Range="bytes=0-0")


def test_range_head(s3, bucket):
    s3.put_object(Bucket=bucket, Key="digits", Body=BODY)
    head = s3.head_object(Bucket=bucket, Key="digits", Range="bytes=2-5")
    assert status(head) == 206
    assert head["ContentLength"] == 4
    assert head["ContentRange"] == "bytes 2-5/10"


# ---------------------------------------------------------------------------------------------
# Conditional reads
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def digits(s3, bucket):
    """The 10-byte object `digits`; returns (bucket, key, etag, last_modified)."""
    s3.put_object(Bucket=bucket, Key="digits", Body=BODY)
    head = s3.head_object(Bucket=bucket, Key="digits")
    return bucket, "digits", head["ETag"], head["LastModified"]


DAY = timedelta(days=1)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_if_match(s3, digits, method):
    bucket, key, tag, _ = digits
    call = getattr(s3, method)
    assert status(call(Bucket=bucket, Key=key, IfMatch=tag)) == 200
    with s3_error("PreconditionFailed" if method == "get_object" else None, 412):
        call(Bucket=bucket, Key=key, IfMatch='"00000000000000000000000000000000"')


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_if_none_match(s3, digits, method):
    bucket, key, tag, _ = digits
    call = getattr(s3, method)
    assert status(call(Bucket=bucket, Key=key, IfNoneMatch='"00000000000000000000000000000000"')) == 200
    with s3_error(None, 304):
        call(Bucket=bucket, Key=key, IfNoneMatch=tag)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_if_modified_since(s3, digits, method):
    bucket, key, _, modified = digits
    call = getattr(s3, method)
    assert status(call(Bucket=bucket, Key=key, IfModifiedSince=modified - DAY)) == 200
    # Last-Modified has one-second resolution: the object was not modified since its own date.
    with s3_error(None, 304):
        call(Bucket=bucket, Key=key, IfModifiedSince=modified)


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_if_unmodified_since(s3, digits, method):
    bucket, key, _, modified = digits
    call = getattr(s3, method)
    assert status(call(Bucket=bucket, Key=key, IfUnmodifiedSince=modified)) == 200
    with s3_error("PreconditionFailed" if method == "get_object" else None, 412):
        call(Bucket=bucket, Key=key, IfUnmodifiedSince=modified - DAY)


def test_if_match_true_overrides_if_unmodified_since_false(s3, digits):
    bucket, key, tag, modified = digits
    got = s3.get_object(Bucket=bucket, Key=key, IfMatch=tag, IfUnmodifiedSince=modified - DAY)
    assert status(got) == 200
    assert got["Body"].read() == BODY


def test_if_none_match_false_and_if_modified_since_true_is_not_modified(s3, digits):
    bucket, key, tag, modified = digits
    with s3_error(None, 304):
        s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=tag, IfModifiedSince=modified - DAY)


# ---------------------------------------------------------------------------------------------
# Conditional writes
# ---------------------------------------------------------------------------------------------


def test_put_if_none_match_star(s3, bucket):
    assert status(s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")) == 200
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_put_if_match(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    with s3_error("PreconditionFailed", 412):
        s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfMatch=etag(b"something else"))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"

    assert status(s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfMatch=first["ETag"])) == 200
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"


# ---------------------------------------------------------------------------------------------
# CopyObject
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def source(s3, bucket):
    """Object `src` with metadata, content type and tags; returns (bucket, key, etag, last_modified)."""
    s3.put_object(Bucket=bucket, Key="src", Body=BODY, ContentType="text/plain", Metadata={"origin": "source"},
                  Tagging="t=1")
    head = s3.head_object(Bucket=bucket, Key="src")
    return bucket, "src", head["ETag"], head["LastModified"]


def test_copy_keeps_metadata(s3, source):
    bucket, key, tag, _ = source
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key})
    assert copied["CopyObjectResult"]["ETag"] == tag
    assert copied["CopyObjectResult"]["LastModified"] is not None

    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == BODY
    assert got["ETag"] == tag
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"origin": "source"}
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "t", "Value": "1"}]


def test_copy_replaces_metadata(s3, source):
    bucket, key, _, _ = source
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key},
                   MetadataDirective="REPLACE", ContentType="application/json", Metadata={"new": "yes"})
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"new": "yes"}


def test_copy_replaces_tags(s3, source):
    bucket, key, _, _ = source
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key},
                   TaggingDirective="REPLACE", Tagging="fresh=tag")
    assert s3.get_object_tagging(Bucket=bucket, Key="dst")["TagSet"] == [{"Key": "fresh", "Value": "tag"}]


def test_copy_between_buckets(s3, source, bucket_name):
    bucket, key, _, _ = source
    other = bucket_name + "-dst"
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(Bucket=other, Key="copy", CopySource={"Bucket": bucket, "Key": key})
        assert s3.get_object(Bucket=other, Key="copy")["Body"].read() == BODY
    finally:
        delete_bucket_recursively(s3, other)


def test_copy_onto_itself_requires_replace(s3, source):
    bucket, key, _, _ = source
    with s3_error("InvalidRequest", 400):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key})
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                   MetadataDirective="REPLACE", Metadata={"changed": "yes"})
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Metadata"] == {"changed": "yes"}
    assert got["Body"].read() == BODY


def test_copy_missing_source(s3, bucket, bucket_name):
    with s3_error("NoSuchKey", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "missing"})
    with s3_error("NoSuchBucket", 404):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket_name + "-missing", "Key": "k"})


def test_copy_hostile_key(s3, bucket):
    src, dst = "sp ace+plus%pct/日本語 ü", "copy of/ü+%"
    s3.put_object(Bucket=bucket, Key=src, Body=BODY)
    s3.copy_object(Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": src})
    assert s3.get_object(Bucket=bucket, Key=dst)["Body"].read() == BODY


def test_copy_conditions_pass(s3, source):
    bucket, key, tag, modified = source
    copy = {"Bucket": bucket, "Key": "dst", "CopySource": {"Bucket": bucket, "Key": key}}
    s3.copy_object(**copy, CopySourceIfMatch=tag)
    s3.copy_object(**copy, CopySourceIfNoneMatch=etag(b"other"))
    s3.copy_object(**copy, CopySourceIfModifiedSince=modified - DAY)
    s3.copy_object(**copy, CopySourceIfUnmodifiedSince=modified)


@pytest.mark.parametrize("condition", ["IfMatch", "IfNoneMatch", "IfModifiedSince", "IfUnmodifiedSince"])
def test_copy_conditions_fail(s3, source, condition):
    bucket, key, tag, modified = source
    value = {
        "IfMatch": etag(b"other"),
        "IfNoneMatch": tag,
        "IfModifiedSince": modified,
        "IfUnmodifiedSince": modified - DAY,
    }[condition]
    with s3_error("PreconditionFailed", 412):
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key},
                       **{f"CopySource{condition}": value})
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="dst")


# ---------------------------------------------------------------------------------------------
# Object tagging
# ---------------------------------------------------------------------------------------------


def test_tagging_on_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY, Tagging="a=1&b=two%20words")
    tags = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert sorted(tags, key=lambda t: t["Key"]) == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two words"}]
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2


def test_put_get_delete_object_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []

    tags = [{"Key": "team", "Value": "ml"}, {"Key": "stage", "Value": "raw"}]
    assert status(s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tags})) == 200
    got = s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])

    assert status(s3.delete_object_tagging(Bucket=bucket, Key="k")) == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    # Tagging changes neither the data nor the ETag.
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == BODY
    assert got["ETag"] == etag(BODY)


def test_object_tagging_missing_key(s3, bucket):
    with s3_error("NoSuchKey", 404):
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    with s3_error("NoSuchKey", 404):
        s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})


def test_object_tagging_limit(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    with s3_error(("BadRequest", "InvalidTag"), 400):
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": too_many})


# ---------------------------------------------------------------------------------------------
# DeleteObjects
# ---------------------------------------------------------------------------------------------


def test_delete_objects_verbose(s3, bucket):
    for key in ("a", "b", "c/d"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    response = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "a"}, {"Key": "c/d"}, {"Key": "missing"}], "Quiet": False},
    )
    assert sorted(d["Key"] for d in response["Deleted"]) == ["a", "c/d", "missing"]
    assert response.get("Errors", []) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["b"]


def test_delete_objects_quiet(s3, bucket):
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    response = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}], "Quiet": True}
    )
    assert response.get("Deleted", []) == []
    assert response.get("Errors", []) == []
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_missing_bucket(s3, bucket_name):
    with s3_error("NoSuchBucket", 404):
        s3.delete_objects(Bucket=bucket_name, Delete={"Objects": [{"Key": "a"}]})


# ---------------------------------------------------------------------------------------------
# Keys that are hard for a file-system layout
# ---------------------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "a",
    "a/b",  # "a" is both an object and a "directory"
    "dir/",  # trailing slash
    "dir/child",
    "x//y",  # empty segment
    "./p",
    "../q",
    "a/./b",
    "a/../b",
    "s" * 300,  # one segment longer than NAME_MAX
    "long/" + "x" * 1019,  # 1024 bytes, the longest key
    "é" * 512,  # 1024 bytes of UTF-8 (512 characters)
    "日本語/ключ ü",
    "sp ace+plus%pct#hash~tilde",
    "%2F%00%wk/%ob",  # looks like escapes and like layout markers
    "tab\there",
    "question?mark&amp=1",
    "nul\x00byte",  # NUL cannot be in a file name; escaped as %00
]


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def test_hostile_keys_round_trip(s3, bucket):
    for i, key in enumerate(HOSTILE_KEYS):
        s3.put_object(Bucket=bucket, Key=key, Body=f"{i}:{key}".encode())
    for i, key in enumerate(HOSTILE_KEYS):
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == f"{i}:{key}".encode(), key
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(f"{i}:{key}".encode())


def test_hostile_keys_list(s3, bucket):
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == utf8_sorted(HOSTILE_KEYS)

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == utf8_sorted(k for k in HOSTILE_KEYS if "/" not in k)
    expected_prefixes = utf8_sorted({k[: k.index("/") + 1] for k in HOSTILE_KEYS if "/" in k})
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == expected_prefixes


def test_hostile_keys_delete(s3, bucket):
    for key in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    for key in HOSTILE_KEYS:
        s3.delete_object(Bucket=bucket, Key=key)
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("first, second", [("p", "p/q"), ("p/q", "p")])
def test_object_and_prefix_coexist(s3, bucket, first, second):
    s3.put_object(Bucket=bucket, Key=first, Body=first.encode())
    s3.put_object(Bucket=bucket, Key=second, Body=second.encode())
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == b"p"
    assert s3.get_object(Bucket=bucket, Key="p/q")["Body"].read() == b"p/q"

    s3.delete_object(Bucket=bucket, Key="p")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="p")
    assert s3.get_object(Bucket=bucket, Key="p/q")["Body"].read() == b"p/q"


def test_prefix_is_not_an_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="deep/er/key", Body=b"x")
    for key in ("deep", "deep/", "deep/er", "deep/er/"):
        with s3_error("NoSuchKey", 404):
            s3.get_object(Bucket=bucket, Key=key)


def test_delete_last_key_leaves_no_prefix(s3, bucket):
    s3.put_object(Bucket=bucket, Key="only/child", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="only/child")
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert listed.get("CommonPrefixes", []) == []
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 512 + "x"])
def test_key_too_long(s3, bucket, key):
    with s3_error("KeyTooLongError", 400):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

