#!/usr/bin/env bash
# The whole test suite: system servers the tests start themselves, the package, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages; the tests start their own servers on loopback)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/setup.sh dev
lint_dirs=(); for d in imu_stream tests benchmarks dashboards; do [ -d "$d" ] && lint_dirs+=("$d"); done
echo "ruff:"; .venv/bin/ruff check "${lint_dirs[@]}"
echo "mypy:"; .venv/bin/mypy
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider "$@"
