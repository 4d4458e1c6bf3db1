#!/usr/bin/env bash
# Run the whole test suite (what CI runs): installs what is missing first, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
