#!/usr/bin/env bash
# Screenshots of every page at desktop and phone width, into docs/screenshots/ (the browser test
# writes them; CI's run writes its own under target/screenshots/). Needs chromium and
# chromium-driver (apt-get install chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/screenshots
LUNA_REQUIRE_BROWSER=1 LUNA_SCREENSHOTS="$PWD/docs/screenshots" \
    cargo test -p luna-server --test api the_whole_cycle_in_a_browser -- --exact browser::the_whole_cycle_in_a_browser
ls docs/screenshots
