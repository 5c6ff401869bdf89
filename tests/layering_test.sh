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
  [vision]="core kernels model vision"
  [audio]="core kernels model audio"
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
if [ $bad -eq 0 ]; then echo "layering: ok"; fi
exit $bad
