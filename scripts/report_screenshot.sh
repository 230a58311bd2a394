#!/usr/bin/env bash
# The README's picture of the evaluation report: RUN/report/index.html opened in headless
# Chromium at a laptop's viewport (1440×900 CSS pixels), top of the page.
#
#   scripts/report_screenshot.sh [RUN] [OUT]
#       RUN  a run folder with report/index.html (default runs/demo; make it with `invoke demo`,
#            or quickly: `invoke demo --scenario configs/twin/tiny.yaml --out runs/tiny`)
#       OUT  the PNG to write (default docs/figures/report_screenshot.png)
#
# Needs Chromium (Debian: apt-get install chromium; or set FLUXBRIDGE_CHROMIUM).
set -euo pipefail
run=${1:-runs/demo}
out=${2:-docs/figures/report_screenshot.png}
page="$run/report/index.html"
[ -f "$page" ] || { echo "no $page: run \`invoke demo\` (or \`invoke evaluate\`) first" >&2; exit 2; }
browser=${FLUXBRIDGE_CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
[ -n "$browser" ] || { echo "no Chromium on PATH (Debian: apt-get install chromium)" >&2; exit 3; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
mkdir -p "$(dirname "$out")"
# --no-sandbox: Chromium's sandbox refuses to start as root (containers, CI).
# --virtual-time-budget: let the figures decode before the picture is taken.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --window-size=1440,900 --force-device-scale-factor=1 \
  --virtual-time-budget=5000 --screenshot="$(realpath -m "$out")" \
  "file://$(realpath "$page")" >"$profile/chromium.log" 2>&1 \
  || { cat "$profile/chromium.log" >&2; exit 1; }
echo "wrote $out from $page"
