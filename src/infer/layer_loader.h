// Layer streaming's loader (issue 7; original.md §7.2 without its bugs, §14.2 item 4): the packed file's layers in
// groups of layer_group_size, and the output head in row chunks, are "pieces" read with pread into aligned slot
// buffers the MemoryManager budgets. A loader thread reads; with prefetch there are two slots, so piece p+1 is
// read while p computes (double buffering), otherwise one slot read on demand. A slot keeps its piece until it is
// reused (eviction = reuse), so pieces that fit stay resident. Every range read is dropped from the page cache
// (posix_fadvise DONTNEED), and the whole file once at open: the budget bounds what the run holds, and the file
// never silently becomes a second copy in RAM. Embedding rows are read one token at a time.
// Design goals: overlap measured, not assumed (wait vs read seconds); validation of each piece at its first load
// (2-bit code 11, β finite > 0); header checks (names, dtypes, shapes) at open. Non-goals: io_uring, O_DIRECT,
// the GPU copy (the CUDA path reuses the pieces and the budget), mmap (page cache growth is what is controlled).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "infer/memory_manager.h"
#include "io/safetensors.h"
#include "model/packed_model.h"

namespace tritter {

// A byte range of the file copied to an offset of a slot buffer.
struct FileRange {
  uint64_t file_offset = 0;
  uint64_t bytes = 0;
  uint64_t buffer_offset = 0;  // 64-byte aligned
};

// One streamed unit: a group of layers [layer0, layer1) or head rows [row0, row1).
struct PieceLayout {
  bool head = false;
  int layer0 = 0, layer1 = 0;
  int64_t row0 = 0, row1 = 0;
  std::vector<FileRange> ranges;  // layers: per layer, table order; head: weights (then int8 row scales)
  uint64_t bytes = 0;             // slot bytes the piece needs
};

// What the consumer gets for a piece; views into a slot buffer, valid until release().
struct LoadedPiece {
  const PieceLayout* layout = nullptr;
  std::vector<LayerWeights> layers;  // layer0 .. layer1−1 (groups)
  HeadWeights head;                  // rows row0 .. row1−1 (head chunks)
};

struct LoaderStats {
  int64_t loads = 0, hits = 0;  // pieces read / acquires that found their piece already read (no wait)
  uint64_t bytes_read = 0;
  double read_s = 0;            // loader thread: time in pread (+ fadvise, validation)
  double wait_s = 0;            // consumer: time blocked in acquire() — the compute that waited for I/O
};

// The packed file's layout for streaming: offsets of every tensor, the piece list for a group size and head
// chunk, sizes. Reads only the header (no tensor data).
class PackedFileLayout {
 public:
  explicit PackedFileLayout(const std::filesystem::path& path);
  const TritterConfig& config() const { return config_; }
  HeadFormat head_format() const { return head_format_; }
  TernaryLayout qweight_layout() const { return qweight_layout_; }  // the file's: T16 or T20, run as stored
  const std::filesystem::path& path() const { return path_; }
  // Slot bytes of layers [l0, l1) (each tensor 64-aligned) and of `rows` head rows.
  uint64_t group_bytes(int l0, int l1) const;
  uint64_t head_row_bytes() const;
  uint64_t head_chunk_bytes(int64_t rows) const;
  // Pieces: ⌈L/g⌉ groups, then ⌈V/head_rows⌉ head chunks.
  std::vector<PieceLayout> pieces(int group_size, int64_t head_rows) const;
  // File offsets of the embedding (V, D) and of the final norm (D).
  uint64_t embed_offset() const { return embed_offset_; }
  uint64_t final_norm_offset() const { return final_norm_offset_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // Bytes of all layers (what one forward pass reads from the file) and of the head.
  uint64_t layers_bytes() const;

  // One tensor of a layer: a BitLinear's qweight (rows O, cols I) and β, or a gain vector; kind as in the table.
  enum class EntryType { QWeight, Scale, Norm };
  struct Entry {
    std::string name, kind;
    EntryType type = EntryType::Norm;
    int64_t rows = 0, cols = 0;
    uint64_t offset = 0, bytes = 0;  // absolute file offset
  };
  const std::vector<Entry>& layer_entries(int layer) const { return layer_entries_[layer]; }

 private:
  std::filesystem::path path_;
  TritterConfig config_;
  HeadFormat head_format_ = HeadFormat::F32;
  TernaryLayout qweight_layout_ = TernaryLayout::T16;
  std::vector<std::vector<Entry>> layer_entries_;  // per layer, in tensor-table order (qweight then scale per BitLinear)
  Entry head_w_, head_scale_, head_mult_;          // f32 head (or i8 qweight + row scales; i4 q4, mults, scales)
  uint64_t embed_offset_ = 0, final_norm_offset_ = 0, file_bytes_ = 0;
};

class LayerLoader {
 public:
  // Allocates `slots` (1, or 2 with prefetch) buffers of the largest piece through `memory` ("layer group a-b"
  // in its error) and starts the loader thread. `layout` must outlive the loader.
  LayerLoader(const PackedFileLayout& layout, std::vector<PieceLayout> pieces, bool prefetch, MemoryManager& memory);
  ~LayerLoader();
  LayerLoader(const LayerLoader&) = delete;
  LayerLoader& operator=(const LayerLoader&) = delete;

  int piece_count() const { return static_cast<int>(pieces_.size()); }
  const PieceLayout& piece(int p) const { return pieces_[p]; }
  // Blocks until piece p is in a slot (reading it now if no slot holds or is reading it); then, with prefetch,
  // starts reading `next` (−1: nothing) into the other slot. The consumer holds one piece at a time.
  // Rethrows a read or validation error of the loader thread.
  const LoadedPiece& acquire(int p, int next);
  void release(int p);
  // out (D) ← row `id` of the embedding, read from the file (and dropped from the page cache).
  void read_embedding_row(int32_t id, float* out);
  // out ← `bytes` at file `offset` (pread loop; Error naming the file on a short read).
  void read_range(uint64_t offset, uint64_t bytes, void* out) const;

  LoaderStats stats() const;  // a snapshot
  uint64_t slot_bytes() const { return slot_bytes_; }
  int slots() const { return static_cast<int>(slots_.size()); }

 private:
  struct Slot {
    int piece = -1;
    bool ready = false, held = false;
    Buffer buffer;
    LoadedPiece loaded;
  };
  void run();
  void load(Slot& slot, int p);
  void bind(Slot& slot, int p);
  void enqueue(Slot& slot, int p);  // with mu_ held

  const PackedFileLayout& layout_;
  std::vector<PieceLayout> pieces_;
  std::vector<bool> validated_;
  int fd_ = -1;
  uint64_t slot_bytes_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Slot*, int>> queue_;
  bool stop_ = false;
  std::exception_ptr error_;
  LoaderStats stats_;
  std::thread thread_;
};

// Bytes of `path` now in the page cache (mmap + mincore; maps without touching). For the budget's proof.
int64_t file_cached_bytes(const std::filesystem::path& path);

}  // namespace tritter
