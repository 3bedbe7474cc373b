"""Server-side encryption of AIS-local objects: SSE-S3, SSE-KMS (configured key ids) and SSE-C, bucket default
encryption, ranges across chunk boundaries, multipart uploads and copies between modes, what is on disk (never
the plaintext), tampering, restarts, refusals of bad keys; boto3, aws-cli and the native API."""

import base64
import hashlib
import os
import random

import pytest
import requests

from support import s3_error

KMS = """
[sse.kms_keys]
key-a = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
key-b = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
"""

KEY = os.urandom(32)
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(KEY).decode(),
         "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(KEY).digest()).decode()}
OTHER = os.urandom(32)
SSE_C_OTHER = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(OTHER).decode(),
               "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(OTHER).digest()).decode()}
MARKER = b"plaintext-marker-7f3a9c"
TOKEN = "trove-sse-tests-admin-token-0123456789"


@pytest.fixture(scope="module")
def kms_trove(tmp_path_factory):
    from support import Trove

    t = Trove(tmp_path_factory.mktemp("sse"), extra_config=KMS, env={"TROVE_ADMIN_TOKEN": TOKEN}).start()
    yield t
    t.kill9()


def body_of(n, seed=1):
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(n))
    data[: len(MARKER)] = MARKER[: n]
    return bytes(data)


def on_disk_contains(trove, needle: bytes) -> bool:
    for mp in trove.all_mountpaths:
        for root, _, files in os.walk(mp):
            for f in files:
                path = os.path.join(root, f)
                try:
                    with open(path, "rb") as fh:
                        if needle in fh.read():
                            return True
                except OSError:
                    pass
    return False


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536 + 5])
def test_sse_s3_round_trip_and_ranges(trove, s3, bucket, size):
    data = body_of(size, size)
    put = s3.put_object(Bucket=bucket, Key="o", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="o")
    assert got["Body"].read() == data and got["ServerSideEncryption"] == "AES256" and got["ContentLength"] == size
    assert s3.head_object(Bucket=bucket, Key="o")["ServerSideEncryption"] == "AES256"
    rng = random.Random(size)
    for _ in range(8 if size else 0):
        a = rng.randrange(size)
        b = rng.randrange(a, size)
        r = s3.get_object(Bucket=bucket, Key="o", Range=f"bytes={a}-{b}")
        assert r["Body"].read() == data[a : b + 1], (a, b)
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Size"] == size


def test_plaintext_never_reaches_the_disk(trove, s3, bucket):
    data = MARKER * 5000
    s3.put_object(Bucket=bucket, Key="secret", Body=data, ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="secret-c", Body=data, **SSE_C)
    assert not on_disk_contains(trove, MARKER)
    s3.put_object(Bucket=bucket, Key="plain", Body=data)
    assert on_disk_contains(trove, MARKER), "the check itself finds plaintext"


def test_sse_c_keys(s3, bucket):
    data = body_of(200_000)
    put = s3.put_object(Bucket=bucket, Key="c", Body=data, **SSE_C)
    assert put["SSECustomerKeyMD5"] == SSE_C["SSECustomerKeyMD5"] and "ServerSideEncryption" not in put
    got = s3.get_object(Bucket=bucket, Key="c", **SSE_C)
    assert got["Body"].read() == data and got["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="c", Range="bytes=70000-70009", **SSE_C)["Body"].read() == data[70000:70010]
    for args in [{}, SSE_C_OTHER]:
        with s3_error("InvalidRequest", 400):
            s3.get_object(Bucket=bucket, Key="c", **args)
        with s3_error(None, 400):
            s3.head_object(Bucket=bucket, Key="c", **args)
    bad_md5 = dict(SSE_C, SSECustomerKeyMD5=SSE_C_OTHER["SSECustomerKeyMD5"])
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", **bad_md5)
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="AES256", **SSE_C)
    s3.put_object(Bucket=bucket, Key="p", Body=b"plain")
    with s3_error("InvalidRequest", 400):
        s3.get_object(Bucket=bucket, Key="p", **SSE_C)


def test_kms_keys_defaults_and_refusals(kms_trove, bucket_name):
    s3 = kms_trove.client()
    s3.create_bucket(Bucket=bucket_name)
    put = s3.put_object(Bucket=bucket_name, Key="k", Body=b"kms", ServerSideEncryption="aws:kms", SSEKMSKeyId="key-a")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "key-a"
    got = s3.get_object(Bucket=bucket_name, Key="k")
    assert got["Body"].read() == b"kms" and got["SSEKMSKeyId"] == "key-a"
    for bad in [{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "nope"}, {"ServerSideEncryption": "aws:kms"},
                {"SSEKMSKeyId": "key-a"}, {"ServerSideEncryption": "AES128"}]:
        with s3_error("InvalidArgument", 400):
            s3.put_object(Bucket=bucket_name, Key="bad", Body=b"x", **bad)

    with s3_error("ServerSideEncryptionConfigurationNotFoundError", 404):
        s3.get_bucket_encryption(Bucket=bucket_name)
    rule = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "key-b"}}]}
    s3.put_bucket_encryption(Bucket=bucket_name, ServerSideEncryptionConfiguration=rule)
    got = s3.get_bucket_encryption(Bucket=bucket_name)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "key-b"}
    assert s3.put_object(Bucket=bucket_name, Key="d", Body=b"default")["SSEKMSKeyId"] == "key-b"
    # Multipart under the default, and a copy to SSE-C and back.
    up = s3.create_multipart_upload(Bucket=bucket_name, Key="mp")
    parts = []
    data = body_of(5 * 1024 * 1024 + 12345, 3)
    for n, chunk in enumerate([data[: 5 * 1024 * 1024], data[5 * 1024 * 1024 :]], 1):
        parts.append({"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket_name, Key="mp", UploadId=up["UploadId"],
                                                              PartNumber=n, Body=chunk)["ETag"]})
    done = s3.complete_multipart_upload(Bucket=bucket_name, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    assert done["SSEKMSKeyId"] == "key-b"
    assert s3.get_object(Bucket=bucket_name, Key="mp")["Body"].read() == data
    assert s3.get_object(Bucket=bucket_name, Key="mp", Range="bytes=5242870-5242890")["Body"].read() == data[5242870:5242891]
    s3.copy_object(Bucket=bucket_name, Key="mp-c", CopySource={"Bucket": bucket_name, "Key": "mp"}, **SSE_C)
    assert s3.get_object(Bucket=bucket_name, Key="mp-c", **SSE_C)["Body"].read() == data
    s3.copy_object(Bucket=bucket_name, Key="mp-s3", CopySource={"Bucket": bucket_name, "Key": "mp-c"},
                   ServerSideEncryption="AES256", CopySourceSSECustomerAlgorithm="AES256",
                   CopySourceSSECustomerKey=SSE_C["SSECustomerKey"], CopySourceSSECustomerKeyMD5=SSE_C["SSECustomerKeyMD5"])
    assert s3.get_object(Bucket=bucket_name, Key="mp-s3")["Body"].read() == data
    s3.delete_bucket_encryption(Bucket=bucket_name)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket_name, Key="plain", Body=b"p")
    # Restarted, the same keys open everything.
    kms_trove.stop()
    kms_trove.start()
    s3 = kms_trove.client()
    assert s3.get_object(Bucket=bucket_name, Key="mp-c", **SSE_C)["Body"].read() == data
    assert s3.get_object(Bucket=bucket_name, Key="d")["Body"].read() == b"default"


def test_sse_c_multipart_needs_its_key_on_every_part(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="m", **SSE_C)
    with s3_error(None, 400):
        s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 10)
    with s3_error(None, 400):
        s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 10, **SSE_C_OTHER)
    etag = s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 10, **SSE_C)["ETag"]
    with s3_error(None, 400):
        s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}, **SSE_C)
    assert s3.get_object(Bucket=bucket, Key="m", **SSE_C)["Body"].read() == b"x" * 10


def test_a_tampered_object_is_refused_not_served(trove, s3, bucket):
    data = body_of(300_000, 9)
    s3.put_object(Bucket=bucket, Key="t", Body=data, ServerSideEncryption="AES256")
    files = [os.path.join(r, f) for mp in trove.all_mountpaths for r, _, fs in os.walk(mp) for f in fs
             if os.path.getsize(os.path.join(r, f)) > 300_000 and "t" == f]
    assert len(files) == 1
    with open(files[0], "r+b") as fh:
        fh.seek(150_000)
        b = fh.read(1)
        fh.seek(150_000)
        fh.write(bytes([b[0] ^ 0xFF]))
    # The first chunks are fine; the altered one ends the body short instead of serving altered bytes.
    assert s3.get_object(Bucket=bucket, Key="t", Range="bytes=0-99")["Body"].read() == data[:100]
    got = b""
    with pytest.raises(Exception):
        got = s3.get_object(Bucket=bucket, Key="t")["Body"].read()
        assert got == data
    assert got != data


def test_native_api_serves_sse_s3_opened_and_refuses_sse_c(kms_trove, bucket_name):
    s3 = kms_trove.client()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="n", Body=b"native", ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket_name, Key="c", Body=b"native", **SSE_C)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.get(f"{kms_trove.endpoint}/v1/objects/{bucket_name}/n", headers=headers, timeout=10)
    assert r.status_code == 200 and r.content == b"native"
    r = requests.get(f"{kms_trove.endpoint}/v1/objects/{bucket_name}/c", headers=headers, timeout=10)
    assert r.status_code == 400


def test_aws_cli_sse(aws, s3, bucket, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(body_of(9 * 1024 * 1024, 5))
    aws("s3", "cp", src, f"s3://{bucket}/f", "--sse", "AES256")
    assert s3.head_object(Bucket=bucket, Key="f")["ServerSideEncryption"] == "AES256"
    aws("s3", "cp", f"s3://{bucket}/f", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
