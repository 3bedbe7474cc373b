"""Jobs (AIS xactions) over raw HTTP, no SDK: `prefetch-listrange` / `evict-listrange` started on
`/v1/buckets/B?provider=aws`, queried with `GET /v1/cluster?what=status|qryxstats|running_all` and stopped with
`PUT /v1/cluster {"action": "stop"}`; object selection by list, template (brace ranges) and prefix.

The contract is AIS's wire format (api/apc/multiobj.go, xact.QueryMsg, nl.Status, core.Snap). Choices made where
AIS leaves room, following what the AIS Python SDK needs:
- The start call answers 200 with the bare job id as text/plain.
- `what=status` answers `{"uuid", "kind", "err", "end_time" (unix ns, 0 while running), "aborted"}`; the query
  body is `{"id": ...}`, and the SDK's `{"ID": ..., "Kind": ...}` (Go decodes case-insensitively) must work too.
- `what=qryxstats` answers `{"<node id>": [Snap, ...]}`; a Snap has `id`, `kind`, `bck`, `start-time`/`end-time`
  (RFC 3339 strings, the zero time "0001-01-01T00:00:00Z" or "" while running), `aborted`, `err`, and
  `stats` with the int64 counters as decimal STRINGS (`loc-objs`, `loc-bytes`, ...). `loc-objs`/`loc-bytes` count
  the objects/bytes the job fetched.
- A job stays visible to `status`/`qryxstats` after it ended.
- `coer=false` + a missing object named in a LIST: the job ends with a non-empty `err`. `coer=true`: the job runs
  to the end, is not aborted, and the failure shows in the snapshot's or the status' `err` (AIS has no separate
  failure counter). A missing object inside a TEMPLATE range is skipped silently (AIS: errors only in list mode).
- `stop` ends a running job: `aborted: true`, `end_time != 0`, and it leaves `running_all`. Requests already in
  flight to a hung backend may run to their timeout first, so the bound is about one backend timeout.
- Unknown job id for `what=status` -> 404 with an AIS error body; invalid templates and jobs on a bucket without a
  backend (`ais://`) -> 400 with an AIS error body.
"""

from __future__ import annotations

import time

import pytest

from native_support import (
    GO_ZERO_TIME,
    describe,
    error_json,
    fresh_origin,
    job_snap,
    job_snaps,
    job_status,
    native,
    presence,
    presences,
    put_objects,
    running_jobs,
    start_gateway,
    start_job,
    start_private_moto,
    wait_job,
)
from support import delete_bucket_recursively, new_bucket_name

PREFETCH = "prefetch-listrange"
EVICT = "evict-listrange"
BACKEND_TIMEOUT_SECS = 5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private moto (tests pause it) and a Trove with it as the aws backend, for the module."""
    moto = start_private_moto(tmp_path_factory.mktemp("jobs-moto"))
    try:
        trove = start_gateway(tmp_path_factory.mktemp("jobs-trove"), moto, timeout_secs=BACKEND_TIMEOUT_SECS,
                              connect_timeout_secs=1, max_attempts=1)
    except BaseException:
        moto.stop()
        raise
    yield trove, moto
    trove.stop()
    moto.stop()


@pytest.fixture
def origin(env):
    trove, moto = env
    with fresh_origin(trove, moto) as name:
        yield name


def prefetch(trove, bucket, **value) -> str:
    return start_job(trove, bucket, PREFETCH, value)


def finished_ok(status: dict, job_id: str, kind: str = PREFETCH) -> None:
    assert status.get("uuid") == job_id, status
    assert status.get("kind") in (kind, None), status
    assert int(status["end_time"]) > 0, status
    assert not status.get("aborted") and not status.get("err"), status


def stop(trove, value: dict):
    r = native(trove, "PUT", "/v1/cluster", {"action": "stop", "name": "", "value": value})
    assert r.status_code == 200, describe(r)


# ---------------------------------------------------------------------------------------------
# Start, status, stats
# ---------------------------------------------------------------------------------------------


def test_prefetch_job_id_status_and_stats(env, origin):
    trove, moto = env
    names = [f"x-{i}" for i in range(10)]
    data = put_objects(moto, origin, names + ["x-10"], size=1000, seed=1)

    r = native(trove, "POST", f"/v1/buckets/{origin}",
               {"action": PREFETCH, "value": {"template": "x-{0..9}"}}, params={"provider": "aws"})
    assert r.status_code == 200, describe(r)
    job_id = r.text
    assert job_id and job_id.isprintable() and job_id == job_id.strip(), repr(job_id)
    assert not job_id.startswith(('"', "{", "[")), f"the id is plain text, not JSON: {job_id!r}"

    status = wait_job(trove, job_id)
    finished_ok(status, job_id)
    assert job_status(trove, job_id, sdk_casing=True) == status, "the SDK's {\"ID\": ...} body must work too"
    assert presences(trove, origin, names) == {n: 200 for n in names}
    assert presence(trove, origin, "x-10") == 404

    snap = job_snap(trove, job_id)
    assert snap["kind"] == PREFETCH, snap
    assert snap.get("bck", {}).get("name") == origin and snap["bck"].get("provider") == "aws", snap
    assert isinstance(snap.get("start-time"), str) and snap["start-time"] not in ("", GO_ZERO_TIME), snap
    assert isinstance(snap.get("end-time"), str) and snap["end-time"] not in ("", GO_ZERO_TIME), snap
    assert not snap.get("aborted"), snap
    stats = snap["stats"]
    assert stats["loc-objs"] == "10", stats  # int64 counters are JSON strings in AIS
    assert stats["loc-bytes"] == str(sum(len(data[n]) for n in names)), stats
    assert all(isinstance(v, str) for v in stats.values()), stats
    # The same snapshot through the SDK's body, and when listed by kind.
    assert any(s.get("id") == job_id for s in job_snaps(trove, kind=PREFETCH))
    assert f"{PREFETCH}[{job_id}]" not in running_jobs(trove)

    # A second prefetch of cached objects fetches nothing.
    again = prefetch(trove, origin, template="x-{0..9}")
    assert again != job_id
    finished_ok(wait_job(trove, again), again)
    assert job_snap(trove, again)["stats"]["loc-objs"] == "0"

    # Evict by template: another job kind, same protocol.
    ev = start_job(trove, origin, EVICT, {"template": "x-{0..4}"})
    finished_ok(wait_job(trove, ev), ev, EVICT)
    assert job_snap(trove, ev)["kind"] == EVICT
    got = presences(trove, origin, names)
    assert got == {n: (404 if int(n[2:]) <= 4 else 200) for n in names}, got
    assert moto.list_keys(origin) == sorted(names + ["x-10"])


def test_unknown_job_is_404(env):
    trove, _ = env
    r = native(trove, "GET", "/v1/cluster", {"id": "no-such-job"}, params={"what": "status"})
    assert r.status_code == 404, describe(r)
    error_json(r)


# ---------------------------------------------------------------------------------------------
# Running jobs and stop
# ---------------------------------------------------------------------------------------------


def test_running_all_and_stop(env, origin):
    """With the backend hung (SIGSTOP), prefetch jobs stay running until stopped."""
    trove, moto = env
    put_objects(moto, origin, [f"slow-{i:02d}" for i in range(40)], size=1024, seed=2)
    moto.pause()
    try:
        a = prefetch(trove, origin, template="slow-{00..19}", coer=True)
        b = prefetch(trove, origin, template="slow-{20..39}", coer=True)
        running = running_jobs(trove)
        assert f"{PREFETCH}[{a}]" in running and f"{PREFETCH}[{b}]" in running, running
        assert f"{PREFETCH}[{a}]" in running_jobs(trove, kind=PREFETCH)
        assert not any(j.startswith(f"{EVICT}[") for j in running_jobs(trove, kind=EVICT))
        status = job_status(trove, a)
        assert int(status["end_time"]) == 0 and not status.get("aborted"), status
        snap = job_snap(trove, a)
        assert snap.get("end-time") in ("", GO_ZERO_TIME, None) and not snap.get("aborted"), snap

        stopped = time.monotonic()
        stop(trove, {"kind": PREFETCH, "id": a})  # AIS's documented form
        stop(trove, {"ID": b, "Kind": PREFETCH, "DaemonID": "", "Bck": None, "Buckets": None})  # the SDK's abort()
        for job in (a, b):
            status = wait_job(trove, job, timeout=3 * BACKEND_TIMEOUT_SECS)
            assert status.get("aborted") is True, status
            assert int(status["end_time"]) > 0, status
        elapsed = time.monotonic() - stopped
        assert elapsed < 2 * BACKEND_TIMEOUT_SECS + 2, f"stop took {elapsed:.1f}s"
        running = running_jobs(trove)
        assert f"{PREFETCH}[{a}]" not in running and f"{PREFETCH}[{b}]" not in running, running
        assert job_snap(trove, a).get("aborted") is True
    finally:
        moto.resume()


# ---------------------------------------------------------------------------------------------
# Errors: coer, missing objects, bad input
# ---------------------------------------------------------------------------------------------


def test_coer_false_missing_object_fails_the_job(env, origin):
    trove, moto = env
    put_objects(moto, origin, ["y-0", "y-2"], seed=3)
    job = prefetch(trove, origin, objnames=["y-0", "y-1", "y-2"], coer=False)
    status = wait_job(trove, job)
    assert status.get("err"), f"a missing listed object must fail the job without coer: {status}"


def test_coer_true_continues_and_counts_the_failure(env, origin):
    trove, moto = env
    data = put_objects(moto, origin, ["z-0", "z-2"], seed=4)
    job = prefetch(trove, origin, objnames=["z-0", "z-missing", "z-2"], coer=True)
    status = wait_job(trove, job)
    assert not status.get("aborted"), status
    assert presences(trove, origin, ["z-0", "z-2"]) == {"z-0": 200, "z-2": 200}
    snap = job_snap(trove, job)
    assert snap["stats"]["loc-objs"] == "2", snap
    assert snap["stats"]["loc-bytes"] == str(len(data["z-0"]) + len(data["z-2"])), snap
    assert snap.get("err") or status.get("err"), f"the failure of z-missing is not reported: {snap} {status}"


def test_missing_object_in_a_template_range_is_skipped(env, origin):
    trove, moto = env
    put_objects(moto, origin, ["m-0", "m-1", "m-3"], seed=5)
    job = prefetch(trove, origin, template="m-{0..3}", coer=False)
    finished_ok(wait_job(trove, job), job)
    assert presences(trove, origin, ["m-0", "m-1", "m-3"]) == {"m-0": 200, "m-1": 200, "m-3": 200}
    assert job_snap(trove, job)["stats"]["loc-objs"] == "3"


@pytest.mark.parametrize("template", ["x-{5..1}", "x-{0..10..0}", "x-{a..b}", "x-{0..3"])
def test_invalid_template_is_400(env, origin, template):
    trove, _ = env
    r = native(trove, "POST", f"/v1/buckets/{origin}", {"action": PREFETCH, "value": {"template": template}},
               params={"provider": "aws"})
    assert r.status_code == 400, describe(r)
    error_json(r)


def test_jobs_on_a_bucket_without_backend_are_400(env):
    trove, _ = env
    name = new_bucket_name()
    s3 = trove.client()
    s3.create_bucket(Bucket=name)  # an ais:// bucket: nothing to prefetch from, nothing to evict to
    try:
        s3.put_object(Bucket=name, Key="x-1", Body=b"local only")
        for action, method in ((EVICT, "DELETE"), (PREFETCH, "POST")):
            r = native(trove, method, f"/v1/buckets/{name}",
                       {"action": action, "name": "", "value": {"template": "x-{0..9}"}}, params={"provider": "ais"})
            assert r.status_code == 400, describe(r)
            body = error_json(r)
            assert body.get("status") in (None, 400), body
        assert s3.get_object(Bucket=name, Key="x-1")["Body"].read() == b"local only"
    finally:
        delete_bucket_recursively(s3, name)


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------

TEMPLATE_CASES = [
    # (template, objects in the bucket, the ones it selects)
    ("t-{0..10..5}", ["t-0", "t-1", "t-5", "t-6", "t-10", "t-11"], ["t-0", "t-5", "t-10"]),
    ("a-{0..1}-{00..02}",
     ["a-0-00", "a-0-01", "a-0-02", "a-1-00", "a-1-01", "a-1-02", "a-0-03", "a-2-00", "a-0-0", "a-1-2"],
     ["a-0-00", "a-0-01", "a-0-02", "a-1-00", "a-1-01", "a-1-02"]),
    ("s-{000..011}.bin", [f"s-{i:03d}.bin" for i in range(13)] + ["s-0.bin", "s-11.bin"],
     [f"s-{i:03d}.bin" for i in range(12)]),
    ("{0..2}.bin", ["0.bin", "1.bin", "2.bin", "3.bin", "00.bin"], ["0.bin", "1.bin", "2.bin"]),
    ("pre/", ["pre/1", "pre/sub/2", "pre-x", "prefix/3", "other/pre/1"], ["pre/1", "pre/sub/2"]),  # a prefix
]


@pytest.mark.parametrize("template,objects,selected", TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES])
def test_template_selects_exactly(env, origin, template, objects, selected):
    trove, moto = env
    put_objects(moto, origin, objects, size=512, seed=6)
    job = prefetch(trove, origin, template=template)
    finished_ok(wait_job(trove, job), job)
    got = presences(trove, origin, objects)
    assert sorted(k for k, st in got.items() if st == 200) == sorted(selected), got
    assert job_snap(trove, job)["stats"]["loc-objs"] == str(len(selected))

    # Evict with the same template drops exactly those copies again.
    ev = start_job(trove, origin, EVICT, {"template": template})
    finished_ok(wait_job(trove, ev), ev, EVICT)
    assert set(presences(trove, origin, objects).values()) == {404}
