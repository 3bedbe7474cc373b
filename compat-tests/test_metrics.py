"""A scripted workload, then one scrape of `/v1/metrics`: every counter shows what the workload did."""

from __future__ import annotations

from native_support import start_job, wait_job
from support import new_bucket_name, s3_error
from test_backends import attach, metrics_text, metric_sum, read, start_trove


def test_metrics_after_a_scripted_workload(trove_factory, moto):
    trove = start_trove(trove_factory, moto)
    s3 = trove.client()
    local = new_bucket_name()
    s3.create_bucket(Bucket=local)
    sizes = [1000, 2000, 3000]
    for i, n in enumerate(sizes):
        s3.put_object(Bucket=local, Key=f"k{i}", Body=b"x" * n)
    for i in range(2):
        s3.get_object(Bucket=local, Key=f"k{i}")["Body"].read()
    s3.head_object(Bucket=local, Key="k2")
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=local, Key="missing")

    origin = new_bucket_name()
    moto.create_bucket(origin)
    for i in range(4):
        moto.put_object(origin, f"c{i}", b"c" * 500)
    attach(trove, moto, origin)
    assert read(s3, origin, "c0") == b"c" * 500  # cold
    assert read(s3, origin, "c0") == b"c" * 500  # warm
    job = start_job(trove, origin, "prefetch-listrange", {"template": "c{1..3}"})
    wait_job(trove, job)

    text = metrics_text(trove)
    m = lambda name, **labels: metric_sum(text, name, **labels)  # noqa: E731
    assert m("trove_requests_total", op="PutObject", status="200") == 3
    assert m("trove_requests_total", op="GetObject", status="200") == 4  # 2 local + cold + warm
    assert m("trove_requests_total", op="GetObject", status="404") == 1
    assert m("trove_requests_total", op="HeadObject", status="200") == 1
    assert m("trove_requests_total", op="CreateBucket", status="200") == 1
    assert m("trove_request_duration_seconds_count", op="PutObject") == 3
    assert m("trove_request_duration_seconds_bucket", op="PutObject", le="+Inf") == 3
    assert m("trove_bytes_in_total") >= sum(sizes)
    assert m("trove_bytes_out_total") >= 1000 + 2000 + 2 * 500
    assert m("trove_cache_hits_total") == 1
    assert m("trove_cache_misses_total") == 1
    assert m("trove_cold_gets_total", provider="aws") == 4  # the cold GET + 3 prefetched
    assert m("trove_cold_get_bytes_total") == 4 * 500
    assert m("trove_backend_requests_total", provider="aws", op="get") == 4
    assert m("trove_objects") == 3 + 4
    assert m("trove_local_bytes") == sum(sizes)
    assert m("trove_cached_bytes") == 4 * 500
    assert m("trove_jobs", kind="prefetch-listrange", state="finished") == 1
    assert m("trove_job_objects") == 3
    assert m("trove_capacity_bytes") > 0 and m("trove_used_bytes") > 0
    assert m("trove_mountpath_capacity_bytes") > 0


def test_dashboard_uses_only_exported_metrics(trove_factory):
    import json
    import re

    from support import REPO_ROOT

    trove = trove_factory(env={"TROVE_ADMIN_TOKEN": "trove-backend-tests-admin-token-0123456789"})
    text = metrics_text(trove)
    exported = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    dashboard = json.loads((REPO_ROOT / "deploy" / "grafana" / "trove-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\btrove_\w+", e)}
    assert used and used <= exported, sorted(used - exported)
