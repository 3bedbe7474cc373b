#!/usr/bin/env bash
# A local Trove cluster on loopback, for development and tests.
#
#   scripts/cluster.sh up N [--dir DIR] [--port BASE]   start N nodes (node 1 founds, the others join it)
#   scripts/cluster.sh status [--dir DIR]               the nodes and the cluster map
#   scripts/cluster.sh down [--dir DIR]                 stop the nodes it started (by PID)
#
# Node i listens on 127.0.0.1:BASE+i-1 (BASE defaults to 8080) with its data in DIR/node-i (DIR defaults to
# ./trove-cluster). The binary is $TROVE_BIN, else target/{release,debug}/trove (built when missing). The
# cluster secret is $TROVE_CLUSTER_SECRET or generated once into DIR/cluster-secret; the nodes share the
# credentials node 1 generated (DIR/node-1/.trove/secrets.json) unless TROVE_ACCESS_KEY etc. are set.
set -euo pipefail

cmd=${1:-}
shift || true
n=3
dir=./trove-cluster
base=8080
if [ "$cmd" = up ] && [ $# -gt 0 ] && [[ $1 != --* ]]; then
  n=$1
  shift
fi
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) base=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary() {
  if [ -n "${TROVE_BIN:-}" ]; then echo "$TROVE_BIN"; return; fi
  local target=${CARGO_TARGET_DIR:-$root/target}
  for b in "$target/release/trove" "$target/debug/trove"; do
    if [ -x "$b" ]; then echo "$b"; return; fi
  done
  (cd "$root" && cargo build --bin trove >&2)
  echo "$target/debug/trove"
}

wait_healthy() {
  local url=$1 i
  for i in $(seq 1 300); do
    if curl -fsS "$url/v1/health" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "node at $url did not become healthy; see its log" >&2
  return 1
}

case $cmd in
  up)
    bin=$(binary)
    mkdir -p "$dir"
    if [ -z "${TROVE_CLUSTER_SECRET:-}" ]; then
      if [ ! -s "$dir/cluster-secret" ]; then
        (umask 077; head -c 30 /dev/urandom | base64 | tr -d '/+=' > "$dir/cluster-secret")
      fi
      TROVE_CLUSTER_SECRET=$(cat "$dir/cluster-secret")
    fi
    export TROVE_CLUSTER_SECRET
    first="http://127.0.0.1:$base"
    for i in $(seq 1 "$n"); do
      port=$((base + i - 1))
      pidfile="$dir/node-$i.pid"
      if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "node $i already runs (pid $(cat "$pidfile"))"
        continue
      fi
      args=(serve --listen "127.0.0.1:$port" --mountpath "$dir/node-$i")
      if [ "$i" -gt 1 ]; then args+=(--join "$first"); fi
      nohup "$bin" "${args[@]}" >> "$dir/node-$i.log" 2>&1 < /dev/null &
      echo $! > "$pidfile"
      wait_healthy "http://127.0.0.1:$port"
      echo "node $i: http://127.0.0.1:$port (pid $(cat "$pidfile"), log $dir/node-$i.log)"
    done
    echo "credentials: $dir/node-1/.trove/secrets.json (shared by every node)"
    ;;
  status)
    for pidfile in "$dir"/node-*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then state=running; else state=stopped; fi
      echo "$(basename "$pidfile" .pid): pid $pid $state"
    done
    token=$(sed -n 's/.*"admin_token": *"\([^"]*\)".*/\1/p' "$dir/node-1/.trove/secrets.json" 2>/dev/null || true)
    TROVE_ENDPOINT="http://127.0.0.1:$base" TROVE_ADMIN_TOKEN="${TROVE_ADMIN_TOKEN:-$token}" "$(binary)" cluster show || true
    ;;
  down)
    for pidfile in "$dir"/node-*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
      fi
      rm -f "$pidfile"
      echo "stopped $(basename "$pidfile" .pid) (pid $pid)"
    done
    ;;
  *)
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
