#!/usr/bin/env bash
# Installs the Debian 12 packages twinfleet needs to build and test, and only those missing.
# Idempotent: a second run installs nothing and says so. Runs as root, or through sudo.
set -euo pipefail

# Build toolchain and libraries, then the independent peers the tests run against.
packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost1.81-all-dev libboost-json1.81-dev libssl-dev openssl libyaml-cpp-dev prometheus-cpp-dev
  catch2 libpaho-mqttpp-dev libpaho-mqtt-dev libqpid-proton-cpp12-dev
  libcli11-dev libfmt-dev libspdlog-dev
  mosquitto mosquitto-clients prometheus curl
  # reporters' tests: libxml2 parses junit.xml back, headless Chromium renders report.html.
  libxml2-dev chromium
)
# Extra packages a caller needs besides these (scripts/fuzz.sh asks for clang).
packages+=("$@")

if [ ! -r /etc/os-release ]; then
  echo "install-deps: cannot tell which system this is (no /etc/os-release)." >&2
  echo "install-deps: twinfleet's set-up supports Debian 12 (bookworm); install the packages by hand:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi
. /etc/os-release
if [ "${ID:-}" != "debian" ] || [ "${VERSION_ID:-}" != "12" ]; then
  echo "install-deps: this is ${PRETTY_NAME:-an unknown system}, not Debian 12 (bookworm)." >&2
  echo "install-deps: twinfleet's set-up supports Debian 12 only; install the equivalents of:" >&2
  echo "  ${packages[*]}" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are already installed."
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: not root and no sudo; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# mosquitto and prometheus are test peers that the tests start themselves on their own ports:
# keep the packages' init scripts from starting system-wide daemons (as Docker images do).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done."
