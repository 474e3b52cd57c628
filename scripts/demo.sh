#!/usr/bin/env bash
# The main job on the embedded default: set up, then run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/imu-stream demo "$@"
