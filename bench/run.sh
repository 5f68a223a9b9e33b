#!/usr/bin/env bash
# The benchmark suite of issue 5, from a fresh clone: `bash bench/run.sh` (about 10 minutes) or
# `bash bench/run.sh --quick` (under a minute). Installs what it needs first: the project's .venv
# (via make), the bench-only Python requirements (bench/requirements.txt: matplotlib, wsproto, h11)
# and bench/node_modules (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s .venv/.installed
# socket-heavy scenarios: as many descriptors as the hard limit allows (children inherit it)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv/bin/python bench/run.py "$@"
