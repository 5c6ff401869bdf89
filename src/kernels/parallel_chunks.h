// The matrix kernels' thread team (kept apart from parallel.h, which model code includes: this is for kernels).
#pragma once
#include <cstdint>

namespace tritter {

// Chunked work on a team of persistent workers: fn(arg, i, chunks) for i in [0, chunks), each chunk exactly once,
// on the calling thread and up to threads − 1 workers; returns when all have run. Chunks are claimed one at a
// time, so a worker that has lost its core to another process delays only the chunk it holds (an OpenMP region
// waits at its barrier for every thread of the team) and the caller takes the rest itself. Idle workers spin
// for a few tens of µs (the gap between two matmuls of one token), then sleep on a futex. A call made while the
// team is busy (from another thread, or from inside a chunk) runs all chunks inline. fn must not throw.
using ChunkFn = void (*)(void* arg, int64_t chunk, int64_t chunks);
void run_chunks(int threads, int64_t chunks, ChunkFn fn, void* arg);

}  // namespace tritter
