#!/usr/bin/env bash
# Create what the project needs on a fresh machine, and nothing twice: a virtualenv with the Python
# dependencies and a local PM2 from npm. Re-runs only the steps whose inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp() { sha256sum "$@" | sha256sum | cut -c1-16; }

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
want=$(stamp pyproject.toml requirements.lock tests/requirements-nodeps.txt)
if [ "$(cat .venv/.captchaocr-stamp 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python dependencies into .venv"
  # The tested versions (requirements.lock, what the image installs), so a new upstream release changes
  # nothing until the lock does. All but torch's line: its local version names the build this lock was
  # made with (+cpu), which a machine without PyTorch's CPU index cannot find; pyproject.toml pins torch.
  constraints=.venv/constraints.txt
  grep -v '^torch==' requirements.lock > "$constraints"
  .venv/bin/python -m pip install --quiet --constraint "$constraints" --upgrade pip
  .venv/bin/python -m pip install --quiet --constraint "$constraints" -e ".[test,bench,trainer]"
  .venv/bin/python -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt
  echo "$want" > .venv/.captchaocr-stamp
fi

if ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing Node.js and npm from the system packages"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "bootstrap: npm is needed for PM2 (install Node.js 18+)" >&2
    exit 1
  fi
fi
want=$(stamp package.json package-lock.json)
if [ "$(cat node_modules/.captchaocr-stamp 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing PM2 and its log rotator into node_modules"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.captchaocr-stamp
fi
