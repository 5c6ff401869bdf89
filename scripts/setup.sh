#!/usr/bin/env bash
# Installs Tritter's build and test dependencies from Debian 12 packages. Idempotent: installs only what is
# missing, and runs `apt-get update` only when something is.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libhwy-dev libomp-dev libopenblas-openmp-dev
  libcli11-dev nlohmann-json3-dev libxxhash-dev libzstd-dev
  libhyperscan-dev libre2-dev libicu-dev libsentencepiece-dev
  clang libclang-rt-14-dev python3 zstd xz-utils
  pybind11-dev python3-pybind11 python3-pytest python3-numpy python3-dev
  libopenmpi-dev openmpi-bin
  libcpp-httplib-dev chromium
  libsndfile1-dev libsoxr-dev espeak-ng sox
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
# The tests' references (the openai client, playwright-core, Hugging Face's tokenizers, chat templates and GGUF
# parser) are npm packages pinned in package-lock.json; without node the tests that need them say so and skip.
root=$(cd "$(dirname "$0")/.." && pwd)
if command -v npm >/dev/null && [ -f "$root/package-lock.json" ]; then
  # npm writes node_modules/.package-lock.json on install: newer than the lock file means nothing changed since.
  if [ -f "$root/node_modules/.package-lock.json" ] && [ "$root/node_modules/.package-lock.json" -nt "$root/package-lock.json" ]; then
    echo "setup: npm packages present"
  else
    echo "setup: npm ci (test references)"
    (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "setup: npm not found: the tests that need the npm references will skip"
fi
