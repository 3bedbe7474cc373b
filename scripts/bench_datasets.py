"""Dataset benchmarks against a running Trove (started by scripts/bench-datasets.sh):

1. GetBatch of N x SIZE objects (one request, the AIS SDK's `client.batch`) vs the same N objects as separate
   GETs (the SDK, one after the other; and 16 threads of boto3 for the concurrent view).
2. archpath reads from one TAR shard of SHARD_MIB MiB holding FILE_KIB KiB files: random files by name, one
   after the other and from 16 threads (files/s).

Prints one line per measurement. Environment: ENDPOINT, ADMIN_TOKEN, TROVE_ACCESS_KEY, TROVE_SECRET_KEY,
OBJECTS [1000], SIZE_KIB [10], ROUNDS [3], SHARD_MIB [1024], FILE_KIB [100], READS [2000].
"""

from __future__ import annotations

import os
import random
import statistics
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from aistore.sdk import Client
from aistore.sdk.archive_config import ArchiveConfig
from botocore.config import Config

ENDPOINT = os.environ["ENDPOINT"]
OBJECTS = int(os.environ.get("OBJECTS", "1000"))
SIZE = int(os.environ.get("SIZE_KIB", "10")) * 1024
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SHARD_MIB = int(os.environ.get("SHARD_MIB", "1024"))
FILE_KIB = int(os.environ.get("FILE_KIB", "100"))
READS = int(os.environ.get("READS", "2000"))

s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                  aws_access_key_id=os.environ["TROVE_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["TROVE_SECRET_KEY"],
                  config=Config(max_pool_connections=32, retries={"max_attempts": 1}))
client = Client(ENDPOINT, token=os.environ["ADMIN_TOKEN"], timeout=(5, 300))


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def best_of(f) -> tuple[float, float]:
    times = [timed(f) for _ in range(ROUNDS)]
    return min(times), statistics.median(times)


def getbatch_vs_gets():
    bucket = "bench-batch"
    s3.create_bucket(Bucket=bucket)
    keys = [f"obj/{i:05d}" for i in range(OBJECTS)]
    body = os.urandom(SIZE)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body), keys))
    b = client.bucket(bucket)

    def batch():
        batch = client.batch(bucket=b)
        for k in keys:
            batch.add(b.object(k))
        n = sum(len(data) for _, data in batch.get())
        assert n == OBJECTS * SIZE, n

    def separate():
        n = sum(len(b.object(k).get_reader().read_all()) for k in keys)
        assert n == OBJECTS * SIZE

    def threads():
        with ThreadPoolExecutor(16) as ex:
            n = sum(ex.map(lambda k: len(s3.get_object(Bucket=bucket, Key=k)["Body"].read()), keys))
        assert n == OBJECTS * SIZE

    batch()  # warm the page cache and the connections
    t_batch, m_batch = best_of(batch)
    t_sep, m_sep = best_of(separate)
    t_thr, m_thr = best_of(threads)
    kib = SIZE // 1024
    print(f"getbatch {OBJECTS} x {kib} KiB: one GetBatch {t_batch * 1000:.0f} ms (median {m_batch * 1000:.0f}); "
          f"{OBJECTS} separate SDK GETs {t_sep * 1000:.0f} ms (median {m_sep * 1000:.0f}); "
          f"ratio {t_sep / t_batch:.1f}x; boto3 16 threads {t_thr * 1000:.0f} ms (ratio {t_thr / t_batch:.1f}x)")


def archpath_reads():
    bucket = "bench-shards"
    s3.create_bucket(Bucket=bucket)
    n_files = SHARD_MIB * 1024 // FILE_KIB
    names = [f"sample{i:06d}.bin" for i in range(n_files)]
    data = os.urandom(FILE_KIB * 1024)
    with tempfile.NamedTemporaryFile(suffix=".tar") as f:
        with tarfile.open(fileobj=f, mode="w") as t:
            for n in names:
                info = tarfile.TarInfo(n)
                info.size = len(data)
                t.addfile(info, _Reader(data))
        f.flush()
        s3.upload_file(f.name, bucket, "shard.tar")
    obj = client.bucket(bucket).object("shard.tar")

    def read(name):
        got = obj.get_reader(archive_config=ArchiveConfig(archpath=name)).read_all()
        assert len(got) == len(data)

    read(names[0])  # first read builds the shard's table of contents
    picks = [random.choice(names) for _ in range(READS)]
    t1 = timed(lambda: [read(n) for n in picks])
    with ThreadPoolExecutor(16) as ex:
        t16 = timed(lambda: list(ex.map(read, picks)))
    print(f"archpath {SHARD_MIB} MiB TAR of {n_files} x {FILE_KIB} KiB files: {READS / t1:.0f} files/s one at a time, "
          f"{READS / t16:.0f} files/s from 16 threads ({READS * FILE_KIB / 1024 / t16:.0f} MiB/s)")


class _Reader:
    """The same bytes as a file, for tarfile.addfile."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


if __name__ == "__main__":
    getbatch_vs_gets()
    archpath_reads()
