"""Files inside archive objects (shards) through the AIS Python SDK, unmodified: one file by archpath from TAR,
TGZ, TAR.LZ4 and ZIP shards, several by regex/prefix/suffix/substring/WebDataset key (answered as a TAR), the
errors AIS gives (404 for a missing file, 400 for a bad mode), a cold shard of a cloud (moto) bucket fetched
once, and a WebDataset-style loop over shards read through Trove, checked against the files that went in."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest
import requests

aistore = pytest.importorskip("aistore", reason="aistore missing: run compat-tests/setup.sh")
from aistore.sdk import ListObjectFlag  # noqa: E402
from aistore.sdk.archive_config import ArchiveConfig, ArchiveMode  # noqa: E402
from aistore.sdk.errors import AISError  # noqa: E402

from native_support import ADMIN_TOKEN, fresh_origin, start_gateway  # noqa: E402
from support import new_bucket_name, random_bytes  # noqa: E402
from test_ais_sdk import sdk  # noqa: E402

FILES = {
    "s/000.jpg": random_bytes(3000),
    "s/000.json": b'{"label": 0}',
    "s/001.jpg": random_bytes(70_000),
    "s/001.json": b'{"label": 1}',
    "s/002.cls.txt": b"2",
}


def make_tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def make_lz4(files: dict[str, bytes]) -> bytes:
    import lz4.frame

    return lz4.frame.compress(make_tar(files))


SHARDS = {
    "shard.tar": lambda: make_tar(FILES),
    "shard.tgz": lambda: make_tar(FILES, "w:gz"),
    "shard.tar.gz": lambda: make_tar(FILES, "w:gz"),
    "shard.zip": lambda: make_zip(FILES),
    "shard.tar.lz4": lambda: make_lz4(FILES),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, moto):
    trove = start_gateway(tmp_path_factory.mktemp("trove-archives"), moto)
    yield trove
    trove.stop()


@pytest.fixture(scope="module")
def shards(gateway):
    """An AIS bucket holding the same files as each kind of shard."""
    name = new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=name)
    for shard, make in SHARDS.items():
        s3.put_object(Bucket=name, Key=shard, Body=make())
    return name


def members(tar_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r|*") as t:
        return {m.name: t.extractfile(m).read() for m in t if m.isfile()}


@pytest.mark.parametrize("shard", list(SHARDS))
def test_read_one_file_by_archpath(gateway, shards, shard):
    bucket = sdk(gateway).bucket(shards)
    for path, data in FILES.items():
        got = bucket.object(shard).get_reader(archive_config=ArchiveConfig(archpath=path)).read_all()
        assert got == data, f"{shard}/{path}"
    # A leading slash and the shard's own name in front are both taken as AIS takes them.
    r = requests.get(f"{gateway.endpoint}/v1/objects/{shards}/{shard}", timeout=10,
                     params={"provider": "ais", "archpath": f"{shard}/s/000.json"},
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and r.content == FILES["s/000.json"], r.text
    assert r.headers["Content-Length"] == str(len(FILES["s/000.json"]))
    with pytest.raises(AISError) as e:
        bucket.object(shard).get_reader(archive_config=ArchiveConfig(archpath="s/nope.jpg")).read_all()
    assert e.value.status_code == 404


@pytest.mark.parametrize("shard", ["shard.tar", "shard.tgz", "shard.zip"])
@pytest.mark.parametrize("mode,pattern,want", [
    (ArchiveMode.SUFFIX, ".json", ["s/000.json", "s/001.json"]),
    (ArchiveMode.PREFIX, "s/001", ["s/001.jpg", "s/001.json"]),
    (ArchiveMode.SUBSTR, "cls", ["s/002.cls.txt"]),
    (ArchiveMode.REGEXP, r"^s/00[02]\.", ["s/000.jpg", "s/000.json", "s/002.cls.txt"]),
    (ArchiveMode.WDSKEY, "s/000", ["s/000.jpg", "s/000.json"]),
    (ArchiveMode.WDSKEY, "s/002.cls", ["s/002.cls.txt"]),
])
def test_select_several_files_as_a_tar(gateway, shards, shard, mode, pattern, want):
    obj = sdk(gateway).bucket(shards).object(shard)
    raw = obj.get_reader(archive_config=ArchiveConfig(regex=pattern, mode=mode)).read_all()
    got = members(raw)
    assert sorted(got) == sorted(want)
    assert all(got[n] == FILES[n] for n in want)


def test_archive_errors(gateway, shards):
    h = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    url = f"{gateway.endpoint}/v1/objects/{shards}/shard.tar"
    get = lambda **p: requests.get(url, params={"provider": "ais", **p}, headers=h, timeout=10)  # noqa: E731
    assert get(archregx="x", archmode="glob").status_code == 400
    assert get(archregx="nothing-matches", archmode="prefix").status_code == 404
    assert get(archpath="a", archmode="prefix").status_code == 400
    # archregx without archmode is not archive mode: the whole object.
    assert get(archregx="s/").content == make_tar(FILES)
    r = requests.get(url, params={"provider": "ais", "archpath": "s/000.json"}, timeout=10,
                     headers={**h, "Range": "bytes=0-1"})
    assert r.status_code == 501
    s3 = gateway.client()
    s3.put_object(Bucket=shards, Key="plain.bin", Body=b"not an archive at all" * 20)
    r = requests.get(f"{gateway.endpoint}/v1/objects/{shards}/plain.bin", headers=h, timeout=10,
                     params={"provider": "ais", "archpath": "x"})
    assert r.status_code == 400, r.text


def test_cold_shard_of_a_cloud_bucket(gateway, moto):
    with fresh_origin(gateway, moto) as origin:
        moto.client().put_object(Bucket=origin, Key="train/0.tar", Body=make_tar(FILES))
        obj = sdk(gateway).bucket(origin, provider="aws").object("train/0.tar")
        assert obj.get_reader(archive_config=ArchiveConfig(archpath="s/001.jpg")).read_all() == FILES["s/001.jpg"]
        # Fetched once, then served from the cache.
        assert gateway.client().head_object(Bucket=origin, Key="train/0.tar")["ContentLength"] > 0
        assert obj.get_reader(archive_config=ArchiveConfig(archpath="s/000.json")).read_all() == FILES["s/000.json"]


def test_webdataset_loop_over_shards(gateway):
    """Samples (jpg + json per key) in 4 shards, read back shard by shard through S3 and grouped by key."""
    bucket = new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=bucket)
    written = {}
    for shard in range(4):
        files = {}
        for i in range(25):
            key = f"sample{shard:02d}{i:03d}"
            files[f"{key}.jpg"] = random_bytes(1000 + i)
            files[f"{key}.json"] = f'{{"label": {i % 10}}}'.encode()
        written.update(files)
        s3.put_object(Bucket=bucket, Key=f"shards/train-{shard:04d}.tar", Body=make_tar(files))
    samples = {}
    for o in s3.list_objects_v2(Bucket=bucket, Prefix="shards/")["Contents"]:
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]
        with tarfile.open(fileobj=body, mode="r|") as t:
            for m in t:
                key, ext = m.name.rsplit(".", 1)
                samples.setdefault(key, {})[ext] = t.extractfile(m).read()
    assert len(samples) == 100
    assert {f"{k}.{e}": v for k, d in samples.items() for e, v in d.items()} == written
    # The same samples, one file each, by archpath through the SDK.
    client = sdk(gateway)
    for name in ["sample00000.jpg", "sample03024.json"]:
        shard = f"shards/train-{int(name[6:8]):04d}.tar"
        got = client.bucket(bucket).object(shard).get_reader(archive_config=ArchiveConfig(archpath=name)).read_all()
        assert got == written[name]


@pytest.mark.parametrize("shard", list(SHARDS))
def test_list_archive_contents(gateway, shards, shard):
    bucket = sdk(gateway).bucket(shards)
    # A prefix listing: `shard.tar` also finds `shard.tar.gz` and its files (as in AIS); keep this shard's.
    listed = [e for e in bucket.list_archive(shard) if e.name.startswith(f"{shard}/")]
    assert sorted(e.name for e in listed) == sorted(f"{shard}/{n}" for n in FILES)
    assert {e.name: e.size for e in listed} == {f"{shard}/{n}": len(d) for n, d in FILES.items()}
    assert all(e.flags & 128 for e in listed), [e.flags for e in listed]  # EntryInArch
    with_shard = bucket.list_archive(shard, include_archive_obj=True)
    parent = [e for e in with_shard if e.name == shard]
    assert len(parent) == 1 and parent[0].flags & 512  # EntryIsArchive


def test_list_with_archives_in_a_cluster(trove_factory):
    """Each shard's files are listed by whichever node is asked, from the node that keeps the shard."""
    from native_support import TROVE_ENV

    t = trove_factory(cluster=3, env=dict(TROVE_ENV))
    bucket = new_bucket_name()
    s3 = t.client()
    s3.create_bucket(Bucket=bucket)
    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"shards/{i}.tar", Body=make_tar({f"{i}/a.txt": b"a", f"{i}/b.txt": b"bb"}))
    for node in [t, *t.peers]:
        listed = [e.name for e in sdk(node).bucket(bucket).list_all_objects(prefix="shards/", flags=[ListObjectFlag.ARCH_DIR])]
        want = [n for i in range(6) for n in (f"shards/{i}.tar", f"shards/{i}.tar/{i}/a.txt", f"shards/{i}.tar/{i}/b.txt")]
        assert listed == want
        got = sdk(node).bucket(bucket).object("shards/4.tar").get_reader(
            archive_config=ArchiveConfig(archpath="4/b.txt")).read_all()
        assert got == b"bb"


# ---------------------------------------------------------------------------------------------
# GetBatch (/v1/ml/moss)
# ---------------------------------------------------------------------------------------------


def batch_fixture(trove, n_objects=500):
    """Two buckets: `a` with plain objects and shards, `b` with plain objects; returns names and contents."""
    a, b = new_bucket_name(), new_bucket_name()
    s3 = trove.client()
    s3.create_bucket(Bucket=a)
    s3.create_bucket(Bucket=b)
    content = {}
    for i in range(n_objects):
        for bucket in (a, b):
            data = random_bytes(10 * 1024 + i)
            s3.put_object(Bucket=bucket, Key=f"obj/{i:04d}", Body=data)
            content[(bucket, f"obj/{i:04d}")] = data
    for j in range(4):
        s3.put_object(Bucket=a, Key=f"shards/{j}.tar", Body=make_tar(FILES))
    s3.put_object(Bucket=a, Key="shards/z.tgz", Body=make_tar(FILES, "w:gz"))
    return a, b, content


def run_batch(trove, a, b, content):
    """1,000 entries mixing objects of two buckets, archived files and ranges, one missing; checked in order."""
    client = sdk(trove)
    batch = client.batch(bucket=client.bucket(a), cont_on_err=True)
    expected = []
    for i in range(300):
        batch.add(client.bucket(a).object(f"obj/{i:04d}"))
        expected.append((f"{a}/obj/{i:04d}", content[(a, f"obj/{i:04d}")]))
        batch.add(client.bucket(b).object(f"obj/{i:04d}"))
        expected.append((f"{b}/obj/{i:04d}", content[(b, f"obj/{i:04d}")]))
    for i in range(300, 500):
        data = content[(b, f"obj/{i:04d}")]
        batch.add(client.bucket(b).object(f"obj/{i:04d}"), start=100, length=1000)
        expected.append((f"{b}/obj/{i:04d}", data[100:1100]))
    for i in range(199):
        shard, path = f"shards/{i % 4}.tar", list(FILES)[i % len(FILES)]
        if i % 10 == 9:
            shard = "shards/z.tgz"
        batch.add(client.bucket(a).object(shard), archpath=path)
        expected.append((f"{a}/{shard}/{path}", FILES[path]))
    batch.add(client.bucket(a).object("obj/missing"))
    expected.append((f"__404__/{a}/obj/missing", None))
    assert len(expected) == 1000
    got = list(batch.get())
    assert len(got) == 1000
    for (out, data), (name, want) in zip(got, expected):
        if want is None:
            assert out.err_msg, out
        else:
            assert data == want, name
    # The raw stream: entry names in request order, the missing one under __404__/.
    raw = client.batch(bucket=client.bucket(a), cont_on_err=True)
    raw.add(client.bucket(a).object("obj/0001"))
    raw.add(client.bucket(a).object("nope"))
    raw.add(client.bucket(a).object("shards/0.tar"), archpath="s/000.json")
    resp = raw.get(raw=True)
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(resp.read()), mode="r|")]
    assert names == [f"{a}/obj/0001", f"__404__/{a}/nope", f"{a}/shards/0.tar/s/000.json"]


def test_get_batch(gateway):
    a, b, content = batch_fixture(gateway)
    run_batch(gateway, a, b, content)


def test_get_batch_without_continue_on_error_stops(gateway):
    a = new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=a)
    s3.put_object(Bucket=a, Key="x", Body=b"x")
    h = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    body = {"in": [{"objname": "x"}, {"objname": "nope"}, {"objname": "x"}], "coer": False, "onob": True,
            "strm": True}
    r = requests.get(f"{gateway.endpoint}/v1/ml/moss/{a}", params={"provider": "ais"}, json=body, headers=h,
                     timeout=10, stream=True)
    assert r.status_code == 200
    with pytest.raises(Exception):
        data = r.raw.read()
        list(tarfile.open(fileobj=io.BytesIO(data), mode="r|"))
        raise AssertionError("a complete archive")
    bad = requests.get(f"{gateway.endpoint}/v1/ml/moss", json={"in": []}, headers=h, timeout=10)
    assert bad.status_code == 400
    nobucket = requests.get(f"{gateway.endpoint}/v1/ml/moss", json={"in": [{"objname": "x"}]}, headers=h, timeout=10)
    assert nobucket.status_code == 400
    rng = requests.get(f"{gateway.endpoint}/v1/ml/moss/{a}", json={"in": [{"objname": "x", "start": 5, "length": 0}]},
                       headers=h, timeout=10)
    assert rng.status_code == 416


@pytest.mark.parametrize("fmt", [".tar", ".tgz", ".tar.gz", ".zip"])
@pytest.mark.parametrize("streaming", [True, False])
def test_get_batch_formats_and_buffered_answer(gateway, fmt, streaming):
    """Every output format the SDK reads, streamed or buffered (AIS's multipart answer: the metadata with each
    entry's size or error, then the archive), objects, a range, archived files and a missing entry in order."""
    a = new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=a)
    objs = {f"o/{i}": random_bytes(3000 + i) for i in range(5)}
    for k, v in objs.items():
        s3.put_object(Bucket=a, Key=k, Body=v)
    s3.put_object(Bucket=a, Key="s.tar", Body=make_tar(FILES))
    client = sdk(gateway)
    batch = client.batch(bucket=client.bucket(a), output_format=fmt, cont_on_err=True, streaming_get=streaming)
    expected = []
    for k, v in objs.items():
        batch.add(client.bucket(a).object(k))
        expected.append((k, "", v))
    batch.add(client.bucket(a).object("o/1"), start=10, length=100)
    expected.append(("o/1", "", objs["o/1"][10:110]))
    batch.add(client.bucket(a).object("gone"))
    expected.append(("gone", "", None))
    for path in list(FILES)[:3]:
        batch.add(client.bucket(a).object("s.tar"), archpath=path)
        expected.append(("s.tar", path, FILES[path]))
    got = list(batch.get())
    assert len(got) == len(expected)
    for (out, data), (name, path, want) in zip(got, expected):
        assert out.obj_name == name and (out.archpath or "") == path, out
        if want is None:
            assert out.err_msg, out
            continue
        assert data == want, (name, path)
        if not streaming:  # sizes come from the server's metadata
            assert out.size == len(want) and not out.err_msg, out


def test_get_batch_lz4_soft_errors_and_buffered_failures(gateway):
    """TAR.LZ4 output (no SDK reader: decoded here); more missing entries than `max_soft_errs` (6) fail the batch;
    a buffered batch that fails answers an error status instead of a partial archive."""
    import lz4.frame

    a = new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=a)
    s3.put_object(Bucket=a, Key="x", Body=b"x" * 700)
    h = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}

    def moss(body, **kw):
        return requests.get(f"{gateway.endpoint}/v1/ml/moss/{a}", params={"provider": "ais"}, json=body,
                            headers=h, timeout=30, **kw)

    r = moss({"in": [{"objname": "x"}, {"objname": "no"}], "mime": ".tar.lz4", "coer": True, "onob": True})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-lz4"
    tar = tarfile.open(fileobj=io.BytesIO(lz4.frame.decompress(r.content)), mode="r:")
    assert [(m.name, m.size) for m in tar.getmembers()] == [("x", 700), ("__404__/no", 0)]
    six = [{"objname": "x"}] + [{"objname": f"no{i}"} for i in range(6)]
    seven = six + [{"objname": "no6"}]
    assert moss({"in": six, "coer": True, "strm": False}).status_code == 200
    r = moss({"in": seven, "coer": True, "strm": False})
    assert r.status_code == 404 and "soft-errors limit" in r.json()["message"], r.text
    r = moss({"in": [{"objname": "x"}, {"objname": "no"}], "coer": False, "strm": False})
    assert r.status_code == 404 and "does not exist" in r.json()["message"], r.text
    # Streamed, the 200 has gone out: the archive just ends early.
    r = moss({"in": seven, "coer": True}, stream=True)
    assert r.status_code == 200
    with pytest.raises(Exception):
        list(tarfile.open(fileobj=io.BytesIO(r.raw.read()), mode="r|"))
        raise AssertionError("a complete archive")
    assert moss({"in": [{"objname": "x"}], "mime": ".rar"}).status_code == 400


def test_get_batch_on_three_nodes_gives_the_same_bytes(trove_factory):
    from native_support import TROVE_ENV

    t = trove_factory(cluster=3, env=dict(TROVE_ENV))
    a, b, content = batch_fixture(t, n_objects=500)
    run_batch(t, a, b, content)


@pytest.mark.parametrize("shard", ["new.tar", "new.tgz", "new.zip", "new.tar.lz4"])
def test_put_files_into_a_shard(gateway, shard):
    """PUT ?archpath= (AIS's PutApndArch): a one-file archive, then files appended with Ais-Pine 1 (the archive
    must exist) or 2 (created when missing); without the header the archive is replaced."""
    bucket = new_bucket_name()
    gateway.client().create_bucket(Bucket=bucket)
    url = f"{gateway.endpoint}/v1/objects/{bucket}/{shard}"
    h = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    put = lambda path, data, pine=None: requests.put(  # noqa: E731
        url, params={"provider": "ais", "archpath": path}, data=data, timeout=10,
        headers={**h, **({"Ais-Pine": pine} if pine else {})})
    assert put("a.txt", b"aaa", pine="1").status_code == 404  # append to nothing
    assert put("a.txt", b"aaa", pine="2").status_code == 200  # append-or-create
    assert put("dir/b.bin", FILES["s/001.jpg"], pine="1").status_code == 200
    assert put("c.json", b"{}", pine="2").status_code == 200
    obj = sdk(gateway).bucket(bucket).object(shard)
    read = lambda p: obj.get_reader(archive_config=ArchiveConfig(archpath=p)).read_all()  # noqa: E731
    assert read("a.txt") == b"aaa" and read("dir/b.bin") == FILES["s/001.jpg"] and read("c.json") == b"{}"
    listed = [e.name for e in sdk(gateway).bucket(bucket).list_archive(shard)]
    assert listed == [f"{shard}/a.txt", f"{shard}/c.json", f"{shard}/dir/b.bin"]
    # The whole object is a valid archive of its kind, readable by Python's own modules.
    whole = gateway.client().get_object(Bucket=bucket, Key=shard)["Body"].read()
    if shard.endswith(".zip"):
        assert sorted(zipfile.ZipFile(io.BytesIO(whole)).namelist()) == ["a.txt", "c.json", "dir/b.bin"]
    elif not shard.endswith(".lz4"):
        assert sorted(members(whole)) == ["a.txt", "c.json", "dir/b.bin"]
    # No flag: replaced by a one-file archive.
    assert put("only.txt", b"1").status_code == 200
    assert [e.name for e in sdk(gateway).bucket(bucket).list_archive(shard)] == [f"{shard}/only.txt"]
    # Refusals: no body, a path that escapes.
    assert requests.put(url, params={"provider": "ais", "archpath": "x"}, data=b"", headers=h, timeout=10).status_code == 400
    assert put("../x", b"1").status_code == 400


def test_shards_made_into_a_versioned_bucket_are_versions(gateway):
    """The archive job into a versioned bucket: each shard written is the key's new version, the old ones kept."""
    from test_ais_sdk import wait_ok

    client, s3 = sdk(gateway), gateway.client()
    src, dst = new_bucket_name(), new_bucket_name()
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    s3.put_bucket_versioning(Bucket=dst, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=src, Key=f"x/{i}", Body=b"%d" % i)
    for names in (["x/0"], ["x/1", "x/2"]):
        wait_ok(client, client.bucket(src).objects(obj_names=names).archive(archive_name="v.tar",
                                                                             to_bck=client.bucket(dst))[0])
    versions = s3.list_object_versions(Bucket=dst, Prefix="v.tar")["Versions"]
    assert len(versions) == 2 and all(v["VersionId"] != "null" for v in versions), versions
    latest = next(v for v in versions if v["IsLatest"])
    body = s3.get_object(Bucket=dst, Key="v.tar", VersionId=latest["VersionId"])["Body"].read()
    assert sorted(m.name for m in tarfile.open(fileobj=io.BytesIO(body))) == ["x/1", "x/2"]


@pytest.mark.parametrize("archname", ["made.tar", "made.tgz", "made.zip"])
def test_make_shards_from_objects(gateway, archname):
    """The `archive` job (SDK `objects(...).archive(...)`): a shard of listed or templated objects, entry names as
    AIS makes them (`include_source_name` prefixes the bucket), appended to with `allow_append`."""
    from test_ais_sdk import wait_ok

    client = sdk(gateway)
    src, dst = new_bucket_name(), new_bucket_name()
    s3 = gateway.client()
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dst)
    data = {f"img/{i:03d}.jpg": random_bytes(1000 + i) for i in range(12)}
    for k, v in data.items():
        s3.put_object(Bucket=src, Key=k, Body=v)
    objs = client.bucket(src).objects(obj_template="img/{000..009}.jpg")
    ids = objs.archive(archive_name=archname, to_bck=client.bucket(dst))
    wait_ok(client, ids[0])
    shard = client.bucket(dst).object(archname)
    for i in range(10):
        k = f"img/{i:03d}.jpg"
        assert shard.get_reader(archive_config=ArchiveConfig(archpath=k)).read_all() == data[k]
    # Appending two more, named with their bucket.
    more = client.bucket(src).objects(obj_names=["img/010.jpg", "img/011.jpg"])
    wait_ok(client, more.archive(archive_name=archname, to_bck=client.bucket(dst), include_source_name=True,
                                 allow_append=True)[0])
    names = [e.name for e in client.bucket(dst).list_archive(archname)]
    assert len(names) == 12 and f"{archname}/{src}/img/011.jpg" in names
    # A name that is not an archive's, and a mime that contradicts it, are refused.
    h = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for value in [{"archname": "x.bin", "objnames": ["img/000.jpg"]},
                  {"archname": "x.tar", "mime": "zip", "objnames": ["img/000.jpg"]}]:
        r = requests.put(f"{gateway.endpoint}/v1/buckets/{src}", params={"provider": "ais"}, headers=h,
                         json={"action": "archive", "value": value}, timeout=10)
        assert r.status_code == 400, r.text
