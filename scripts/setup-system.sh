#!/usr/bin/env bash
# Install the Debian packages the product and its tests use, when missing.
# As root: apt-get installs them. Otherwise: print what to install and fail clearly.
set -euo pipefail
packages=(espeak-ng libespeak-ng1 sox libsox-fmt-all chromium libtiff-tools ghostscript fonts-wqy-microhei graphviz
          kannel kannel-extras dovecot-imapd postgresql-client
          kamailio kamailio-postgres-modules sip-tester
          nginx-light   # tests/integration/deploy: the shipped reverse proxy (deploy/nginx) checked and run
          gcc python3-dev)   # gcc and the headers build switch/_esl_split, the ESL codec's C accelerator
# npm installs the front-end libraries of package.json (make setup): Debian's npm unless one is on the PATH
# already (nodesource's nodejs carries its own, and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || apt-get update
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
