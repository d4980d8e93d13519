#!/usr/bin/env bash
# Refreshes the lock files from pyproject.toml and requirements/tools.in. Versions already in the
# lock are kept unless asked: `bash requirements/lock.sh --upgrade` (or `--upgrade-package NAME`).
#   dev.txt         everything: the app, every extra (test, parquet, clickhouse), tools.in
#   app.txt         what the collector needs to run (production, the README's serve command)
#   clickhouse.txt  the app with ClickHouse storage (the `clickhouse` extra)
#   parquet.txt     the app with Parquet exports (the `parquet` extra)
# Every file is universal (any platform, Python >= 3.11) and carries the hash of every file.
# The production sets are resolved inside dev.txt, so a package has one version everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
compile=("$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes
         --custom-compile-command "bash requirements/lock.sh")
"${compile[@]}" "$@" pyproject.toml requirements/tools.in --all-extras -o requirements/dev.txt
within=(--constraint requirements/dev.txt)
"${compile[@]}" "$@" pyproject.toml "${within[@]}" -o requirements/app.txt
for extra in clickhouse parquet; do
  "${compile[@]}" "$@" pyproject.toml --extra "$extra" "${within[@]}" -o "requirements/$extra.txt"
done
