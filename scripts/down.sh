#!/usr/bin/env bash
# Stop the whole CaptchaOCR stack that scripts/up.sh started, and PM2's own daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pm2env.sh
if [ -x "$pm2" ]; then
  "$pm2" kill >/dev/null 2>&1 || true
fi
echo "CaptchaOCR stopped."
