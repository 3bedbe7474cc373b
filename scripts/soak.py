"""A steady mixed load against one Trove for a long time; prints, per interval, the operations done, errors,
p50/p99 latency and the node's RSS and open descriptors (from /proc), and at the end the first and last tenth of
the run side by side.

Run by scripts/soak.sh, which starts moto (the origin of a cloud bucket) and Trove. The load, at RATE
operations per second spread over WORKERS threads: GETs of a hot set of AIS-local objects (hits), GETs of cloud
objects not cached (misses: cold fills from moto), PUTs (4 KiB-256 KiB), paged listings, DELETEs, and a
prefetch job of a cloud prefix every minute.

The load is steady by construction, so that its first and last minutes are comparable: the written set stays
under WRITTEN_CAP keys (a PUT beyond it overwrites one), and the misses cycle through the cloud objects in
blocks, an evict job a minute dropping the cached copies of the blocks just ahead of the reads. The first
WARMUP seconds (caches, kept-open handles and the index filling) are printed but left out of the comparison.
"""

import argparse
import os
import random
import statistics
import threading
import time

import boto3
import requests
from botocore.config import Config


def rss_and_fds(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}

    def add(self, op: str, secs: float, ok: bool):
        with self.lock:
            self.lat.setdefault(op, []).append(secs)
            if not ok:
                self.errors[op] = self.errors.get(op, 0) + 1

    def take(self):
        with self.lock:
            lat, errors = self.lat, self.errors
            self.lat, self.errors = {}, {}
        return lat, errors


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--cloud-bucket", required=True)
    ap.add_argument("--cloud-objects", type=int, required=True)
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--written-cap", type=int, default=5000)
    a = ap.parse_args()

    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name="us-east-1",
                      aws_access_key_id=os.environ["TROVE_ACCESS_KEY"],
                      aws_secret_access_key=os.environ["TROVE_SECRET_KEY"],
                      config=Config(s3={"addressing_style": "path"}, max_pool_connections=a.workers * 2,
                                    retries={"max_attempts": 1}))
    local = "soak-local"
    s3.create_bucket(Bucket=local)
    hot = [f"hot/{i:05d}" for i in range(500)]
    for k in hot:
        s3.put_object(Bucket=local, Key=k, Body=os.urandom(16 << 10))
    stats, stop = Stats(), time.monotonic() + a.warmup + a.seconds
    block = 1000
    blocks = max(1, a.cloud_objects // block)
    cursor = [0]
    cold_lock = threading.Lock()
    written: list[str] = []
    written_lock = threading.Lock()

    def one(rng: random.Random):
        r = rng.random()
        if r < 0.55:
            op = "get-hit"
            s3.get_object(Bucket=local, Key=rng.choice(hot))["Body"].read()
        elif r < 0.65:
            op = "get-miss"
            with cold_lock:
                i = cursor[0] % (blocks * block)
                cursor[0] += 1
            s3.get_object(Bucket=a.cloud_bucket, Key=f"cold/{i:06d}")["Body"].read()
        elif r < 0.85:
            op = "put"
            with written_lock:
                full = len(written) >= a.written_cap
                key = rng.choice(written) if full else f"w/{rng.getrandbits(48):012x}"
            s3.put_object(Bucket=local, Key=key, Body=os.urandom(rng.choice([4 << 10, 64 << 10, 256 << 10])))
            if not full:
                with written_lock:
                    written.append(key)
        elif r < 0.92:
            op = "list"
            # A page of 100 from a random place in the written keys (a paged walk's typical request).
            s3.list_objects_v2(Bucket=local, Prefix="w/", MaxKeys=100, StartAfter=f"w/{rng.getrandbits(48):012x}")
        else:
            op = "delete"
            with written_lock:
                key = written.pop(rng.randrange(len(written))) if written else None
            if key:
                s3.delete_object(Bucket=local, Key=key)
        return op

    def worker(n: int):
        rng = random.Random(n)
        period = a.workers / a.rate
        next_at = time.monotonic()
        while time.monotonic() < stop:
            next_at += period
            t = time.monotonic()
            ok, op = True, "?"
            try:
                op = one(rng)
            except Exception as e:  # noqa: BLE001 - every failure counts, whatever it is
                ok = False
                op = f"{op}:{type(e).__name__}"
            stats.add(op.split(":")[0] if ok else op, time.monotonic() - t, ok)
            time.sleep(max(0.0, next_at - time.monotonic()))

    def job(action: str, first: int, last: int) -> bool:
        # AIS starts a prefetch with POST and an evict with DELETE.
        method = "DELETE" if action.startswith("evict") else "POST"
        r = requests.request(method, f"{a.endpoint}/v1/buckets/{a.cloud_bucket}", params={"provider": "aws"},
                          headers={"Authorization": f"Bearer {a.admin_token}"},
                          json={"action": action, "name": "",
                                "value": {"template": f"cold/{{{first:06d}..{last:06d}}}"}}, timeout=30)
        return r.status_code == 200

    def prefetcher():
        while time.monotonic() < stop:
            time.sleep(60)
            t = time.monotonic()
            ok = job("prefetch-listrange", 0, 199)
            stats.add("prefetch", time.monotonic() - t, ok)
            # The misses of the next minutes find their blocks cold again (misses read ~20 a second).
            with cold_lock:
                ahead = cursor[0] // block
            for b in (ahead + 2, ahead + 3):
                first = (b % blocks) * block
                stats.add("evict", 0.0, job("evict-listrange", first, first + block - 1))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(a.workers)]
    threads.append(threading.Thread(target=prefetcher, daemon=True))
    for t in threads:
        t.start()
    rows = []
    start = time.monotonic()
    while time.monotonic() < stop:
        time.sleep(min(a.interval, max(0.0, stop - time.monotonic())))
        lat, errors = stats.take()
        everything = [x for v in lat.values() for x in v]
        rss, fds = rss_and_fds(a.pid)
        row = {"t": time.monotonic() - start, "ops": len(everything), "errors": sum(errors.values()),
               "p50": pct(everything, 0.5), "p99": pct(everything, 0.99), "rss": rss, "fds": fds,
               "hit_p99": pct(lat.get("get-hit", []), 0.99)}
        rows.append(row)
        print(f"t={row['t']:6.0f}s ops={row['ops']} errors={row['errors']} {dict(errors) if errors else ''} "
              f"p50={row['p50']:.1f}ms p99={row['p99']:.1f}ms get-hit-p99={row['hit_p99']:.1f}ms "
              f"rss={rss:.0f}MiB fds={fds}", flush=True)
    for t in threads:
        t.join(timeout=30)
    measured = [r for r in rows if r["t"] > a.warmup]
    tenth = max(1, len(measured) // 10)
    first, last = measured[:tenth], measured[-tenth:]

    def mean(rs, k):
        return statistics.mean(r[k] for r in rs)

    errors = sum(r["errors"] for r in rows)
    print(f"SOAK seconds={a.seconds} warmup={a.warmup} ops={sum(r['ops'] for r in rows)} errors={errors} "
          f"first-tenth: p99={mean(first, 'p99'):.1f}ms rss={mean(first, 'rss'):.0f}MiB "
          f"last-tenth: p99={mean(last, 'p99'):.1f}ms rss={mean(last, 'rss'):.0f}MiB "
          f"p99-ratio={mean(last, 'p99') / max(mean(first, 'p99'), 1e-9):.2f} "
          f"rss-ratio={mean(last, 'rss') / max(mean(first, 'rss'), 1e-9):.2f}")


if __name__ == "__main__":
    main()
