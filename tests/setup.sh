#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine:
# Mesure with its test, parquet and ClickHouse (chDB) extras, Chromium from the OS packages,
# and esbuild (to check dist/m.js).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[test,parquet,clickhouse]'
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
(cd sdk_snippet && npm ci --no-audit --no-fund --silent)
