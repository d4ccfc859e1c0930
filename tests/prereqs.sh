#!/usr/bin/env bash
# Checks for every program the test suites use besides .NET and Node. What is missing is
# installed with apt-get when this machine has it and we are root (one line says so); otherwise
# it stops at once with the command that installs it.
set -euo pipefail

# program -> the Debian package that has it
declare -A package=(
  [/usr/bin/chromium]=chromium     # browser tests (Playwright drives Debian's Chromium)
  [redis-server]=redis-server      # cluster tests
  [redis-cli]=redis-tools
  [chattr]=e2fsprogs               # disk-failure tests (chattr +i)
  [ip]=iproute2                    # the deploy test's other machine (a network namespace)
  [curl]=curl
  [setpriv]=util-linux             # PostgreSQL tests: the server runs as the postgres user
)

if ! command -v dotnet >/dev/null || ! dotnet --list-sdks | grep -q '^10\.'; then
  echo "prerequisites: the .NET 10 SDK is missing; install it, then run npm test again" >&2
  exit 1
fi

missing=()
for program in "${!package[@]}"; do
  if ! command -v "$program" >/dev/null; then
    missing+=("${package[$program]}")
  fi
done
# PostgreSQL tests (tests/Collab.Testing/PostgresServer.cs): Debian keeps the server programs in
# /usr/lib/postgresql/VERSION/bin, not on PATH, so the glob is checked, not command -v.
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  missing+=(postgresql)
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "prerequisites: installing ${missing[*]} with apt-get"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
      cat "$log" >&2
      echo "prerequisites: apt-get could not install ${missing[*]}" >&2
      exit 1
    fi
  else
    echo "prerequisites: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "prerequisites: the tests need root (the disk-failure tests make a folder immutable with chattr +i; the deploy test makes a network namespace); run: sudo npm test" >&2
  exit 1
fi
