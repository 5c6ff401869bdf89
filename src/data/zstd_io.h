// Streaming line I/O for JSONL and JSONL.zst (issue 8 stages 1 and 6): a reader that yields lines of bounded
// size (an oversized line is skipped to its end and reported, never held in memory) and a writer that
// compresses to a file written atomically (io/atomic_file.h).
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/atomic_file.h"

namespace tritter::data {

// True for names ending .zst / .zstd / .tzst (compressed input).
bool is_zstd_path(const std::filesystem::path& path);

// Bytes of a plain or zstd-compressed file, through one buffer.
class ByteStream {
 public:
  ByteStream(const std::filesystem::path& path);  // throws Error naming the path if it cannot be opened
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;
  // The buffered bytes not consumed yet; refills when empty. Empty at end of input. Throws Error on a read or
  // decompression failure, naming the path.
  std::string_view peek();
  void consume(size_t n) { pos_ += n; }
  // Reads exactly n bytes into dst unless the input ends first; returns the count read.
  size_t read(char* dst, size_t n);
  // Skips n bytes (streaming); returns the count skipped.
  uint64_t skip(uint64_t n);
  const std::filesystem::path& path() const { return path_; }

 private:
  bool fill();
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  void* dctx_ = nullptr;  // ZSTD_DCtx*
  std::vector<char> in_;
  size_t in_pos_ = 0, in_size_ = 0;
  std::vector<char> buf_;
  size_t pos_ = 0, size_ = 0;
  bool eof_ = false;
};

class LineReader {
 public:
  // Opens `path` (zstd-decoded if its name says so); throws Error naming the path if it cannot be opened.
  LineReader(const std::filesystem::path& path, size_t max_line_bytes);

  enum class Status { Line, Oversized, End };
  // Next line without its '\n' (and '\r'). Oversized: the line was longer than max_line_bytes and was skipped;
  // `line` is empty. Throws Error on a read or decompression failure (corrupt .zst), naming the path.
  Status next(std::string& line);
  uint64_t line_number() const { return line_no_; }  // 1-based number of the line just returned

 private:
  ByteStream in_;
  size_t max_line_;
  uint64_t line_no_ = 0;
};

// Compresses one buffer into one complete zstd frame (with checksum), reusing its context: the pipeline
// compresses each record on its worker thread, and a shard is the concatenation of its records' frames (a
// valid .zst stream; readers decompress frame after frame).
class ZstdFrameCompressor {
 public:
  explicit ZstdFrameCompressor(int level);
  ~ZstdFrameCompressor();
  ZstdFrameCompressor(const ZstdFrameCompressor&) = delete;
  ZstdFrameCompressor& operator=(const ZstdFrameCompressor&) = delete;
  void compress(std::string_view bytes, std::string& frame);  // throws Error on a zstd failure

 private:
  void* cctx_ = nullptr;  // ZSTD_CCtx*
};

class ZstdWriter {
 public:
  // Atomic: the target appears on commit(). workers > 0 compresses on that many libzstd threads, overlapping
  // with the caller (the decompressed bytes never change; the compressed bytes are the same for any workers > 0).
  ZstdWriter(const std::filesystem::path& target, int level, int workers = 0);
  ~ZstdWriter();
  ZstdWriter(const ZstdWriter&) = delete;
  ZstdWriter& operator=(const ZstdWriter&) = delete;
  void write(std::string_view bytes);
  void commit();
  uint64_t bytes_in() const { return bytes_in_; }
  const std::filesystem::path& target() const { return file_.target(); }

 private:
  void drain(int mode);
  AtomicFile file_;
  void* cctx_ = nullptr;  // ZSTD_CCtx*
  std::vector<char> out_;
  std::string pending_;
  uint64_t bytes_in_ = 0;
};

}  // namespace tritter::data
