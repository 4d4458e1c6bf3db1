#!/usr/bin/env bash
# Take the README's screenshots (API docs page, rq-dashboard) with headless Chromium, from a running
# stack: `scripts/up.sh && scripts/screenshots.sh`. Installs Debian's chromium when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
urls=$(.venv/bin/python -c 'from shared.settings import Settings as S; s=S(); print(f"http://{s.host}:{s.port} http://{s.dashboard_host}:{s.dashboard_port}")')
read -r api dashboard <<<"$urls"
# A few real requests, so the dashboard has finished jobs and busy workers to show.
for image in $(ls ../shared/corpus/npm_svg_captcha/*.png | head -5); do
  curl -s "$api/ocr" -H 'content-type: application/json' -d "{\"image_base64\":\"$(base64 -w0 "$image")\"}" >/dev/null
done
mkdir -p docs
shoot() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars \
    --window-size=1280,900 --virtual-time-budget=5000 --screenshot="$1" "$2" 2>/dev/null
}
shoot docs/api-docs.png "$api/docs"
shoot docs/dashboard.png "$dashboard/0/view/workers"
echo "wrote docs/api-docs.png and docs/dashboard.png"
