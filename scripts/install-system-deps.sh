#!/usr/bin/env bash
# System packages railpm needs that PyPI cannot provide, from Debian:
#   chromium    the review app's browser test drives it through Playwright (no Playwright browser download);
#   postgresql  the production topology's database server (`railpm up`: Airflow's metadata DB, MLflow's store).
# Installs only what is missing, and only as root with apt-get; otherwise it says what to install.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 0
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian's package starts a cluster of its own on port 5432; railpm runs its own cluster and needs none.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r version name _; do pg_ctlcluster "$version" "$name" stop || true; done
fi
