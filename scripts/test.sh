#!/usr/bin/env bash
# Run the whole test suite (what CI runs): installs what is missing first, then pytest with any arguments.
# The fast part only (no stacks, PM2, namespaces, soak or fuzz; about 20 s): scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
