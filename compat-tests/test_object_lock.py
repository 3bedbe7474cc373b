"""S3 Object Lock on AIS-local buckets: buckets created with it are versioned for good, default retention,
governance (bypass by the owner only) and compliance retention, legal holds, multipart uploads and copies,
DeleteObjects, validation; boto3."""

from datetime import datetime, timedelta, timezone

import pytest

from support import ALT, delete_bucket_recursively, new_bucket_name, s3_error

FAR = datetime(2140, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def locked(s3):
    bucket_name = new_bucket_name()
    s3.create_bucket(Bucket=bucket_name, ObjectLockEnabledForBucket=True)
    yield bucket_name
    # Release what the tests locked so the bucket can go (governance bypass; compliance ends by itself).
    listed = s3.list_object_versions(Bucket=bucket_name)
    for v in listed.get("Versions", []):
        s3.put_object_legal_hold(Bucket=bucket_name, Key=v["Key"], VersionId=v["VersionId"],
                                 LegalHold={"Status": "OFF"})
    delete_bucket_recursively(s3, bucket_name)
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        try:
            s3.delete_object(Bucket=bucket_name, Key=v["Key"], VersionId=v["VersionId"],
                             BypassGovernanceRetention=True)
        except Exception:
            pass
    try:
        s3.delete_bucket(Bucket=bucket_name)
    except Exception:
        pass


def test_bucket_created_with_lock_is_versioned_for_good(s3, locked):
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled"}
    with s3_error("InvalidBucketState", 409):
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})


def test_configuration_validation(s3, locked, bucket):
    def conf(**retention):
        return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}

    for bad in [conf(Mode="GOVERNANCE", Days=1, Years=1), conf(Mode="governance", Days=1), conf(Mode="x", Days=1),
                {"ObjectLockEnabled": "Disabled"}]:
        with s3_error("MalformedXML", 400):
            s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=bad)
    for bad in [conf(Mode="GOVERNANCE", Days=0), conf(Mode="COMPLIANCE", Years=-1)]:
        with s3_error("InvalidRetentionPeriod", 400):
            s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=bad)
    # A bucket without versioning cannot take a configuration; once versioned, it can.
    with s3_error("InvalidBucketState", 409):
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf(Mode="GOVERNANCE", Days=1))
    with s3_error("ObjectLockConfigurationNotFoundError", 404):
        s3.get_object_lock_configuration(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf(Mode="GOVERNANCE", Days=1))
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == conf(Mode="GOVERNANCE", Days=1)


def test_objects_in_an_unlocked_bucket_take_no_lock(s3, bucket):
    with s3_error("InvalidRequest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=FAR)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("InvalidRequest", 400):
        s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})


def test_default_retention_and_governance(s3, locked):
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    vid = s3.put_object(Bucket=locked, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert timedelta(hours=23) < head["ObjectLockRetainUntilDate"] - datetime.now(timezone.utc) < timedelta(days=1, hours=1)

    # A delete marker is always allowed; removing the locked version is not, unless the owner bypasses.
    s3.delete_object(Bucket=locked, Key="k")
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="k", VersionId=vid)
    assert s3.get_object(Bucket=locked, Key="k", VersionId=vid)["Body"].read() == b"x"
    # Shortening needs the bypass too.
    sooner = datetime.now(timezone.utc) + timedelta(hours=1)
    with s3_error("AccessDenied", 403):
        s3.put_object_retention(Bucket=locked, Key="k", VersionId=vid,
                                Retention={"Mode": "GOVERNANCE", "RetainUntilDate": sooner})
    s3.put_object_retention(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": sooner.replace(microsecond=0)})
    got = s3.get_object_retention(Bucket=locked, Key="k", VersionId=vid)["Retention"]
    assert got == {"Mode": "GOVERNANCE", "RetainUntilDate": sooner.replace(microsecond=0)}
    s3.delete_object(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    with s3_error(None, 404):
        s3.head_object(Bucket=locked, Key="k", VersionId=vid)


def test_only_the_owner_bypasses_governance(s3, s3_alt, locked):
    s3.put_bucket_acl(Bucket=locked, ACL="public-read-write")
    vid = s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                        ObjectLockRetainUntilDate=FAR)["VersionId"]
    with s3_error("AccessDenied", 403):
        s3_alt.delete_object(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    s3.delete_object(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True)


def test_compliance_cannot_be_weakened_or_bypassed(s3, locked):
    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
    vid = s3.put_object(Bucket=locked, Key="c", Body=b"x", ObjectLockMode="COMPLIANCE",
                        ObjectLockRetainUntilDate=until)["VersionId"]
    for retention in [{"Mode": "GOVERNANCE", "RetainUntilDate": until},
                      {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(seconds=2)}]:
        with s3_error("AccessDenied", 403):
            s3.put_object_retention(Bucket=locked, Key="c", Retention=retention, BypassGovernanceRetention=True)
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="c", VersionId=vid, BypassGovernanceRetention=True)
    # Extending is allowed.
    s3.put_object_retention(Bucket=locked, Key="c", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + timedelta(seconds=1)})
    import time

    time.sleep(max(0.0, (until + timedelta(seconds=1.5) - datetime.now(timezone.utc)).total_seconds()))
    s3.delete_object(Bucket=locked, Key="c", VersionId=vid)


def test_legal_hold_multipart_and_delete_objects(s3, locked):
    up = s3.create_multipart_upload(Bucket=locked, Key="m", ObjectLockLegalHoldStatus="ON")
    part = s3.upload_part(Bucket=locked, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"y" * 100)
    vid = s3.complete_multipart_upload(Bucket=locked, Key="m", UploadId=up["UploadId"],
                                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked, Key="m")["LegalHold"] == {"Status": "ON"}
    assert s3.head_object(Bucket=locked, Key="m")["ObjectLockLegalHoldStatus"] == "ON"
    free = s3.put_object(Bucket=locked, Key="f", Body=b"z")["VersionId"]
    res = s3.delete_objects(Bucket=locked, BypassGovernanceRetention=True, Delete={"Objects": [
        {"Key": "m", "VersionId": vid}, {"Key": "f", "VersionId": free}]})
    assert [(e["Key"], e["Code"], e["VersionId"]) for e in res["Errors"]] == [("m", "AccessDenied", vid)]
    assert [(d["Key"], d["VersionId"]) for d in res["Deleted"]] == [("f", free)]
    with s3_error("MalformedXML", 400):
        s3.put_object_legal_hold(Bucket=locked, Key="m", LegalHold={"Status": "on"})
    s3.put_object_legal_hold(Bucket=locked, Key="m", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=locked, Key="m", VersionId=vid)


def test_lock_headers_validation_and_copies(s3, locked):
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE")
    with s3_error("InvalidArgument", 400):
        s3.put_object(Bucket=locked, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=datetime(2000, 1, 1, tzinfo=timezone.utc))
    src = s3.put_object(Bucket=locked, Key="src", Body=b"x")["VersionId"]
    copied = s3.copy_object(Bucket=locked, Key="dst", CopySource={"Bucket": locked, "Key": "src", "VersionId": src},
                            ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=FAR)
    with s3_error("AccessDenied", 403):
        s3.delete_object(Bucket=locked, Key="dst", VersionId=copied["VersionId"])
    assert s3.get_object_retention(Bucket=locked, Key="dst")["Retention"]["Mode"] == "GOVERNANCE"
    with s3_error("NoSuchObjectLockConfiguration", 404):
        s3.get_object_retention(Bucket=locked, Key="src")


def test_alt_user_without_rights_is_denied(s3_alt, locked):
    with s3_error("AccessDenied", 403):
        s3_alt.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    assert ALT.id
