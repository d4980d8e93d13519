#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 / Ubuntu 24.04 machine that has
# python3 and python3-venv: the OS packages the tests drive (Chromium, nginx, Caddy, age,
# Node.js for esbuild, systemd-analyze, strace, libatomic for Playwright's driver), then a virtual
# environment `.venv` inside this clone holding exactly the locked set (requirements/dev.txt,
# every file checked against its hash) and Mesure itself (editable), the wheels of the app's set
# (.venv/wheelhouse), and the snippet's build tools from sdk_snippet/package-lock.json.
# Run it again at any time: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
if [ ! -x /usr/bin/chromium ]; then
  # Ubuntu ships Chromium only as a snap, which the browser tests cannot drive; Debian's package
  # installs the /usr/bin/chromium they launch.
  if grep -qx 'ID=ubuntu' /etc/os-release 2>/dev/null; then
    echo "tests/setup.sh: the browser tests need a Chromium at /usr/bin/chromium; Ubuntu has" \
      "Chromium only as a snap. Install a Chromium there, then run this again." >&2
    exit 1
  fi
  packages+=(chromium)
fi
command -v npm >/dev/null || packages+=(nodejs npm)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
command -v caddy >/dev/null || packages+=(caddy)
command -v age >/dev/null || packages+=(age)
command -v systemd-analyze >/dev/null || packages+=(systemd)
# The deployment tests trace the proxies and the collector (nothing but loopback, nothing logged).
command -v strace >/dev/null || packages+=(strace)
# Playwright's own Node.js driver links libatomic, which minimal images do not have.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
installed libatomic1 || packages+=(libatomic1)
if [ ${#packages[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "tests/setup.sh: installing OS packages: ${packages[*]}"
  $SUDO apt-get update -qq
  # The tests start nginx and Caddy themselves on loopback ports; the packages' own services
  # (port 80) are not wanted, so the install is told not to start them.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install --require-hashes -r requirements/dev.txt
"${pip[@]}" install --no-deps --no-build-isolation -e .
# The wheels of the app's locked set, for tests/release/test_wheel.py to install the built wheel
# the way a production machine does, without an index.
"${pip[@]}" download --require-hashes -r requirements/app.txt -d .venv/wheelhouse
(cd sdk_snippet && npm ci --no-audit --no-fund --silent)
