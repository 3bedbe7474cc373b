"""The native API (`/v1/...`) refuses what it does not implement: every AIS query parameter, `ais-*` header and
action that would change what is returned or done, and that Trove does not implement, is answered with AIS's
error shape -- HTTP 400 and `{"message", "method", "url_path", "status": 400}` whose message names the
parameter, header or action -- instead of being silently ignored (`Object.copy()` used to overwrite the source
with an empty body). Features served since (archive access, GetBatch, bucket copies, the archive job) are tested
in test_archives.py and test_bucket_copy.py.

Pure hints (that change nothing observable) and everything the AIS SDK sends during the operations Trove
supports must keep working. The names come from the SDK's `sdk/const.py` (aistore 2.0.0), AIS's
`api/apc/query.go`, `api/apc/headers.go`, `api/apc/actmsg.go` and the wire reference, and from what the SDK was
seen to send (a logging proxy in front of Trove):
- REFUSED: one test id per name and route (`test_refused[...]`).
- ACCEPTED: hints sent raw (`test_hint_is_accepted[...]`), and the SDK's normal operations (`test_sdk_*`).
- The real SDK on refused features (`test_sdk_refused_*`), e.g. object copy and append.
- `test_list_flag_refused[...]`: LsoMsg flag bits Trove does not implement
  (inside the JSON value, not a query/header/action; deselect with `-k "not list_flag"` if the server leaves
  value fields alone).

HEAD answers have no body: a refused HEAD must be 400; if it carries AIS's `Hdr-Error` header (AIS puts the
JSON error there for HEAD), that JSON must name the parameter too.

One Trove and one moto for the module; refused writes target a fresh object and check it is unchanged.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import tarfile
import uuid
from dataclasses import dataclass

import pytest
import requests
from urllib3 import Retry

aistore = pytest.importorskip("aistore", reason="aistore missing: run compat-tests/setup.sh")
from tenacity import Retrying, stop_after_attempt  # noqa: E402  (a dependency of aistore)

from aistore.sdk import Client, ListObjectFlag  # noqa: E402
from aistore.sdk.blob_download_config import BlobDownloadConfig  # noqa: E402
from aistore.sdk.errors import AISError  # noqa: E402
from aistore.sdk.multiobj import ObjectRange  # noqa: E402
from aistore.sdk.retry_config import RetryConfig  # noqa: E402

from native_support import ADMIN_TOKEN, attach, describe, presence, put_objects, start_gateway  # noqa: E402
from support import delete_bucket_recursively, new_bucket_name, random_bytes, wait_until  # noqa: E402

JOB_TIMEOUT = 30


# ---------------------------------------------------------------------------------------------
# Module setup: one Trove with moto as its aws backend, an AIS-local bucket and an attached cloud bucket
# ---------------------------------------------------------------------------------------------


def no_retries() -> RetryConfig:
    return RetryConfig(
        http_retry=Retry(total=0, status_forcelist=(), respect_retry_after_header=False),
        network_retry=Retrying(stop=stop_after_attempt(1), reraise=True),
    )


def make_tar() -> bytes:
    """A small WebDataset-style shard: sample-0000.{jpg,cls}, sample-0001.{jpg,cls}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(2):
            for ext, payload in (("jpg", random_bytes(3000, seed=40 + i)), ("cls", str(i).encode())):
                info = tarfile.TarInfo(f"sample-{i:04d}.{ext}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@dataclass
class Env:
    trove: object
    moto: object
    s3: object
    client: Client
    ais: str  # AIS-local bucket (created with the native API)
    aws: str  # moto bucket attached under its own name
    obj: bytes  # content of ais/obj.bin
    tar: bytes  # content of ais/x.tar
    cold: bytes  # content of aws/cold.bin (in moto)


@pytest.fixture(scope="module")
def env(tmp_path_factory, moto) -> Env:
    trove = start_gateway(tmp_path_factory.mktemp("trove-refusals"), moto, timeout_secs=5, connect_timeout_secs=1,
                          max_attempts=1)
    s3 = trove.client()
    ais = new_bucket_name()
    r = raw(trove, "POST", f"/v1/buckets/{ais}", params=[("provider", "ais")], body={"action": "create-bck"})
    assert r.status_code == 200, describe(r)
    obj, tar = random_bytes(4096, seed=31), make_tar()
    s3.put_object(Bucket=ais, Key="obj.bin", Body=obj)
    s3.put_object(Bucket=ais, Key="x.tar", Body=tar)
    aws = new_bucket_name()
    moto.create_bucket(aws)
    cold = random_bytes(2048, seed=32)
    moto.put_object(aws, "cold.bin", cold)
    attach(trove, moto, aws)
    client = Client(trove.endpoint, token=ADMIN_TOKEN, timeout=(3, 30), retry_config=no_retries())
    yield Env(trove, moto, s3, client, ais, aws, obj, tar, cold)
    with contextlib.suppress(Exception):
        delete_bucket_recursively(s3, ais)
    with contextlib.suppress(Exception):
        raw(trove, "DELETE", f"/v1/buckets/{aws}", params=[("provider", "aws")], body={"action": "destroy-bck"})
    with contextlib.suppress(Exception):
        moto.delete_bucket(aws)
    trove.stop()


def raw(trove, method: str, path: str, *, params=(), headers=None, body=None, data: bytes | None = None,
        token: str | None = ADMIN_TOKEN) -> requests.Response:
    """One native request; `params` is a list of (name, value) pairs sent in that order, spelled as given."""
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    hdrs.update(headers or {})
    payload = data if data is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, trove.endpoint + path, params=list(params), headers=hdrs, data=payload,
                            timeout=30)


# ---------------------------------------------------------------------------------------------
# Cases. Route placeholders: {ais} / {aws} bucket names (the matching `provider` is added), {victim} a fresh
# object in {ais} (or {aws_victim} in {aws}, cached) that a refused write must leave unchanged.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    route: str
    params: tuple = ()
    headers: tuple = ()
    body: object = None
    data: bytes | None = None
    names: tuple = ()  # refused cases: the error message must contain one of these (case-insensitive)


def c(id_, method, route, *, params=(), headers=(), body=None, data=None, names=None):
    """A refused case; the name it must be refused for defaults to the part of the id after the colon."""
    return Case(id_, method, route, tuple(params), tuple(headers), body, data,
                tuple(names) if names else (id_.split(":", 1)[1],))


def h(id_, method, route, *, params=(), headers=(), body=None, data=None):
    """A hint: accepted."""
    return Case(id_, method, route, tuple(params), tuple(headers), body, data)


GET_TAR = "/v1/objects/{ais}/x.tar"
OBJ = "/v1/objects/{ais}/obj.bin"
VICTIM = "/v1/objects/{ais}/{victim}"
AWS_VICTIM = "/v1/objects/{aws}/{aws_victim}"
NS = ("namespace", "@#prod")  # a named (non-global) namespace

REFUSED: list[Case] = [
    # --- GET /v1/objects/B/O: inline ETL, namespaces (archive selection is served: test_archives.py)
    c("GET-obj:etl_name", "GET", GET_TAR, params=[("etl_name", "md5")]),
    c("GET-obj:etl_args", "GET", GET_TAR, params=[("etl_name", "md5"), ("etl_args", '{"a":1}')],
      names=["etl_args", "etl_name"]),
    c("GET-obj:etl_pipeline", "GET", GET_TAR, params=[("etl_name", "md5"), ("etl_pipeline", "md5,echo")],
      names=["etl_pipeline", "etl_name"]),
    c("GET-obj:namespace", "GET", GET_TAR, params=[NS]),
    # --- HEAD /v1/objects/B/O
    c("HEAD-obj:presence", "HEAD", OBJ, params=[("presence", "5")]),  # FltExistsOutside
    c("HEAD-obj:namespace", "HEAD", OBJ, params=[NS]),
    # --- PUT /v1/objects/B/O: copy, append, multipart part, append-to-archive, ETL, object attributes by header
    c("PUT-obj:object_to", "PUT", VICTIM, params=[("object_to", "ais/@#/{ais}/copy-dst"), ("latest-ver", "false"),
                                                  ("synchronize", "false")]),
    c("PUT-obj:append_type", "PUT", VICTIM, params=[("append_type", "append"), ("append_handle", "")],
      data=b"appended"),
    c("PUT-obj:append_handle", "PUT", VICTIM, params=[("append_type", "flush"), ("append_handle", "t1|w|0|0")],
      names=["append_handle", "append_type"]),
    c("PUT-obj:uploadId", "PUT", VICTIM, params=[("uploadId", "u-1"), ("partNumber", "1")], data=b"part-1",
      names=["uploadId", "partNumber"]),
    c("PUT-obj:partNumber", "PUT", VICTIM, params=[("partNumber", "2"), ("uploadId", "u-1")], data=b"part-2",
      names=["partNumber", "uploadId"]),
    c("PUT-obj:etl_name", "PUT", VICTIM, params=[("etl_name", "md5")], data=b"transformed?"),
    c("PUT-obj:namespace", "PUT", VICTIM, params=[NS], data=b"other namespace"),
    c("PUT-obj:Ais-Checksum-Type", "PUT", VICTIM, data=b"checked?",
      headers=[("Ais-Checksum-Type", "md5"), ("Ais-Checksum-Value", "0" * 32)],
      names=["Ais-Checksum-Type", "Ais-Checksum-Value"]),
    c("PUT-obj:Ais-Custom-Md", "PUT", VICTIM, headers=[("Ais-Custom-Md", "k=v")], data=b"with custom md"),
    c("PUT-obj:Ais-Version", "PUT", VICTIM, headers=[("Ais-Version", "7")], data=b"with version"),
    c("PUT-obj:Ais-Atime", "PUT", VICTIM, headers=[("Ais-Atime", "1700000000000000000")], data=b"with atime"),
    # --- DELETE /v1/objects/B/O: actions in the body
    c("DELETE-obj:mpt-abort", "DELETE", VICTIM, params=[("uploadId", "u-1")], body={"action": "mpt-abort"}),
    c("DELETE-obj:namespace", "DELETE", VICTIM, params=[NS]),
    # --- POST / PATCH /v1/objects/...: object actions Trove does not serve
    c("POST-obj:rename-obj", "POST", VICTIM, body={"action": "rename-obj", "name": "renamed-victim"}),
    c("POST-obj:mpt-upload", "POST", VICTIM, body={"action": "mpt-upload"}),
    c("POST-obj:mpt-complete", "POST", VICTIM, params=[("uploadId", "u-1")],
      body={"action": "mpt-complete", "value": [{"part-number": 1, "etag": ""}]}),
    c("POST-obj:check-lock", "POST", VICTIM, body={"action": "check-lock"}),
    c("POST-obj:promote", "POST", "/v1/objects/{ais}",
      body={"action": "promote", "name": "/tmp/promote-me", "value": {"source_path": "/tmp/promote-me"}}),
    c("POST-obj:blob-download", "POST", "/v1/objects/{aws}",
      body={"action": "blob-download", "name": "cold.bin", "value": {"latest-ver": False}}),
    c("PATCH-obj:set-new-custom", "PATCH", VICTIM, params=[("set-new-custom", "true")],
      body={"action": "", "value": {"k": "v"}}),
    # --- GET /v1/buckets (list buckets)
    c("GET-buckets:presence", "GET", "/v1/buckets", params=[("provider", "aws"), ("presence", "5")],
      body={"action": "list", "name": "", "value": None}),
    c("GET-buckets:namespace", "GET", "/v1/buckets", params=[("provider", "ais"), NS],
      body={"action": "list", "name": "", "value": None}),
    # --- GET /v1/buckets/B: list objects from an inventory, bucket summaries and inventories
    c("GET-bucket:Ais-Inv-Name", "GET", "/v1/buckets/{aws}", headers=[("Ais-Inv-Name", "inv1"),
                                                                      ("Accept", "application/msgpack")],
      body={"action": "list", "name": "", "value": {"prefix": "", "pagesize": 0, "uuid": "", "props": "",
                                                    "continuation_token": "", "flags": "0", "target": ""}}),
    c("GET-bucket:namespace", "GET", "/v1/buckets/{ais}", params=[NS],
      body={"action": "list", "name": "", "value": {"props": "name,size", "flags": "0"}}),
    c("GET-bucket:summary-bck", "GET", "/v1/buckets/{ais}",
      body={"action": "summary-bck", "name": "", "value": {"uuid": "", "prefix": "", "cached": True,
                                                            "present": True}}),
    c("GET-bucket:summary-shard", "GET", "/v1/buckets/{ais}",
      body={"action": "summary-shard", "name": "x.tar", "value": {}}),
    c("GET-bucket:show-inventory", "GET", "/v1/buckets/{aws}", body={"action": "show-inventory", "name": ""}),
    # --- HEAD /v1/buckets/B
    c("HEAD-bucket:bsumm_remote", "HEAD", "/v1/buckets/{ais}", params=[("presence", "0"), ("bsumm_remote", "True")]),
    c("HEAD-bucket:namespace", "HEAD", "/v1/buckets/{ais}", params=[NS]),
    # --- POST /v1/buckets/B: bucket and multi-object actions Trove does not implement
    *[c(f"POST-bucket:{a}", "POST", "/v1/buckets/{ais}", params=params, body={"action": a, "name": "", "value": v})
      for a, params, v in [
          ("move-bck", [("bck_to", "ais/@#/renamed-bucket/")], None),
          ("etl-bck", [("bck_to", "ais/@#/etl-bucket/")], {"id": "md5", "prefix": ""}),
          ("etl-listrange", [], {"objnames": ["obj.bin"], "id": "md5", "tobck": {"name": "dst", "provider": "ais"}}),
          ("make-n-copies", [], 2),
          ("ec-encode", [], {"data_slices": 1, "parity_slices": 1}),
          ("rechunk", [], {"objsize_limit": 1048576, "chunk_size": 1048576}),
          ("create-inventory", [], {"name": "inv1"}),
          ("index-shard", [], {}),
      ]],
    c("POST-bucket:namespace", "POST", "/v1/buckets/{newbucket}", params=[("provider", "ais"), NS],
      body={"action": "create-bck"}),
    # --- PATCH /v1/buckets/B
    c("PATCH-bucket:namespace", "PATCH", "/v1/buckets/{ais}", params=[NS],
      body={"action": "set-bprops", "value": {}}),
    # --- DELETE /v1/buckets/B
    c("DELETE-bucket:delete-listrange", "DELETE", "/v1/buckets/{aws}",
      body={"action": "delete-listrange", "name": "", "value": {"objnames": ["cold.bin"]}}),
    c("DELETE-bucket:destroy-inventory", "DELETE", "/v1/buckets/{aws}", body={"action": "destroy-inventory"}),
    c("DELETE-bucket:namespace", "DELETE", "/v1/buckets/{aws}", params=[NS],
      body={"action": "evict-listrange", "name": "", "value": {"objnames": ["nothing-here"]}}),
    # --- GET /v1/cluster and /v1/daemon: `what` values other than smap, the job queries and (cluster) remote
    *[c(f"GET-{p}:what={w}", "GET", f"/v1/{p}", params=[("what", w)], names=[w])
      for p in ("cluster", "daemon")
      for w in ("bmd", "config", "cluster_config", "backends", "node_stats", "node_status", "software_version",
                "disk", "metrics", "mountpaths", "remote", "smapvote", "sysinfo", "target_ips", "log", "getxstats",
                "snode", "ic_bundle", "tls_certificate")
      if (p, w) != ("cluster", "remote")],
    # --- PUT /v1/cluster: cluster actions other than stop and the node membership ones (test_cluster.py)
    *[c(f"PUT-cluster:{a}", "PUT", "/v1/cluster", body={"action": a, "name": "", "value": v})
      for a, v in [
          ("start", {"ID": "", "Kind": "lru", "DaemonID": "", "Bck": None, "Buckets": None}),
          ("set-config", {"log.level": "4"}), ("reset-config", None), ("rotate-logs", None),
          ("shutdown", None), ("decommission", {"rm_user_data": False}),
          ("shutdown-node", {"sid": "t1"}),
          ("reset-stats", None), ("clear-lcache", None), ("reload-creds", None), ("bump-metasync", None),
          ("attach", {"alias": "rem", "url": "http://127.0.0.1:1"}), ("detach", {"alias": "rem"}),
          ("enable-bend", {"name": "aws"}), ("disable-bend", {"name": "aws"}),
      ]],
    # --- PUT /v1/daemon: node actions
    *[c(f"PUT-daemon:{a}", "PUT", "/v1/daemon", body={"action": a, "name": "", "value": v})
      for a, v in [
          ("set-config", {"log.level": "4"}), ("reset-config", None), ("rotate-logs", None), ("reset-stats", None),
          ("clear-lcache", None), ("attach-mp", "/tmp/mp"), ("enable-mp", "/tmp/mp"), ("detach-mp", "/tmp/mp"),
          ("disable-mp", "/tmp/mp"), ("rescan-mp", "/tmp/mp"), ("fshc-mp", "/tmp/mp"), ("shutdown-node", None),
      ]],
    # --- GET /v1/health: node-state JSON
    c("GET-health:cii", "GET", "/v1/health", params=[("cii", "true")]),
    c("GET-health:cii-apr", "GET", "/v1/health", params=[("cii-apr", "true")]),
]

# Hints and SDK habits that change nothing Trove must honour: accepted (2xx) before and after the change.
HINTS: list[Case] = [
    h("GET-obj:provider", "GET", OBJ),  # `provider` alone: the baseline
    h("GET-obj:namespace-empty", "GET", OBJ, params=[("namespace", "")]),
    h("GET-obj:namespace-global", "GET", OBJ, params=[("namespace", "@#")]),
    h("GET-obj:archpath-empty", "GET", OBJ, params=[("archpath", ""), ("archregx", "")]),
    h("GET-obj:latest-ver", "GET", OBJ, params=[("latest-ver", "true")]),
    h("GET-obj:sln", "GET", OBJ, params=[("sln", "true")]),
    h("GET-obj:Range", "GET", OBJ, headers=[("Range", "bytes=0-9")]),
    h("GET-obj:Ais-Blob-Download", "GET", "/v1/objects/{aws}/cold.bin",
      headers=[("Ais-Blob-Download", "true"), ("Ais-Blob-Chunk", "1MiB"), ("Ais-Blob-Workers", "2")]),
    h("HEAD-obj:props", "HEAD", OBJ, params=[("props", "checksum,atime,version,copies,custom,location")]),
    h("HEAD-obj:props-chunked", "HEAD", OBJ, params=[("props", "chunked")]),
    h("HEAD-obj:presence-0", "HEAD", OBJ, params=[("presence", "0"), ("props", "size")]),
    h("HEAD-obj:presence-1", "HEAD", OBJ, params=[("presence", "1")]),
    h("HEAD-obj:presence-2", "HEAD", OBJ, params=[("presence", "2"), ("props", "size")]),
    h("HEAD-obj:sln", "HEAD", OBJ, params=[("sln", "true")]),
    h("PUT-obj:skip_vc", "PUT", VICTIM, params=[("skip_vc", "true")], data=b"new content"),
    h("PUT-obj:namespace-global", "PUT", VICTIM, params=[("namespace", "@#")], data=b"new content"),
    h("GET-buckets:provider-empty", "GET", "/v1/buckets", params=[("provider", "")],
      body={"action": "list", "name": "", "value": None}),
    h("GET-buckets:presence-2", "GET", "/v1/buckets", params=[("provider", "aws"), ("presence", "2")],
      body={"action": "list", "name": "", "value": None}),
    h("HEAD-bucket:dont_add_remote_bck_md", "HEAD", "/v1/buckets/{aws}",
      params=[("dont_add_remote_bck_md", "true")]),
    h("HEAD-bucket:presence-2", "HEAD", "/v1/buckets/{aws}", params=[("presence", "2")]),
    h("GET-bucket:list-props-target", "GET", "/v1/buckets/{aws}", headers=[("Accept", "application/msgpack")],
      body={"action": "list", "name": "", "value": {"prefix": "", "pagesize": 0, "uuid": "",
                                                    "props": "name,size,checksum,atime,version,cached,copies",
                                                    "continuation_token": "", "flags": "0", "target": ""}}),
    h("GET-cluster:status_all-frc", "GET", "/v1/cluster", params=[("what", "status_all"), ("frc", "true")],
      body={"kind": "", "node": "", "show_active": False}),
    h("GET-daemon:smap", "GET", "/v1/daemon", params=[("what", "smap")]),
    h("GET-health:prr", "GET", "/v1/health", params=[("prr", "true")]),
    h("GET-health:readiness", "GET", "/v1/health", params=[("readiness", "true")]),
    h("GET-health:apr", "GET", "/v1/health", params=[("apr", "true")]),
]

# LsoMsg flag bits Trove does not implement (value-level; see the module docstring).
LIST_FLAGS = {"LsNotCached": 512, "LsNoRecursion": 2048, "LsDiff": 4096, "LsNBI": 32768}


@dataclass
class Resolved:
    path: str
    params: list
    victim: str | None = None
    aws_victim: str | None = None
    newbucket: str | None = None


def resolve(env: Env, case: Case) -> Resolved:
    """Fill the placeholders; create the victim object if the route needs one; add the bucket's provider."""
    victim = f"victim-{uuid.uuid4().hex[:12]}" if "{victim}" in case.route else None
    aws_victim = f"victim-{uuid.uuid4().hex[:12]}" if "{aws_victim}" in case.route else None
    newbucket = new_bucket_name() if "{newbucket}" in case.route else None
    subst = {"ais": env.ais, "aws": env.aws, "victim": victim or "", "aws_victim": aws_victim or "",
             "newbucket": newbucket or ""}
    path = case.route.format(**subst)
    params = []
    for k, v in case.params:
        for name, value in subst.items():
            v = v.replace("{" + name + "}", value)
        params.append((k, v))
    if "provider" not in dict(params):
        if "{aws}" in case.route:
            params.insert(0, ("provider", "aws"))
        elif "{ais}" in case.route:
            params.insert(0, ("provider", "ais"))
    if victim:
        env.s3.put_object(Bucket=env.ais, Key=victim, Body=b"victim content " + victim.encode())
    if aws_victim:
        env.moto.put_object(env.aws, aws_victim, b"victim content " + aws_victim.encode())
        assert env.s3.get_object(Bucket=env.aws, Key=aws_victim)["Body"].read()  # cold GET: cached now
        assert wait_until(lambda: presence(env.trove, env.aws, aws_victim) == 200, timeout=10)
    return Resolved(path, params, victim, aws_victim, newbucket)


def send(env: Env, case: Case, res: Resolved) -> requests.Response:
    body = case.body
    if body is not None:
        body = json.loads(json.dumps(body).replace("{ais}", env.ais))
    return raw(env.trove, case.method, res.path, params=res.params, headers=dict(case.headers), body=body,
               data=case.data)


def error_message(r: requests.Response, method: str, path: str) -> str | None:
    """The AIS error's message (None for a HEAD answer without `Hdr-Error`), after checking the error shape."""
    if method == "HEAD":
        carried = r.headers.get("Hdr-Error")
        if not carried:
            return None
        body = json.loads(carried)
    else:
        assert r.headers.get("Content-Type", "").startswith("application/json"), describe(r)
        try:
            body = r.json()
        except ValueError:
            raise AssertionError(f"error body is not JSON: {describe(r)}") from None
    assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], describe(r)
    assert body.get("status") == 400, f"status field: {describe(r)}"
    assert body.get("method") == method, f"method field: {describe(r)}"
    assert body.get("url_path") == path, f"url_path field: {describe(r)}"
    return body["message"]


@pytest.mark.parametrize("case", REFUSED, ids=[k.id for k in REFUSED])
def test_refused(env, case):
    assert case.names, case.id
    res = resolve(env, case)
    try:
        r = send(env, case, res)
        assert r.status_code == 400, f"{case.id}: expected 400 naming {case.names}: {describe(r)}"
        message = error_message(r, case.method, res.path)
        if message is not None:
            assert any(n.lower() in message.lower() for n in case.names), \
                f"{case.id}: the message must name one of {case.names}: {message!r}"
        # A refused call did nothing.
        if res.victim:
            got = env.s3.get_object(Bucket=env.ais, Key=res.victim)["Body"].read()
            assert got == b"victim content " + res.victim.encode(), f"{case.id}: the object changed: {got[:60]!r}"
            keys = {o["Key"] for o in env.s3.list_objects_v2(Bucket=env.ais).get("Contents", [])}
            assert not keys & {"copy-dst", "renamed-victim"}, f"{case.id}: {keys}"
        if res.aws_victim:
            assert env.moto.get_object(env.aws, res.aws_victim), f"{case.id}: deleted at the backend"
            assert presence(env.trove, env.aws, res.aws_victim) == 200, f"{case.id}: the cached copy went"
        if case.id.startswith("DELETE-bucket"):
            assert env.moto.get_object(env.aws, "cold.bin") == env.cold, f"{case.id}: deleted at the backend"
    finally:
        if res.victim:
            with contextlib.suppress(Exception):
                env.s3.delete_object(Bucket=env.ais, Key=res.victim)
        if res.aws_victim:
            with contextlib.suppress(Exception):
                env.moto.delete_object(env.aws, res.aws_victim)
        if res.newbucket:
            with contextlib.suppress(Exception):
                delete_bucket_recursively(env.s3, res.newbucket)


@pytest.mark.parametrize("case", HINTS, ids=[k.id for k in HINTS])
def test_hint_is_accepted(env, case):
    res = resolve(env, case)
    try:
        r = send(env, case, res)
        assert 200 <= r.status_code < 300, f"{case.id}: a hint must not be refused: {describe(r)}"
        if case.method == "GET" and case.route == OBJ:
            want = env.obj[:10] if case.headers else env.obj
            assert r.content == want, f"{case.id}: wrong body"
        if case.method == "PUT" and res.victim:
            assert env.s3.get_object(Bucket=env.ais, Key=res.victim)["Body"].read() == case.data
    finally:
        if res.victim:
            with contextlib.suppress(Exception):
                env.s3.delete_object(Bucket=env.ais, Key=res.victim)


@pytest.mark.parametrize("flag", list(LIST_FLAGS), ids=[f"list_flag-{f}" for f in LIST_FLAGS])
def test_list_flag_refused(env, flag):
    value = {"prefix": "", "pagesize": 0, "uuid": "", "props": "name,size", "continuation_token": "",
             "flags": str(LIST_FLAGS[flag]), "target": ""}
    path = f"/v1/buckets/{env.aws}"
    r = raw(env.trove, "GET", path, params=[("provider", "aws")], headers={"Accept": "application/msgpack"},
            body={"action": "list", "name": "", "value": value})
    assert r.status_code == 400, f"{flag}: expected 400: {describe(r)}"
    message = error_message(r, "GET", path)
    assert "flag" in message.lower() or flag.lower() in message.lower(), message


# ---------------------------------------------------------------------------------------------
# The real SDK on refused features
# ---------------------------------------------------------------------------------------------


def sdk_refused(call, *names: str) -> AISError:
    with pytest.raises(AISError) as e:
        result = call()
        if hasattr(result, "read_all"):
            result.read_all()
    assert e.value.status_code == 400, e.value
    assert any(n.lower() in e.value.message.lower() for n in names), e.value.message
    return e.value


def test_sdk_refused_object_copy(env):
    bck = env.client.bucket(env.ais)
    src = f"copy-src-{uuid.uuid4().hex[:8]}"
    bck.object(src).get_writer().put_content(b"source")
    sdk_refused(lambda: bck.object(src).copy(bck.object(src + "-dst")), "object_to")
    assert bck.object(src).get_reader().read_all() == b"source", "copy must not overwrite its source"
    env.s3.delete_object(Bucket=env.ais, Key=src)


def test_sdk_refused_append(env):
    bck = env.client.bucket(env.ais)
    name = f"append-{uuid.uuid4().hex[:8]}"
    bck.object(name).get_writer().put_content(b"start")
    sdk_refused(lambda: bck.object(name).get_writer().append_content(b"more"), "append_type", "append_handle")
    assert bck.object(name).get_reader().read_all() == b"start"
    env.s3.delete_object(Bucket=env.ais, Key=name)


# ---------------------------------------------------------------------------------------------
# The SDK's normal operations (what test_ais_sdk.py exercises) still work
# ---------------------------------------------------------------------------------------------


def test_single_object_evict_is_implemented(env):
    """`DELETE /v1/objects/B/O` with `{"action":"evict-listrange"}` (AIS's `api.EvictObject`) drops the cached
    copy and keeps the object at the backend -- never a delete at the backend, never a silent 200 that does
    something else."""
    key = f"evict-one-{uuid.uuid4().hex[:8]}"
    env.moto.put_object(env.aws, key, b"stays in the cloud")
    assert env.s3.get_object(Bucket=env.aws, Key=key)["Body"].read() == b"stays in the cloud"
    assert wait_until(lambda: presence(env.trove, env.aws, key) == 200, timeout=10)
    r = raw(env.trove, "DELETE", f"/v1/objects/{env.aws}/{key}", params=[("provider", "aws")],
            body={"action": "evict-listrange"})
    assert r.status_code == 200, describe(r)
    assert presence(env.trove, env.aws, key) == 404, "the cached copy must be gone"
    assert env.moto.get_object(env.aws, key) == b"stays in the cloud", "the backend keeps the object"


def test_sdk_cluster_and_list_buckets(env):
    Client(env.trove.endpoint, token=ADMIN_TOKEN).cluster().list_buckets(provider="")  # SDK defaults
    cluster = env.client.cluster()
    assert cluster.get_uuid()
    assert env.aws in {b.name for b in cluster.list_buckets(provider="aws")}
    assert env.ais in {b.name for b in cluster.list_buckets()}
    assert {env.ais, env.aws} <= {b.name for b in cluster.list_buckets(provider="")}
    assert cluster.is_ready()  # GET /v1/health?prr=true
    assert isinstance(cluster.list_running_jobs(), list)
    assert isinstance(cluster.list_jobs_status(), list)
    assert env.client.bucket(env.aws, provider="aws").head() is not None


def test_sdk_list_objects(env):
    bck = env.client.bucket(env.aws, provider="aws")
    names = [f"lst/{i}.bin" for i in range(4)]
    data = put_objects(env.moto, env.aws, names, size=256, seed=33)
    try:
        entries = bck.list_all_objects(prefix="lst/", props="name,size,cached")
        assert {e.name: e.size for e in entries} == {n: len(b) for n, b in data.items()}
        first = bck.list_objects(prefix="lst/", props="name,size", page_size=2)
        assert len(first.entries) == 2 and first.continuation_token
        it = list(itertools.islice(bck.list_objects_iter(prefix="lst/", props="name,size", page_size=3), 20))
        assert sorted(e.name for e in it) == names
        assert sorted(o.name for o in itertools.islice(bck.list_all_objects_iter(prefix="lst/"), 20)) == names
        assert bck.object(names[0]).get_reader().read_all() == data[names[0]]
        assert wait_until(lambda: presence(env.trove, env.aws, names[0]) == 200, timeout=10)
        cached = bck.list_all_objects(prefix="lst/", props="name,size", flags=[ListObjectFlag.CACHED])
        assert [e.name for e in cached] == [names[0]]
        assert {e.name for e in env.client.bucket(env.ais).list_all_objects()} >= {"obj.bin", "x.tar"}
    finally:
        for n in names:
            with contextlib.suppress(Exception):
                env.s3.delete_object(Bucket=env.aws, Key=n)


def test_sdk_objects(env):
    aws = env.client.bucket(env.aws, provider="aws")
    cold = aws.object("cold.bin")
    assert cold.get_reader().read_all() == env.cold
    assert b"".join(cold.get_reader(chunk_size=512)) == env.cold
    assert cold.get_reader(byte_range="bytes=10-19").read_all() == env.cold[10:20]
    assert cold.get_reader(latest=True).read_all() == env.cold
    with cold.get_reader(num_workers=2).read_all() as parallel:  # HEAD ?props=chunked, then ranged GETs
        assert parallel.tobytes() == env.cold
    assert cold.get_reader(direct=True).read_all() == env.cold  # smap, then straight to the "target"
    assert cold.get_reader(blob_download_config=BlobDownloadConfig(chunk_size="1MiB", num_workers="2")) \
        .read_all() == env.cold  # Ais-Blob-* headers: how to fetch, not what
    assert cold.head().size == len(env.cold)
    assert cold.props.size == len(env.cold)

    ais = env.client.bucket(env.ais)
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    ais.object(name).get_writer().put_content(b"sdk body")
    assert ais.object(name).get_reader().read_all() == b"sdk body"
    assert ais.object(name).head().size == 8
    ais.object(name).delete()
    with pytest.raises(AISError) as e:
        ais.object(name).head()
    assert e.value.status_code == 404


def test_sdk_ais_bucket_lifecycle(env):
    bck = env.client.bucket(new_bucket_name())
    bck.create()
    try:
        bck.object("k").get_writer().put_content(b"v")
        assert [e.name for e in bck.list_all_objects()] == ["k"]
        assert bck.head() is not None
    finally:
        bck.delete()


def test_sdk_prefetch_and_evict(env):
    client = env.client
    bck = client.bucket(env.aws, provider="aws")
    names = [f"pf-{i:02d}.bin" for i in range(6)]
    put_objects(env.moto, env.aws, names, size=256, seed=34)
    try:
        for job in (
            bck.objects(obj_names=names[:2]).prefetch(),
            bck.objects(obj_template="pf-{02..03}.bin").prefetch(latest=True, blob_threshold=2 * 1048576),
            bck.objects(obj_range=ObjectRange("pf-", 4, 5, pad_width=2, suffix=".bin")).prefetch(
                continue_on_error=True, num_workers=2),
        ):
            assert client.job(job).wait(timeout=JOB_TIMEOUT, verbose=False).success
        assert client.job(job).status().end_time > 0
        assert any(s.id == job for s in client.job(job).get_details().list_snapshots())
        assert all(presence(env.trove, env.aws, n) == 200 for n in names)
        job = bck.objects(obj_template="pf-{00..02}.bin").evict()
        assert client.job(job, job_kind="evict-listrange").wait(timeout=JOB_TIMEOUT, verbose=False).success
        job = bck.objects(obj_names=["pf-03.bin"]).evict()
        assert client.job(job).wait(timeout=JOB_TIMEOUT, verbose=False).success
        assert [presence(env.trove, env.aws, n) for n in names] == [404] * 4 + [200] * 2
        bck.evict(keep_md=True)  # DELETE ?keep_bck_md=True {"action": "evict-remote-bck"}
        assert all(presence(env.trove, env.aws, n) == 404 for n in names)
        assert env.aws in {b.name for b in client.cluster().list_buckets(provider="aws")}
    finally:
        for n in names:
            with contextlib.suppress(Exception):
                env.moto.delete_object(env.aws, n)
