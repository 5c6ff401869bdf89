// Where a buffer's bytes live and where ops run: the backend seam. Every build has the CPU (its SIMD tier is
// Context::kernels); a GPU backend adds its device here, an allocator behind Buffer, a stream in the Context and
// its kernels behind the same op signatures (kernels/), so adding it changes no model code.
#pragma once

namespace tritter {

enum class Device { Cpu, Cuda };
const char* device_name(Device d);  // "cpu" | "cuda"
// Whether this build can allocate on and run ops for `d`.
bool device_available(Device d);

}  // namespace tritter
