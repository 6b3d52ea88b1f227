#!/usr/bin/env bash
# Install, create the demo province (8 districts, 164 bridge points, ~10,000 learners,
# 150 questions, one 50-question exam with 2 codes) and start the hub on SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
export FLASK_APP=server
HOST=${DIEMCAU_HOST:-127.0.0.1}
PORT=${DIEMCAU_PORT:-5000}
.venv/bin/flask db upgrade
.venv/bin/flask demo create --if-empty
echo
echo "Điểm Cầu: http://${HOST}:${PORT}/"
exec .venv/bin/python -m server --host "$HOST" --port "$PORT"
