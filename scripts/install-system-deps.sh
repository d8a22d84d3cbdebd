#!/usr/bin/env bash
# System packages railpm needs that PyPI cannot provide: Debian's chromium, which the review app's browser
# test drives through Playwright (Playwright's own browser download is never used). Runs apt-get only when
# chromium is missing and we are root; otherwise it says what to install and leaves the machine alone.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is missing: install Debian's package (apt-get install chromium) for the review app's browser test" >&2
    exit 0
fi
echo "installing Debian's chromium for the review app's browser test"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
