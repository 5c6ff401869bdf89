#include "infer/layer_loader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/buffer.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {

using Clock = std::chrono::steady_clock;


bool has_code_11(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i] & (p[i] >> 1) & 0x55;
  return acc != 0;
}

std::string piece_name(const PieceLayout& p) {
  return p.head ? "head rows " + std::to_string(p.row0) + "-" + std::to_string(p.row1 - 1)
                : "layer group " + std::to_string(p.layer0) + "-" + std::to_string(p.layer1 - 1);
}

}  // namespace

// ---- PackedFileLayout -------------------------------------------------------------------------------------------

PackedFileLayout::PackedFileLayout(const std::filesystem::path& path) : path_(path) {
  const SafeTensorsFile f(path);  // maps and parses the header; the tensor data is not touched
  const std::string where = "file '" + f.source() + "'";
  config_ = config_from_metadata(f, kPackedFormat);
  if (!config_.quant) throw_error(where, ": quant=false: nothing to stream");
  if (config_.cosine_head()) {
    throw_error(where, ": head_type cosine_tied: streaming does not run the cosine head yet (load the model resident)");
  }
  qweight_layout_ = qweight_layout_of(f);
  auto head = f.metadata().find("head");
  if (head != f.metadata().end()) head_format_ = head_format_from_name(head->second);
  file_bytes_ = f.file_bytes();
  const uint64_t base = 8 + f.header_bytes();
  auto offset = [&](const SafeTensor& t) { return base + t.begin; };
  const TritterConfig& c = config_;
  layer_entries_.resize(c.num_hidden_layers);
  for (const TensorInfo& t : tensor_table(c)) {
    if (t.role == TensorRole::BitLinear) {
      const SafeTensor& q = f.get(qweight_name(t.name));
      const size_t qbytes = ternary_matrix_bytes(t.shape[0], t.shape[1], qweight_layout_);
      if (q.dtype != DType::U8 || q.bytes() != qbytes) {
        throw_error(where, ": tensor '", q.name, "': ", q.bytes(), " bytes of ", dtype_name(q.dtype), ", expected ",
                    qbytes, " bytes of U8");
      }
      const SafeTensor& s = f.expect(weight_scale_name(t.name), DType::F32, {1});
      TRITTER_CHECK(t.layer >= 0, t.name);
      layer_entries_[t.layer].push_back({q.name, t.kind, EntryType::QWeight, t.shape[0], t.shape[1], offset(q), q.bytes()});
      layer_entries_[t.layer].push_back({s.name, t.kind, EntryType::Scale, 0, 0, offset(s), s.bytes()});
      continue;
    }
    const bool head_source = t.role == TensorRole::LmHead || (t.role == TensorRole::Embedding && c.tie_word_embeddings);
    if (!(t.role == TensorRole::LmHead && head_format_ != HeadFormat::F32)) {
      const SafeTensor& x = f.expect(t.name, DType::F32, t.shape);
      if (t.role == TensorRole::Embedding) embed_offset_ = offset(x);
      if (t.role == TensorRole::Norm && t.layer < 0 && t.kind == "norm") final_norm_offset_ = offset(x);
      if (t.role == TensorRole::Norm && t.layer >= 0) {
        layer_entries_[t.layer].push_back({x.name, t.kind, EntryType::Norm, 0, 0, offset(x), x.bytes()});
      }
      if (head_source && head_format_ == HeadFormat::F32) head_w_ = {x.name, t.kind, EntryType::Norm, 0, 0, offset(x), x.bytes()};
    }
    if (head_source && head_format_ == HeadFormat::I8) {
      const SafeTensor& q = f.expect("lm_head.qweight", DType::I8, {c.vocab_size, c.hidden_size});
      const SafeTensor& s = f.expect("lm_head.row_scale", DType::F32, {c.vocab_size});
      head_w_ = {q.name, "lm_head", EntryType::QWeight, 0, 0, offset(q), q.bytes()};
      head_scale_ = {s.name, "lm_head", EntryType::Scale, 0, 0, offset(s), s.bytes()};
    }
    if (head_source && head_format_ == HeadFormat::I4) {
      const int64_t V = c.vocab_size, D = c.hidden_size;
      const SafeTensor& q = f.expect("lm_head.q4", DType::U8, {V, head_i4_row_bytes(D)});
      const SafeTensor& k = f.expect("lm_head.group_mult", DType::U8, {V, head_i4_groups(D)});
      const SafeTensor& s = f.expect("lm_head.row_scale", DType::F32, {V});
      head_w_ = {q.name, "lm_head", EntryType::QWeight, 0, 0, offset(q), q.bytes()};
      head_mult_ = {k.name, "lm_head", EntryType::QWeight, 0, 0, offset(k), k.bytes()};
      head_scale_ = {s.name, "lm_head", EntryType::Scale, 0, 0, offset(s), s.bytes()};
    }
  }
  TRITTER_CHECK(embed_offset_ > 0 && final_norm_offset_ > 0 && head_w_.bytes > 0, where);
}

uint64_t PackedFileLayout::group_bytes(int l0, int l1) const {
  uint64_t n = 0;
  for (int l = l0; l < l1; ++l) {
    for (const Entry& e : layer_entries_[l]) n += align64(e.bytes);
  }
  return n;
}

uint64_t PackedFileLayout::head_row_bytes() const {
  return static_cast<uint64_t>(head_stored_row_bytes(head_format_, config_.hidden_size));
}

uint64_t PackedFileLayout::head_chunk_bytes(int64_t rows) const {
  return static_cast<uint64_t>(head_piece_bytes(head_format_, rows, config_.hidden_size));
}

uint64_t PackedFileLayout::layers_bytes() const { return group_bytes(0, config_.num_hidden_layers); }

std::vector<PieceLayout> PackedFileLayout::pieces(int group_size, int64_t head_rows) const {
  const int L = config_.num_hidden_layers;
  const int64_t V = config_.vocab_size, D = config_.hidden_size;
  TRITTER_CHECK(group_size >= 1 && group_size <= L && head_rows >= 1, group_size, " ", head_rows);
  std::vector<PieceLayout> out;
  for (int l0 = 0; l0 < L; l0 += group_size) {
    PieceLayout p;
    p.layer0 = l0;
    p.layer1 = std::min(L, l0 + group_size);
    for (int l = p.layer0; l < p.layer1; ++l) {
      for (const Entry& e : layer_entries_[l]) {
        p.ranges.push_back({e.offset, e.bytes, p.bytes});
        p.bytes += align64(e.bytes);
      }
    }
    out.push_back(std::move(p));
  }
  for (int64_t r0 = 0; r0 < V; r0 += head_rows) {
    PieceLayout p;
    p.head = true;
    p.row0 = r0;
    p.row1 = std::min(V, r0 + head_rows);
    const uint64_t n = p.row1 - p.row0;
    if (head_format_ == HeadFormat::I8) {
      p.ranges.push_back({head_w_.offset + r0 * D, n * D, 0});
      p.ranges.push_back({head_scale_.offset + r0 * 4, n * 4, align64(n * D)});
    } else if (head_format_ == HeadFormat::I4) {
      const uint64_t rb = head_i4_row_bytes(D), G = head_i4_groups(D);
      p.ranges.push_back({head_w_.offset + r0 * rb, n * rb, 0});
      p.ranges.push_back({head_mult_.offset + r0 * G, n * G, align64(n * rb)});
      p.ranges.push_back({head_scale_.offset + r0 * 4, n * 4, align64(n * rb) + align64(n * G)});
    } else {
      p.ranges.push_back({head_w_.offset + r0 * D * 4, n * D * 4, 0});
    }
    p.bytes = head_chunk_bytes(static_cast<int64_t>(n));
    out.push_back(std::move(p));
  }
  return out;
}

// ---- LayerLoader ------------------------------------------------------------------------------------------------

LayerLoader::LayerLoader(const PackedFileLayout& layout, std::vector<PieceLayout> pieces, bool prefetch,
                         MemoryManager& memory)
    : layout_(layout), pieces_(std::move(pieces)), validated_(pieces_.size(), false) {
  TRITTER_CHECK(!pieces_.empty(), "no pieces");
  size_t largest = 0;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    if (pieces_[i].bytes > pieces_[largest].bytes) largest = i;
  }
  slot_bytes_ = pieces_[largest].bytes;
  const int n = prefetch ? 2 : 1;
  memory.require(static_cast<int64_t>(n * slot_bytes_),
                 piece_name(pieces_[largest]) + (n == 2 ? " (2 buffers: active + prefetch)" : " (1 buffer, no prefetch)"));
  for (int i = 0; i < n; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->buffer = memory.allocate(slot_bytes_, MemCategory::Weights, "a layer buffer");
  }
  fd_ = ::open(layout_.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw_error("file '", layout_.path().string(), "': cannot open: ", std::strerror(errno));
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // start cold: the file is read, never cached
  thread_ = std::thread([this] { run(); });
}

LayerLoader::~LayerLoader() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

LoaderStats LayerLoader::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void LayerLoader::enqueue(Slot& slot, int p) {
  slot.piece = p;
  slot.ready = false;
  queue_.emplace_back(&slot, p);
  cv_.notify_all();
}

const LoadedPiece& LayerLoader::acquire(int p, int next) {
  TRITTER_CHECK(p >= 0 && p < piece_count(), "piece ", p, " of ", piece_count());
  const auto t0 = Clock::now();
  std::unique_lock lk(mu_);
  auto holding = [&](int q) -> Slot* {
    for (auto& s : slots_) {
      if (s->piece == q) return s.get();
    }
    return nullptr;
  };
  Slot* slot = holding(p);
  if (slot && slot->ready) ++stats_.hits;
  if (!slot) {
    for (auto& s : slots_) {
      if (!s->held && (!slot || slot->piece == next)) slot = s.get();
    }
    TRITTER_CHECK(slot != nullptr, "acquire(", p, ") while every slot is held");
    cv_.wait(lk, [&] { return error_ || slot->piece < 0 || slot->ready; });  // a read in flight into it
    if (error_) std::rethrow_exception(error_);
    enqueue(*slot, p);
  }
  cv_.wait(lk, [&] { return error_ || slot->ready; });
  if (error_) std::rethrow_exception(error_);
  slot->held = true;
  stats_.wait_s += std::chrono::duration<double>(Clock::now() - t0).count();
  if (slots_.size() > 1 && next >= 0 && next != p && !holding(next)) {
    for (auto& s : slots_) {
      if (!s->held && (s->piece < 0 || s->ready)) {
        enqueue(*s, next);
        break;
      }
    }
  }
  return slot->loaded;
}

void LayerLoader::release(int p) {
  std::lock_guard lk(mu_);
  for (auto& s : slots_) {
    if (s->piece == p) s->held = false;
  }
}

void LayerLoader::run() {
  for (;;) {
    std::pair<Slot*, int> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
      queue_.erase(queue_.begin());
    }
    const auto t0 = Clock::now();
    try {
      load(*job.first, job.second);
    } catch (...) {
      std::lock_guard lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      continue;
    }
    {
      std::lock_guard lk(mu_);
      job.first->ready = true;
      ++stats_.loads;
      stats_.bytes_read += pieces_[job.second].bytes;
      stats_.read_s += std::chrono::duration<double>(Clock::now() - t0).count();
    }
    cv_.notify_all();
  }
}

void LayerLoader::read_range(uint64_t offset, uint64_t bytes, void* out) const {
  auto* dst = static_cast<uint8_t*>(out);
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd_, dst + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw_error("file '", layout_.path().string(), "': read of ", bytes, " bytes at offset ", offset, " failed after ",
                  done, ": ", n < 0 ? std::strerror(errno) : "end of file (truncated?)");
    }
    done += static_cast<uint64_t>(n);
  }
  ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(bytes), POSIX_FADV_DONTNEED);
}

void LayerLoader::read_embedding_row(int32_t id, float* out) {
  const uint64_t D = layout_.config().hidden_size;
  read_range(layout_.embed_offset() + static_cast<uint64_t>(id) * D * 4, D * 4, out);
}

void LayerLoader::load(Slot& slot, int p) {
  auto* buf = static_cast<uint8_t*>(slot.buffer.data());
  for (const FileRange& r : pieces_[p].ranges) read_range(r.file_offset, r.bytes, buf + r.buffer_offset);
  bind(slot, p);
  validated_[p] = true;
}

void LayerLoader::bind(Slot& slot, int p) {
  const PieceLayout& piece = pieces_[p];
  const auto* buf = static_cast<const uint8_t*>(slot.buffer.data());
  const bool check = !validated_[p];
  const std::string where = "file '" + layout_.path().string() + "'";
  LoadedPiece lp;
  lp.layout = &piece;
  if (piece.head) {
    const int64_t n = piece.row1 - piece.row0;
    lp.head.format = layout_.head_format();
    if (lp.head.format == HeadFormat::I8) {
      lp.head.i8 = reinterpret_cast<const int8_t*>(buf);
      lp.head.row_scale = reinterpret_cast<const float*>(buf + piece.ranges[1].buffer_offset);
    } else if (lp.head.format == HeadFormat::I4) {
      const int64_t D = layout_.config().hidden_size;
      lp.head.q4 = buf;
      lp.head.mult = buf + piece.ranges[1].buffer_offset;
      lp.head.row_scale = reinterpret_cast<const float*>(buf + piece.ranges[2].buffer_offset);
      if (check) {
        check_head_i4_levels(lp.head.q4, n, D, piece.row0, where + ": tensor 'lm_head.q4'");
        check_head_i4_mults(lp.head.mult, n, D, piece.row0, where + ": tensor 'lm_head.group_mult'");
      }
    } else {
      lp.head.f32 = reinterpret_cast<const float*>(buf);
    }
    for (int64_t v = 0; check && lp.head.row_scale && v < n; ++v) {  // the narrow heads' row scales
      const float s = lp.head.row_scale[v];
      if (!std::isfinite(s) || !(s > 0.0f)) {
        throw_error(where, ": tensor 'lm_head.row_scale' row ", piece.row0 + v, ": scale ", s, ", expected a finite value > 0");
      }
    }
    slot.loaded = std::move(lp);
    return;
  }
  lp.layers.resize(piece.layer1 - piece.layer0);
  size_t k = 0;
  for (int l = piece.layer0; l < piece.layer1; ++l) {
    LayerWeights& L = lp.layers[l - piece.layer0];
    const uint8_t* qdata = nullptr;
    const auto& entries = layout_.layer_entries(l);
    for (size_t j = 0; j < entries.size(); ++j) {
      const PackedFileLayout::Entry& e = entries[j];
      const uint8_t* ptr = buf + piece.ranges[k++].buffer_offset;
      switch (e.type) {
        case PackedFileLayout::EntryType::QWeight:
          if (check && layout_.qweight_layout() == TernaryLayout::T16 && has_code_11(ptr, e.bytes)) {
            throw_error(where, ": tensor '", e.name, "': invalid 2-bit code 11");
          }
          if (check && layout_.qweight_layout() == TernaryLayout::T20) {
            check_t20_codes(ptr, e.bytes, where + ": tensor '" + e.name + "'");
          }
          qdata = ptr;
          break;
        case PackedFileLayout::EntryType::Scale: {
          float beta;
          std::memcpy(&beta, ptr, sizeof beta);
          if (!std::isfinite(beta) || !(beta > 0.0f)) {
            throw_error(where, ": tensor '", e.name, "': scale ", beta, ", expected a finite value > 0");
          }
          TernaryMatrix* m = layer_matrix_slot(L, e.kind);
          TRITTER_CHECK(m && qdata && j > 0, "unknown BitLinear kind ", e.kind);
          const PackedFileLayout::Entry& q = entries[j - 1];  // its qweight
          *m = TernaryMatrix{qdata, q.rows, q.cols, 1.0f / beta, layout_.qweight_layout()};
          break;
        }
        case PackedFileLayout::EntryType::Norm: {
          const float** n = layer_norm_slot(L, e.kind);
          TRITTER_CHECK(n != nullptr, "unknown norm kind ", e.kind);
          *n = reinterpret_cast<const float*>(ptr);
          break;
        }
      }
    }
  }
  slot.loaded = std::move(lp);
}

int64_t file_cached_bytes(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st {};
  int64_t cached = -1;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      const long page = ::sysconf(_SC_PAGESIZE);
      std::vector<unsigned char> vec((static_cast<size_t>(st.st_size) + page - 1) / page);
      if (::mincore(p, static_cast<size_t>(st.st_size), vec.data()) == 0) {
        cached = 0;
        for (unsigned char v : vec) cached += (v & 1) ? page : 0;
      }
      ::munmap(p, static_cast<size_t>(st.st_size));
    }
  }
  ::close(fd);
  return cached;
}

}  // namespace tritter
