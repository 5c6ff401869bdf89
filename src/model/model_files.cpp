#include "model/model_files.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "kernels/parallel.h"
#include "kernels/quantize.h"
#include "model/checkpoint.h"
#include "model/gguf_model.h"
#include "model/hf_folder.h"

namespace tritter {

namespace fs = std::filesystem;

const char* model_file_kind_name(ModelFileKind k) {
  switch (k) {
    case ModelFileKind::TritterPacked: return "tritter-packed";
    case ModelFileKind::TritterCheckpoint: return "tritter-checkpoint";
    case ModelFileKind::HfFolder: return "hf-folder";
    case ModelFileKind::Gguf: return "gguf";
  }
  return "?";
}

namespace {

constexpr const char* kReadable =
    "Tritter reads a packed model or checkpoint (.safetensors written by Tritter), a Hugging Face model folder "
    "(config.json + model.safetensors or sharded model-*.safetensors) and GGUF files";

std::string magic_hex(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[8] = {};
  in.read(reinterpret_cast<char*>(b), 8);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x %02x %02x %02x %02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
                b[7]);
  return buf;
}

}  // namespace

ModelFileKind detect_model_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_error("model '", path.string(), "': no such file or folder");
  if (fs::is_directory(path)) {
    if (fs::exists(path / "config.json")) return ModelFileKind::HfFolder;
    throw_error("folder '", path.string(), "': has no config.json, so it is not a Hugging Face model folder (",
                kReadable, ")");
  }
  require_regular_file(path, "model");  // a FIFO would block the read below forever
  char head[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(head, 4);
  }
  if (std::memcmp(head, "GGUF", 4) == 0) return ModelFileKind::Gguf;
  std::string format;
  try {
    const SafeTensorsFile f(path);
    auto it = f.metadata().find("format");
    if (it != f.metadata().end()) format = it->second;
  } catch (const Error& e) {
    throw_error("file '", path.string(), "': not a model file Tritter reads (first bytes ", magic_hex(path), "; ",
                kReadable, "). As safetensors: ", e.what());
  }
  if (format == kPackedFormat) return ModelFileKind::TritterPacked;
  if (format == kCheckpointFormat) return ModelFileKind::TritterCheckpoint;
  if (fs::exists(path.parent_path() / "config.json")) return ModelFileKind::HfFolder;
  throw_error("file '", path.string(), "': a safetensors file with format '", format,
              "' and no config.json beside it: not a model Tritter reads (", kReadable, ")");
}

HeadChoice head_choice_from_name(const std::string& name) {
  if (name == "auto") return HeadChoice::Auto;
  if (name == "f32") return HeadChoice::F32;
  if (name == "i8") return HeadChoice::I8;
  if (name == "i4") return HeadChoice::I4;
  throw_error("head: found '", name, "', expected auto, f32, i8 or i4");
}

LayoutChoice layout_choice_from_name(const std::string& name) {
  if (name == "auto") return LayoutChoice::Auto;
  if (name == "t16") return LayoutChoice::T16;
  if (name == "t20") return LayoutChoice::T20;
  throw_error("ternary layout: found '", name, "', expected auto, t16 or t20");
}

TernaryLayout resolve_ternary_layout(LayoutChoice choice, const CpuFeatures& cpu) {
  if (choice == LayoutChoice::T16) return TernaryLayout::T16;
  if (choice == LayoutChoice::T20) return TernaryLayout::T20;
  const bool vnni = cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512vnni;
  return vnni ? TernaryLayout::T20 : TernaryLayout::T16;
}

void apply_head_choice(PackedModel& m, HeadChoice choice, const fs::path& path, MemoryAccount* account) {
  const HeadFormat stored = m.weights().head.format;
  if ((choice == HeadChoice::F32 && stored != HeadFormat::F32) || (choice == HeadChoice::I8 && stored == HeadFormat::I4)) {
    const bool want_f32 = choice == HeadChoice::F32;
    throw_error("model '", path.string(), "': packed with ", stored == HeadFormat::I8 ? "an int8" : "a 4-bit",
                " LM head, which cannot give back the ", want_f32 ? "f32" : "int8", " one (--head ",
                want_f32 ? "f32" : "i8", "); pack the checkpoint again with `tritter pack --head ",
                want_f32 ? "f32" : "i8", "`");
  }
  if (choice == HeadChoice::I8) m.quantize_head_int8(account);
  if (choice == HeadChoice::I4) m.quantize_head_int4(account);
}

LoadedModel load_any_model(const fs::path& path, MemoryAccount* account, const LoadOptions& options) {
  auto head_for = [&](bool stored_quantized) {
    if (options.head == HeadChoice::I4) return HeadFormat::I4;  // from the f32 rows, not from int8 ones
    if (options.head == HeadChoice::I8 || (options.head == HeadChoice::Auto && stored_quantized)) return HeadFormat::I8;
    return HeadFormat::F32;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const ModelFileKind kind = detect_model_file(path);
  auto finish = [&](PackedModel m, bool add_bos, fs::path folder) {
    m.use_ternary_layout(resolve_ternary_layout(options.layout, detect_cpu()), account);
    LoadedModel out{std::move(m), kind, add_bos, std::move(folder), 0.0};
    out.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
  };
  switch (kind) {
    case ModelFileKind::TritterPacked: {
      PackedModel m = PackedModel::open(path);
      apply_head_choice(m, options.head, path, account);
      const bool bos = m.file() ? packed_add_bos(*m.file()) : false;
      return finish(std::move(m), bos, {});
    }
    case ModelFileKind::TritterCheckpoint: {
      const SafeTensorsFile f(path);
      const TritterConfig c = config_from_metadata(f, kCheckpointFormat);
      check_checkpoint_tensors(f, c);
      PackedModel m = PackedModel::in_memory(c, [&](float* out, const TensorInfo& info, size_t) {
        checkpoint_tensor_values(f, info, out);
      }, PackOptions{head_for(false)}, account);
      return finish(std::move(m), checkpoint_add_bos(f), {});
    }
    case ModelFileKind::HfFolder: {
      const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
      bool bos = false;
      PackedModel m = load_hf_folder(dir, account, &bos, head_for(false));
      return finish(std::move(m), bos, dir);
    }
    case ModelFileKind::Gguf: {
      const GgufFile f(path);
      bool bos = false;
      PackedModel m = load_gguf_model(f, account, &bos, head_for(gguf_head_is_quantized(f)));
      return finish(std::move(m), bos, {});
    }
  }
  throw_error("unreachable");
}

PackedModel build_packed_model(const TritterConfig& c, const ForeignTensors& src, MemoryAccount* account,
                               HeadFormat head) {
  const auto table = tensor_table(c);
  std::vector<Buffer> owned(table.size());
  std::vector<float> sigma(table.size(), 0.0f);
  parallel_for(0, static_cast<int64_t>(table.size()), [&](int64_t ii, int) {
    const size_t i = static_cast<size_t>(ii);
    const TensorInfo& info = table[i];
    if (info.role == TensorRole::BitLinear) {
      const int64_t O = info.shape[0], I = info.shape[1];
      std::vector<int8_t> q(static_cast<size_t>(O * I));
      const std::optional<float> beta = src.ternary(info, q.data());
      if (beta) {
        if (!std::isfinite(*beta) || !(*beta > 0.0f)) {
          throw_error("tensor '", info.name, "': scale ", *beta, ", expected a finite value > 0");
        }
        sigma[i] = 1.0f / *beta;
      } else {
        std::vector<float> w(static_cast<size_t>(O * I));
        src.values(info, w.data());
        sigma[i] = ternary_sigma(w.data(), O * I);  // as tritter pack: σ = 1/β, β = absmean
        ternary_quantize(q.data(), w.data(), O * I, sigma[i]);
      }
      owned[i] = Buffer(ternary_matrix_bytes(O, I), MemCategory::Weights, account);
      ternary_matrix_pack(static_cast<uint8_t*>(owned[i].data()), q.data(), O, I);
    } else {
      owned[i] = Buffer(static_cast<size_t>(info.numel()) * sizeof(float), MemCategory::Weights, account);
      float* f = static_cast<float*>(owned[i].data());
      src.values(info, f);
      for (int64_t k = 0; k < info.numel(); ++k) {
        if (!std::isfinite(f[k])) throw_error("tensor '", info.name, "' element ", k, ": ", f[k], ", expected a finite value");
      }
    }
  });
  auto mw = std::make_unique<ModelWeights>();
  mw->config = c;
  mw->layers.resize(static_cast<size_t>(c.num_hidden_layers));
  size_t bytes = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    const TensorInfo& info = table[i];
    const void* p = owned[i].data();
    const float* f = static_cast<const float*>(p);
    switch (info.role) {
      case TensorRole::BitLinear: {
        TernaryMatrix* slot = layer_matrix_slot(mw->layers[info.layer], info.kind);
        TRITTER_CHECK(slot != nullptr, "unknown BitLinear kind ", info.kind);
        *slot = TernaryMatrix{static_cast<const uint8_t*>(p), info.shape[0], info.shape[1], sigma[i]};
        bytes += owned[i].bytes();
        break;
      }
      case TensorRole::Embedding:
        mw->embed = f;
        if (c.tie_word_embeddings) {
          mw->head.f32 = f;
          bytes += owned[i].bytes();
        }
        break;
      case TensorRole::LmHead:
        mw->head.f32 = f;
        bytes += owned[i].bytes();
        break;
      case TensorRole::Norm:
        if (info.kind == "log_scale") {
          mw->log_scale = f;
        } else if (info.layer < 0) {
          mw->final_norm = f;
        } else {
          const float** slot = layer_norm_slot(mw->layers[info.layer], info.kind);
          TRITTER_CHECK(slot != nullptr, "unknown norm kind ", info.kind);
          *slot = f;
        }
        bytes += owned[i].bytes();
        break;
    }
  }
  mw->bytes_per_token = bytes + static_cast<size_t>(c.hidden_size) * sizeof(float);
  PackedModel m = PackedModel::adopt(std::move(owned), std::move(mw));
  if (head == HeadFormat::I8) m.quantize_head_int8(account);
  if (head == HeadFormat::I4) m.quantize_head_int4(account);
  return m;
}

void ternary_matrix_codes(int8_t* codes, const TernaryMatrix& m) {
  ternary_matrix_unpack(codes, m);
}

float ternary_matrix_beta(const TernaryMatrix& m) {
  const float b0 = 1.0f / m.sigma;
  float b = b0;
  for (int k = 0; k < 4 && 1.0f / b != m.sigma; ++k) b = std::nextafter(b, 1.0f / b > m.sigma ? INFINITY : 0.0f);
  return 1.0f / b == m.sigma ? b : b0;
}

void model_head_values(float* out, const ModelWeights& w) {
  const int64_t V = w.config.vocab_size, D = w.config.hidden_size;
  TRITTER_CHECK(w.head.f32 || w.head.i8 || w.head.q4, "model has no head");
  for (int64_t v = 0; v < V; ++v) head_row_values(w.head, v, D, out + v * D);
}

void write_packed_weights(const fs::path& path, const ModelWeights& w, bool add_bos, const std::string& tokenizer_json,
                          const std::string& chat_template, TernaryLayout layout) {
  const TritterConfig& c = w.config;
  const auto table = tensor_table(c);
  auto plain = [&](const TensorInfo& info) -> const float* {
    if (info.role == TensorRole::Embedding) return w.embed;
    if (info.role == TensorRole::LmHead) return w.head.f32;
    if (info.kind == "log_scale") return w.log_scale;
    if (info.layer < 0) return w.final_norm;
    return *layer_norm_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
  };
  auto matrix = [&](const TensorInfo& info) -> const TernaryMatrix& {
    return *layer_matrix_slot(const_cast<LayerWeights&>(w.layers[info.layer]), info.kind);
  };
  const bool i8_head = w.head.format == HeadFormat::I8, i4_head = w.head.format == HeadFormat::I4;
  std::vector<SafeTensorOut> u8, f32;
  std::vector<float> betas(table.size());
  std::vector<float> head;
  std::vector<std::vector<uint8_t>> relaid;  // the matrices that run in the other layout than the file's
  relaid.reserve(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    const TensorInfo& info = table[i];
    if (info.role == TensorRole::BitLinear) {
      const TernaryMatrix& m = matrix(info);
      const int64_t tile_cols = layout == TernaryLayout::T20 ? kT20TileCols : kTernaryTileCols;
      const int64_t rows = (info.shape[0] + kTernaryTileRows - 1) / kTernaryTileRows * kTernaryTileRows;
      const int64_t cols = (info.shape[1] + tile_cols - 1) / tile_cols * (kTernaryTileBytes / kTernaryTileRows);
      const uint8_t* bytes = m.data;
      if (m.layout != layout) {
        std::vector<uint8_t>& out = relaid.emplace_back(ternary_matrix_bytes(m.rows, m.cols, layout));
        if (layout == TernaryLayout::T20) ternary_matrix_to_t20(out.data(), m.data, m.rows, m.cols);
        else ternary_matrix_from_t20(out.data(), m.data, m.rows, m.cols);
        bytes = out.data();
      }
      u8.push_back({qweight_name(info.name), DType::U8, {rows, cols}, bytes, {}});
      betas[i] = ternary_matrix_beta(m);
      f32.push_back({weight_scale_name(info.name), DType::F32, {1}, &betas[i], {}});
      continue;
    }
    if (info.role == TensorRole::LmHead && (i8_head || i4_head)) continue;  // the narrow form below, as the packer
    const float* p = plain(info);
    if (info.role == TensorRole::LmHead && !p) {
      head.resize(static_cast<size_t>(info.numel()));
      model_head_values(head.data(), w);
      p = head.data();
    }
    f32.push_back({info.name, DType::F32, info.shape, p, {}});
  }
  const int64_t V = c.vocab_size, D = c.hidden_size;
  if (i8_head || i4_head) f32.push_back({"lm_head.row_scale", DType::F32, {V}, w.head.row_scale, {}});
  u8.insert(u8.end(), f32.begin(), f32.end());
  if (i8_head) u8.push_back({"lm_head.qweight", DType::I8, {V, D}, w.head.i8, {}});
  if (i4_head) {
    u8.push_back({"lm_head.q4", DType::U8, {V, head_i4_row_bytes(D)}, w.head.q4, {}});
    u8.push_back({"lm_head.group_mult", DType::U8, {V, head_i4_groups(D)}, w.head.mult, {}});
  }
  PackOptions meta{w.head.format, tokenizer_json, add_bos, chat_template};
  meta.layout = layout;
  write_safetensors(path, u8, packed_metadata(c, meta));
}

}  // namespace tritter
