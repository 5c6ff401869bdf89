#!/usr/bin/env bash
# Compute lives in src/kernels/ (DESIGN.md): outside it, no BLAS call, no OpenMP pragma or runtime call, no SIMD
# intrinsics or per-ISA target attributes. Model code composes kernel ops (parallel work goes through
# kernels/parallel.h). Prints every offending line and fails if there is one.
set -u
root="${1:-.}"
pattern='cblas_|#[[:space:]]*pragma[[:space:]]+omp|omp_get_|omp_set_|<omp\.h>|immintrin|[^a-z_]_mm(256|512)?_[a-z]|__m(128|256|512)|__attribute__\(\(target|arm_neon'
hits=$(grep -rnE "$pattern" "$root/src" "$root/cli" --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' \
       | grep -v "^$root/src/kernels/" || true)
if [ -n "$hits" ]; then
  echo "compute outside src/kernels/ (move it behind a kernel op):"
  echo "$hits"
  exit 1
fi
echo "compute in kernels: ok"
