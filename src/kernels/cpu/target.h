#pragma once
// TRITTER_TARGET_BEGIN("avx2,fma") ... TRITTER_TARGET_END compiles the functions between them for those ISA
// extensions, with GCC (#pragma GCC target) and clang (#pragma clang attribute, which ignores GCC's pragma) alike.
// The rest of the file keeps the baseline ISA, so the binary still runs anywhere and picks a path at run time.
// Include <immintrin.h> and other headers before TRITTER_TARGET_BEGIN: only this file's own functions get the target.
#define TRITTER_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define TRITTER_TARGET_BEGIN(isa) \
  TRITTER_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define TRITTER_TARGET_END TRITTER_PRAGMA(clang attribute pop)
#else
#define TRITTER_TARGET_BEGIN(isa) TRITTER_PRAGMA(GCC push_options) TRITTER_PRAGMA(GCC target(isa))
#define TRITTER_TARGET_END TRITTER_PRAGMA(GCC pop_options)
#endif
