#!/usr/bin/env bash
# gevent vs eventlet side by side: RUNS alternating runs of each (default 3), medians and
# eventlet/gevent ratios. Extra arguments go to exam_load.py.
#   bench/compare_modes.sh                      # 10,000 learners, 3 runs each
#   RUNS=2 OUT=bench/results/cmp2k bench/compare_modes.sh --learners 2000
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-3}"
OUT="${OUT:-bench/results/cmp-$(date +%Y%m%d-%H%M)}"
exec .venv/bin/python bench/compare_modes.py --runs "$RUNS" --out "$OUT" -- "$@"
