#!/usr/bin/env bash
# Data flows one way through the layers (DESIGN.md): a file in src/LAYER may include only the layers listed
# for it below. Prints every offending include and fails if there is one.
set -u
root="${1:-.}"
declare -A allowed=(
  [core]="core"
  [kernels]="core kernels"
  [io]="core io"
  [text]="core text"
  [model]="core kernels io text model"
  [train]="core kernels io text model train"
  [infer]="core kernels io text model infer"
  [plan]="core kernels io text model train infer plan"
  [data]="core kernels io text data"
  [vision]="core kernels io model vision"
  [audio]="core kernels io model train audio"
  [api]="core kernels io text model train infer data vision audio api"
  [serve]="core kernels io text model infer serve"
)
bad=0
for layer in "${!allowed[@]}"; do
  [ -d "$root/src/$layer" ] || continue
  while IFS=: read -r file _ line; do
    inc=$(sed -E 's/.*#include *"([a-z_]+)\/.*/\1/' <<<"$line")
    [ -n "${allowed[$inc]+x}" ] || continue  # not one of our layers (e.g. "hwy/highway.h")
    case " ${allowed[$layer]} " in *" $inc "*) ;; *)
      echo "layering: $file includes \"$inc/...\", but src/$layer may include only: ${allowed[$layer]}"; bad=1;;
    esac
  done < <(grep -rnE '^#include *"[a-z_]+/' "$root/src/$layer" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' || true)
done
# The public header (src/tritter.h) is for code outside the layers, and it includes of the project only what
# cmake/install.cmake installs beside it (core/error.h, which includes none).
while IFS= read -r hit; do
  echo "layering: $hit: only src/api and code outside src/ may include tritter.h"; bad=1
done < <(grep -rnE '^#include *[<"](tritter/)?tritter\.h[>"]' "$root/src" --include='*.h' --include='*.cpp' \
           --include='*.cu' --include='*.cuh' | grep -v "^$root/src/api/" || true)
while IFS= read -r hit; do
  echo "layering: src/tritter.h includes $hit, but may include of the project only \"core/error.h\""; bad=1
done < <(grep -oE '^#include *"[^"]+"' "$root/src/tritter.h" | grep -v '"core/error.h"' || true)
if grep -qE '^#include *"' "$root/src/core/error.h"; then
  echo "layering: src/core/error.h is installed with tritter.h and may include no project header"; bad=1
fi
if [ $bad -eq 0 ]; then echo "layering: ok"; fi
exit $bad
