#!/usr/bin/env bash
# The global rate limit tests (gateway/rls, filters/ratelimit,
# cmd/waygate) run a real redis-server on loopback.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi
redis-server --version
