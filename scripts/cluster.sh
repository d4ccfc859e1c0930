#!/usr/bin/env bash
# Starts a local cluster: PostgreSQL (the durable tier), redis-server (routing) and three
# CollabServer nodes on 127.0.0.1, each node with a data directory of its own as on a machine of
# its own; prints their URLs, and stops them all on Ctrl-C (SIGTERM first: each node drains).
#
#   npm run cluster                  # data in ./data-cluster, nodes on 5001-5003, Redis on 6390, PostgreSQL on 5490
#   DATA_DIR=/tmp/c BASE_PORT=7001 REDIS_PORT=7390 PG_PORT=7490 NODES=3 bash scripts/cluster.sh
#
# Nodes are started from the server's Release build (built first, quietly). Every acknowledged
# edit is in PostgreSQL (kept in DATA_DIR/postgres across runs); edits never pass through Redis,
# which only holds the node registry and each document's owner lease (docs/OPERATIONS.md, "Cluster").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${DATA_DIR:-./data-cluster}"
base="${BASE_PORT:-5001}"
redis_port="${REDIS_PORT:-6390}"
pg_port="${PG_PORT:-5490}"
nodes="${NODES:-3}"

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install -y redis-server)" >&2; exit 1; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pg_bin/postgres" ] || { echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2; exit 1; }
dotnet build "$root/server/CollabServer" -c Release -nologo -v:q >/dev/null
dll="$root/server/CollabServer/bin/Release/net10.0/CollabServer.dll"
mkdir -p "$data"
data="$(cd "$data" && pwd)"
# The nodes' runtime settings (the file systemd's EnvironmentFile= reads in a deployment).
set -a
# shellcheck source=/dev/null
. "$(dirname "$dll")/collab.env"
set +a

# PostgreSQL refuses to run as root: then it runs as the postgres user, in a folder it owns.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
pg="$data/postgres"
if [ ! -f "$pg/db/PG_VERSION" ]; then
  mkdir -p "$pg/db"
  chmod 755 "$data" "$pg"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$pg"; fi
  chmod 700 "$pg/db"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg/db" -U collab --auth=trust -E UTF8 >/dev/null
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping..."
  # One node at a time (each drains its documents to the ones still running), then Redis, then PostgreSQL (SIGTERM: a smart shutdown).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "stopped."
}
trap stop INT TERM EXIT

# Each child in its own session: Ctrl-C reaches only this script, which stops them in order.
setsid "${as_pg[@]}" "$pg_bin/postgres" -D "$pg/db" -p "$pg_port" -k "$pg" -c listen_addresses=127.0.0.1 >"$pg/postgres.log" 2>&1 &
pg_pid=$!
until "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; do sleep 0.2; done
"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U collab -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'collab'" | grep -q 1 \
  || "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U collab collab
pids=("$pg_pid")
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
redis_pid=$!
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
pids+=("$redis_pid")

for ((n = 1; n <= nodes; n++)); do
  port=$((base + n - 1))
  url="http://127.0.0.1:$port"
  setsid dotnet "$dll" --urls "$url" \
    --Collab:DataDir="$data/n$n" --Collab:Redis="127.0.0.1:$redis_port" \
    --Collab:Postgres="Host=127.0.0.1;Port=$pg_port;Username=collab;Database=collab" \
    --Collab:NodeId="n$n" --Collab:NodeUrl="$url" &
  pids+=($!)
done
for ((n = 1; n <= nodes; n++)); do
  url="http://127.0.0.1:$((base + n - 1))"
  until curl -sf "$url/readyz" >/dev/null; do sleep 0.2; done
done

echo
echo "Cluster of $nodes nodes (data in $data/n1..n$nodes), PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port:"
for ((n = 1; n <= nodes; n++)); do
  echo "  n$n  http://127.0.0.1:$((base + n - 1))   (editor: http://127.0.0.1:$((base + n - 1))/d/welcome)"
done
echo "GET /api/cluster on any node lists them. Ctrl-C stops them all."
wait -n "${pids[@]}" || true
