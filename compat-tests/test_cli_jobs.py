"""The `trove` CLI's cache commands against a real `trove serve` with a moto origin: prefetch with a template
and `--wait`, `ls --cached`, evict by prefix, `job ls|show|stop`, and one-line errors with a non-zero exit."""

from __future__ import annotations

import pytest

from support import new_bucket_name
from test_backends import attach, cli_fails_with_one_line, cli_ok, start_trove, trove_cli


@pytest.fixture
def setup(trove_factory, moto):
    trove = start_trove(trove_factory, moto)
    origin = new_bucket_name()
    moto.create_bucket(origin)
    for i in range(12):
        moto.put_object(origin, f"shard-{i:03d}.bin", bytes([i]) * 4096)
    attach(trove, moto, origin)
    yield trove, origin
    moto.delete_bucket(origin)


def cached(trove, origin) -> list[str]:
    out = cli_ok(trove_cli(trove, "ls", f"s3://{origin}", "--cached"))
    return [line.split("\t")[0] for line in out.splitlines() if line]


def test_prefetch_ls_evict_and_jobs(setup):
    trove, origin = setup
    assert cached(trove, origin) == []
    job = cli_ok(trove_cli(trove, "prefetch", f"s3://{origin}", "--template", "shard-{000..009..1}.bin", "--wait"))
    job_id = job.strip()
    assert job_id
    assert cached(trove, origin) == [f"shard-{i:03d}.bin" for i in range(10)]
    listing = cli_ok(trove_cli(trove, "ls", f"s3://{origin}", "--prefix", "shard-01"))
    assert [line.split("\t") for line in listing.splitlines()] == [
        ["shard-010.bin", "4096", "-"], ["shard-011.bin", "4096", "-"]]

    cli_ok(trove_cli(trove, "evict", f"s3://{origin}", "--prefix", "shard-00", "--wait"))
    assert cached(trove, origin) == []  # shard-000..009 were the only cached ones

    jobs = cli_ok(trove_cli(trove, "job", "ls"))
    assert f"prefetch-listrange {job_id}: 10 objects" in jobs and "done" in jobs
    show = cli_ok(trove_cli(trove, "job", "show", job_id))
    assert '"kind": "prefetch-listrange"' in show
    cli_ok(trove_cli(trove, "job", "wait", job_id))

    cli_ok(trove_cli(trove, "prefetch", f"s3://{origin}", "--list", "shard-011.bin", "--wait"))
    cli_ok(trove_cli(trove, "evict", f"s3://{origin}", "--all", "--keep-md"))
    assert cached(trove, origin) == []


def test_cli_errors_are_one_line(setup):
    trove, origin = setup
    # Progress lines go to stderr too (stdout keeps the job id); the error is the last line.
    failed = trove_cli(trove, "prefetch", f"s3://{origin}", "--list", "missing.bin", "--wait")
    assert failed.returncode != 0 and failed.stdout.strip()
    assert failed.stderr.strip().splitlines()[-1].startswith("trove: error: job "), failed.stderr
    assert "missing.bin" in failed.stderr.strip().splitlines()[-1]
    cli_fails_with_one_line(trove_cli(trove, "prefetch", "s3://no-such-bucket-here", "--template", "x"))
    cli_fails_with_one_line(trove_cli(trove, "job", "show", "nosuchjob"))
    cli_fails_with_one_line(trove_cli(trove, "ls", f"s3://{origin}", token="wrong-token"))
    cli_fails_with_one_line(trove_cli(trove, "prefetch", f"s3://{origin}", "--template", "{1..", "--wait"))


def test_bucket_cp(setup):
    """`trove bucket cp`: a cloud bucket into a new AIS-local one (all objects, from the listing), then a prefix
    of that into another with a prepended name."""
    trove, origin = setup
    dst, dst2 = new_bucket_name(), new_bucket_name()
    job = cli_ok(trove_cli(trove, "bucket", "cp", f"s3://{origin}", f"ais://{dst}", "--all", "--wait")).strip()
    assert job
    s3 = trove.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=dst)["Contents"]]
    assert keys == [f"shard-{i:03d}.bin" for i in range(12)]
    assert s3.get_object(Bucket=dst, Key="shard-005.bin")["Body"].read() == bytes([5]) * 4096
    cli_ok(trove_cli(trove, "bucket", "cp", f"ais://{dst}", f"ais://{dst2}", "--prefix", "shard-01",
                     "--prepend", "copy/", "--wait"))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=dst2)["Contents"]] == ["copy/shard-010.bin", "copy/shard-011.bin"]
    cli_fails_with_one_line(trove_cli(trove, "bucket", "cp", f"ais://{dst}", f"ais://{dst}"))


def test_get_archpath_and_archive(setup, tmp_path):
    """`trove archive` makes a shard of objects; `trove get --archpath` prints one file of it; `trove get`
    writes a whole object to a file."""
    trove, origin = setup
    shards = new_bucket_name()
    trove.client().create_bucket(Bucket=shards)
    cli_ok(trove_cli(trove, "archive", f"s3://{origin}", f"ais://{shards}/set/s-0.tar",
                     "--template", "shard-{000..003}.bin", "--wait"))
    out = trove_cli(trove, "get", f"ais://{shards}/set/s-0.tar", "--archpath", "shard-002.bin")
    assert out.returncode == 0 and out.stdout == "\x02" * 4096
    cli_ok(trove_cli(trove, "get", f"s3://{origin}/shard-007.bin", "-o", str(tmp_path / "x")))
    assert (tmp_path / "x").read_bytes() == bytes([7]) * 4096
    cli_fails_with_one_line(trove_cli(trove, "get", f"ais://{shards}/set/s-0.tar", "--archpath", "nope"))
