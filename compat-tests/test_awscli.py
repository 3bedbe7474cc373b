"""aws-cli (v1) against Trove: the high-level `aws s3` commands and a few `aws s3api` calls."""

import json
import os
import re
import time

from support import MiB, etag, random_bytes, s3_error, sha256_hex


def keys_of(s3, bucket, prefix=""):
    paginator = s3.get_paginator("list_objects_v2")
    return [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]


def write_tree(root, files: dict):
    """Write the files with an mtime an hour back: `aws s3 sync` re-uploads a file whose mtime is
    newer than the object's LastModified, which has only one-second resolution."""
    an_hour_ago = time.time() - 3600
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (an_hour_ago, an_hour_ago))


def read_tree(root) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_cp_small_file(aws, s3, bucket, tmp_path):
    source = tmp_path / "small.txt"
    source.write_bytes(b"hello from aws-cli\n")
    aws("s3", "cp", source, f"s3://{bucket}/dir/small.txt")
    assert s3.get_object(Bucket=bucket, Key="dir/small.txt")["Body"].read() == b"hello from aws-cli\n"

    back = tmp_path / "back.txt"
    aws("s3", "cp", f"s3://{bucket}/dir/small.txt", back)
    assert back.read_bytes() == b"hello from aws-cli\n"


def test_cp_large_file_uses_multipart(aws, s3, bucket, tmp_path):
    data = random_bytes(20 * MiB, seed=20)
    source = tmp_path / "large.bin"
    source.write_bytes(data)
    aws("s3", "cp", source, f"s3://{bucket}/large.bin")

    head = s3.head_object(Bucket=bucket, Key="large.bin")
    assert head["ContentLength"] == len(data)
    assert re.fullmatch(r'"[0-9a-f]{32}-3"', head["ETag"]), head["ETag"]  # 8 MiB parts: 8 + 8 + 4

    back = tmp_path / "large.back"
    aws("s3", "cp", f"s3://{bucket}/large.bin", back)  # large objects are fetched with ranged GETs
    assert sha256_hex(back.read_bytes()) == sha256_hex(data)


def test_sync_up_and_down(aws, s3, bucket, tmp_path):
    files = {
        "a.txt": b"a",
        "sub/b.txt": b"bb",
        "sub/deeper/c.bin": random_bytes(100 * 1024, seed=21),
        "sp ace/ü.txt": "unicode ü".encode(),
        "empty": b"",
    }
    up = tmp_path / "up"
    write_tree(up, files)
    aws("s3", "sync", up, f"s3://{bucket}/data")
    assert sorted(keys_of(s3, bucket)) == sorted(f"data/{rel}" for rel in files)

    again = aws("s3", "sync", up, f"s3://{bucket}/data")
    assert again.stdout.strip() == "", "a second sync should find nothing to upload"

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/data", down)
    assert read_tree(down) == files


def test_sync_delete(aws, s3, bucket, tmp_path):
    up = tmp_path / "up"
    write_tree(up, {"keep.txt": b"keep", "drop.txt": b"drop"})
    aws("s3", "sync", up, f"s3://{bucket}/d")
    (up / "drop.txt").unlink()
    aws("s3", "sync", "--delete", up, f"s3://{bucket}/d")
    assert keys_of(s3, bucket) == ["d/keep.txt"]


def test_ls(aws, s3, bucket):
    for key in ("top.txt", "dir/one.txt", "dir/sub/two.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")

    assert bucket in aws("s3", "ls").stdout.split()

    shallow = aws("s3", "ls", f"s3://{bucket}/").stdout
    assert re.search(r"^\s+PRE dir/$", shallow, re.M), shallow
    assert re.search(r"^\S+ \S+\s+5 top\.txt$", shallow, re.M), shallow
    assert "one.txt" not in shallow

    deep = aws("s3", "ls", "--recursive", f"s3://{bucket}/").stdout
    listed = [line.split(maxsplit=3)[3] for line in deep.splitlines() if line.strip()]
    assert listed == ["dir/one.txt", "dir/sub/two.txt", "top.txt"]

    inside = aws("s3", "ls", f"s3://{bucket}/dir/").stdout
    assert re.search(r"^\s+PRE sub/$", inside, re.M) and "one.txt" in inside


def test_rm_recursive(aws, s3, bucket):
    for key in ("top.txt", "dir/one.txt", "dir/sub/two.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    aws("s3", "rm", "--recursive", f"s3://{bucket}/dir/")
    assert keys_of(s3, bucket) == ["top.txt"]
    aws("s3", "rm", "--recursive", f"s3://{bucket}")
    assert keys_of(s3, bucket) == []


def test_mb_and_rb(aws, s3, bucket_name):
    aws("s3", "mb", f"s3://{bucket_name}")
    assert s3.head_bucket(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    aws("s3", "rb", f"s3://{bucket_name}")
    with s3_error(None, 404):
        s3.head_bucket(Bucket=bucket_name)


def test_s3api_object_calls(aws, bucket, tmp_path):
    source = tmp_path / "obj.txt"
    source.write_bytes(b"via s3api\n")
    put = json.loads(aws("s3api", "put-object", "--bucket", bucket, "--key", "api/obj.txt", "--body", source,
                         "--content-type", "text/plain", "--metadata", "origin=cli").stdout)
    assert put["ETag"] == etag(b"via s3api\n")

    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", "api/obj.txt").stdout)
    assert head["ContentLength"] == len(b"via s3api\n")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"origin": "cli"}

    target = tmp_path / "got.txt"
    got = json.loads(aws("s3api", "get-object", "--bucket", bucket, "--key", "api/obj.txt", target).stdout)
    assert got["ETag"] == put["ETag"]
    assert target.read_bytes() == b"via s3api\n"

    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "api/").stdout)
    assert [o["Key"] for o in listed["Contents"]] == ["api/obj.txt"]


def test_s3api_errors(aws, bucket):
    missing = aws("s3api", "get-object", "--bucket", bucket, "--key", "missing", "/dev/null", check=False)
    assert missing.returncode != 0
    assert "NoSuchKey" in missing.stderr

    head = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing", check=False)
    assert head.returncode != 0
    assert "404" in head.stderr
