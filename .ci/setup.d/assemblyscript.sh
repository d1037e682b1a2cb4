#!/usr/bin/env bash
# The AssemblyScript plugin tests (filters/wasm/assemblyscript_test.go)
# compile their plugins with asc: install the exact packages of
# filters/wasm/testdata/assemblyscript/package-lock.json into its
# node_modules, unless the installed ones already match the lock file.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../.." && pwd)/filters/wasm/testdata/assemblyscript"
stamp="$dir/node_modules/.waygate-lock-sha256"

if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$dir/node_modules/assemblyscript/bin/asc" ]; then
  echo "assemblyscript: node_modules matches package-lock.json"
  exit 0
fi
# --prefer-offline installs from npm's cache when it holds the tarballs.
(cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
echo "$want" >"$stamp"
echo "assemblyscript: installed $(node -p 'require(process.argv[1]).version' "$dir/node_modules/assemblyscript/package.json")"
