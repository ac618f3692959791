#!/usr/bin/env bash
# `ava build` on a real two-node Ray cluster started on this machine, against the local engine.
#
#   PATH=.venv/bin:$PATH bash perf/ray_two_nodes.sh   # ~2 minutes; root (a private mount namespace)
#
# Node 1 is the head (`ray start --head`), node 2 joins it (`ray start --address`) from its own
# mount namespace, in which one folder ($WORK/private) is a private tmpfs: every other path is
# shared by both nodes, as on a cluster with a shared file system. Each node offers 1 CPU.
#   1. the local engine builds the 500 real US ads;
#   2. the Ray engine builds them on the cluster (--ray-address) into a shared folder: the outputs
#      must be byte-identical, and the shard tasks must have run on both nodes;
#   3. the Ray engine is asked to write into $WORK/private, which node 2 cannot see: the build
#      must be refused with a clear message and nothing written.
# The cluster's processes are found by its own temp folder and stopped by pid (never `ray stop`,
# which would stop every Ray instance on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$(dirname "$(command -v python)")}
ADS=${ADS:-../shared/data/ads/us-political-2020-sample.jsonl}
WORK=$(mktemp -d /tmp/ava-ray2-XXXXXX)
mkdir -p "$WORK/private" "$WORK/shared"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
free_port() { "$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
# Ray's token authentication, with a token of this cluster only (every node and the driver get it).
RAY_AUTH_TOKEN=$("$BIN/python" -c 'import secrets; print(secrets.token_hex(32))')
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN

stop_cluster() {
  kill "$NODE2" 2>/dev/null || true
  for pid in $(pgrep -f "$WORK/ray" || true); do kill "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in $(pgrep -f "$WORK/ray" || true); do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap stop_cluster EXIT

"$BIN/ray" start --head --port="$PORT" --num-cpus=1 --temp-dir="$WORK/ray" --include-dashboard=false \
  --dashboard-agent-listen-port="$(free_port)" --disable-usage-stats >"$WORK/head.log" 2>&1
unshare --mount --propagation private bash -c "mount -t tmpfs tmpfs '$WORK/private' && exec '$BIN/ray' start \
  --address=127.0.0.1:$PORT --num-cpus=1 --dashboard-agent-listen-port=$(free_port) --block" \
  >"$WORK/node2.log" 2>&1 &
NODE2=$!
for _ in $(seq 60); do
  n=$("$BIN/python" -c "import ray; ray.init(address='127.0.0.1:$PORT', logging_level='ERROR', log_to_driver=False)
print(sum(1 for x in ray.nodes() if x['Alive']))" 2>/dev/null || echo 0)
  [ "$n" = 2 ] && break
  sleep 2
done
echo "cluster: $n alive nodes at 127.0.0.1:$PORT"
[ "$n" = 2 ] || { echo "node 2 did not join (see $WORK/node2.log; KEEP=1 keeps it)"; exit 1; }

"$BIN/ava" build --ads "$ADS" --out "$WORK/local" --shards 4 --workers 1 2>"$WORK/local.log" | tail -1
"$BIN/ava" build --ads "$ADS" --out "$WORK/shared/ray" --shards 4 --workers 2 --engine ray \
  --ray-address "127.0.0.1:$PORT" 2>"$WORK/ray.log" | tail -1
grep "shard tasks" "$WORK/ray.log" | tail -1
# run.json is each build's run record (times, engine), not data: every other file must be the same bytes
if diff -r --exclude=run.json "$WORK/local" "$WORK/shared/ray" >/dev/null; then
  echo "local and 2-node Ray outputs: byte-identical ($(find "$WORK/local" -type f ! -name run.json | wc -l) files)"
else
  echo "local and 2-node Ray outputs DIFFER"; exit 1
fi
set +e
"$BIN/ava" build --ads "$ADS" --out "$WORK/private/out" --shards 4 --engine ray --ray-address "127.0.0.1:$PORT" \
  2>"$WORK/refused.log"
rc=$?
set -e
echo "unshared output: exit $rc: $(grep -v '^\s*$' "$WORK/refused.log" | tail -1)"
[ "$rc" = 2 ] && [ ! -e "$WORK/private/out" ] && echo "refused, nothing written"
