#!/usr/bin/env bash
# Rebalance and repair benchmark on loopback, printing numbers (no assertions).
#
# 1. Throughput: node 1 alone holds OBJECTS objects of SIZE (PUT with `trove bench`); node 2 joins. Node 1's
#    rebalance hands about half of them over. Prints the bytes node 1 sent and the MB/s from its first to its
#    last send (sampled from `trove_rebalance_sent_bytes_total` every 50 ms).
# 2. Repair: three nodes, a bucket with `mirror.copies = 2`, REPAIR_OBJECTS objects of 4 KiB; one node is killed
#    with -9. Prints the time until the leader marked it down (`[rebalance] down_after_secs`, DOWN_AFTER here)
#    and the time from then until the two nodes left hold two copies of every object.
#
# Environment: TROVE_BIN (else a release build), OBJECTS [400], SIZE [1MiB], REPAIR_OBJECTS [10000],
# DOWN_AFTER [3], RATE [0 = unthrottled, bytes/s], PORT [19600].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OBJECTS=${OBJECTS:-400} SIZE=${SIZE:-1MiB} REPAIR_OBJECTS=${REPAIR_OBJECTS:-10000} DOWN_AFTER=${DOWN_AFTER:-3}
RATE=${RATE:-0} PORT=${PORT:-19600}
. scripts/trove-bin.sh
WORK=$(mktemp -d)
cleanup() {
  scripts/cluster.sh down --dir "$WORK/a" >/dev/null 2>&1 || true
  scripts/cluster.sh down --dir "$WORK/b" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export TROVE_ACCESS_KEY=BENCHACCESSKEY TROVE_SECRET_KEY=benchsecretkey TROVE_ADMIN_TOKEN=bench-admin-token-0123456789
export TROVE_REBALANCE__DOWN_AFTER_SECS=$DOWN_AFTER TROVE_REBALANCE__RATE_BYTES_PER_SEC=$RATE

# -- 1. throughput between two nodes --
scripts/cluster.sh up 1 --dir "$WORK/a" --port "$PORT" >/dev/null
first="http://127.0.0.1:$PORT"
"$TROVE_BIN" bench --endpoint "$first" --bucket moved --objects "$OBJECTS" --size "$SIZE" --concurrency 8 \
  --duration 0 >/dev/null
python3 - "$first" "$WORK/a" "$PORT" <<'PY' &
import sys, time, urllib.request
url = sys.argv[1]
def sent():
    text = urllib.request.urlopen(f"{url}/v1/metrics", timeout=5).read().decode()
    line = next(l for l in text.splitlines() if l.startswith("trove_rebalance_sent_bytes_total "))
    return int(float(line.split()[1]))
first_at, last, last_at = None, 0, None
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    now, b = time.monotonic(), sent()
    if b > last:
        if first_at is None:
            first_at = now - 0.025
        last, last_at = b, now
    elif last_at and now - last_at > 4:
        break
    time.sleep(0.05)
span = (last_at or 0) - (first_at or 0)
print(f"rebalance: node 1 sent {last / 1e6:.1f} MB in {span:.2f} s = {last / 1e6 / max(span, 1e-9):.0f} MB/s")
PY
watcher=$!
sleep 0.5
scripts/cluster.sh up 2 --dir "$WORK/a" --port "$PORT" >/dev/null
wait "$watcher"
scripts/cluster.sh down --dir "$WORK/a" >/dev/null

# -- 2. repair of mirrored copies after a node loss --
base=$((PORT + 10))
scripts/cluster.sh up 3 --dir "$WORK/b" --port "$base" >/dev/null
front="http://127.0.0.1:$base"
auth=(-H "Authorization: Bearer $TROVE_ADMIN_TOKEN")
curl -fsS "${auth[@]}" -X POST "$front/v1/buckets/mirrored" -d '{"action":"create-bck"}' >/dev/null
curl -fsS "${auth[@]}" -X PATCH "$front/v1/buckets/mirrored" \
  -d '{"action":"set-bprops","value":{"mirror":{"enabled":true,"copies":2}}}' >/dev/null
"$TROVE_BIN" bench --endpoint "$front" --bucket mirrored --objects "$REPAIR_OBJECTS" --size 4KiB --concurrency 16 \
  --duration 0 >/dev/null
victim_pid=$(cat "$WORK/b/node-3.pid")
python3 - "$base" "$REPAIR_OBJECTS" "$victim_pid" "$TROVE_ADMIN_TOKEN" <<'PY'
import json, os, signal, sys, time, urllib.request
base, n, pid, token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
live = [f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"]
def objects(url):
    text = urllib.request.urlopen(f"{url}/v1/metrics", timeout=5).read().decode()
    return int(float(next(l for l in text.splitlines() if l.startswith("trove_objects ")).split()[1]))
def states():
    req = urllib.request.Request(f"{live[0]}/v1/daemon?what=smap", headers={"Authorization": f"Bearer {token}"})
    smap = json.load(urllib.request.urlopen(req, timeout=5))
    return [s["trove"]["state"] for s in smap["tmap"].values()]
before = sum(objects(u) for u in live)
os.kill(pid, signal.SIGKILL)
t0 = time.monotonic()
while "down" not in states():
    time.sleep(0.05)
t_down = time.monotonic()
while sum(objects(u) for u in live) < 2 * n:
    if time.monotonic() - t_down > 900:
        sys.exit("repair did not finish within 15 minutes")
    time.sleep(0.05)
t_done = time.monotonic()
print(f"repair: {n} objects x 2 copies; {before} copies on the two survivors before, {2 * n} after; "
      f"marked down {t_down - t0:.1f} s after the kill, repaired {t_done - t_down:.1f} s later "
      f"({(2 * n - before) / max(t_done - t_down, 1e-9):.0f} copies/s)")
PY
