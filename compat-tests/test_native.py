"""The AIS-compatible native API outside buckets: the cluster map (`what=smap`) and its auth."""

from __future__ import annotations

import requests

TOKEN = "native-test-admin-token"


def smap(trove, path: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{trove.endpoint}{path}", params={"what": "smap"}, headers=headers, timeout=10)


def test_cluster_map_is_stable_and_describes_the_node(trove_factory):
    trove = trove_factory(env={"TROVE_ADMIN_TOKEN": TOKEN})
    r = smap(trove, "/v1/daemon")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["uuid"] and m["version"] and m["creation_time"]
    assert smap(trove, "/v1/cluster").json() == m
    (node_id, target), = m["tmap"].items()
    assert target["daemon_type"] == "target" and target["daemon_id"] == node_id
    assert target["public_net"]["direct_url"] == trove.endpoint
    assert target["public_net"]["daemon_port"] == str(trove.port)
    assert m["proxy_si"]["daemon_type"] == "proxy" and node_id in m["pmap"]
    assert isinstance(target["id_digest"], int)

    trove.restart()
    again = smap(trove, "/v1/daemon").json()
    assert (again["uuid"], again["creation_time"]) == (m["uuid"], m["creation_time"]), "generated once, kept"

    assert smap(trove, "/v1/daemon", token=None).status_code == 401
    assert smap(trove, "/v1/daemon", token="wrong").status_code == 401
    bad = requests.get(f"{trove.endpoint}/v1/daemon", params={"what": "nonsense"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert bad.status_code == 400 and "message" in bad.json()
