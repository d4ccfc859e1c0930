#!/usr/bin/env bash
# Runs every test suite of the repository: the .NET suites (xunit: OT laws, server, client,
# browser) and the TypeScript unit tests (node --test). Ends with one line "N passed, N failed"
# summed over all of them, so a run that executed nothing is visible.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tests/prereqs.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund || exit 1
fi

# One build, then every suite against it. Test projects run one after another: the machine has
# two cores, and the browser and load tests need them.
dotnet build CollabServer.sln -nologo -v:q -m:1 || exit 1
dotnet test CollabServer.sln --no-build -nologo -m:1 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

npm run -s test:ts 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

# The failures again, by name, just above the total: a long log's tail is often all one sees.
grep -E -A5 '^\s+Failed [A-Za-z_]' "$log" | cut -c1-300 || true
grep -E '^\s*not ok ' "$log" || true

awk '
  /^(Passed|Failed)! /{for(i=1;i<=NF;i++){if($i=="Failed:")f+=$(i+1);if($i=="Passed:")p+=$(i+1)}}
  /^# pass /{p+=$3}
  /^# fail /{f+=$3}
  END{printf "%d passed, %d failed\n",p,f; if (p==0) exit 1}' "$log" || status=1
exit $status
