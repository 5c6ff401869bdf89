#!/usr/bin/env bash
# Installs Tritter's build and test dependencies from Debian 12 packages. Idempotent: installs only what is
# missing, and runs `apt-get update` only when something is.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libomp-dev libopenblas-openmp-dev
  libcli11-dev nlohmann-json3-dev libxxhash-dev libzstd-dev
  libhyperscan-dev libre2-dev
  clang libclang-rt-14-dev python3 zstd xz-utils
  pybind11-dev python3-pybind11 python3-pytest python3-numpy python3-dev
  libopenmpi-dev openmpi-bin
  libcpp-httplib-dev chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm only where no node is on the machine: a node installed from elsewhere (e.g. NodeSource's
# package, which carries its own npm) conflicts with Debian's npm package.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The server's tests use the openai client and playwright-core, pinned in package-lock.json.
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -d "$root/node_modules/openai" ] || [ ! -d "$root/node_modules/playwright-core" ]; then
  (cd "$root" && npm ci --no-audit --no-fund)
fi
