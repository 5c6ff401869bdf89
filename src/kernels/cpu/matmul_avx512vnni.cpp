#include "kernels/cpu/dispatch.h"
namespace tritter::cpu {
void t16_matmul_avx512vnni(const T16Args& a, int64_t rb_begin, int64_t rb_end) { t16_matmul_scalar(a, rb_begin, rb_end); }
}  // namespace tritter::cpu
