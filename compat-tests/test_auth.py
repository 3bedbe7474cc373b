"""Authentication: SigV4 failures, anonymous access, presigned URLs, virtual-hosted addressing,
aws-chunked streaming uploads, and the second user."""

import hashlib
import hmac
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from support import (
    ALT,
    DOMAIN,
    MAIN,
    REGION,
    User,
    crc32_b64,
    key_path,
    random_bytes,
    raw_request,
    s3_client,
    s3_error,
    sha256_b64,
    sha256_hex,
    sign_headers,
    xml_error_code,
)

BODY = b"authenticated body\n"


# ---------------------------------------------------------------------------------------------
# Failed authentication
# ---------------------------------------------------------------------------------------------


def test_wrong_secret(trove, bucket):
    client = trove.client(User(MAIN.access_key, "not-the-secret"))
    with s3_error("SignatureDoesNotMatch", 403):
        client.list_buckets()
    with s3_error("SignatureDoesNotMatch", 403):
        client.put_object(Bucket=bucket, Key="k", Body=BODY)


def test_unknown_access_key(trove, bucket):
    client = trove.client(User("AKIDONOTEXIST0000000", "whatever"))
    with s3_error("InvalidAccessKeyId", 403):
        client.list_buckets()
    with s3_error("InvalidAccessKeyId", 403):
        client.get_object(Bucket=bucket, Key="k")


def test_anonymous_requests_are_denied(trove, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    for method, path in [("GET", "/"), ("GET", f"/{bucket}"), ("GET", f"/{bucket}/k"), ("PUT", f"/{bucket}/new")]:
        response = requests.request(method, trove.endpoint + path, data=b"x" if method == "PUT" else None, timeout=10)
        assert (response.status_code, xml_error_code(response)) == (403, "AccessDenied"), (method, path)
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket, Key="new")


def test_health_is_unauthenticated(trove):
    assert requests.get(f"{trove.endpoint}/v1/health", timeout=10).status_code == 200


def test_payload_hash_mismatch(trove, bucket):
    response = raw_request("PUT", trove.endpoint, key_path(bucket, "k"), body=BODY,
                           payload_hash=sha256_hex(b"different body"))
    assert (response.status_code, xml_error_code(response)) == (400, "XAmzContentSHA256Mismatch")


def test_unsigned_payload(trove, s3, bucket):
    response = raw_request("PUT", trove.endpoint, key_path(bucket, "k"), body=BODY, payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == BODY


def test_request_time_too_skewed(trove, bucket):
    an_hour_ago = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
    response = raw_request("GET", trove.endpoint, key_path(bucket) + "/", when=an_hour_ago)
    assert (response.status_code, xml_error_code(response)) == (403, "RequestTimeTooSkewed")


def test_tampered_request_is_rejected(trove, bucket):
    url = trove.endpoint + key_path(bucket, "k")
    headers = sign_headers("PUT", url, body=BODY)
    tampered = bytes(reversed(BODY))  # same length, other bytes
    response = requests.put(url, headers=headers, data=tampered, timeout=10)
    assert response.status_code in (400, 403)
    assert xml_error_code(response) in ("XAmzContentSHA256Mismatch", "SignatureDoesNotMatch")


# ---------------------------------------------------------------------------------------------
# Presigned URLs
# ---------------------------------------------------------------------------------------------


def test_presigned_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared file.txt", Body=BODY)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared file.txt"}, ExpiresIn=300)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == BODY


def test_presigned_get_tampered(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    response = requests.get(url.replace(f"/{bucket}/k?", f"/{bucket}/other?"), timeout=10)
    assert (response.status_code, xml_error_code(response)) == (403, "SignatureDoesNotMatch")


def test_presigned_get_expired(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2)
    response = requests.get(url, timeout=10)
    assert (response.status_code, xml_error_code(response)) == (403, "AccessDenied")


def test_presigned_expiry_longer_than_a_week(s3, bucket):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=604801)
    response = requests.get(url, timeout=10)
    # AWS answers 400 AuthorizationQueryParametersError; the ceph s3-tests suite (which Trove follows) asserts 403.
    assert (response.status_code, xml_error_code(response)) == (403, "AccessDenied")


def test_presigned_put(s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300)
    response = requests.put(url, data=BODY, timeout=10)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == BODY


# ---------------------------------------------------------------------------------------------
# Virtual-hosted-style requests (bucket.localhost:PORT sent to 127.0.0.1)
# ---------------------------------------------------------------------------------------------


def virtual_host(trove, bucket) -> str:
    return f"{bucket}.{DOMAIN}:{trove.port}"


def test_virtual_hosted_raw(trove, s3, bucket):
    host = virtual_host(trove, bucket)
    put = raw_request("PUT", trove.endpoint, "/dir/key.txt", host=host, body=BODY)
    assert put.status_code == 200, put.text
    assert s3.get_object(Bucket=bucket, Key="dir/key.txt")["Body"].read() == BODY

    got = raw_request("GET", trove.endpoint, "/dir/key.txt", host=host)
    assert (got.status_code, got.content) == (200, BODY)

    listed = raw_request("GET", trove.endpoint, "/", query="list-type=2", host=host)
    assert listed.status_code == 200
    assert b"<Key>dir/key.txt</Key>" in listed.content

    missing = raw_request("GET", trove.endpoint, "/missing", host=host)
    assert (missing.status_code, xml_error_code(missing)) == (404, "NoSuchKey")


def test_virtual_hosted_missing_bucket(trove, bucket_name):
    response = raw_request("GET", trove.endpoint, "/key", host=virtual_host(trove, bucket_name))
    assert (response.status_code, xml_error_code(response)) == (404, "NoSuchBucket")


def test_domain_itself_is_path_style(trove, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=BODY)
    response = raw_request("GET", trove.endpoint, key_path(bucket, "k"), host=f"{DOMAIN}:{trove.port}")
    assert (response.status_code, response.content) == (200, BODY)


@pytest.fixture
def virtual_s3(trove):
    """A boto3 client that addresses buckets as bucket.localhost:PORT; `*.localhost` does not
    resolve here, so each signed request is sent to 127.0.0.1 with its Host header kept."""
    client = s3_client(f"http://{DOMAIN}:{trove.port}", MAIN, addressing_style="virtual")

    def to_loopback(request, **_):
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc
        request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{trove.port}"))

    client.meta.events.register("before-send.s3", to_loopback)
    return client


def test_virtual_hosted_boto3(virtual_s3, s3, bucket_name):
    virtual_s3.create_bucket(Bucket=bucket_name)
    try:
        virtual_s3.put_object(Bucket=bucket_name, Key="a/b c", Body=BODY, Metadata={"via": "vhost"})
        got = virtual_s3.get_object(Bucket=bucket_name, Key="a/b c")
        assert got["Body"].read() == BODY
        assert got["Metadata"] == {"via": "vhost"}
        assert [o["Key"] for o in virtual_s3.list_objects_v2(Bucket=bucket_name)["Contents"]] == ["a/b c"]
        # The same bucket and object through path style.
        assert s3.get_object(Bucket=bucket_name, Key="a/b c")["Body"].read() == BODY
        virtual_s3.delete_object(Bucket=bucket_name, Key="a/b c")
    finally:
        virtual_s3.delete_bucket(Bucket=bucket_name)
    with s3_error(None, 404):
        s3.head_bucket(Bucket=bucket_name)


# ---------------------------------------------------------------------------------------------
# aws-chunked uploads
# ---------------------------------------------------------------------------------------------

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_boto3_default_upload_checksum(s3, bucket):
    """boto3 (1.36+) adds a CRC32 checksum to every upload by default (over plain HTTP as a header,
    over TLS as an aws-chunked trailer); the stored object reports it."""
    body = random_bytes(256 * 1024, seed=7)
    put = s3.put_object(Bucket=bucket, Key="k", Body=body)
    assert put["ChecksumCRC32"] == crc32_b64(body)
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == crc32_b64(body)
    assert got["Body"].read() == body


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def unsigned_trailer_body(data: bytes, chunk_size: int, trailer: str) -> bytes:
    """aws-chunked framing as the AWS SDKs send it with STREAMING-UNSIGNED-PAYLOAD-TRAILER."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks_of(data, chunk_size))
    return body + b"0\r\n" + trailer.encode() + b"\r\n\r\n"


def put_unsigned_trailer(trove, bucket, key, data, algorithm, checksum, chunk_size=64 * 1024):
    name = f"x-amz-checksum-{algorithm.lower()}"
    body = unsigned_trailer_body(data, chunk_size, f"{name}:{checksum}")
    headers = {
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(len(body)),
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": name,
        "x-amz-sdk-checksum-algorithm": algorithm,
    }
    return raw_request("PUT", trove.endpoint, key_path(bucket, key), headers=headers, body=body,
                       payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")


@pytest.mark.parametrize("algorithm, checksum_of", [("CRC32", crc32_b64), ("SHA256", sha256_b64)])
def test_aws_chunked_unsigned_trailer(trove, s3, bucket, algorithm, checksum_of):
    data = random_bytes(300 * 1024 + 17, seed=8)
    response = put_unsigned_trailer(trove, bucket, "chunked", data, algorithm, checksum_of(data))
    assert response.status_code == 200, response.text
    assert response.headers.get(f"x-amz-checksum-{algorithm.lower()}") == checksum_of(data)

    got = s3.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ContentLength"] == len(data)
    assert got[f"Checksum{algorithm}"] == checksum_of(data)
    assert got.get("ContentEncoding") in (None, "")  # aws-chunked is transfer framing, not stored


def test_aws_chunked_unsigned_trailer_bad_checksum(trove, s3, bucket):
    data = random_bytes(100 * 1024, seed=9)
    response = put_unsigned_trailer(trove, bucket, "chunked", data, "CRC32", crc32_b64(b"not the data"))
    assert response.status_code == 400
    assert xml_error_code(response) in ("BadDigest", "InvalidRequest", "XAmzContentChecksumMismatch")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="chunked")


def signing_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def put_signed_chunks(trove, bucket, key, data, chunk_size=64 * 1024, tamper_chunk=None):
    """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed, chained from the seed
    signature of the Authorization header (what many SDKs send over plain HTTP)."""
    chunks = chunks_of(data, chunk_size) + [b""]
    length = sum(len(b"%x;chunk-signature=%s\r\n\r\n" % (len(c), b"0" * 64)) + len(c) for c in chunks)
    url = trove.endpoint + key_path(bucket, key)
    headers = sign_headers("PUT", url, headers={
        "Content-Encoding": "aws-chunked",
        "Content-Length": str(length),
        "x-amz-decoded-content-length": str(len(data)),
    }, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")

    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    signing = signing_key(MAIN.secret_key, amz_date[:8])
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = b""
    for index, chunk in enumerate(chunks):
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256,
                             hashlib.sha256(chunk).hexdigest()])
        signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        sent = chunk if index != tamper_chunk else bytes([chunk[0] ^ 1]) + chunk[1:]
        body += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(chunk), signature.encode(), sent)
        previous = signature
    assert len(body) == length
    return requests.put(url, headers=headers, data=body, timeout=60)


def test_aws_chunked_signed(trove, s3, bucket):
    data = random_bytes(200 * 1024 + 5, seed=10)
    response = put_signed_chunks(trove, bucket, "signed-chunks", data)
    assert response.status_code == 200, response.text
    got = s3.get_object(Bucket=bucket, Key="signed-chunks")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_aws_chunked_signed_bad_chunk_signature(trove, s3, bucket):
    data = random_bytes(200 * 1024, seed=11)
    response = put_signed_chunks(trove, bucket, "signed-chunks", data, tamper_chunk=1)
    assert (response.status_code, xml_error_code(response)) == (403, "SignatureDoesNotMatch")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="signed-chunks")


# ---------------------------------------------------------------------------------------------
# The second user
# ---------------------------------------------------------------------------------------------


def test_alt_user_owner_fields(s3_alt, bucket_name):
    s3_alt.create_bucket(Bucket=bucket_name)
    try:
        listed = s3_alt.list_buckets()
        assert listed["Owner"] == {"ID": ALT.id, "DisplayName": ALT.display_name}
        assert bucket_name in [b["Name"] for b in listed["Buckets"]]

        s3_alt.put_object(Bucket=bucket_name, Key="mine", Body=BODY)
        objects = s3_alt.list_objects_v2(Bucket=bucket_name, FetchOwner=True)["Contents"]
        assert objects[0]["Owner"]["ID"] == ALT.id
        assert objects[0]["Owner"].get("DisplayName") in (None, ALT.display_name)
        s3_alt.delete_object(Bucket=bucket_name, Key="mine")
    finally:
        s3_alt.delete_bucket(Bucket=bucket_name)


def test_alt_user_only_sees_own_buckets(s3, s3_alt, bucket):
    assert bucket not in [b["Name"] for b in s3_alt.list_buckets()["Buckets"]]
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.list_buckets()["Owner"]["ID"] != ALT.id
