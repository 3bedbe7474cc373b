"""The GET/HEAD fast path must answer exactly as the s3s path does, and let in exactly whom s3s lets in.

A plain signed GET/HEAD of an owned object is served by the fast path; adding a header outside its allowlist
(here `x-amz-expected-bucket-owner` naming the owner by its access key, which s3s's access hook checks and lets
through) sends the same request through s3s. The two
answers are compared header by header, and every way of getting the signature wrong must be refused."""

from datetime import datetime, timedelta, timezone

import pytest

from support import ALT, MAIN, User, key_path, raw_request, xml_error_code

BODY = b"fast path body\n"
KEYS = ["plain.txt", "dir/sp ace+plus%pct ü.bin"]
# Headers that legitimately differ between two answers.
VOLATILE = {"date", "x-amz-request-id"}


def via_s3s(headers=None):
    return dict(headers or {}, **{"x-amz-expected-bucket-owner": MAIN.access_key})


@pytest.fixture
def objects(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=BODY, ContentType="text/plain", Metadata={"color": "blue"},
                      CacheControl="max-age=60", Tagging="a=1&b=2")
    return bucket


def comparable(response):
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VOLATILE}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("key", KEYS)
def test_same_answer_as_s3s(trove, objects, method, key):
    fast = raw_request(method, trove.endpoint, key_path(objects, key))
    slow = raw_request(method, trove.endpoint, key_path(objects, key), headers=via_s3s())
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content == (b"" if method == "HEAD" else BODY)
    assert comparable(fast) == comparable(slow)


def test_checksum_mode_same_answer(trove, objects):
    mode = {"x-amz-checksum-mode": "ENABLED"}
    fast = raw_request("GET", trove.endpoint, key_path(objects, KEYS[0]), headers=mode)
    slow = raw_request("GET", trove.endpoint, key_path(objects, KEYS[0]), headers=via_s3s(mode))
    assert comparable(fast) == comparable(slow)


@pytest.mark.parametrize("route", ["fast", "s3s"])
def test_who_gets_in(trove, objects, route):
    extra = {} if route == "fast" else via_s3s()
    path = key_path(objects, KEYS[0])

    wrong_secret = User(MAIN.access_key, "not-the-secret")
    r = raw_request("GET", trove.endpoint, path, user=wrong_secret, headers=extra)
    assert (r.status_code, xml_error_code(r)) == (403, "SignatureDoesNotMatch")

    unknown = User("NOSUCHACCESSKEY00001", "whatever")
    r = raw_request("GET", trove.endpoint, path, user=unknown, headers=extra)
    assert (r.status_code, xml_error_code(r)) == (403, "InvalidAccessKeyId")

    stale = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)
    r = raw_request("GET", trove.endpoint, path, when=stale, headers=extra)
    assert r.status_code == 403

    r = raw_request("GET", trove.endpoint, path, user=ALT, headers=extra)
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied")

    r = raw_request("GET", trove.endpoint, path, user=None, headers=extra)
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied")

    r = raw_request("GET", trove.endpoint, key_path(objects, "missing"), headers=extra)
    assert (r.status_code, xml_error_code(r)) == (404, "NoSuchKey")


def test_tampered_signed_header_is_refused(trove, objects):
    from support import sign_headers
    import requests

    url = trove.endpoint + key_path(objects, KEYS[0])
    headers = sign_headers("GET", url)
    # Another object's path under the same signature.
    other = trove.endpoint + key_path(objects, KEYS[1])
    r = requests.get(other, headers=headers, timeout=10)
    assert (r.status_code, xml_error_code(r)) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("spec", ["bytes=0-0", "bytes=3-", "bytes=-5", "bytes=2-1000000", "bytes=0-", "bytes=4-9"])
def test_ranges_same_answer_as_s3s(trove, objects, spec):
    for key in KEYS:
        fast = raw_request("GET", trove.endpoint, key_path(objects, key), headers={"Range": spec})
        slow = raw_request("GET", trove.endpoint, key_path(objects, key), headers=via_s3s({"Range": spec}))
        assert fast.status_code == slow.status_code == 206, spec
        assert fast.content == slow.content
        assert comparable(fast) == comparable(slow), spec


@pytest.mark.parametrize("spec", ["bytes=100000-", "bytes=0-1,3-4", "bytes=a-b", "items=0-1"])
def test_odd_ranges_same_answer_as_s3s(trove, objects, spec):
    fast = raw_request("GET", trove.endpoint, key_path(objects, KEYS[0]), headers={"Range": spec})
    slow = raw_request("GET", trove.endpoint, key_path(objects, KEYS[0]), headers=via_s3s({"Range": spec}))
    assert fast.status_code == slow.status_code, spec
    assert (fast.status_code, xml_error_code(fast)) == (slow.status_code, xml_error_code(slow))
    if fast.status_code < 300:
        assert fast.content == slow.content


def test_presigned_urls_same_answer_as_s3s(trove, s3, objects):
    import requests

    for key in KEYS:
        url = s3.generate_presigned_url("get_object", Params={"Bucket": objects, "Key": key}, ExpiresIn=300)
        fast = requests.get(url, timeout=10)
        slow = requests.get(url, headers=via_s3s(), timeout=10)
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content == BODY
        assert comparable(fast) == comparable(slow)
        ranged = requests.get(url, headers={"Range": "bytes=1-3"}, timeout=10)
        assert ranged.status_code == 206 and ranged.content == BODY[1:4]
        # Response overrides are s3s's: they are answered, and as asked.
        url = s3.generate_presigned_url("get_object", ExpiresIn=300, Params={
            "Bucket": objects, "Key": key, "ResponseContentType": "application/x-override"})
        r = requests.get(url, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-override"


@pytest.mark.parametrize("route", ["fast", "s3s"])
def test_who_gets_in_with_a_presigned_url(trove, s3, objects, route):
    import time
    from urllib.parse import urlsplit, parse_qsl, urlencode

    import requests

    extra = {} if route == "fast" else via_s3s()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": objects, "Key": KEYS[0]}, ExpiresIn=300)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))

    def with_query(**changes):
        q = dict(query, **changes)
        return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(q)}"

    r = requests.get(with_query(**{"X-Amz-Signature": "0" * 64}), headers=extra, timeout=10)
    assert (r.status_code, xml_error_code(r)) == (403, "SignatureDoesNotMatch")
    r = requests.get(with_query(**{"X-Amz-Expires": "600"}), headers=extra, timeout=10)
    assert (r.status_code, xml_error_code(r)) == (403, "SignatureDoesNotMatch")
    other = url.replace(key_path(objects, KEYS[0]).split("/", 2)[2], "missing", 1)
    r = requests.get(other, headers=extra, timeout=10)
    assert r.status_code == 403
    # Another user's valid URL for an object it may not read.
    alt = s3_for(trove, ALT).generate_presigned_url("get_object", Params={"Bucket": objects, "Key": KEYS[0]})
    r = requests.get(alt, headers=extra, timeout=10)
    assert (r.status_code, xml_error_code(r)) == (403, "AccessDenied")
    # Valid for 0 seconds: expired at once (s3-tests' test_object_raw_get_x_amz_expires_out_range_zero).
    zero = s3.generate_presigned_url("get_object", Params={"Bucket": objects, "Key": KEYS[0]}, ExpiresIn=0)
    r = requests.get(zero, headers=extra, timeout=10)
    assert r.status_code == 403
    # Expired.
    short = s3.generate_presigned_url("get_object", Params={"Bucket": objects, "Key": KEYS[0]}, ExpiresIn=1)
    time.sleep(2.1)
    r = requests.get(short, headers=extra, timeout=10)
    assert r.status_code == 403


def s3_for(trove, user):
    return trove.client(user)
