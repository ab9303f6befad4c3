#!/usr/bin/env bash
# Lints the committed contracts with their ecosystems' own tools: openapi-spec-validator and
# Spectral (spectral:oas) over openapi/openapi.json, graphql-schema-linter over
# schema/schema.graphql. Installs what it needs from the package registries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if ! command -v npm >/dev/null 2>&1; then
  echo "contracts: installing Node.js and npm"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
venv="${CONTRACTS_VENV:-$root/target/contracts-venv}"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r requirements.txt
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null

echo "contracts: openapi-spec-validator"
"$venv/bin/openapi-spec-validator" "$root/openapi/openapi.json"

echo "contracts: spectral (spectral:oas)"
report="$(npx --no-install spectral lint "$root/openapi/openapi.json" -r .spectral.yaml --fail-severity=error || { echo "spectral reported errors" >&2; npx --no-install spectral lint "$root/openapi/openapi.json" -r .spectral.yaml; exit 1; })"
# Each warning as "rule path", compared with the committed baseline.
current="$(printf '%s\n' "$report" | awk '$2 == "warning" { print $3, $NF }' | sort -u)"
new="$(comm -23 <(printf '%s\n' "$current" | sed '/^$/d') <(sed '/^$/d' spectral-baseline.txt | sort -u))"
if [ -n "$new" ]; then
  echo "spectral: warnings not in .ci/contracts/spectral-baseline.txt:" >&2
  printf '%s\n' "$new" >&2
  exit 1
fi
echo "spectral: 0 errors, $(printf '%s\n' "$current" | sed '/^$/d' | wc -l) baseline warnings"

echo "contracts: graphql-schema-linter"
npx --no-install graphql-schema-linter "$root/schema/schema.graphql"
