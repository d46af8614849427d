#!/usr/bin/env bash
# Installs the official SDKs that the conformance tests drive, at the exact versions of
# package-lock.json, into DEST/node_modules (DEST is outside the source tree: the build folder,
# or a cache folder).
#
#   tests/conformance/install.sh DEST
#
# Idempotent and fast when nothing changed: DEST/.installed holds the hash of package.json and
# package-lock.json (and of node's major version) of the last good install, and a second run
# with the same files returns at once. Installs Debian's nodejs and npm first when `node` or
# `npm` is missing (apt-get, as root or through sudo).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:?usage: install.sh DEST}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "conformance: node or npm is missing; installing Debian's nodejs and npm"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "conformance: not root and no sudo; run as root: apt-get install nodejs npm" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  # A node that came from elsewhere (e.g. NodeSource) ships its own npm: install only what is missing.
  wanted=()
  command -v node >/dev/null 2>&1 || wanted+=(nodejs)
  command -v npm >/dev/null 2>&1 || wanted+=(npm)
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${wanted[@]}"
fi

stamp="$(cat "$here/package.json" "$here/package-lock.json" "$here/.npmrc" | sha256sum | cut -d' ' -f1)-node$(node -p 'process.versions.node.split(".")[0]')"
if [ -f "$dest/.installed" ] && [ "$(cat "$dest/.installed")" = "$stamp" ] && [ -d "$dest/node_modules" ]; then
  echo "conformance: the SDKs are installed in $dest/node_modules"
  exit 0
fi

# npm ci installs exactly the lock file's tree, or fails when package.json and the lock disagree.
# Scripts stay off: the only package with an install script, aws-crt, ships its native binding
# prebuilt for linux-x64 and would otherwise try to rebuild it.
echo "conformance: installing the SDKs into $dest/node_modules (npm ci)"
rm -f "$dest/.installed"
cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$dest/"
(
  cd "$dest"
  for attempt in 1 2 3; do
    if npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; then
      exit 0
    fi
    echo "conformance: npm ci failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
  done
  exit 1
)
# The SDKs load here: a broken install fails now, with npm's words, not later inside a flow.
(cd "$dest" && node -e '
  for (const m of ["azure-iot-device", "azure-iot-device-mqtt", "azure-iothub", "aws-iot-device-sdk", "aws-iot-device-sdk-v2"]) require(m);
')
echo "$stamp" > "$dest/.installed"
echo "conformance: installed $(cd "$dest" && node -p 'Object.entries(require("./package.json").dependencies).map(([n, v]) => n + "@" + v).join(", ")')"
