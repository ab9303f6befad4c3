#!/usr/bin/env bash
# Generates a TypeScript client (openapi-typescript + openapi-fetch, type-checked with
# `tsc --strict`) and a Python client (openapi-python-client) from openapi/openapi.json, and runs
# the contract's quick start through each against a live gateway started from the binary given.
# Usage: clients.sh path/to/wagate
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cd "$here"

venv="${CONTRACTS_VENV:-$root/target/contracts-venv}"
if [ ! -x "$venv/bin/openapi-python-client" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements.txt
fi
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error >/dev/null

echo "clients: generating the TypeScript client and type-checking the quick start (tsc --strict)"
npx --no-install openapi-typescript "$root/openapi/openapi.json" -o ts/wagate.d.ts >/dev/null
rm -rf ts/dist
npx --no-install tsc -p ts

echo "clients: generating the Python client"
"$venv/bin/openapi-python-client" generate --path "$root/openapi/openapi.json" --meta none \
  --output-path py/wagate_client --overwrite --config py/generator.yaml >/dev/null

data="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
WAGATE_ADDR="127.0.0.1:$port" WAGATE_DATA_DIR="$data" RUST_LOG=warn \
  WAGATE_SANDBOX_CONNECT_DELAY=0ms "$bin" serve >"$data/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz')" 2>/dev/null; then break; fi
  sleep 0.1
done
if ! kill -0 "$server" 2>/dev/null; then cat "$data/server.log" >&2; exit 1; fi
base="http://127.0.0.1:$port"
node ts/dist/quickstart.js "$base"
(cd py && "$venv/bin/python" quickstart.py "$base")
