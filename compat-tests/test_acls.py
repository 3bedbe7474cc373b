"""S3 ACL grants (not only canned ACLs), object ownership and the policy conditions that look at objects, with
boto3 and plain HTTP: grants to users by id and e-mail and to groups, by body and by `x-amz-grant-*` headers,
READ_ACP/WRITE_ACP, objects owned by their writer, the three ObjectOwnership settings, and the refusals S3
gives for unknown grantees."""

import json

import requests

from support import ALT, s3_error


def grant_to(user_id, permission):
    return {"Grantee": {"ID": user_id, "Type": "CanonicalUser"}, "Permission": permission}


def with_grants(s3, bucket, *grants, key=None):
    """The current ACL (bucket or object) with `grants` added: an AccessControlPolicy to put back."""
    acl = s3.get_object_acl(Bucket=bucket, Key=key) if key else s3.get_bucket_acl(Bucket=bucket)
    return {"Owner": acl["Owner"], "Grants": acl["Grants"] + list(grants)}


def permissions(acl):
    return sorted((g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"]) for g in acl["Grants"])


def test_bucket_grants_by_id_give_what_they_say(s3, s3_alt, bucket):
    me = s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]
    with s3_error("AccessDenied", 403):
        s3_alt.list_objects_v2(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grants(s3, bucket, grant_to(ALT.id, "READ")))
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert permissions(acl) == sorted([(me, "FULL_CONTROL"), (ALT.id, "READ")])
    assert [g["Grantee"].get("DisplayName") for g in acl["Grants"] if g["Grantee"].get("ID") == ALT.id] == ["john.doe"]
    s3_alt.list_objects_v2(Bucket=bucket)  # READ lists
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="k", Body=b"x")  # but does not write
    with s3_error("AccessDenied", 403):
        s3_alt.get_bucket_acl(Bucket=bucket)  # nor read the ACL
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grants(s3, bucket, grant_to(ALT.id, "READ_ACP")))
    assert s3_alt.get_bucket_acl(Bucket=bucket)["Owner"]["ID"] == me
    with s3_error("AccessDenied", 403):
        s3_alt.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grants(s3, bucket, grant_to(ALT.id, "FULL_CONTROL")))
    s3_alt.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3_alt.put_bucket_acl(Bucket=bucket, ACL="public-read")  # FULL_CONTROL includes WRITE_ACP
    assert requests.get(f"{s3.meta.endpoint_url}/{bucket}", timeout=10).status_code == 200
    # All grants revoked: the owner still manages its bucket.
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": []})
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == []
    s3.put_bucket_acl(Bucket=bucket, ACL="private")


def test_unknown_grantees_are_refused(s3, bucket):
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grants(s3, bucket, grant_to("_nobody", "READ")))
    nobody = {"Grantee": {"EmailAddress": "nobody@example.invalid", "Type": "AmazonCustomerByEmail"},
              "Permission": "READ"}
    with s3_error("UnresolvableGrantByEmailAddress", 400):
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grants(s3, bucket, nobody))
    with s3_error("InvalidArgument", 400):
        s3.put_bucket_acl(Bucket=bucket, GrantRead='uri="http://acs.amazonaws.com/groups/global/Nobody"')
    with s3_error("InvalidRequest", 400):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read", GrantRead=f'id="{ALT.id}"')


def test_grant_headers_and_e_mail_grantees(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"shared", GrantRead=f'emailAddress="{ALT.email}"',
                  GrantReadACP=f'id="{ALT.id}"')
    assert permissions(s3.get_object_acl(Bucket=bucket, Key="k")) == sorted([(ALT.id, "READ"), (ALT.id, "READ_ACP")])
    assert s3_alt.get_object(Bucket=bucket, Key="k")["Body"].read() == b"shared"
    assert s3_alt.get_object_acl(Bucket=bucket, Key="k")["Grants"]
    with s3_error("AccessDenied", 403):
        s3_alt.put_object_acl(Bucket=bucket, Key="k", ACL="public-read")
    # Groups by URI in a header.
    s3.put_object_acl(Bucket=bucket, Key="k", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    assert requests.get(f"{s3.meta.endpoint_url}/{bucket}/k", timeout=10).content == b"shared"


def test_objects_belong_to_their_writer(s3, s3_alt, bucket_name):
    s3.create_bucket(Bucket=bucket_name, ACL="public-read-write")
    me = s3.get_bucket_acl(Bucket=bucket_name)["Owner"]["ID"]
    s3_alt.put_object(Bucket=bucket_name, Key="alts", Body=b"mine")
    acl = s3_alt.get_object_acl(Bucket=bucket_name, Key="alts")
    assert acl["Owner"]["ID"] == ALT.id and permissions(acl) == [(ALT.id, "FULL_CONTROL")]
    # The bucket owner neither reads it nor its ACL...
    with s3_error("AccessDenied", 403):
        s3.get_object(Bucket=bucket_name, Key="alts")
    with s3_error("AccessDenied", 403):
        s3.get_object_acl(Bucket=bucket_name, Key="alts")
    # ...until the writer says so; bucket-owner-read names the bucket owner.
    s3_alt.put_object_acl(Bucket=bucket_name, Key="alts", ACL="bucket-owner-read")
    assert permissions(s3_alt.get_object_acl(Bucket=bucket_name, Key="alts")) == sorted(
        [(ALT.id, "FULL_CONTROL"), (me, "READ")])
    assert s3.get_object(Bucket=bucket_name, Key="alts")["Body"].read() == b"mine"
    listed = s3.list_objects_v2(Bucket=bucket_name, FetchOwner=True)["Contents"]
    assert [o["Owner"]["ID"] for o in listed if o["Key"] == "alts"] == [ALT.id]
    # A multipart upload's object belongs to its initiator too (ListParts names the owner).
    up = s3_alt.create_multipart_upload(Bucket=bucket_name, Key="mp")
    assert s3_alt.list_parts(Bucket=bucket_name, Key="mp", UploadId=up["UploadId"])["Owner"]["ID"] == ALT.id
    s3_alt.abort_multipart_upload(Bucket=bucket_name, Key="mp", UploadId=up["UploadId"])
    # The bucket owner may always delete what is in its bucket.
    s3.delete_object(Bucket=bucket_name, Key="alts")
    with s3_error("NoSuchKey", 404):
        s3_alt.get_object(Bucket=bucket_name, Key="alts")


def public_policy(bucket):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})


def test_ownership_settings(s3, s3_alt, bucket_name):
    # BucketOwnerEnforced: the bucket owner owns everything and ACLs are off.
    s3.create_bucket(Bucket=bucket_name, ObjectOwnership="BucketOwnerEnforced")
    me = s3.get_bucket_acl(Bucket=bucket_name)["Owner"]["ID"]
    s3.put_bucket_policy(Bucket=bucket_name, Policy=public_policy(bucket_name))
    s3_alt.put_object(Bucket=bucket_name, Key="a", Body=b"x")
    assert s3_alt.get_object_acl(Bucket=bucket_name, Key="a")["Owner"]["ID"] == me
    s3_alt.put_object(Bucket=bucket_name, Key="b", Body=b"x", ACL="bucket-owner-full-control")
    for call in (lambda: s3_alt.put_object(Bucket=bucket_name, Key="c", Body=b"x", ACL="private"),
                 lambda: s3.put_bucket_acl(Bucket=bucket_name, ACL="public-read"),
                 lambda: s3.put_object_acl(Bucket=bucket_name, Key="a", ACL="public-read")):
        with s3_error("AccessControlListNotSupported", 400):
            call()
    # BucketOwnerPreferred: bucket-owner-full-control hands the object over; other writes stay the writer's.
    s3.put_bucket_ownership_controls(Bucket=bucket_name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    s3_alt.put_object(Bucket=bucket_name, Key="d", Body=b"x", ACL="bucket-owner-full-control")
    s3_alt.put_object(Bucket=bucket_name, Key="e", Body=b"x")
    assert s3_alt.get_object_acl(Bucket=bucket_name, Key="d")["Owner"]["ID"] == me
    assert s3_alt.get_object_acl(Bucket=bucket_name, Key="e")["Owner"]["ID"] == ALT.id
    # Enforced again is refused while the bucket has a public ACL.
    s3.put_bucket_acl(Bucket=bucket_name, ACL="public-read")
    with s3_error("InvalidBucketAclWithObjectOwnership", 400):
        s3.put_bucket_ownership_controls(Bucket=bucket_name, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})


def test_policy_conditions_on_object_tags_and_listing(s3, s3_alt, bucket):
    s3.put_object(Bucket=bucket, Key="pub", Body=b"p", Tagging="security=public")
    s3.put_object(Bucket=bucket, Key="priv", Body=b"q", Tagging="security=private")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}}},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"s3:RequestObjectTag/team": "ml"}}},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": "open/*"}}},
    ]}))
    assert s3_alt.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"p"
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="priv")
    s3_alt.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="team=ml")
    with s3_error("AccessDenied", 403):
        s3_alt.put_object(Bucket=bucket, Key="untagged", Body=b"t")
    # Who may list a prefix learns that a key under it is missing; elsewhere a missing key is just refused.
    with s3_error("NoSuchKey", 404):
        s3_alt.get_object(Bucket=bucket, Key="open/missing")
    with s3_error("AccessDenied", 403):
        s3_alt.get_object(Bucket=bucket, Key="closed/missing")
