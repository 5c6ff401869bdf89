// The matrix kernels' chunked parallel loop (kept apart from parallel.h, which model code includes).
#pragma once
#include <cstdint>

namespace tritter {

// fn(arg, i, chunks) for i in [0, chunks), each chunk exactly once, on the calling thread and up to threads − 1
// OpenMP workers, which claim chunks one at a time from a shared counter (so a worker that starts late, having
// lost its core to another process, finds the work taken instead of owning a fixed share). Runs inline when
// threads ≤ 1 or when called inside a parallel region. fn must not throw.
//
// Why not a team of its own (tried: persistent workers that claim chunks, spin briefly, then sleep on a futex, so
// the caller never waits at a barrier for a descheduled thread): the engine's other ops run on OpenMP, whose idle
// workers spin for milliseconds after each region, so a second worker shared a core with a spinning one. On the
// loaded 2-core Zen 3 EPYC, 12 decode layers of 700M-shape GEMVs with one OpenMP region per layer: fastest pass
// 170-400 ms with such a team against 46-170 ms with OpenMP (the mean was 3-4x better with the team only because
// the machine was overloaded). Doing better needs every op of a decode step on one team.
using ChunkFn = void (*)(void* arg, int64_t chunk, int64_t chunks);
void run_chunks(int threads, int64_t chunks, ChunkFn fn, void* arg);

}  // namespace tritter
