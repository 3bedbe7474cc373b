"""Bucket operations: create/head/delete, naming rules, ownership, listing, location, tagging."""

import pytest

from support import ALT, s3_error


def test_create_head_delete(s3, bucket_name):
    created = s3.create_bucket(Bucket=bucket_name)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert created["Location"] == f"/{bucket_name}"

    assert s3.head_bucket(Bucket=bucket_name)["ResponseMetadata"]["HTTPStatusCode"] == 200

    deleted = s3.delete_bucket(Bucket=bucket_name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error(None, 404):
        s3.head_bucket(Bucket=bucket_name)


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "UPPER",  # upper case
        "a..b",  # adjacent periods
        "-ab",  # must start with a letter or digit
        "ab-",  # must end with a letter or digit
        "a_b",  # underscore
        "192.168.1.1",  # formatted like an IP address
        "v1",  # reserved by Trove for its native API
    ],
)
def test_create_invalid_name(s3, name):
    with s3_error("InvalidBucketName", 400):
        s3.create_bucket(Bucket=name)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "a.b-c.0", "0-digit-first", "v1x", "v10"])
def test_create_valid_unusual_names(s3, name):
    s3.create_bucket(Bucket=name)
    try:
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        s3.delete_bucket(Bucket=name)


def test_create_twice_same_owner(s3, bucket):
    # us-east-1 semantics (S3's legacy region, Trove's default): the owner's repeated create is a 200 no-op.
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    s3.create_bucket(Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"x"


def test_create_existing_of_other_user(s3_alt, bucket):
    with s3_error("BucketAlreadyExists", 409):
        s3_alt.create_bucket(Bucket=bucket)


def test_head_missing_bucket(s3, bucket_name):
    with s3_error(None, 404):
        s3.head_bucket(Bucket=bucket_name)


def test_delete_missing_bucket(s3, bucket_name):
    with s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=bucket_name)


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k")
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_bucket_after_aborted_upload(s3, bucket):
    """An aborted multipart upload leaves nothing behind that blocks DeleteBucket."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key="pending")
    s3.upload_part(Bucket=bucket, Key="pending", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="pending", UploadId=upload["UploadId"])
    assert s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_recreate_after_delete(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"old")
    s3.delete_object(Bucket=bucket, Key="old")
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_list_buckets(s3, bucket):
    listed = s3.list_buckets()
    names = [b["Name"] for b in listed["Buckets"]]
    assert bucket in names
    assert names == sorted(names)
    entry = next(b for b in listed["Buckets"] if b["Name"] == bucket)
    assert entry["CreationDate"] is not None
    assert listed["Owner"]["ID"]
    assert "DisplayName" in listed["Owner"]


def test_list_buckets_per_user(s3, s3_alt, bucket, bucket_name_alt):
    s3_alt.create_bucket(Bucket=bucket_name_alt)
    try:
        alt = s3_alt.list_buckets()
        assert alt["Owner"] == {"ID": ALT.id, "DisplayName": ALT.display_name}
        alt_names = [b["Name"] for b in alt["Buckets"]]
        assert bucket_name_alt in alt_names
        assert bucket not in alt_names

        main_names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert bucket in main_names
        assert bucket_name_alt not in main_names
    finally:
        s3_alt.delete_bucket(Bucket=bucket_name_alt)


def test_other_user_cannot_use_bucket(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"x")
    with s3_error("AccessDenied", 403):
        s3_alt.list_objects_v2(Bucket=bucket)
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="private")
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="intruder", Body=b"x")
    with s3_error("AccessDenied", 403):
        s3_alt.delete_bucket(Bucket=bucket)


def test_get_bucket_location(s3, bucket):
    # us-east-1 is reported as an empty LocationConstraint.
    assert s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") is None


def test_get_location_missing_bucket(s3, bucket_name):
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_location(Bucket=bucket_name)


def test_bucket_tagging(s3, bucket):
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)

    tags = [{"Key": "project", "Value": "trove"}, {"Key": "empty", "Value": ""}, {"Key": "sp ace", "Value": "ü"}]
    put = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    assert put["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    got = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])

    replaced = [{"Key": "only", "Value": "one"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": replaced})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == replaced

    deleted = s3.delete_bucket_tagging(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with s3_error("NoSuchTagSet", 404):
        s3.get_bucket_tagging(Bucket=bucket)


def test_bucket_tagging_missing_bucket(s3, bucket_name):
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_tagging(Bucket=bucket_name)


def test_bucket_tagging_invalid(s3, bucket):
    duplicate = [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]
    with s3_error("InvalidTag", 400):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": duplicate})


@pytest.fixture
def bucket_name_alt(bucket_name) -> str:
    return bucket_name + "-alt"
