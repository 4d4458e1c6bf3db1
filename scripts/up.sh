#!/usr/bin/env bash
# Start CaptchaOCR under PM2: embedded Redis (when REDIS_URL is unset), API, workers, rq-dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
. scripts/pm2env.sh

"$pm2" start eco.config.js --update-env >/dev/null
if [ -n "${CAPTCHAOCR_APPS:-}" ] && [[ ",$CAPTCHAOCR_APPS," != *",api,"* ]]; then
  "$pm2" ls
  exit 0
fi
url=$(.venv/bin/python -c 'from shared.settings import Settings as S; s=S(); print(f"http://{s.host}:{s.port}")')
dash=$(.venv/bin/python -c 'from shared.settings import Settings as S; s=S(); print(f"http://{s.dashboard_host}:{s.dashboard_port}")')
for _ in $(seq 1 120); do
  if curl -fsS "$url/" >/dev/null 2>&1; then
    "$pm2" ls
    echo "CaptchaOCR is up: API $url (docs $url/docs), dashboard $dash, logs $state_dir/logs"
    exit 0
  fi
  sleep 0.5
done
"$pm2" ls
echo "CaptchaOCR did not become healthy within 60 s; see $state_dir/logs" >&2
exit 1
