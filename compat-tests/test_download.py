"""AIS's downloader (`/v1/download`): HTTP(S) links fetched into buckets by the cluster, with a local HTTP server
(in this process) as the web origin.

Covered: the four job types (`single`, `range` with `subdir`, `multi` as a list and as a map, `backend` from a moto
bucket); the status record (counters, `finished_tasks` with sizes as JSON strings, `download_errors`), the list with
a regex on the description, abort, remove, resume by re-posting (objects already stored and unchanged on the server
are skipped), the refusals (400/404), the SSRF guard (`[download] allow_hosts`, loopback refused by default, also
behind a redirect), three nodes, the AIS SDK's `job(id).wait()` and the `trove download` CLI.

The wire contract is AIS's (ext/dload, ais/prxdl.go):
- `POST /v1/download` with a flat body `{"type", "bucket", "description", "timeout", "limits", ...type fields}`
  answers `{"id": "dnl-..."}`; a missing AIS destination bucket is created.
- `GET /v1/download` with `{"id"}` answers the status (`finished_time` is Go's zero time while running); with
  `{"regex"}` (or empty strings) an array of job records. `DELETE /v1/download/abort|remove` with `{"id"}`.
  Every call carries a JSON body, GET and DELETE included.
- A skipped object counts in `skipped_cnt` and in `finished_cnt`; a 404 link's error says "does not exist".
- Object name = the last path segment of the link, percent-decoded, without the query (range: `subdir/` + that).

Trove's own choices tested here: the SSRF guard (`[download] allow_hosts`, `allow_public`), the skip check by
size + ETag or Last-Modified (AIS can only skip cloud links), and the job listed as xaction kind `download` under
its `dnl-` id, so the AIS SDK can wait for it.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import threading
import time
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

aistore = pytest.importorskip("aistore", reason="aistore missing: run compat-tests/setup.sh")

from native_support import (  # noqa: E402
    ADMIN_TOKEN,
    GO_ZERO_TIME,
    TROVE_ENV,
    backends_toml,
    describe,
    error_json,
    fresh_origin,
    job_snaps,
    native,
    presences,
    put_objects,
)
from support import MiB, Trove, new_bucket_name, random_bytes, s3_client  # noqa: E402
from test_ais_sdk import sdk, wait_ok  # noqa: E402
from test_backends import cli_ok, trove_cli  # noqa: E402

# Links to the local server (127.0.0.1) are allowed by name; everything else keeps the default guard.
DOWNLOAD_CONFIG = '\n[download]\nallow_hosts = ["127.0.0.1"]\n'
JOB_TIMEOUT = 40
SLOW_SIZE = 1 * MiB
SLOW_CHUNK = 64 * 1024
SLOW_CHUNK_DELAY = 0.09  # ~1.5 s per slow file


# ---------------------------------------------------------------------------------------------
# The web origin: a local HTTP server with a request log, redirects and slow files
# ---------------------------------------------------------------------------------------------


class FileServer:
    """`http.server` on 127.0.0.1:<free port> in daemon threads, serving files under `root`.

    - `put(name, data)` writes a file (sub-directories allowed) and returns its bytes.
    - `slow(name)`: GETs of that file send it in `SLOW_CHUNK` pieces with a pause between them.
    - `redirect(name, location)`: `/redirect/<name>` answers 302 to `location`.
    - `log`: every request as `(method, decoded path without query)`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._slow: set[str] = set()
        self._redirects: dict[str, str] = {}
        server = self

        class Handler(SimpleHTTPRequestHandler):
            extensions_map = {
                **SimpleHTTPRequestHandler.extensions_map,
                ".csv": "text/csv",
                ".tar": "application/x-tar",
                ".bin": "application/octet-stream",
                ".txt": "text/plain",
            }

            def log_message(self, *args):  # keep pytest's output clean
                pass

            def _record(self) -> str:
                path = unquote(urlsplit(self.path).path)
                with server._lock:
                    server.log.append((self.command, path))
                return path

            def _redirected(self, path: str) -> bool:
                if not path.startswith("/redirect/"):
                    return False
                location = server._redirects.get(path[len("/redirect/"):])
                if location is None:
                    self.send_error(404)
                else:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                return True

            def do_HEAD(self):
                path = self._record()
                if not self._redirected(path):
                    super().do_HEAD()

            def do_GET(self):
                path = self._record()
                if self._redirected(path):
                    return
                if path.lstrip("/") not in server._slow:
                    super().do_GET()
                    return
                f = self.send_head()  # the same headers as a HEAD (Content-Length, Last-Modified, Content-Type)
                if f is None:
                    return
                try:
                    while chunk := f.read(SLOW_CHUNK):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(SLOW_CHUNK_DELAY)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the downloader gave up (abort)
                finally:
                    f.close()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(self.root)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, name: str = "", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    def put(self, name: str, data: bytes, *, slow: bool = False) -> bytes:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if slow:
            self._slow.add(name)
        return data

    def redirect(self, name: str, location: str) -> str:
        self._redirects[name] = location
        return self.url(f"redirect/{name}")

    def requests_under(self, prefix: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, p) for m, p in self.log if p.startswith("/" + prefix)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> FileServer:
    root = tmp_path_factory.mktemp("web")
    server = FileServer(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Trove:
    """One Trove for the module with the admin token and 127.0.0.1 allowed as a download host."""
    trove = Trove(tmp_path_factory.mktemp("trove-download"), extra_config=DOWNLOAD_CONFIG, env=dict(TROVE_ENV))
    trove.start()
    yield trove
    trove.stop()


# ---------------------------------------------------------------------------------------------
# Helpers: the /v1/download API
# ---------------------------------------------------------------------------------------------


def ais(bucket: str) -> dict:
    return {"name": bucket, "provider": "ais"}


def dl_post(trove: Trove, body: dict) -> requests.Response:
    return native(trove, "POST", "/v1/download", body, timeout=30)


def start_download(trove: Trove, body: dict) -> str:
    body = {"timeout": "30s", **body}
    r = dl_post(trove, body)
    assert r.status_code == 200, describe(r)
    job_id = r.json().get("id")
    assert isinstance(job_id, str) and re.fullmatch(r"dnl-[0-9A-Za-z_-]+", job_id), describe(r)
    return job_id


def dl_status_response(trove: Trove, job_id: str) -> requests.Response:
    return native(trove, "GET", "/v1/download", {"id": job_id, "only_active_tasks": False}, timeout=20)


def dl_status(trove: Trove, job_id: str) -> dict:
    r = dl_status_response(trove, job_id)
    assert r.status_code == 200, describe(r)
    status = r.json()
    assert isinstance(status, dict) and status.get("id") == job_id, describe(r)
    return status


def dl_list(trove: Trove, regex: str = "") -> list[dict]:
    r = native(trove, "GET", "/v1/download", {"id": "", "regex": regex, "only_active_tasks": False}, timeout=20)
    assert r.status_code == 200, describe(r)
    jobs = r.json()
    assert isinstance(jobs, list), f"the job list must be a JSON array: {describe(r)}"
    return jobs


def dl_abort(trove: Trove, job_id: str) -> requests.Response:
    return native(trove, "DELETE", "/v1/download/abort", {"id": job_id}, timeout=20)


def dl_remove(trove: Trove, job_id: str) -> requests.Response:
    return native(trove, "DELETE", "/v1/download/remove", {"id": job_id}, timeout=20)


def finished(record: dict) -> bool:
    return record["finished_time"] != GO_ZERO_TIME


def wait_done(trove: Trove, job_id: str, timeout: float = JOB_TIMEOUT) -> dict:
    """Poll the status until `finished_time` is set; returns the final status (checked by `check_record`)."""
    deadline = time.monotonic() + timeout
    while True:
        status = dl_status(trove, job_id)
        if finished(status):
            check_record(status)
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"download {job_id} not finished within {timeout}s: {status}")
        time.sleep(0.2)


def wait_status(trove: Trove, job_id: str, predicate, timeout: float = JOB_TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = dl_status(trove, job_id)
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"download {job_id}: condition not reached within {timeout}s: {status}")
        time.sleep(0.1)


RECORD_INTS = ("finished_cnt", "scheduled_cnt", "skipped_cnt", "error_cnt", "total")


def parse_time(value) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value)


def check_record(record: dict) -> None:
    """The Go `dload.Job` fields with their JSON types; for a finished job, AIS's invariant."""
    for key in ("id", "xaction_id", "description", "started_time", "finished_time"):
        assert isinstance(record.get(key), str), f"{key!r} missing or not a string: {record}"
    for key in RECORD_INTS:
        assert type(record.get(key)) is int, f"{key!r} missing or not an integer: {record}"
    for key in ("all_dispatched", "aborted"):
        assert type(record.get(key)) is bool, f"{key!r} missing or not a boolean: {record}"
    started = parse_time(record["started_time"])
    assert record["started_time"] != GO_ZERO_TIME, record
    if finished(record):
        assert parse_time(record["finished_time"]) >= started, record
        assert record["aborted"] or (
            record["all_dispatched"]
            and record["scheduled_cnt"] == record["finished_cnt"] + record["error_cnt"]), record
        assert record["skipped_cnt"] <= record["finished_cnt"], record


def check_tasks(status: dict) -> None:
    for key in ("current_tasks", "finished_tasks"):
        for task in status.get(key) or []:
            assert isinstance(task.get("name"), str), f"{key}: {task}"
            assert isinstance(task.get("downloaded"), str) and task["downloaded"].isdigit(), \
                f"{key}: 'downloaded' must be a JSON string of digits: {task}"
            if "total" in task:
                assert isinstance(task["total"], str) and task["total"].isdigit(), \
                    f"{key}: 'total' must be a JSON string of digits: {task}"
    for err in status.get("download_errors") or []:
        assert isinstance(err.get("name"), str) and isinstance(err.get("error"), str), err


def keys_of(trove: Trove, bucket: str) -> list[str]:
    keys, token = [], None
    s3 = trove.client()
    while True:
        page = s3.list_objects_v2(Bucket=bucket, **({"ContinuationToken": token} if token else {}))
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page.get("IsTruncated"):
            return sorted(keys)
        token = page["NextContinuationToken"]


def read(trove: Trove, bucket: str, key: str) -> bytes:
    return trove.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def object_exists(trove: Trove, bucket: str, key: str) -> bool:
    try:
        trove.client().head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
        return False


def tag() -> str:
    return new_bucket_name().removeprefix("trove-test-")


# ---------------------------------------------------------------------------------------------
# 1. single
# ---------------------------------------------------------------------------------------------


def test_single_download(gateway, web):
    data = web.put("single/table.csv", random_bytes(300_000, seed=1))
    bucket = new_bucket_name()  # created by the download
    job_id = start_download(gateway, {"type": "single", "bucket": ais(bucket), "object_name": "tables/t1.csv",
                                      "link": web.url("single/table.csv"), "description": "single csv"})
    # The job is an xaction of kind "download" under its dnl- id: the AIS SDK waits for it.
    wait_ok(sdk(gateway), job_id)
    assert any(s.get("id") == job_id and s.get("kind") == "download" for s in job_snaps(gateway, job_id)), \
        job_snaps(gateway, job_id)
    status = wait_done(gateway, job_id, timeout=10)
    check_tasks(status)
    assert status["description"] == "single csv"
    assert (status["total"], status["finished_cnt"], status["error_cnt"], status["skipped_cnt"]) == (1, 1, 0, 0), \
        status
    assert status["scheduled_cnt"] == 1 and status["all_dispatched"] and not status["aborted"], status
    assert not status.get("current_tasks"), status
    assert not status.get("download_errors"), status
    tasks = {t["name"]: t for t in status.get("finished_tasks") or []}
    assert set(tasks) == {"tables/t1.csv"}, status
    assert tasks["tables/t1.csv"]["downloaded"] == str(len(data)), tasks
    assert tasks["tables/t1.csv"].get("total") == str(len(data)), tasks
    assert keys_of(gateway, bucket) == ["tables/t1.csv"]
    got = gateway.client().get_object(Bucket=bucket, Key="tables/t1.csv")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/csv", "the origin's Content-Type is kept"
    assert web.requests_under("single/") and all(p == "/single/table.csv" for _, p in web.requests_under("single/"))

    # Without object_name: the last path segment of the link.
    job2 = start_download(gateway, {"type": "single", "bucket": ais(bucket), "link": web.url("single/table.csv")})
    status2 = wait_done(gateway, job2)
    assert (status2["finished_cnt"], status2["error_cnt"]) == (1, 0), status2
    assert keys_of(gateway, bucket) == ["table.csv", "tables/t1.csv"]
    assert read(gateway, bucket, "table.csv") == data


# ---------------------------------------------------------------------------------------------
# 2. range
# ---------------------------------------------------------------------------------------------


def test_range_with_subdir_and_a_missing_file(gateway, web):
    data = {}
    for i in range(20):
        if i != 7:  # shard-007.tar is missing on the server: 404
            data[f"shard-{i:03d}.tar"] = web.put(f"rng/shard-{i:03d}.tar", random_bytes(20_000 + i * 101, seed=100 + i))
    bucket = new_bucket_name()
    job_id = start_download(gateway, {"type": "range", "bucket": ais(bucket), "subdir": "train",
                                      "template": web.url("rng/shard-{000..019}.tar"), "description": "range"})
    status = wait_done(gateway, job_id)
    check_tasks(status)
    assert status["total"] == 20, status
    assert (status["finished_cnt"], status["error_cnt"], status["skipped_cnt"]) == (19, 1, 0), status
    assert status["scheduled_cnt"] == 20 and status["all_dispatched"] and not status["aborted"], status
    errors = status.get("download_errors") or []
    assert len(errors) == 1, status
    assert errors[0]["name"] == "train/shard-007.tar", errors
    assert "does not exist" in errors[0]["error"], errors
    assert keys_of(gateway, bucket) == sorted(f"train/{name}" for name in data)
    for name, body in data.items():
        assert read(gateway, bucket, f"train/{name}") == body, name
    assert gateway.client().head_object(Bucket=bucket, Key="train/shard-000.tar")["ContentType"] == \
        "application/x-tar"
    finished_names = {t["name"] for t in status.get("finished_tasks") or []}
    assert {f"train/{name}" for name in data} <= finished_names, status

    # A trailing slash on subdir is harmless; a step in the template.
    bucket2 = new_bucket_name()
    job2 = start_download(gateway, {"type": "range", "bucket": ais(bucket2), "subdir": "a/b/",
                                    "template": web.url("rng/shard-{000..008..4}.tar")})
    status2 = wait_done(gateway, job2)
    assert (status2["total"], status2["finished_cnt"], status2["error_cnt"]) == (3, 3, 0), status2
    assert keys_of(gateway, bucket2) == ["a/b/shard-000.tar", "a/b/shard-004.tar", "a/b/shard-008.tar"]


# ---------------------------------------------------------------------------------------------
# 3. multi
# ---------------------------------------------------------------------------------------------


def test_multi_as_list_and_as_map(gateway, web):
    a = web.put("multi/a.bin", random_bytes(5000, seed=201))
    sp = web.put("multi/my file.bin", random_bytes(6000, seed=202))
    c = web.put("multi/sub/c.bin", random_bytes(7000, seed=203))
    # List: object name = last path segment, percent-decoded, query dropped (directories flattened).
    bucket = new_bucket_name()
    job_id = start_download(gateway, {"type": "multi", "bucket": ais(bucket), "objects": [
        web.url("multi/a.bin?sig=abc&x=1"), web.url("multi/my%20file.bin"), web.url("multi/sub/c.bin")]})
    status = wait_done(gateway, job_id)
    check_tasks(status)
    assert (status["total"], status["finished_cnt"], status["error_cnt"]) == (3, 3, 0), status
    assert keys_of(gateway, bucket) == ["a.bin", "c.bin", "my file.bin"]
    assert read(gateway, bucket, "a.bin") == a
    assert read(gateway, bucket, "my file.bin") == sp
    assert read(gateway, bucket, "c.bin") == c

    # Map: name -> link.
    bucket2 = new_bucket_name()
    job2 = start_download(gateway, {"type": "multi", "bucket": ais(bucket2), "objects": {
        "x/renamed.bin": web.url("multi/a.bin"), "y.bin": web.url("multi/sub/c.bin"),
        "missing.bin": web.url("multi/none.bin")}})
    status2 = wait_done(gateway, job2)
    check_tasks(status2)
    assert (status2["total"], status2["finished_cnt"], status2["error_cnt"]) == (3, 2, 1), status2
    assert [e["name"] for e in status2.get("download_errors") or []] == ["missing.bin"], status2
    assert keys_of(gateway, bucket2) == ["x/renamed.bin", "y.bin"]
    assert read(gateway, bucket2, "x/renamed.bin") == a
    assert read(gateway, bucket2, "y.bin") == c


# ---------------------------------------------------------------------------------------------
# 4. list, remove, unknown ids, refusals
# ---------------------------------------------------------------------------------------------


def test_list_by_regex_and_remove(gateway, web):
    web.put("lst/one.bin", b"one")
    t = tag()
    bucket = new_bucket_name()
    alpha = start_download(gateway, {"type": "single", "bucket": ais(bucket), "link": web.url("lst/one.bin"),
                                     "description": f"{t} alpha"})
    beta = start_download(gateway, {"type": "single", "bucket": ais(bucket), "object_name": "two.bin",
                                    "link": web.url("lst/one.bin"), "description": f"{t} beta"})
    wait_done(gateway, alpha)
    wait_done(gateway, beta)

    def ids(jobs):
        return sorted(j["id"] for j in jobs)

    assert ids(dl_list(gateway, t)) == sorted([alpha, beta])
    only_alpha = dl_list(gateway, f"{t} al.*a$")
    assert ids(only_alpha) == [alpha]
    record = only_alpha[0]
    check_record(record)
    assert record["description"] == f"{t} alpha" and finished(record), record
    assert (record["total"], record["finished_cnt"], record["error_cnt"]) == (1, 1, 0), record
    assert not {"current_tasks", "finished_tasks", "download_errors"} & set(record), \
        f"a list record carries no task lists: {record}"
    everything = dl_list(gateway, "")
    assert {alpha, beta} <= set(ids(everything))
    for job in everything:
        check_record(job)
    r = native(gateway, "GET", "/v1/download", {})
    assert r.status_code == 200 and {alpha, beta} <= {j["id"] for j in r.json()}, describe(r)
    assert dl_list(gateway, f"{t}-no-such-description") == []

    # Remove a finished job: gone from status and list; a second remove is 404.
    r = dl_remove(gateway, alpha)
    assert r.status_code == 200, describe(r)
    r = dl_status_response(gateway, alpha)
    assert r.status_code == 404, describe(r)
    error_json(r)
    assert ids(dl_list(gateway, t)) == [beta]
    assert dl_remove(gateway, alpha).status_code == 404
    # Removing the job keeps what it downloaded.
    assert keys_of(gateway, bucket) == ["one.bin", "two.bin"]


def test_unknown_ids_and_empty_body(gateway):
    for r in (dl_status_response(gateway, "dnl-nosuchjob"), dl_abort(gateway, "dnl-nosuchjob"),
              dl_remove(gateway, "dnl-nosuchjob")):
        assert r.status_code == 404, describe(r)
        error_json(r)
    r = native(gateway, "GET", "/v1/download", None)  # no body at all
    assert r.status_code == 400, describe(r)
    error_json(r)


REFUSALS = {
    "missing type": lambda u, b: {"bucket": ais(b), "link": u("bad/x.bin")},
    "empty type": lambda u, b: {"type": "", "bucket": ais(b), "link": u("bad/x.bin")},
    "unknown type": lambda u, b: {"type": "torrent", "bucket": ais(b), "link": u("bad/x.bin")},
    "single without link": lambda u, b: {"type": "single", "bucket": ais(b), "object_name": "x.bin"},
    "range without template": lambda u, b: {"type": "range", "bucket": ais(b), "subdir": "s"},
    "range template without braces": lambda u, b: {"type": "range", "bucket": ais(b),
                                                   "template": u("bad/x-000.bin")},
    "multi objects a string": lambda u, b: {"type": "multi", "bucket": ais(b), "objects": u("bad/x.bin")},
    "multi objects a number": lambda u, b: {"type": "multi", "bucket": ais(b), "objects": 42},
    "negative connections": lambda u, b: {"type": "single", "bucket": ais(b), "link": u("bad/x.bin"),
                                          "limits": {"connections": -1, "bytes_per_hour": 0}},
    "negative bytes_per_hour": lambda u, b: {"type": "single", "bucket": ais(b), "link": u("bad/x.bin"),
                                             "limits": {"connections": 0, "bytes_per_hour": -5}},
    "backend on an ais bucket": lambda u, b: {"type": "backend", "bucket": ais(b), "prefix": ""},
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals(gateway, web, case):
    web.put("bad/x.bin", b"x")
    web.put("bad/x-000.bin", b"x")
    bucket = new_bucket_name()
    if case == "backend on an ais bucket":
        gateway.client().create_bucket(Bucket=bucket)  # an existing AIS bucket without a backend
    before = len(web.requests_under("bad/"))
    r = dl_post(gateway, {"timeout": "30s", **REFUSALS[case](web.url, bucket)})
    assert r.status_code == 400, describe(r)
    error_json(r)
    time.sleep(0.3)
    assert len(web.requests_under("bad/")) == before, "a refused request fetched nothing"


# ---------------------------------------------------------------------------------------------
# 5. abort, remove while running, resume
# ---------------------------------------------------------------------------------------------


def test_abort_and_resume(gateway, web):
    data = {f"slow-{i:03d}.bin": web.put(f"slow/slow-{i:03d}.bin", random_bytes(SLOW_SIZE, seed=300 + i), slow=True)
            for i in range(8)}
    bucket = new_bucket_name()
    body = {"type": "range", "bucket": ais(bucket), "template": web.url("slow/slow-{000..007}.bin"),
            "description": "slow range", "limits": {"connections": 1, "bytes_per_hour": 0}}
    first = start_download(gateway, body)
    running = wait_status(gateway, first, lambda s: s["finished_cnt"] >= 2)
    assert not finished(running) and running["error_cnt"] == 0, running
    check_record(running)
    check_tasks(running)
    r = dl_abort(gateway, first)
    assert r.status_code == 200, describe(r)
    aborted = wait_done(gateway, first, timeout=20)
    assert aborted["aborted"] is True, aborted
    assert not aborted.get("current_tasks"), aborted
    before = keys_of(gateway, bucket)
    assert 2 <= len(before) < 8, (before, aborted)
    for key in before:  # what was stored is whole
        assert read(gateway, bucket, key) == data[key], key

    # Remove while running: 400; abort it; then remove works and the job is gone.
    other = start_download(gateway, {**body, "bucket": ais(new_bucket_name()), "description": "slow range 2"})
    r = dl_remove(gateway, other)
    assert r.status_code == 400, describe(r)
    error_json(r)
    assert dl_status(gateway, other)["id"] == other
    assert dl_abort(gateway, other).status_code == 200
    assert wait_done(gateway, other, timeout=20)["aborted"] is True
    r = dl_remove(gateway, other)
    assert r.status_code == 200, describe(r)
    assert dl_status_response(gateway, other).status_code == 404

    # Resume = the same request again: a new job that skips what is already stored and unchanged.
    mark = len(web.log)
    second = start_download(gateway, body)
    assert second != first
    status = wait_done(gateway, second, timeout=JOB_TIMEOUT)
    check_tasks(status)
    assert not status["aborted"] and status["error_cnt"] == 0, status
    assert status["total"] == 8 and status["finished_cnt"] == 8, status
    assert status["skipped_cnt"] >= 2 and status["skipped_cnt"] == len(before), (before, status)
    assert keys_of(gateway, bucket) == sorted(data)
    for key, value in data.items():
        assert read(gateway, bucket, key) == value, key
    with web._lock:
        gets = {p for m, p in web.log[mark:] if m == "GET"}
    assert not gets & {f"/slow/{k}" for k in before}, f"skipped objects were downloaded again: {sorted(gets)}"


# ---------------------------------------------------------------------------------------------
# 6. SSRF guard
# ---------------------------------------------------------------------------------------------


def assert_refused(trove: Trove, body: dict, bucket: str, key: str) -> None:
    """Refused at the POST (400) or by the job (an error mentioning "not allowed"); the object never exists."""
    r = dl_post(trove, {"timeout": "30s", **body})
    if r.status_code == 200:
        status = wait_done(trove, r.json()["id"])
        assert status["error_cnt"] >= 1 and status["finished_cnt"] == 0, status
        errors = status.get("download_errors") or []
        assert errors and all("not allowed" in e["error"] for e in errors), status
    else:
        assert r.status_code == 400, describe(r)
        error_json(r)
    assert not object_exists(trove, bucket, key)


def test_loopback_links_refused_by_default(trove_factory, web):
    trove = trove_factory(env=dict(TROVE_ENV))  # no [download] section: allow_public only
    web.put("ssrf/secret.bin", b"internal")
    web.put("ssrf/s-0.bin", b"internal")
    bucket = new_bucket_name()
    assert_refused(trove, {"type": "single", "bucket": ais(bucket), "link": web.url("ssrf/secret.bin")},
                   bucket, "secret.bin")
    assert_refused(trove, {"type": "single", "bucket": ais(bucket), "object_name": "l.bin",
                           "link": web.url("ssrf/secret.bin", host="localhost")}, bucket, "l.bin")
    assert_refused(trove, {"type": "range", "bucket": ais(bucket), "template": web.url("ssrf/s-{0..0}.bin")},
                   bucket, "s-0.bin")
    assert_refused(trove, {"type": "multi", "bucket": ais(bucket),
                           "objects": {"m.bin": web.url("ssrf/secret.bin", host="localhost")}}, bucket, "m.bin")
    time.sleep(0.3)
    assert web.requests_under("ssrf/") == [], "the refused server must not see any request"


def test_redirect_to_a_host_not_allowed(gateway, web):
    web.put("redir/target.bin", b"behind the redirect")
    link = web.redirect("redir-1", web.url("redir/target.bin", host="localhost"))
    bucket = new_bucket_name()
    job_id = start_download(gateway, {"type": "single", "bucket": ais(bucket), "object_name": "r.bin",
                                      "link": link})
    status = wait_done(gateway, job_id)
    assert (status["finished_cnt"], status["error_cnt"]) == (0, 1), status
    errors = status.get("download_errors") or []
    assert [e["name"] for e in errors] == ["r.bin"] and "not allowed" in errors[0]["error"], status
    assert not object_exists(gateway, bucket, "r.bin")
    assert ("GET", "/redirect/redir-1") in web.log
    # A direct link to localhost is not listed in allow_hosts either.
    assert_refused(gateway, {"type": "single", "bucket": ais(bucket), "object_name": "l.bin",
                             "link": web.url("redir/target.bin", host="localhost")}, bucket, "l.bin")
    time.sleep(0.3)
    assert web.requests_under("redir/") == [], "the redirect target must never be requested"


# ---------------------------------------------------------------------------------------------
# 7. backend (a moto bucket)
# ---------------------------------------------------------------------------------------------


def test_backend_prefetch_from_a_moto_bucket(trove_factory, moto):
    trove = trove_factory(extra_config=backends_toml(moto), env=dict(TROVE_ENV))
    with fresh_origin(trove, moto) as origin:
        names = ["bk/a.bin", "bk/b.bin", "bk/sub/c.bin", "bk/d.txt", "other/e.bin"]
        data = put_objects(moto, origin, names, size=4000, seed=7)
        assert set(presences(trove, origin, names).values()) == {404}
        job_id = start_download(trove, {"type": "backend", "bucket": {"name": origin, "provider": "aws"},
                                        "prefix": "bk/", "suffix": ".bin", "description": "backend prefetch"})
        status = wait_done(trove, job_id)
        check_tasks(status)
        assert not status["aborted"] and status["error_cnt"] == 0, status
        assert status["finished_cnt"] == 3 and status["skipped_cnt"] == 0, status
        assert presences(trove, origin, names) == {
            "bk/a.bin": 200, "bk/b.bin": 200, "bk/sub/c.bin": 200, "bk/d.txt": 404, "other/e.bin": 404}
        bck = sdk(trove).bucket(origin, provider="aws")
        cached = {e.name for e in bck.list_all_objects(props="name,size,cached") if e.is_cached()}
        assert cached == {"bk/a.bin", "bk/b.bin", "bk/sub/c.bin"}
        assert read(trove, origin, "bk/sub/c.bin") == data["bk/sub/c.bin"]


def test_backend_synchronize_refetches_changed_and_drops_vanished(trove_factory, moto):
    """`synchronize`: a second backend download refetches what changed in the bucket, skips what did not, and
    drops cached copies of objects the bucket no longer has (the backend itself is never written)."""
    trove = trove_factory(extra_config=backends_toml(moto), env=dict(TROVE_ENV))
    with fresh_origin(trove, moto) as origin:
        names = ["s/a.bin", "s/b.bin", "s/c.bin"]
        put_objects(moto, origin, names, size=3000, seed=9)
        body = {"type": "backend", "bucket": {"name": origin, "provider": "aws"}, "prefix": "s/"}
        assert wait_done(trove, start_download(trove, body))["finished_cnt"] == 3
        changed = put_objects(moto, origin, ["s/b.bin"], size=1234, seed=10)["s/b.bin"]
        moto.delete_object(origin, "s/c.bin")
        status = wait_done(trove, start_download(trove, {**body, "synchronize": True}))
        assert status["error_cnt"] == 0 and not status["aborted"], status
        assert status["skipped_cnt"] == 1, status  # s/a.bin unchanged
        assert presences(trove, origin, names) == {"s/a.bin": 200, "s/b.bin": 200, "s/c.bin": 404}
        assert read(trove, origin, "s/b.bin") == changed
        assert sorted(moto.list_keys(origin)) == ["s/a.bin", "s/b.bin"]


# ---------------------------------------------------------------------------------------------
# 8. three nodes
# ---------------------------------------------------------------------------------------------


def test_range_on_three_nodes(trove_factory, web):
    t = trove_factory(cluster=3, env=dict(TROVE_ENV), extra_config=DOWNLOAD_CONFIG)
    data = {f"p-{i:02d}.bin": web.put(f"three/p-{i:02d}.bin", random_bytes(8000 + i, seed=400 + i))
            for i in range(30)}
    bucket = new_bucket_name()
    job_id = start_download(t, {"type": "range", "bucket": ais(bucket), "subdir": "d",
                                "template": web.url("three/p-{00..29}.bin"), "description": "three nodes"})
    status = wait_done(t, job_id)
    check_tasks(status)
    assert (status["total"], status["finished_cnt"], status["error_cnt"]) == (30, 30, 0), status
    assert len(status.get("finished_tasks") or []) == 30, status
    for endpoint in t.endpoints:
        r = requests.get(f"{endpoint}/v1/download", data=json.dumps({"id": job_id}), timeout=20,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"})
        assert r.status_code == 200, describe(r)
        agg = r.json()
        assert (agg["total"], agg["finished_cnt"], agg["error_cnt"]) == (30, 30, 0), (endpoint, agg)
        assert agg["finished_time"] != GO_ZERO_TIME, (endpoint, agg)
        s3 = s3_client(endpoint)
        for name, body in data.items():
            assert s3.get_object(Bucket=bucket, Key=f"d/{name}")["Body"].read() == body, (endpoint, name)
    gets = sorted(p for m, p in web.requests_under("three/") if m == "GET")
    assert gets == sorted(f"/three/{name}" for name in data), "each file fetched once, by its owner"


# ---------------------------------------------------------------------------------------------
# 9. CLI
# ---------------------------------------------------------------------------------------------


def test_cli_download(gateway, web, tmp_path):
    data = {f"f-{i}.bin": web.put(f"cli/f-{i}.bin", random_bytes(3000 + i, seed=500 + i)) for i in range(5)}
    bucket = new_bucket_name()
    cli_ok(trove_cli(gateway, "download", web.url("cli/f-{0..4}.bin"), f"ais://{bucket}/sub", "--wait",
                     "--max-conns", "2", "--timeout", "30s"))
    assert keys_of(gateway, bucket) == [f"sub/f-{i}.bin" for i in range(5)]
    for name, body in data.items():
        assert read(gateway, bucket, f"sub/{name}") == body

    # Without --wait: the job id on stdout; a single link into an object name; --desc.
    out = cli_ok(trove_cli(gateway, "download", web.url("cli/f-2.bin"), f"ais://{bucket}/one/renamed.bin",
                           "--desc", "cli single"))
    job_id = out.strip()
    assert re.fullmatch(r"dnl-[0-9A-Za-z_-]+", job_id), out
    status = wait_done(gateway, job_id)
    assert status["description"] == "cli single" and status["finished_cnt"] == 1, status
    assert read(gateway, bucket, "one/renamed.bin") == data["f-2.bin"]
    cli_ok(trove_cli(gateway, "job", "show", job_id))

    # --object-list: a JSON array of names, each fetched from SRC/NAME (a multi download); --limit-bph.
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["f-1.bin", "f-3.bin"]))
    listed = new_bucket_name()
    cli_ok(trove_cli(gateway, "download", web.url("cli"), f"ais://{listed}", "--object-list", str(names),
                     "--limit-bph", "1GiB", "--wait"))
    assert keys_of(gateway, listed) == ["f-1.bin", "f-3.bin"]
    assert read(gateway, listed, "f-3.bin") == data["f-3.bin"]

    # --wait with a failing link: non-zero exit.
    failed = trove_cli(gateway, "download", web.url("cli/missing-{0..1}.bin"), f"ais://{bucket}/bad", "--wait")
    assert failed.returncode != 0, failed

    # job stop on a running download.
    for i in range(3):
        web.put(f"cli/slow-{i}.bin", random_bytes(SLOW_SIZE, seed=600 + i), slow=True)
    out = cli_ok(trove_cli(gateway, "download", web.url("cli/slow-{0..2}.bin"), f"ais://{bucket}/slow",
                           "--max-conns", "1"))
    slow_id = out.strip()
    assert slow_id.startswith("dnl-"), out
    cli_ok(trove_cli(gateway, "job", "stop", slow_id))
    stopped = wait_done(gateway, slow_id, timeout=20)
    assert stopped["aborted"] is True, stopped
