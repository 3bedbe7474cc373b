"""ListObjects (v1) and ListObjectsV2: prefixes, delimiters, paging, markers, encoding, owner, order."""

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, unquote_plus

import pytest

from support import MAIN, delete_bucket_recursively, key_path, new_bucket_name, raw_request, s3_error

NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
TREE = ["a.txt", "b/1", "b/2", "b/c/3", "c", "d/x", "e"]


def put_keys(s3, bucket, keys):
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def list_page(s3, version, bucket, **params):
    """One page of ListObjects (v1) or ListObjectsV2 (v2): (keys, common prefixes, response)."""
    call = s3.list_objects if version == "v1" else s3.list_objects_v2
    response = call(Bucket=bucket, **params)
    keys = [o["Key"] for o in response.get("Contents", [])]
    prefixes = [p["Prefix"] for p in response.get("CommonPrefixes", [])]
    return keys, prefixes, response


@pytest.fixture
def tree(s3, bucket):
    put_keys(s3, bucket, TREE)
    return bucket


both_versions = pytest.mark.parametrize("version", ["v1", "v2"])


# ---------------------------------------------------------------------------------------------
# Prefix and delimiter
# ---------------------------------------------------------------------------------------------


@both_versions
def test_list_all(s3, tree, version):
    keys, prefixes, response = list_page(s3, version, tree)
    assert keys == TREE
    assert prefixes == []
    assert response["IsTruncated"] is False
    assert response["Name"] == tree
    assert response["MaxKeys"] == 1000
    if version == "v2":
        assert response["KeyCount"] == len(TREE)
        assert "NextContinuationToken" not in response
    obj = response["Contents"][0]
    assert obj["Size"] == 1
    assert obj["ETag"] == '"9dd4e461268c8034f5c8564e155c67a6"'
    assert obj["LastModified"] is not None
    assert obj["StorageClass"] == "STANDARD"


@both_versions
def test_list_empty_bucket(s3, bucket, version):
    keys, prefixes, response = list_page(s3, version, bucket)
    assert (keys, prefixes, response["IsTruncated"]) == ([], [], False)
    assert "Contents" not in response


@both_versions
def test_list_missing_bucket(s3, bucket_name, version):
    with s3_error("NoSuchBucket", 404):
        list_page(s3, version, bucket_name)


@both_versions
def test_prefix(s3, tree, version):
    assert list_page(s3, version, tree, Prefix="b/")[:2] == (["b/1", "b/2", "b/c/3"], [])
    assert list_page(s3, version, tree, Prefix="b/c")[:2] == (["b/c/3"], [])
    assert list_page(s3, version, tree, Prefix="nothing")[:2] == ([], [])


@both_versions
def test_delimiter(s3, tree, version):
    keys, prefixes, response = list_page(s3, version, tree, Delimiter="/")
    assert keys == ["a.txt", "c", "e"]
    assert prefixes == ["b/", "d/"]
    assert response["Delimiter"] == "/"
    if version == "v2":
        assert response["KeyCount"] == 5  # keys and common prefixes


@both_versions
def test_prefix_and_delimiter(s3, tree, version):
    assert list_page(s3, version, tree, Prefix="b/", Delimiter="/")[:2] == (["b/1", "b/2"], ["b/c/"])
    # A prefix that does not end at the delimiter rolls up to the next delimiter.
    assert list_page(s3, version, tree, Prefix="b", Delimiter="/")[:2] == ([], ["b/"])


@both_versions
def test_multi_character_delimiter(s3, bucket, version):
    put_keys(s3, bucket, ["abc", "xab1", "xab2", "yabz/ab", "zz"])
    assert list_page(s3, version, bucket, Delimiter="ab")[:2] == (["zz"], ["ab", "xab", "yab"])
    assert list_page(s3, version, bucket, Prefix="x", Delimiter="ab")[:2] == ([], ["xab"])
    assert list_page(s3, version, bucket, Prefix="xab", Delimiter="ab")[:2] == (["xab1", "xab2"], [])


@both_versions
def test_delimiter_not_in_any_key(s3, tree, version):
    assert list_page(s3, version, tree, Delimiter="#")[:2] == (TREE, [])


# ---------------------------------------------------------------------------------------------
# Paging, markers, StartAfter
# ---------------------------------------------------------------------------------------------


def test_v2_paging_with_delimiter(s3, tree):
    pages, token = [], None
    while True:
        params = {"MaxKeys": 2, "Delimiter": "/"}
        if token:
            params["ContinuationToken"] = token
        keys, prefixes, response = list_page(s3, "v2", tree, **params)
        pages.append((keys, prefixes))
        assert response["KeyCount"] == len(keys) + len(prefixes)
        if not response["IsTruncated"]:
            assert "NextContinuationToken" not in response
            break
        token = response["NextContinuationToken"]
        assert response.get("ContinuationToken") == params.get("ContinuationToken")
    assert pages == [(["a.txt"], ["b/"]), (["c"], ["d/"]), (["e"], [])]


def test_v2_paging_without_delimiter(s3, tree):
    first = s3.list_objects_v2(Bucket=tree, MaxKeys=3)
    assert [o["Key"] for o in first["Contents"]] == TREE[:3]
    assert first["IsTruncated"] is True
    second = s3.list_objects_v2(Bucket=tree, MaxKeys=3, ContinuationToken=first["NextContinuationToken"])
    assert [o["Key"] for o in second["Contents"]] == TREE[3:6]
    third = s3.list_objects_v2(Bucket=tree, MaxKeys=3, ContinuationToken=second["NextContinuationToken"])
    assert [o["Key"] for o in third["Contents"]] == TREE[6:]
    assert third["IsTruncated"] is False


def test_v1_paging_with_delimiter_uses_next_marker(s3, tree):
    pages, marker = [], ""
    while True:
        keys, prefixes, response = list_page(s3, "v1", tree, MaxKeys=2, Delimiter="/", Marker=marker)
        pages.append((keys, prefixes))
        if not response["IsTruncated"]:
            break
        marker = response["NextMarker"]
        assert marker == max(keys + prefixes)
    assert pages == [(["a.txt"], ["b/"]), (["c"], ["d/"]), (["e"], [])]


@both_versions
def test_max_keys_one(s3, tree, version):
    keys, prefixes, response = list_page(s3, version, tree, MaxKeys=1)
    assert keys == ["a.txt"]
    assert response["IsTruncated"] is True
    assert response["MaxKeys"] == 1


def test_v2_start_after(s3, tree):
    assert list_page(s3, "v2", tree, StartAfter="b/1")[0] == ["b/2", "b/c/3", "c", "d/x", "e"]
    assert list_page(s3, "v2", tree, StartAfter="b")[0] == ["b/1", "b/2", "b/c/3", "c", "d/x", "e"]
    keys, _, response = list_page(s3, "v2", tree, StartAfter="zzz")
    assert (keys, response["KeyCount"], response["IsTruncated"]) == ([], 0, False)
    assert response["StartAfter"] == "zzz"


def test_v1_marker(s3, tree):
    keys, _, response = list_page(s3, "v1", tree, Marker="c")
    assert keys == ["d/x", "e"]
    assert response["Marker"] == "c"
    assert list_page(s3, "v1", tree, Marker="b/1", Prefix="b/")[0] == ["b/2", "b/c/3"]


def test_v1_marker_on_common_prefix_skips_it(s3, tree):
    assert list_page(s3, "v1", tree, Marker="b/", Delimiter="/")[:2] == (["c", "e"], ["d/"])


# ---------------------------------------------------------------------------------------------
# Encoding, owner, order
# ---------------------------------------------------------------------------------------------

ODD_KEYS = ["plain", "sp ace/ü", "plus+sign", "pct%41", "日本語"]


@both_versions
def test_encoding_type_url(s3, bucket, version):
    """With an explicit EncodingType botocore hands back the keys as the server encoded them."""
    put_keys(s3, bucket, ODD_KEYS)
    keys, _, response = list_page(s3, version, bucket, EncodingType="url")
    assert response["EncodingType"] == "url"
    for raw in keys:
        assert raw.isascii() and " " not in raw, raw
    assert [unquote_plus(k) for k in keys] == utf8_sorted(ODD_KEYS)

    _, prefixes, _ = list_page(s3, version, bucket, EncodingType="url", Delimiter="/")
    assert [unquote_plus(p) for p in prefixes] == ["sp ace/"]


@both_versions
def test_boto3_default_decoding(s3, bucket, version):
    """boto3 asks for EncodingType=url on its own and decodes the answer."""
    put_keys(s3, bucket, ODD_KEYS)
    assert list_page(s3, version, bucket)[0] == utf8_sorted(ODD_KEYS)
    assert list_page(s3, version, bucket, Prefix="sp ace/")[0] == ["sp ace/ü"]


def raw_list(trove, bucket, query):
    response = raw_request("GET", trove.endpoint, key_path(bucket) + "/", query=query, user=MAIN)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    return [e.text for e in root.findall("s3:Contents/s3:Key", NS)]


def test_unencoded_xml_keys(trove, s3, bucket):
    """Without encoding-type the keys appear in the XML as plain UTF-8 text."""
    put_keys(s3, bucket, ODD_KEYS)
    assert raw_list(trove, bucket, "list-type=2") == utf8_sorted(ODD_KEYS)
    assert raw_list(trove, bucket, "") == utf8_sorted(ODD_KEYS)
    assert raw_list(trove, bucket, "list-type=2&prefix=" + quote("sp ace/", safe="")) == ["sp ace/ü"]


def test_fetch_owner(s3, tree):
    plain = s3.list_objects_v2(Bucket=tree)
    assert all("Owner" not in o for o in plain["Contents"])
    owner_id = s3.list_buckets()["Owner"]["ID"]
    with_owner = s3.list_objects_v2(Bucket=tree, FetchOwner=True)
    assert all(o["Owner"]["ID"] == owner_id for o in with_owner["Contents"])


def test_binary_key_order(s3, bucket):
    keys = ["a-c", "a/b", "a", "B", "é", "\ufffd", "\U0001f600", "a0", "A"]
    put_keys(s3, bucket, keys)
    expected = ["A", "B", "a", "a-c", "a/b", "a0", "é", "\ufffd", "\U0001f600"]
    assert expected == utf8_sorted(keys)
    assert list_page(s3, "v2", bucket)[0] == expected
    assert list_page(s3, "v1", bucket)[0] == expected
    # Paging one key at a time must walk the same order.
    walked, token = [], None
    while True:
        params = {"ContinuationToken": token} if token else {}
        response = s3.list_objects_v2(Bucket=bucket, MaxKeys=1, **params)
        walked += [o["Key"] for o in response.get("Contents", [])]
        if not response["IsTruncated"]:
            break
        token = response["NextContinuationToken"]
    assert walked == expected


# ---------------------------------------------------------------------------------------------
# A bucket with more keys than one page
# ---------------------------------------------------------------------------------------------

BIG_COUNT = 2500


@pytest.fixture(scope="module")
def big_bucket(s3):
    """2,500 keys named k0..k2499 (so lexical and numeric order differ)."""
    name = new_bucket_name()
    s3.create_bucket(Bucket=name)
    keys = [f"k{i}" for i in range(BIG_COUNT)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=name, Key=k, Body=k.encode()), keys))
    yield name, sorted(keys)
    delete_bucket_recursively(s3, name)


def test_big_v2_paging(s3, big_bucket):
    bucket, expected = big_bucket
    seen, sizes, token = [], [], None
    while True:
        params = {"ContinuationToken": token} if token else {}
        response = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000, **params)
        page = [o["Key"] for o in response["Contents"]]
        seen += page
        sizes.append(len(page))
        if not response["IsTruncated"]:
            break
        token = response["NextContinuationToken"]
    assert sizes == [1000, 1000, 500]
    assert seen == expected


def test_big_v1_paging(s3, big_bucket):
    bucket, expected = big_bucket
    seen, marker = [], ""
    while True:
        response = s3.list_objects(Bucket=bucket, MaxKeys=1000, Marker=marker)
        page = [o["Key"] for o in response["Contents"]]
        seen += page
        if not response["IsTruncated"]:
            break
        marker = response.get("NextMarker", page[-1])
        assert marker == page[-1]
    assert seen == expected


def test_big_default_max_keys(s3, big_bucket):
    bucket, expected = big_bucket
    response = s3.list_objects_v2(Bucket=bucket)
    assert response["MaxKeys"] == 1000
    assert response["KeyCount"] == 1000
    assert response["IsTruncated"] is True
    assert [o["Key"] for o in response["Contents"]] == expected[:1000]


def test_big_paginator_with_prefix(s3, big_bucket):
    bucket, expected = big_bucket
    paginator = s3.get_paginator("list_objects_v2")
    keys = [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix="k1", PaginationConfig={"PageSize": 300})
            for o in page.get("Contents", [])]
    assert keys == [k for k in expected if k.startswith("k1")]
