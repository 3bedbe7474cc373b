"""Bucket policies and public access blocks (enforced for other users and anonymous callers), CORS
(preflights and actual requests), browser form uploads (POST Object with a signed policy), and lifecycle
rules carried out by the worker with a short "day"; boto3 and plain HTTP."""

import base64
import datetime
import hashlib
import hmac
import json
import time

import pytest
import requests

from support import ALT, MAIN, REGION, delete_bucket_recursively, new_bucket_name, s3_error


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_policy_grants_and_denies_beyond_acls(trove, s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="pub/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="priv/b", Body=b"b")
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="pub/a")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/pub/*"},
        {"Effect": "Allow", "Principal": {"AWS": ALT.id}, "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringLike": {"s3:x-amz-acl": "public*"}}},
    ))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Action"] == "s3:GetObject"
    assert s3_alt.get_object(Bucket=bucket, Key="pub/a")["Body"].read() == b"a"
    assert requests.get(f"{trove.endpoint}/{bucket}/pub/a", timeout=10).content == b"a"  # anonymous
    assert requests.get(f"{trove.endpoint}/{bucket}/priv/b", timeout=10).status_code == 403
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="priv/b")
    s3_alt.put_object(Bucket=bucket, Key="from-alt", Body=b"x")
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="from-alt", Body=b"x", ACL="public-read")
    # The deny binds the owner too; deleting the policy gives the ACLs back their say.
    with s3_error("AccessDenied", 403):
        s3.put_object(Bucket=bucket, Key="own", Body=b"x", ACL="public-read")
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    s3.delete_bucket_policy(Bucket=bucket)
    with s3_error("NoSuchBucketPolicy", 404):
        s3.get_bucket_policy(Bucket=bucket)
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="pub/a")


@pytest.mark.parametrize("doc", [
    "not json",
    '{"Statement": []}',
    '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]}',
    '{"Statement": [{"Effect": "Perhaps", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}',
])
def test_bad_policies_are_refused(s3, bucket, doc):
    with s3_error(("MalformedPolicy", "InvalidArgument"), 400):
        s3.put_bucket_policy(Bucket=bucket, Policy=doc.replace("arn:aws:s3:::b/", f"arn:aws:s3:::{bucket}/"))


def test_public_access_block(trove, s3, bucket):
    with s3_error("NoSuchPublicAccessBlockConfiguration", 404):
        s3.get_public_access_block(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": False})
    with s3_error("AccessDenied", 403):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    with s3_error("AccessDenied", 403):
        s3.put_bucket_policy(Bucket=bucket, Policy=policy(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}))
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert requests.get(f"{trove.endpoint}/{bucket}/k", timeout=10).status_code == 200
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    assert requests.get(f"{trove.endpoint}/{bucket}/k", timeout=10).status_code == 403


def test_cors_preflight_and_actual_requests(trove, s3, bucket):
    url = f"{trove.endpoint}/{bucket}/obj"
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ACL="public-read")
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    assert requests.options(url, headers=pre, timeout=10).status_code == 403  # no configuration
    assert requests.options(url, timeout=10).status_code == 400
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["https://*.example"], "AllowedHeaders": ["x-amz-*"],
         "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["MaxAgeSeconds"] == 600
    r = requests.options(url, headers=dict(pre, **{"Access-Control-Request-Headers": "x-amz-date"}), timeout=10)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD" and r.headers["access-control-max-age"] == "600"
    assert requests.options(url, headers=dict(pre, Origin="https://evil.test"), timeout=10).status_code == 403
    assert requests.options(url, headers=dict(pre, **{"Access-Control-Request-Method": "PUT"}), timeout=10).status_code == 403
    got = requests.get(url, headers={"Origin": "https://app.example"}, timeout=10)
    assert got.content == b"x" and got.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in requests.get(url, headers={"Origin": "https://evil.test"}, timeout=10).headers
    missing = requests.get(url + "-missing", headers={"Origin": "https://app.example"}, timeout=10)
    assert missing.status_code in (403, 404) and missing.headers["access-control-allow-origin"] == "https://app.example"
    s3.delete_bucket_cors(Bucket=bucket)
    with s3_error("NoSuchCORSConfiguration", 404):
        s3.get_bucket_cors(Bucket=bucket)


def _post_form(trove, bucket, key, body, conditions, user=MAIN, expires_in=600, extra=None):
    """A SigV4-signed browser form upload (as a web page would send it)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    date = now.strftime("%Y%m%d")
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{user.access_key}/{date}/{REGION}/s3/aws4_request"
    expiration = (now + datetime.timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fields = {"key": key, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential,
              "x-amz-date": amz_date, **(extra or {})}
    doc = {"expiration": expiration, "conditions": [{"bucket": bucket}, *conditions,
                                                     *({k: v} for k, v in fields.items())]}
    encoded = base64.b64encode(json.dumps(doc).encode()).decode()

    def sign(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    k = sign(sign(sign(sign(("AWS4" + user.secret_key).encode(), date), REGION), "s3"), "aws4_request")
    fields.update(policy=encoded, **{"x-amz-signature": hmac.new(k, encoded.encode(), hashlib.sha256).hexdigest()})
    return requests.post(f"{trove.endpoint}/{bucket}", data=fields, files={"file": ("f", body)}, timeout=30)


def test_post_object_with_a_signed_policy(trove, s3, bucket):
    r = _post_form(trove, bucket, "form/a.txt", b"from a browser", [["content-length-range", 0, 1024]])
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="form/a.txt")["Body"].read() == b"from a browser"
    # The policy's conditions hold: too large, wrong key prefix, expired, wrong signature.
    r = _post_form(trove, bucket, "form/big", b"x" * 2048, [["content-length-range", 0, 1024]])
    assert r.status_code == 400
    r = _post_form(trove, bucket, "other/a", b"x", [["starts-with", "$key", "form/"]])
    assert r.status_code in (400, 403)  # s3s words a failed condition as 400, AWS as 403
    r = _post_form(trove, bucket, "form/late", b"x", [], expires_in=-60)
    assert r.status_code == 403
    stranger = type(MAIN)(MAIN.access_key, "not-the-secret-key")
    assert _post_form(trove, bucket, "form/x", b"x", [], user=stranger).status_code == 403
    # A user the bucket does not let write is refused, whatever the policy says.
    assert _post_form(trove, bucket, "form/alt", b"x", [], user=ALT).status_code == 403
    assert "form/alt" not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_post_object_size_is_the_policys(trove, s3, bucket):
    # No content-length-range: S3's object limit (the file is streamed to disk, never held).
    big = b"x" * (40 << 20)
    r = _post_form(trove, bucket, "huge", big, [])
    assert r.status_code == 204, r.content
    assert s3.head_object(Bucket=bucket, Key="huge")["ContentLength"] == len(big)
    r = _post_form(trove, bucket, "small", b"x", [["content-length-range", 10, 100]])
    assert r.status_code == 400 and b"EntityTooSmall" in r.content
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="small")


def test_lifecycle_rules_run(trove_factory, bucket_name):
    t = trove_factory(extra_config="[lifecycle]\nday_secs = 2\n")
    s3 = t.client()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_object(Bucket=bucket_name, Key="tmp/a", Body=b"a")
    s3.put_object(Bucket=bucket_name, Key="tmp/tagged", Body=b"t", Tagging="keep=no")
    s3.put_object(Bucket=bucket_name, Key="keep/b", Body=b"b")
    with s3_error(("MalformedXML", "InvalidArgument"), 400):
        s3.put_bucket_lifecycle_configuration(Bucket=bucket_name, LifecycleConfiguration={"Rules": [
            {"ID": "r", "Status": "enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}]})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket_name, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket_name)["Rules"]
    assert [r["ID"] for r in rules] == ["tmp", "uploads"]
    head = s3.head_object(Bucket=bucket_name, Key="tmp/a")
    assert 'rule-id="tmp"' in head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    s3.create_multipart_upload(Bucket=bucket_name, Key="stale")
    deadline = time.time() + 20
    while time.time() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket_name).get("Contents", [])]
        uploads = s3.list_multipart_uploads(Bucket=bucket_name).get("Uploads", [])
        if keys == ["keep/b"] and not uploads:
            break
        time.sleep(0.5)
    assert keys == ["keep/b"] and not uploads
    s3.delete_bucket_lifecycle(Bucket=bucket_name)
    with s3_error("NoSuchLifecycleConfiguration", 404):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket_name)


def test_lifecycle_in_a_versioned_bucket_leaves_markers(trove_factory, bucket_name):
    t = trove_factory(extra_config="[lifecycle]\nday_secs = 2\n")
    s3 = t.client()
    s3.create_bucket(Bucket=bucket_name)
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket_name, Key="v", Body=b"1")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket_name, LifecycleConfiguration={"Rules": [
        {"ID": "x", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 2}}]})
    deadline = time.time() + 30
    while time.time() < deadline:
        listed = s3.list_object_versions(Bucket=bucket_name)
        if not listed.get("Versions") and listed.get("DeleteMarkers"):
            break
        time.sleep(0.5)
    assert not listed.get("Versions") and len(listed["DeleteMarkers"]) == 1


def _log_policy(target, prefix, source, account):
    return policy({
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{target}/{prefix}",
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                      "StringEquals": {"aws:SourceAccount": account}},
    })


def test_bucket_logging_delivers_access_records(trove_factory, bucket_name):
    t = trove_factory(extra_config="log_roll_secs = 1\n")
    s3 = t.client()
    source, target = bucket_name, bucket_name + "-logs"
    s3.create_bucket(Bucket=source)
    s3.create_bucket(Bucket=target)
    me = s3.get_bucket_acl(Bucket=source)["Owner"]["ID"]
    enable = {"LoggingEnabled": {"TargetBucket": target, "TargetPrefix": "log/"}}
    # The target's policy must let the logging service in, for this source bucket and account.
    with s3_error("AccessDenied", 403):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=enable)
    s3.put_bucket_policy(Bucket=target, Policy=_log_policy(target, "log/", source, "someone-else"))
    with s3_error("AccessDenied", 403):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=enable)
    s3.put_bucket_policy(Bucket=target, Policy=_log_policy(target, "log/", source, me))
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": source, "TargetPrefix": "log/"}})
    with s3_error("MalformedXML", 400):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": target, "TargetPrefix": "log/",
            "TargetObjectKeyFormat": {"PartitionedPrefix": {"PartitionDateSource": "Sometimes"}}}})
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=enable)
    got = s3.get_bucket_logging(Bucket=source)["LoggingEnabled"]
    assert got["TargetBucket"] == target and got["TargetPrefix"] == "log/"
    assert got["TargetObjectKeyFormat"] == {"SimplePrefix": {}}

    keys = ["a", "dir/b c", "ü"]
    for k in keys:
        s3.put_object(Bucket=source, Key=k, Body=b"12345")
    assert s3.get_object(Bucket=source, Key="a")["Body"].read() == b"12345"
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=source, Key="missing")
    deadline = time.time() + 20
    records = []
    while time.time() < deadline:
        objs = s3.list_objects_v2(Bucket=target, Prefix="log/").get("Contents", [])
        records = [line for o in objs
                   for line in s3.get_object(Bucket=target, Key=o["Key"])["Body"].read().decode().splitlines()]
        if sum("REST.PUT.OBJECT" in r for r in records) >= 3 and any("NoSuchKey" in r for r in records):
            break
        time.sleep(0.5)
    import shlex
    parsed = [shlex.split(r.replace("[", '"').replace("]", '"')) for r in records]
    assert parsed and all(len(f) == 26 for f in parsed), records
    puts = [f for f in parsed if f[6] == "REST.PUT.OBJECT"]
    assert sorted(requests.utils.unquote(f[7]) for f in puts) == sorted(keys)
    assert all(f[0] == me and f[1] == source and f[4] == me and f[9] == "200" for f in puts)
    get = next(f for f in parsed if f[6] == "REST.GET.OBJECT" and f[7] == "a")
    assert get[9] == "200" and get[11] == "5" and get[12] == "5"
    missing = next(f for f in parsed if f[7] == "missing")
    assert missing[9] == "404" and missing[10] == "NoSuchKey"
    # Log objects are named <prefix>YYYY-mm-DD-HH-MM-SS-<unique>.
    for o in s3.list_objects_v2(Bucket=target, Prefix="log/")["Contents"]:
        assert len(o["Key"].split("-")) == 7, o["Key"]

    # Turned off: no LoggingEnabled, and requests are no longer recorded.
    s3.put_bucket_logging(Bucket=source, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=source)
    # A bucket that logs cannot be a target; a requester-pays or encrypted one neither.
    s3.put_bucket_request_payment(Bucket=target, RequestPaymentConfiguration={"Payer": "Requester"})
    assert s3.get_bucket_request_payment(Bucket=target)["Payer"] == "Requester"
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_logging(Bucket=source, BucketLoggingStatus=enable)


def test_requester_pays_needs_the_header_from_others(trove, s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"})
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="k")
    assert s3_alt.get_object(Bucket=bucket, Key="k", RequestPayer="requester")["Body"].read() == b"x"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    s3.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "BucketOwner"})
    assert s3_alt.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_form_uploads_land_on_their_owner(trove_factory, bucket_name):
    """A form's key is in its body: the node that receives it passes it to the key's owner, so a cluster keeps
    each object once, on its owner, and every node serves it."""
    t = trove_factory(cluster=3)
    s3 = t.client()
    s3.create_bucket(Bucket=bucket_name, ACL="public-read-write")
    keys = [f"form/{i:02d}" for i in range(24)]
    for k in keys:
        r = requests.post(f"{t.endpoint}/{bucket_name}", data={"key": k, "acl": "public-read"},
                          files={"file": ("f", k.encode())}, timeout=30)
        assert r.status_code == 204, r.content
    holders = {}
    for node in [t, *t.peers]:
        for mp in node.mountpaths:
            for path in mp.rglob("*"):
                for k in keys:
                    if path.is_file() and str(path).endswith(f"{bucket_name}/%ob/{k}"):
                        holders.setdefault(k, set()).add(node.port)
    assert sorted(holders) == keys and all(len(h) == 1 for h in holders.values()), holders
    assert len(set().union(*holders.values())) > 1, "every object stayed on the node that received its form"
    for node in [t, *t.peers]:
        for k in keys[:4]:
            assert requests.get(f"{node.endpoint}/{bucket_name}/{k}", timeout=10).content == k.encode()
