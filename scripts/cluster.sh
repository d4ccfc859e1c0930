#!/usr/bin/env bash
# Starts a local cluster: redis-server and three CollabServer nodes on 127.0.0.1 sharing one data
# directory, prints their URLs, and stops them all on Ctrl-C (SIGTERM first: each node drains).
#
#   npm run cluster                  # data in ./data-cluster, nodes on 5001-5003, Redis on 6390
#   DATA_DIR=/tmp/c BASE_PORT=7001 REDIS_PORT=7390 NODES=3 bash scripts/cluster.sh
#
# Nodes are started from the server's Release build (built first, quietly). Edits never pass
# through Redis: it only holds the node registry and each document's owner lease (docs/OPERATIONS.md, "Cluster").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${DATA_DIR:-./data-cluster}"
base="${BASE_PORT:-5001}"
redis_port="${REDIS_PORT:-6390}"
nodes="${NODES:-3}"

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install -y redis-server)" >&2; exit 1; }
dotnet build "$root/server/CollabServer" -c Release -nologo -v:q >/dev/null
dll="$root/server/CollabServer/bin/Release/net10.0/CollabServer.dll"
mkdir -p "$data"
# The nodes' runtime settings (the file systemd's EnvironmentFile= reads in a deployment).
set -a
# shellcheck source=/dev/null
. "$(dirname "$dll")/collab.env"
set +a

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  # One node at a time (each drains its documents to the ones still running), then Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "stopped."
}
trap stop INT TERM EXIT

# Each child in its own session: Ctrl-C reaches only this script, which stops them in order.
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
redis_pid=$!
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
pids=("$redis_pid")

for ((n = 1; n <= nodes; n++)); do
  port=$((base + n - 1))
  url="http://127.0.0.1:$port"
  setsid dotnet "$dll" --urls "$url" \
    --Collab:DataDir="$data" --Collab:Redis="127.0.0.1:$redis_port" \
    --Collab:NodeId="n$n" --Collab:NodeUrl="$url" &
  pids+=($!)
done
for ((n = 1; n <= nodes; n++)); do
  url="http://127.0.0.1:$((base + n - 1))"
  until curl -sf "$url/readyz" >/dev/null; do sleep 0.2; done
done

echo
echo "Cluster of $nodes nodes, data in $data, Redis on 127.0.0.1:$redis_port:"
for ((n = 1; n <= nodes; n++)); do
  echo "  n$n  http://127.0.0.1:$((base + n - 1))   (editor: http://127.0.0.1:$((base + n - 1))/d/welcome)"
done
echo "GET /api/cluster on any node lists them. Ctrl-C stops them all."
wait -n "${pids[@]}" || true
