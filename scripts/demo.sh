#!/usr/bin/env bash
# The main job on the embedded default. Later issues replace it with generation from the shipped model.
set -euo pipefail
bin="${1:-build}/tritter"
"$bin" specs
"$bin" hw check 7B --profile rtx5080
