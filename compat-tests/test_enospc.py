"""A really full disk (ENOSPC), not a configured capacity: Trove's one mountpath is a small filesystem of its own
(a loop-mounted 64 MiB ext4 image, or a 64 MiB tmpfs where loop devices are not available) that the tests fill
for real. Trove's own watermarks are moved out of the way (`out_of_space = 100`, `highwm = 99`, `lowwm = 98`), so
what refuses the writes is the filesystem.

What a user wants from a node whose disk is full: 507 InsufficientStorage (never a 500, never a hang, never a torn
stream), every object stored before still intact, no torn or half-written copy left behind (no `%wk` work files),
a server that stays healthy and restarts on the full disk, and writes that work again once space is freed.

Needs root (mount). Without it, or without loop devices and a tmpfs that keeps user xattrs, the tests skip.
`ENOSPC_FS=ext4|tmpfs` forces one kind of filesystem (default: ext4 on a loop device, else tmpfs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

from native_support import presence, start_job, wait_job
from support import MiB, Trove, md5_hex, new_bucket_name, random_bytes, s3_error, wait_until
from test_backends import TROVE_ENV, attach, backends_toml, describe, native, set_props

FS_SIZE_MIB = 64
CACHE_TOML = "[cache]\nout_of_space = 100\nhighwm = 99\nlowwm = 98\ncheck_interval_secs = 0.2\n"
# How long a write may still be refused after space was freed: Trove samples the filesystem's use every
# `check_interval_secs` (above), so allow a few of those.
SAMPLE_GRACE_SECS = 2.0


# ---------------------------------------------------------------------------------------------
# A small filesystem of our own
# ---------------------------------------------------------------------------------------------


def _run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _user_xattrs_work(directory: Path) -> bool:
    probe = directory / ".enospc-xattr-probe"
    try:
        probe.write_bytes(b"")
        os.setxattr(probe, "user.x", b"1")
        return os.getxattr(probe, "user.x") == b"1"
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


class SmallFs:
    """A `FS_SIZE_MIB` filesystem mounted at `mountpoint`: ext4 on a loop device, else tmpfs."""

    def __init__(self, image: Path, mountpoint: Path):
        self.image = Path(image)
        self.mountpoint = Path(mountpoint)
        self.kind: str | None = None
        self.why_not: list[str] = []

    def mount(self) -> str:
        """Mounts and returns the kind ("ext4-loop" | "tmpfs"); skips the test when neither works."""
        if os.geteuid() != 0:
            pytest.skip("ENOSPC tests need root to mount a small filesystem (running as uid %d)" % os.geteuid())
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        wanted = os.environ.get("ENOSPC_FS", "auto")  # auto | ext4 | tmpfs
        if wanted in ("auto", "ext4") and self._try_loop_ext4():
            return self.kind
        if wanted in ("auto", "tmpfs") and self._try_tmpfs():
            return self.kind
        pytest.skip("ENOSPC tests: cannot mount a small filesystem here: " + "; ".join(self.why_not))

    def _try_loop_ext4(self) -> bool:
        mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
        if not Path(mkfs).exists():
            self.why_not.append("mkfs.ext4 missing (apt-get install e2fsprogs)")
            return False
        with open(self.image, "wb") as f:
            f.truncate(FS_SIZE_MIB * MiB)
        # -m 0: no blocks reserved for root (Trove runs as root here and would otherwise write into the reserve
        # while statvfs already reports the disk full); -b 4096: the block size of real deployments.
        mk = _run(mkfs, "-F", "-q", "-m", "0", "-b", "4096", str(self.image))
        if mk.returncode != 0:
            self.why_not.append(f"mkfs.ext4 failed: {mk.stderr.strip()}")
            self.image.unlink(missing_ok=True)
            return False
        mt = _run("mount", "-o", "loop", str(self.image), str(self.mountpoint))
        if mt.returncode != 0:
            self.why_not.append(f"mount -o loop failed: {mt.stderr.strip()}")
            self.image.unlink(missing_ok=True)
            return False
        self.kind = "ext4-loop"
        if not _user_xattrs_work(self.mountpoint):
            self.why_not.append("ext4 on loop without user xattrs")
            self.unmount()
            return False
        shutil.rmtree(self.mountpoint / "lost+found", ignore_errors=True)
        return True

    def _try_tmpfs(self) -> bool:
        mt = _run("mount", "-t", "tmpfs", "-o", f"size={FS_SIZE_MIB}m", "tmpfs", str(self.mountpoint))
        if mt.returncode != 0:
            self.why_not.append(f"mount -t tmpfs failed: {mt.stderr.strip()}")
            return False
        self.kind = "tmpfs"
        if not _user_xattrs_work(self.mountpoint):
            self.why_not.append("tmpfs without user xattrs (Trove needs them)")
            self.unmount()
            return False
        return True

    def unmount(self) -> None:
        if self.kind is not None:
            if _run("umount", str(self.mountpoint)).returncode != 0:
                _run("umount", "-l", str(self.mountpoint))
            self.kind = None
        self.image.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        s = os.statvfs(self.mountpoint)
        return s.f_bavail * s.f_frsize


@pytest.fixture
def make_node(tmp_path):
    """`make(emulator=None)` -> a started Trove whose only mountpath is a small filesystem of its own (with
    `emulator` as its aws backend). Killed and unmounted afterwards."""
    made: list[tuple[Trove, SmallFs]] = []

    def make(emulator=None) -> Trove:
        extra = (backends_toml(emulator) if emulator is not None else "") + CACHE_TOML
        trove = Trove(tmp_path / f"trove{len(made)}", mountpaths=1, extra_config=extra, env=TROVE_ENV)
        fs = SmallFs(tmp_path / f"disk{len(made)}.img", trove.mountpaths[0])
        fs.mount()
        made.append((trove, fs))
        trove.fs = fs
        trove.start()
        return trove

    yield make
    for trove, fs in made:
        trove.kill9()  # nothing of ours may keep the filesystem busy
        fs.unmount()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def client(node: Trove):
    # A bounded read timeout: a hang must fail the test, not stall it.
    return node.client(read_timeout=20, connect_timeout=5)


def error_of(e: Exception) -> tuple[int | None, str | None]:
    if isinstance(e, ClientError):
        r = e.response
        return r.get("ResponseMetadata", {}).get("HTTPStatusCode"), r.get("Error", {}).get("Code")
    return None, f"{type(e).__name__}: {e}"


def assert_insufficient_storage(e: Exception, what: str, node: Trove) -> None:
    status, code = error_of(e)
    assert (status, code) == (507, "InsufficientStorage"), \
        f"{what}: expected 507 InsufficientStorage, got {status} {code}\n{node.log_tail(15)}"


def fill_disk(node: Trove, s3, bucket: str, prefix: str = "fill/", size: int = MiB, seed: int = 0):
    """PUTs `size`-byte objects until one fails. Returns ({key: data} of those stored, the failing key, its
    exception)."""
    stored: dict[str, bytes] = {}
    for i in range(4 * FS_SIZE_MIB * MiB // size):
        key = f"{prefix}{i:04d}"
        data = random_bytes(size, seed=seed * 100_003 + i)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as e:
            return stored, key, e
        stored[key] = data
    pytest.fail(f"{len(stored)} PUTs of {size} bytes never filled a {FS_SIZE_MIB} MiB filesystem")


def assert_intact(s3, bucket: str, objects: dict[str, bytes]) -> None:
    bad = {}
    for key, data in objects.items():
        try:
            got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as e:
            bad[key] = error_of(e)
            continue
        if md5_hex(got) != md5_hex(data):
            bad[key] = f"{len(got)} bytes, md5 {md5_hex(got)} != {md5_hex(data)}"
    some = dict(list(bad.items())[:5])
    assert not bad, f"{len(bad)} of {len(objects)} earlier objects do not read back intact: {some}"


def assert_absent(s3, bucket: str, key: str) -> None:
    with s3_error(None, 404):
        s3.head_object(Bucket=bucket, Key=key)


def delete_some(s3, bucket: str, objects: dict[str, bytes], n: int) -> None:
    """Deletes the last `n` objects of `objects` (and drops them from it)."""
    for key in list(objects)[-n:]:
        s3.delete_object(Bucket=bucket, Key=key)
        del objects[key]


def put_after_freeing(node: Trove, s3, bucket: str, key: str, data: bytes) -> None:
    """A PUT that must succeed now that space was freed (within the sampling grace)."""
    deadline = time.monotonic() + SAMPLE_GRACE_SECS
    while True:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        except ClientError as e:
            if error_of(e)[0] != 507 or time.monotonic() > deadline:
                raise AssertionError(f"PUT {key} after freeing space (free {node.fs.free_bytes()} bytes): "
                                     f"{error_of(e)}\n{node.log_tail(15)}") from None
            time.sleep(0.1)


def cold_get_outcome(node: Trove, s3, bucket: str, key: str, expected: bytes) -> str:
    """"507" (InsufficientStorage), "200" (every byte, right ones), or a description of anything else."""
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as e:
        status, code = error_of(e)
        return "507" if (status, code) == (507, "InsufficientStorage") else f"{status} {code}"
    try:
        got = resp["Body"].read()
    except (BotoCoreError, OSError) as e:
        return f"200, then the body broke off ({type(e).__name__}: {e})"
    if len(got) != len(expected) or md5_hex(got) != md5_hex(expected):
        return f"200 with {len(got)} wrong bytes (md5 {md5_hex(got)})"
    return "200"


def assert_healthy(node: Trove) -> None:
    assert node.running, f"trove exited with {node.proc.returncode}\n{node.log_tail()}"
    r = requests.get(f"{node.endpoint}/v1/health", timeout=5)
    assert r.status_code == 200, f"/v1/health -> {r.status_code} {r.text[:200]!r}"


def assert_no_work_files(node: Trove) -> None:
    assert wait_until(lambda: not node.work_files(), timeout=5), f"leftover work files: {node.work_files()}"


def restart_and_check(node: Trove, bucket: str, objects: dict[str, bytes]):
    """Restart (SIGTERM, start) on the same filesystem: it comes up, no work files, objects intact."""
    code = node.stop()
    assert code == 0, f"trove exited with {code} on SIGTERM with a full disk\n{node.log_tail()}"
    node.restart()
    assert_healthy(node)
    assert_no_work_files(node)
    s3 = client(node)
    assert_intact(s3, bucket, objects)
    return s3


# ---------------------------------------------------------------------------------------------
# 1. PUT until the disk is full
# ---------------------------------------------------------------------------------------------


def test_put_until_full_then_507_and_recovery(make_node):
    node = make_node()
    s3 = client(node)
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)

    objects, failed_key, err = fill_disk(node, s3, bucket)
    assert len(objects) >= FS_SIZE_MIB // 2, f"only {len(objects)} MiB fit before {error_of(err)}"
    assert_insufficient_storage(err, f"PUT {failed_key} on a full disk (free {node.fs.free_bytes()})", node)
    assert_absent(s3, bucket, failed_key)
    # Again, and a second try of the same key: still 507, nothing torn.
    with s3_error("InsufficientStorage", 507):
        s3.put_object(Bucket=bucket, Key=failed_key, Body=random_bytes(2 * MiB, seed=7))
    assert_absent(s3, bucket, failed_key)
    # Overwriting an existing object with something that does not fit keeps the old one.
    victim = next(iter(objects))
    with s3_error("InsufficientStorage", 507):
        s3.put_object(Bucket=bucket, Key=victim, Body=random_bytes(4 * MiB, seed=8))
    assert_healthy(node)
    assert_intact(s3, bucket, objects)
    assert_no_work_files(node)

    # A restart on the full disk.
    s3 = restart_and_check(node, bucket, objects)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == sorted(objects)

    # Space freed: PUTs work again.
    delete_some(s3, bucket, objects, 4)
    data = random_bytes(MiB, seed=9)
    put_after_freeing(node, s3, bucket, failed_key, data)
    objects[failed_key] = data
    s3.put_object(Bucket=bucket, Key="small", Body=b"s" * 1000)
    objects["small"] = b"s" * 1000
    assert_intact(s3, bucket, objects)
    restart_and_check(node, bucket, objects)


# ---------------------------------------------------------------------------------------------
# 2. Multipart upload out of space
# ---------------------------------------------------------------------------------------------


def test_multipart_out_of_space(make_node):
    node = make_node()
    s3 = client(node)
    bucket = new_bucket_name()
    s3.create_bucket(Bucket=bucket)
    objects, _key, err = fill_disk(node, s3, bucket)
    assert_insufficient_storage(err, "PUT on a full disk", node)
    delete_some(s3, bucket, objects, 12)  # ~12 MiB free: two 5 MiB parts fit, a third does not

    key = "mp/object"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [random_bytes(5 * MiB, seed=100 + n) for n in range(4)]
    etags = {}
    failed_part = None
    for n, body in enumerate(parts, start=1):
        try:
            etags[n] = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=body)["ETag"]
        except (ClientError, BotoCoreError) as e:
            assert_insufficient_storage(e, f"UploadPart {n} on a full disk (free {node.fs.free_bytes()})", node)
            failed_part = n
            break
    assert failed_part is not None, "every part fit: the filesystem was not full"
    assert len(etags) >= 1, "not even the first part fit"
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
    assert [(p["PartNumber"], p["ETag"]) for p in listed] == sorted(etags.items()), \
        "the failed part must not be listed (nor any torn part)"
    assert_intact(s3, bucket, objects)
    assert_no_work_files(node)

    # Completing copies the parts into one object: it needs as much space again, which is not there.
    completion = {"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(etags.items())]}
    complete_failed = None
    try:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=completion)
    except (ClientError, BotoCoreError) as e:
        complete_failed = e
    if complete_failed is not None:
        assert_insufficient_storage(complete_failed, f"CompleteMultipartUpload on a full disk "
                                    f"(free {node.fs.free_bytes()})", node)
        assert_absent(s3, bucket, key)
        # A failed completion leaves the upload as it was, to be completed later (as S3 does on a 5xx).
        listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])
        assert [p["PartNumber"] for p in listed] == sorted(etags), listed
    assert_intact(s3, bucket, objects)
    assert_no_work_files(node)
    assert_healthy(node)

    s3 = restart_and_check(node, bucket, objects)

    # With space again: the upload completes and reads back.
    expected = b"".join(parts[n - 1] for n in sorted(etags))
    if complete_failed is not None:
        delete_some(s3, bucket, objects, 12)
        deadline = time.monotonic() + SAMPLE_GRACE_SECS
        while True:
            try:
                s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=completion)
                break
            except ClientError as e:
                if error_of(e)[0] != 507 or time.monotonic() > deadline:
                    raise AssertionError(f"CompleteMultipartUpload after freeing space: {error_of(e)}\n"
                                         f"{node.log_tail(15)}") from None
                time.sleep(0.1)
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert md5_hex(got) == md5_hex(expected), f"{len(got)} bytes, expected {len(expected)}"
    objects[key] = expected
    restart_and_check(node, bucket, objects)


# ---------------------------------------------------------------------------------------------
# 3. A cold GET larger than the free space
# ---------------------------------------------------------------------------------------------


def test_cold_get_larger_than_free_space(make_node, moto):
    node = make_node(moto)
    s3 = client(node)
    local = new_bucket_name()
    s3.create_bucket(Bucket=local)
    origin = new_bucket_name()
    moto.create_bucket(origin)
    attach(node, moto, origin)
    big = random_bytes(12 * MiB, seed=300)
    moto.put_object(origin, "big", big)

    objects, _key, err = fill_disk(node, s3, local)
    assert_insufficient_storage(err, "PUT on a full disk", node)
    delete_some(s3, local, objects, 6)  # ~6 MiB free < 12 MiB
    free = node.fs.free_bytes()
    assert free < len(big), free

    # What a user wants: a 507 up front, or the whole object (served from the backend without keeping a copy);
    # never a 500 and never a 200 whose body breaks off. The answer is recorded and asserted at the end, so that
    # the checks after it (nothing torn kept, recovery) run either way.
    first = cold_get_outcome(node, s3, origin, "big", big)
    # No torn cached copy, no work file; the server is fine.
    assert_no_work_files(node)
    if presence(node, origin, "big") == 200:
        assert md5_hex(s3.get_object(Bucket=origin, Key="big")["Body"].read()) == md5_hex(big), "torn cached copy"
    assert_healthy(node)
    assert_intact(s3, local, objects)
    # A second cold GET of the same object answers the same way, and at once (no stuck fill).
    started = time.monotonic()
    second = cold_get_outcome(node, s3, origin, "big", big)
    assert time.monotonic() - started < 15, "the second cold GET hung"
    assert_no_work_files(node)
    # A ranged cold GET is served from the backend: it works whatever the free space.
    got = s3.get_object(Bucket=origin, Key="big", Range="bytes=100-199")["Body"].read()
    assert got == big[100:200]
    assert_no_work_files(node)

    s3 = restart_and_check(node, local, objects)

    # Space freed: the cold GET works, returns the right bytes and leaves a complete cached copy.
    delete_some(s3, local, objects, 12)
    deadline = time.monotonic() + SAMPLE_GRACE_SECS
    while True:
        try:
            got = s3.get_object(Bucket=origin, Key="big")["Body"].read()
            break
        except ClientError as e:
            if error_of(e)[0] != 507 or time.monotonic() > deadline:
                raise AssertionError(f"cold GET after freeing space: {error_of(e)}\n"
                                     f"{node.log_tail(15)}") from None
            time.sleep(0.1)
    assert md5_hex(got) == md5_hex(big), f"{len(got)} bytes after freeing space"
    assert presence(node, origin, "big") == 200
    restart_and_check(node, local, objects)
    assert md5_hex(client(node).get_object(Bucket=origin, Key="big")["Body"].read()) == md5_hex(big)

    free = f"12 MiB object, {free} bytes free"
    assert first in ("507", "200"), f"first cold GET ({free}): {first}"
    assert second in ("507", "200"), f"second cold GET ({free}): {second}"


# ---------------------------------------------------------------------------------------------
# 4. A prefetch job that fills the disk
# ---------------------------------------------------------------------------------------------


def test_prefetch_job_that_fills_the_disk(make_node, moto):
    node = make_node(moto)
    s3 = client(node)
    origin = new_bucket_name()
    moto.create_bucket(origin)
    attach(node, moto, origin)
    set_props(node, origin, {"lru": {"enabled": False}})  # no eviction: the disk really fills
    names = [f"pf-{i:02d}" for i in range(20)]
    data = {}
    for i, name in enumerate(names):
        data[name] = random_bytes(4 * MiB, seed=400 + i)
        moto.put_object(origin, name, data[name])  # 80 MiB in all: more than the filesystem holds

    job = start_job(node, origin, "prefetch-listrange", {"objnames": names, "coer": True})
    status = wait_job(node, job, timeout=60)
    assert status.get("err"), f"a prefetch that ran out of space must record the failures: {status}"
    assert "space" in status["err"].lower(), f"the recorded failure should say why: {status}"
    assert not status.get("aborted"), f"coer=true: the job runs to its end: {status}"
    assert_healthy(node)
    assert_no_work_files(node)

    cached = [n for n in names if presence(node, origin, n) == 200]
    assert 0 < len(cached) < len(names), f"{len(cached)} of {len(names)} cached: the disk did not fill as planned"
    cached_data = {n: data[n] for n in cached}
    assert_intact(s3, origin, cached_data)
    # The server still answers S3 requests: listing, and a 507 (not a 500) for more data.
    assert len(s3.list_objects_v2(Bucket=origin)["Contents"]) == len(names)
    local = new_bucket_name()
    s3.create_bucket(Bucket=local)
    with s3_error("InsufficientStorage", 507):
        s3.put_object(Bucket=local, Key="more", Body=random_bytes(4 * MiB, seed=499))

    s3 = restart_and_check(node, origin, cached_data)
    assert [n for n in names if presence(node, origin, n) == 200] == cached, "cached copies survive the restart"

    # Evicting copies frees space: the rest can be fetched, with the right bytes.
    drop = cached[: len(cached) // 2 + 1]
    wait_job(node, start_job(node, origin, "evict-listrange", {"objnames": drop}))
    missing = next(n for n in names if n not in cached)
    deadline = time.monotonic() + SAMPLE_GRACE_SECS
    while True:
        try:
            got = s3.get_object(Bucket=origin, Key=missing)["Body"].read()
            break
        except ClientError as e:
            if error_of(e)[0] != 507 or time.monotonic() > deadline:
                raise AssertionError(f"cold GET after evicting: {error_of(e)}\n{node.log_tail(15)}") from None
            time.sleep(0.1)
    assert md5_hex(got) == md5_hex(data[missing])
    assert_no_work_files(node)
    r = native(node, "GET", "/v1/health")
    assert r.status_code == 200, describe(r)
