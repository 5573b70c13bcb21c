#!/usr/bin/env bash
# Installs what the test suite needs beyond Python packages: gettext (translations) and
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads one).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var test-artifacts
missing=()
command -v msgfmt >/dev/null || missing+=(gettext)
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "cjk" || missing+=(fonts-noto-cjk)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "please install: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
