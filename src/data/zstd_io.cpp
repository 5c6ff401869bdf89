// LineReader / ZstdWriter (see zstd_io.h) on libzstd's streaming API.
#include "data/zstd_io.h"

#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tritter::data {

bool is_zstd_path(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  return ext == ".zst" || ext == ".zstd" || ext == ".tzst";
}

ByteStream::ByteStream(const std::filesystem::path& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) throw_error("'", path.string(), "': cannot open: ", std::strerror(errno));
  in_.resize(1 << 17);
  buf_.resize(1 << 18);
  if (is_zstd_path(path)) dctx_ = ZSTD_createDCtx();
}

ByteStream::~ByteStream() {
  if (file_) std::fclose(file_);
  if (dctx_) ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_));
}

bool ByteStream::fill() {
  pos_ = size_ = 0;
  if (!dctx_) {
    if (eof_) return false;
    size_ = std::fread(buf_.data(), 1, buf_.size(), file_);
    if (size_ < buf_.size()) {
      if (std::ferror(file_)) throw_error("'", path_.string(), "': read error");
      eof_ = true;
    }
    return size_ > 0;
  }
  while (size_ == 0) {
    if (in_pos_ == in_size_) {
      if (eof_) return false;
      in_size_ = std::fread(in_.data(), 1, in_.size(), file_);
      in_pos_ = 0;
      if (in_size_ < in_.size()) {
        if (std::ferror(file_)) throw_error("'", path_.string(), "': read error");
        eof_ = true;
      }
      if (in_size_ == 0) return false;
    }
    ZSTD_inBuffer in{in_.data(), in_size_, in_pos_};
    ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
    const size_t rc = ZSTD_decompressStream(static_cast<ZSTD_DCtx*>(dctx_), &out, &in);
    if (ZSTD_isError(rc)) throw_error("'", path_.string(), "': zstd decompression failed: ", ZSTD_getErrorName(rc));
    in_pos_ = in.pos;
    size_ = out.pos;
  }
  return true;
}

std::string_view ByteStream::peek() {
  if (pos_ == size_ && !fill()) return {};
  return std::string_view(buf_.data() + pos_, size_ - pos_);
}

size_t ByteStream::read(char* dst, size_t n) {
  size_t got = 0;
  while (got < n) {
    const std::string_view v = peek();
    if (v.empty()) break;
    const size_t take = std::min(v.size(), n - got);
    std::memcpy(dst + got, v.data(), take);
    consume(take);
    got += take;
  }
  return got;
}

uint64_t ByteStream::skip(uint64_t n) {
  uint64_t done = 0;
  while (done < n) {
    const std::string_view v = peek();
    if (v.empty()) break;
    const size_t take = size_t(std::min<uint64_t>(v.size(), n - done));
    consume(take);
    done += take;
  }
  return done;
}

LineReader::LineReader(const std::filesystem::path& path, size_t max_line_bytes)
    : in_(path), max_line_(max_line_bytes) {}

LineReader::Status LineReader::next(std::string& line) {
  line.clear();
  bool oversized = false, any = false;
  for (;;) {
    const std::string_view v = in_.peek();
    if (v.empty()) {
      if (!any) return Status::End;
      ++line_no_;
      return oversized ? Status::Oversized : Status::Line;
    }
    any = true;
    const void* nl = std::memchr(v.data(), '\n', v.size());
    const size_t take = nl ? size_t(static_cast<const char*>(nl) - v.data()) : v.size();
    if (!oversized) {
      if (line.size() + take > max_line_) {
        oversized = true;
        line.clear();
        line.shrink_to_fit();
      } else {
        line.append(v.data(), take);
      }
    }
    in_.consume(take + (nl ? 1 : 0));
    if (nl) {
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return oversized ? Status::Oversized : Status::Line;
    }
  }
}

ZstdFrameCompressor::ZstdFrameCompressor(int level) {
  cctx_ = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_checksumFlag, 1);
}

ZstdFrameCompressor::~ZstdFrameCompressor() {
  if (cctx_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

void ZstdFrameCompressor::compress(std::string_view bytes, std::string& frame) {
  frame.resize(ZSTD_compressBound(bytes.size()));
  const size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), frame.data(), frame.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n)) throw_error("zstd: cannot compress a record: ", ZSTD_getErrorName(n));
  frame.resize(n);
}

ZstdWriter::ZstdWriter(const std::filesystem::path& target, int level, int workers) : file_(target) {
  cctx_ = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_compressionLevel, level);
  if (workers > 0)
    ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_nbWorkers, workers);  // ignored without MT
  ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_checksumFlag, 1);
  out_.resize(ZSTD_CStreamOutSize());
}

ZstdWriter::~ZstdWriter() {
  if (cctx_) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_));
}

void ZstdWriter::drain(int mode) {
  ZSTD_inBuffer in{pending_.data(), pending_.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{out_.data(), out_.size(), 0};
    const size_t rc =
        ZSTD_compressStream2(static_cast<ZSTD_CCtx*>(cctx_), &out, &in, static_cast<ZSTD_EndDirective>(mode));
    if (ZSTD_isError(rc)) throw_error("zstd writer '", file_.target().string(), "': ", ZSTD_getErrorName(rc));
    file_.write(out_.data(), out.pos);
    if (mode == ZSTD_e_end ? rc == 0 : in.pos == in.size) break;
  }
  pending_.clear();
}

void ZstdWriter::write(std::string_view bytes) {
  pending_.append(bytes);
  bytes_in_ += bytes.size();
  if (pending_.size() >= (1 << 20)) drain(ZSTD_e_continue);
}

void ZstdWriter::commit() {
  drain(ZSTD_e_end);
  file_.commit();
}

}  // namespace tritter::data
