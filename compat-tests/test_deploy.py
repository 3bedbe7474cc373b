"""The deploy files: Kubernetes manifests and the Helm chart checked offline against the Kubernetes schemas,
the Dockerfile against the tree, and the local cluster launcher (scripts/cluster.sh) starting and stopping a
real three-node cluster."""

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import requests
import yaml

from support import free_port, port_is_free, require_binary

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30"


def validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def render_chart(chart: Path, release: str = "trove", namespace: str = "default") -> list[dict]:
    """The chart's templates with its values substituted. The chart uses value substitution only (and
    `| quote`), which this renders as Helm does; anything else left in a template fails here."""
    values = yaml.safe_load((chart / "values.yaml").read_text())

    def lookup(path: str):
        v = values
        for part in path.split("."):
            v = v[part]
        return v

    def sub(m: re.Match) -> str:
        expr, quote = m.group(1).strip(), m.group(2) is not None
        if expr == ".Release.Name":
            v = release
        elif expr == ".Release.Namespace":
            v = namespace
        elif expr.startswith(".Values."):
            v = lookup(expr[len(".Values."):])
        else:
            raise AssertionError(f"template expression the chart must not use: {m.group(0)}")
        return json.dumps(str(v)) if quote else str(v)

    docs = []
    for t in sorted((chart / "templates").glob("*.yaml")):
        text = re.sub(r"\{\{\s*([^}|]+?)\s*(\|\s*quote\s*)?\}\}", sub, t.read_text())
        assert "{{" not in text, f"{t.name}: unrendered template code"
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def test_kubernetes_manifests_match_the_schemas():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "trove.yaml").read_text()) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["PodDisruptionBudget", "Secret", "Service", "Service", "StatefulSet"]
    for d in docs:
        validate(d)
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    spec = sts["spec"]["template"]["spec"]["containers"][0]
    assert spec["readinessProbe"]["httpGet"]["path"] == "/v1/health"
    assert any(a.startswith("--join=http://trove-0.") for a in spec["args"])
    # The check itself catches mistakes: a misspelt field fails.
    broken = copy.deepcopy(sts)
    broken["spec"]["replicaz"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_helm_chart_renders_to_valid_manifests():
    chart = DEPLOY / "helm" / "trove"
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "trove"
    docs = render_chart(chart, release="data")
    assert sorted(d["kind"] for d in docs) == ["PodDisruptionBudget", "Secret", "Service", "Service", "StatefulSet"]
    for d in docs:
        validate(d)
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--join=http://data-0.data-headless.$(POD_NAMESPACE).svc.cluster.local:8080" in args


def test_dockerfile_builds_from_the_tree():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM rust:1\.95", text, re.M), "the build stage uses the project's toolchain"
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in src.split():
            assert (REPO / path).exists(), f"COPY {path}: not in the tree"
    members = re.search(r"members = \[(.*?)\]", (REPO / "Cargo.toml").read_text(), re.S).group(1)
    for crate in re.findall(r'"([^"]+)"', members):
        assert f"COPY {crate} {crate}" in text, f"the workspace member {crate} is not copied"
    assert 'ENTRYPOINT ["trove", "serve"]' in text


def test_local_launcher_starts_and_stops_a_cluster(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_")}
    env["TROVE_BIN"] = str(require_binary())
    base = free_port()
    while any(not port_is_free(base + i) for i in range(3)):
        base = free_port()
    run = lambda *a: subprocess.run(["bash", str(REPO / "scripts" / "cluster.sh"), *a, "--dir", str(tmp_path)],  # noqa: E731
                                    env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    up = run("up", "3", "--port", str(base))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        token = json.loads((tmp_path / "node-1" / ".trove" / "secrets.json").read_text())["admin_token"]
        for i in range(3):
            r = requests.get(f"http://127.0.0.1:{base + i}/v1/daemon", params={"what": "smap"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert r.status_code == 200 and len(r.json()["tmap"]) == 3
        status = run("status", "--port", str(base))
        assert status.stdout.count("running") == 3, status.stdout + status.stderr
        assert "TOTAL" in status.stdout
    finally:
        down = run("down")
    assert down.returncode == 0 and down.stdout.count("stopped") == 3
    pids = [int(p) for p in re.findall(r"pid (\d+)", up.stdout)]
    assert pids and all(not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text()
                        for p in pids)

