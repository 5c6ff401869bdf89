#include "model/packed_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory.h"
#include "io/mapped_file.h"
#include "kernels/nn.h"
#include "kernels/parallel.h"
#include "kernels/quantize.h"
#include "model/checkpoint.h"

namespace tritter {

namespace {

enum class EntryKind { QWeight, Scale, Plain, HeadQ, HeadScale, HeadQ4, HeadMult };

struct PackedEntry {
  std::string name;
  DType dtype;
  Shape shape;
  EntryKind kind;
  size_t index;  // into the tensor table (for the head's entries: the head's source tensor)
};

// (rows padded to 16, 4 bytes per tile per row): ternary_matrix_bytes(O, I, layout) bytes.
Shape qweight_shape(const Shape& w, TernaryLayout layout) {
  const int64_t O = w[0], I = w[1];
  const int64_t tile_cols = layout == TernaryLayout::T20 ? kT20TileCols : kTernaryTileCols;
  return {(O + kTernaryTileRows - 1) / kTernaryTileRows * kTernaryTileRows,
          (I + tile_cols - 1) / tile_cols * (kTernaryTileBytes / kTernaryTileRows)};
}

// The file's tensors in file order: U8 qweights, then F32, then the narrow head's byte tensors (I8, or the 4-bit
// head's U8 levels and multipliers; docs/model-files.md).
std::vector<PackedEntry> packed_plan(const TritterConfig& c, const std::vector<TensorInfo>& table,
                                     const PackOptions& options) {
  if (!c.quant) throw_error("pack: config has quant=false: the packed format holds ternary models only");
  std::vector<PackedEntry> u8, f32, i8;
  size_t head_index = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    const TensorInfo& t = table[i];
    if (t.role == TensorRole::BitLinear) {
      u8.push_back({qweight_name(t.name), DType::U8, qweight_shape(t.shape, options.layout), EntryKind::QWeight, i});
      f32.push_back({weight_scale_name(t.name), DType::F32, {1}, EntryKind::Scale, i});
      continue;
    }
    if (t.role == TensorRole::LmHead || (t.role == TensorRole::Embedding && c.tie_word_embeddings)) head_index = i;
    if (t.role == TensorRole::LmHead && options.head != HeadFormat::F32) continue;  // replaced by the narrow form
    f32.push_back({t.name, DType::F32, t.shape, EntryKind::Plain, i});
  }
  if (options.head == HeadFormat::I8) {
    f32.push_back({"lm_head.row_scale", DType::F32, {c.vocab_size}, EntryKind::HeadScale, head_index});
    i8.push_back({"lm_head.qweight", DType::I8, {c.vocab_size, c.hidden_size}, EntryKind::HeadQ, head_index});
  } else if (options.head == HeadFormat::I4) {
    const int64_t V = c.vocab_size, D = c.hidden_size;
    f32.push_back({"lm_head.row_scale", DType::F32, {V}, EntryKind::HeadScale, head_index});
    i8.push_back({"lm_head.q4", DType::U8, {V, head_i4_row_bytes(D)}, EntryKind::HeadQ4, head_index});
    i8.push_back({"lm_head.group_mult", DType::U8, {V, head_i4_groups(D)}, EntryKind::HeadMult, head_index});
  }
  std::vector<PackedEntry> all = std::move(u8);
  all.insert(all.end(), f32.begin(), f32.end());
  all.insert(all.end(), i8.begin(), i8.end());
  return all;
}

// β exactly as ternary_sigma forms it before the division (training-spec §3), so 1.0f/β reproduces σ.
float absmean_beta(const float* w, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(w[i]));
  return std::fmax(static_cast<float>(sum / static_cast<double>(n)), kQuantEps);
}

// Streams every entry of the plan to `sink`, one fp32 tensor produced at a time. QWeight and Plain entries of
// different tensors may run concurrently (in_memory does); Scale and the head's entries come after, in plan order.
class PackStream {
 public:
  PackStream(const TritterConfig& c, const std::vector<TensorInfo>& table, const TensorProducer& produce,
             const PackOptions& options)
      : c_(c), table_(table), produce_(produce), beta_(table.size(), 0.0f), head4_(options.head == HeadFormat::I4),
        layout_(options.layout) {}

  using Sink = std::function<void(const void*, size_t)>;

  void write(const PackedEntry& e, const Sink& sink) {
    const TensorInfo& info = table_[e.index];
    switch (e.kind) {
      case EntryKind::QWeight: {
        std::vector<float> w(info.numel());
        produce_(w.data(), info, e.index);
        const float sigma = ternary_sigma(w.data(), info.numel());  // throws on NaN/Inf, naming the element
        const float beta = absmean_beta(w.data(), info.numel());
        TRITTER_CHECK(1.0f / beta == sigma, "β ", beta, " does not reproduce σ ", sigma, " for ", info.name);
        std::vector<int8_t> q(info.numel());
        ternary_quantize(q.data(), w.data(), info.numel(), sigma);
        std::vector<uint8_t> packed(ternary_matrix_bytes(info.shape[0], info.shape[1]));
        ternary_matrix_pack(packed.data(), q.data(), info.shape[0], info.shape[1]);
        if (layout_ == TernaryLayout::T20) {
          std::vector<uint8_t> t20(ternary_matrix_bytes(info.shape[0], info.shape[1], TernaryLayout::T20));
          ternary_matrix_to_t20(t20.data(), packed.data(), info.shape[0], info.shape[1]);
          packed = std::move(t20);
        }
        beta_[e.index] = beta;
        sink(packed.data(), packed.size());
        break;
      }
      case EntryKind::Scale: {
        const float beta = beta_[e.index];
        TRITTER_CHECK(beta > 0.0f, "scale of ", info.name, " written before its qweight");
        sink(&beta, sizeof beta);
        break;
      }
      case EntryKind::Plain: {
        std::vector<float> w(info.numel());
        produce_(w.data(), info, e.index);
        for (int64_t i = 0, n = info.numel(); i < n; ++i) {
          if (!std::isfinite(w[i])) throw_error("pack: tensor '", info.name, "' element ", i, ": found ", w[i], ", expected a finite value");
        }
        sink(w.data(), w.size() * sizeof(float));
        break;
      }
      case EntryKind::HeadScale: {
        std::vector<float> w(info.numel());
        produce_(w.data(), info, e.index);
        const int64_t V = info.shape[0], D = info.shape[1];
        if (c_.cosine_head()) {  // the int8 table of a cosine head holds the unit rows Ê
          std::vector<float> r(static_cast<size_t>(V)), raw = w;
          Context ctx;
          l2norm_rows_forward(ctx, w.data(), r.data(), raw.data(), V, D);
        }
        std::vector<float> scale(V);
        const std::string where = "pack: tensor '" + info.name + "'";
        if (head4_) {
          head_q4_.resize(static_cast<size_t>(V * head_i4_row_bytes(D)));
          head_mult_.resize(static_cast<size_t>(V * head_i4_groups(D)));
          head_i4_quantize_rows(head_q4_.data(), head_mult_.data(), scale.data(), w.data(), V, D, where.c_str());
        } else {
          head_q_.resize(V * D);
          quantize_head_rows(head_q_.data(), scale.data(), w.data(), V, D, where);
        }
        sink(scale.data(), scale.size() * sizeof(float));
        break;
      }
      case EntryKind::HeadQ:
        TRITTER_CHECK(!head_q_.empty(), "int8 head written before its scales");
        sink(head_q_.data(), head_q_.size());
        head_q_ = {};
        break;
      case EntryKind::HeadQ4:
        TRITTER_CHECK(!head_q4_.empty(), "4-bit head written before its scales");
        sink(head_q4_.data(), head_q4_.size());
        head_q4_ = {};
        break;
      case EntryKind::HeadMult:
        TRITTER_CHECK(!head_mult_.empty(), "4-bit head multipliers written before its scales");
        sink(head_mult_.data(), head_mult_.size());
        head_mult_ = {};
        break;
    }
  }

 private:
  const TritterConfig& c_;
  const std::vector<TensorInfo>& table_;
  const TensorProducer& produce_;
  std::vector<float> beta_;  // per table index; QWeight entries of different tensors may run concurrently
  std::vector<int8_t> head_q_;
  std::vector<uint8_t> head_q4_, head_mult_;
  bool head4_;
  TernaryLayout layout_;
};

// Looks a tensor up by name, dtype and shape; returns its data (throws Error naming the source and tensor).
using Lookup = std::function<const uint8_t*(const PackedEntry&)>;

bool has_code_11(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i] & (p[i] >> 1) & 0x55;
  return acc != 0;
}

}  // namespace

void check_t20_codes(const uint8_t* p, size_t n, const std::string& where) {
  if (const int64_t bad = ternary_t20_first_invalid(p, n); bad >= 0) {
    throw_error(where, ": byte ", bad, ": found ", static_cast<int>(p[bad]),
                ", expected a T20 code (one of the 243 bytes (256·v + 242) / 243, v = 0..242)");
  }
}

namespace {

std::unique_ptr<ModelWeights> bind_weights(const TritterConfig& c, const std::vector<TensorInfo>& table,
                                   const std::vector<PackedEntry>& plan, const Lookup& lookup,
                                   const std::string& where, TernaryLayout layout) {
  auto mw = std::make_unique<ModelWeights>();
  mw->config = c;
  mw->layers.resize(c.num_hidden_layers);
  std::map<size_t, const uint8_t*> qdata;
  std::map<size_t, float> sigma;
  size_t bytes = 0;
  bool i8_head = false;  // any narrow head (int8 or 4-bit): the f32 rows are not the head
  for (const PackedEntry& e : plan) i8_head = i8_head || e.kind == EntryKind::HeadQ || e.kind == EntryKind::HeadQ4;
  for (const PackedEntry& e : plan) {
    const uint8_t* p = lookup(e);
    const TensorInfo& info = table[e.index];
    const size_t nbytes = static_cast<size_t>(shape_numel(e.shape)) * dtype_size(e.dtype);
    if (e.dtype == DType::F32 && reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) {
      throw_error(where, ": tensor '", e.name, "': data not 4-byte aligned (write F32 tensors first)");
    }
    const float* f = reinterpret_cast<const float*>(p);
    switch (e.kind) {
      case EntryKind::QWeight:
        if (layout == TernaryLayout::T16 && has_code_11(p, nbytes)) {
          throw_error(where, ": tensor '", e.name, "': invalid 2-bit code 11");
        }
        if (layout == TernaryLayout::T20) check_t20_codes(p, nbytes, where + ": tensor '" + e.name + "'");
        qdata[e.index] = p;
        bytes += nbytes;
        break;
      case EntryKind::Scale: {
        float beta;
        std::memcpy(&beta, p, sizeof beta);
        if (!std::isfinite(beta) || !(beta > 0.0f)) {
          throw_error(where, ": tensor '", e.name, "': scale ", beta, ", expected a finite value > 0");
        }
        sigma[e.index] = 1.0f / beta;
        break;
      }
      case EntryKind::HeadScale:
        for (int64_t v = 0; v < c.vocab_size; ++v) {
          if (!std::isfinite(f[v]) || !(f[v] > 0.0f)) {
            throw_error(where, ": tensor '", e.name, "' row ", v, ": scale ", f[v], ", expected a finite value > 0");
          }
        }
        mw->head.row_scale = f;
        bytes += nbytes;
        break;
      case EntryKind::HeadQ:
        mw->head.format = HeadFormat::I8;
        mw->head.i8 = reinterpret_cast<const int8_t*>(p);
        bytes += nbytes;
        break;
      case EntryKind::HeadQ4:
        check_head_i4_levels(p, c.vocab_size, c.hidden_size, 0, where + ": tensor '" + e.name + "'");
        mw->head.format = HeadFormat::I4;
        mw->head.q4 = p;
        bytes += nbytes;
        break;
      case EntryKind::HeadMult:
        check_head_i4_mults(p, c.vocab_size, c.hidden_size, 0, where + ": tensor '" + e.name + "'");
        mw->head.mult = p;
        bytes += nbytes;
        break;
      case EntryKind::Plain: {
        // Norm gains, embeddings and the f32 head feed every token: a NaN here is empty text, not an error, later.
        if (const int64_t bad = first_non_finite(f, shape_numel(e.shape)); bad >= 0) {
          throw_error(where, ": tensor '", e.name, "' element ", bad, ": found ", f[bad], ", expected a finite value");
        }
        if (info.role == TensorRole::Embedding) {
          mw->embed = f;
          if (c.tie_word_embeddings && !i8_head) mw->head.f32 = f;
        } else if (info.role == TensorRole::LmHead) {
          mw->head.f32 = f;
        } else if (info.kind == "log_scale") {
          mw->log_scale = f;
        } else if (info.layer < 0) {
          mw->final_norm = f;
        } else {
          LayerWeights& L = mw->layers[info.layer];
          const std::string& k = info.kind;
          const float** slot = layer_norm_slot(L, k);
          TRITTER_CHECK(slot != nullptr, "unknown norm kind ", k);
          *slot = f;
        }
        if (info.role == TensorRole::Norm) bytes += nbytes;
        if (info.role == TensorRole::LmHead || (info.role == TensorRole::Embedding && c.tie_word_embeddings && !i8_head)) {
          bytes += nbytes;
        }
        break;
      }
    }
  }
  for (const auto& [index, data] : qdata) {
    const TensorInfo& info = table[index];
    const TernaryMatrix m{data, info.shape[0], info.shape[1], sigma.at(index), layout};
    if (info.layer < 0) continue;
    LayerWeights& L = mw->layers[info.layer];
    const std::string& k = info.kind;
    TernaryMatrix* slot = layer_matrix_slot(L, k);
    TRITTER_CHECK(slot != nullptr, "unknown BitLinear kind ", k);
    *slot = m;
  }
  mw->bytes_per_token = bytes + static_cast<size_t>(c.hidden_size) * sizeof(float);  // + one embedding row
  return mw;
}

}  // namespace

std::map<std::string, std::string> packed_metadata(const TritterConfig& c, const PackOptions& options) {
  std::map<std::string, std::string> meta{{"format", kPackedFormat},
                                          {"config", config_to_json(c, /*model_only=*/true).dump()},
                                          {"qweight_layout", options.layout == TernaryLayout::T20 ? "T20" : "T16"},
                                          {"head", head_format_name(options.head)},
                                          {"add_bos_token", options.add_bos ? "true" : "false"}};
  if (!options.tokenizer_json.empty()) meta[kTokenizerMetadataKey] = options.tokenizer_json;
  if (!options.tokenizer_json.empty() && !options.chat_template.empty()) {
    meta[kChatTemplateMetadataKey] = options.chat_template;
  }
  return meta;
}

void quantize_head_rows(int8_t* q, float* scale, const float* w, int64_t V, int64_t D, const std::string& where) {
  parallel_for(0, V, [&](int64_t v, int) {
    const float* row = w + v * D;
    float a = 0.0f;
    for (int64_t d = 0; d < D; ++d) {
      if (!std::isfinite(row[d])) throw_error(where, " row ", v, ": found ", row[d], ", expected a finite value");
      a = std::fmax(a, std::fabs(row[d]));
    }
    scale[v] = a > 0.0f ? a / 127.0f : 1.0f;
    for (int64_t d = 0; d < D; ++d) {
      const float r = std::nearbyint(row[d] / scale[v]);
      q[v * D + d] = static_cast<int8_t>(std::fmin(std::fmax(r, -127.0f), 127.0f));
    }
  });
}

void check_head_i4_levels(const uint8_t* p, int64_t V, int64_t D, int64_t row0, const std::string& where) {
  const int64_t rb = head_i4_row_bytes(D), padded = head_i4_groups(D) * kHeadI4Group;
  for (int64_t v = 0; v < V; ++v) {
    const uint8_t* row = p + v * rb;
    for (int64_t i = 0; i < rb; ++i) {
      if ((row[i] & 0x0F) != 0 && (row[i] & 0xF0) != 0) continue;  // the common case; padding checked below
      const int64_t col = 32 * (i / 16) + i % 16 + ((row[i] & 0x0F) == 0 ? 0 : 16);
      throw_error(where, " row ", row0 + v, " column ", col, ": level nibble 0, expected 1..15 (levels -7..7)");
    }
    for (int64_t col = D; col < padded; ++col) {
      if (const int q = head_i4_level(row, col); q != 0) {
        throw_error(where, " row ", row0 + v, " padding column ", col, ": nibble ", q + 8, ", expected 8 (level 0)");
      }
    }
  }
}

void check_head_i4_mults(const uint8_t* mult, int64_t V, int64_t D, int64_t row0, const std::string& where) {
  const int64_t G = head_i4_groups(D);
  for (int64_t i = 0; i < V * G; ++i) {
    if (mult[i] == 0) throw_error(where, " row ", row0 + i / G, " group ", i % G, ": multiplier 0, expected 1..255");
  }
}

TernaryLayout qweight_layout_of(const SafeTensorsFile& f) {
  const auto it = f.metadata().find("qweight_layout");
  const std::string found = it == f.metadata().end() ? "" : it->second;
  if (found == "T16") return TernaryLayout::T16;
  if (found == "T20") return TernaryLayout::T20;
  throw_error("file '", f.source(), "': qweight_layout '", found, "', expected 'T16' or 'T20'");
}

HeadFormat head_format_from_name(const std::string& name) {
  if (name == "f32") return HeadFormat::F32;
  if (name == "i8") return HeadFormat::I8;
  if (name == "i4") return HeadFormat::I4;
  throw_error("head format: found '", name, "', expected f32, i8 or i4");
}

const char* head_format_name(HeadFormat f) {
  return f == HeadFormat::I8 ? "i8" : f == HeadFormat::I4 ? "i4" : "f32";
}

std::string qweight_name(const std::string& weight_name) {
  TRITTER_CHECK(weight_name.size() > 7 && weight_name.ends_with(".weight"), weight_name);
  return weight_name.substr(0, weight_name.size() - 7) + ".qweight";
}

std::string weight_scale_name(const std::string& weight_name) {
  TRITTER_CHECK(weight_name.size() > 7 && weight_name.ends_with(".weight"), weight_name);
  return weight_name.substr(0, weight_name.size() - 7) + ".weight_scale";
}

void write_packed_model(const std::filesystem::path& path, const TritterConfig& config, const TensorProducer& produce,
                        const PackOptions& options) {
  const auto table = tensor_table(config);
  const auto plan = packed_plan(config, table, options);
  auto stream = std::make_shared<PackStream>(config, table, produce, options);
  std::vector<SafeTensorOut> out;
  out.reserve(plan.size());
  for (const PackedEntry& e : plan) {
    out.push_back({e.name, e.dtype, e.shape, nullptr, [stream, e](const auto& sink) { stream->write(e, sink); }});
  }
  write_safetensors(path, out, packed_metadata(config, options));
}

void pack_checkpoint(const std::filesystem::path& path, const TritterConfig& config, std::span<const float> params,
                     const PackOptions& options) {
  if (static_cast<int64_t>(params.size()) != parameter_count(config)) {
    throw_error("pack '", path.string(), "': found ", params.size(), " parameters, expected ", parameter_count(config));
  }
  write_packed_model(path, config, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, params.data() + info.offset, info.numel() * sizeof(float));
  }, options);
}

PackedModel PackedModel::open(const std::filesystem::path& path) {
  PackedModel m;
  m.file_ = std::make_unique<SafeTensorsFile>(path);
  const SafeTensorsFile& f = *m.file_;
  const std::string where = "file '" + f.source() + "'";
  const TritterConfig c = config_from_metadata(f, kPackedFormat);
  PackOptions options;
  options.layout = qweight_layout_of(f);
  auto head = f.metadata().find("head");
  if (head != f.metadata().end()) options.head = head_format_from_name(head->second);
  // What the config asks for against what the file holds, before the table and the layer list are sized from it.
  const int64_t needed = packed_model_bytes(c, options);
  if (static_cast<double>(needed) > static_cast<double>(f.file_bytes())) {
    throw_error(where, ": its config needs ", needed, " bytes of tensors (", format_bytes(static_cast<double>(needed)),
                "), expected at most what the file holds: ", f.file_bytes(), " bytes");
  }
  const auto table = tensor_table(c);
  const auto plan = packed_plan(c, table, options);
  std::set<std::string> known;
  for (const auto& e : plan) known.insert(e.name);
  for (const auto& t : f.tensors()) {
    if (!known.count(t.name)) throw_error(where, ": unexpected tensor '", t.name, "' (not in the packed table)");
  }
  m.weights_ = bind_weights(c, table, plan, [&](const PackedEntry& e) { return f.expect(e.name, e.dtype, e.shape).data; },
                    where, options.layout);
  m.owned_.emplace_back();
  bind_cosine_head(*m.weights_, m.owned_.back(), nullptr);
  return m;
}

int64_t packed_model_bytes(const TritterConfig& config, const PackOptions& options) {
  int64_t bytes = 0;
  for (const PackedEntry& e : packed_plan(config, tensor_table(config), options)) {
    bytes += shape_numel(e.shape) * static_cast<int64_t>(dtype_size(e.dtype));
  }
  return bytes;
}

int64_t packed_layer_bytes(const TritterConfig& config, int layer, TernaryLayout layout) {
  const auto table = tensor_table(config);
  int64_t bytes = 0;
  PackOptions options;
  options.layout = layout;
  for (const PackedEntry& e : packed_plan(config, table, options)) {
    if (table[e.index].layer == layer) bytes += shape_numel(e.shape) * static_cast<int64_t>(dtype_size(e.dtype));
  }
  return bytes;
}

PackedModel PackedModel::in_memory(const TritterConfig& config, const TensorProducer& produce,
                                   const PackOptions& options, MemoryAccount* account) {
  PackedModel m;
  const auto table = tensor_table(config);
  const auto plan = packed_plan(config, table, options);
  PackStream stream(config, table, produce, options);
  std::map<std::string, size_t> index;
  for (const PackedEntry& e : plan) {
    index[e.name] = m.owned_.size();
    m.owned_.emplace_back(static_cast<size_t>(shape_numel(e.shape)) * dtype_size(e.dtype), MemCategory::Weights, account);
  }
  auto fill = [&](size_t i) {
    const PackedEntry& e = plan[i];
    Buffer& b = m.owned_[i];
    size_t pos = 0;
    auto* dst = static_cast<uint8_t*>(b.data());
    stream.write(e, [&](const void* p, size_t n) {
      TRITTER_CHECK(pos + n <= b.bytes(), e.name, ": producer overran ", b.bytes(), " bytes");
      std::memcpy(dst + pos, p, n);
      pos += n;
    });
    TRITTER_CHECK(pos == b.bytes(), e.name, ": producer wrote ", pos, " of ", b.bytes(), " bytes");
  };
  // Independent tensors in parallel (a 2B-shape model is 2.4 G weights to quantize), the dependent ones after.
  auto independent = [&](size_t i) { return plan[i].kind == EntryKind::QWeight || plan[i].kind == EntryKind::Plain; };
  parallel_for(0, static_cast<int64_t>(plan.size()), [&](int64_t i, int) {
    if (independent(size_t(i))) fill(size_t(i));
  });
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!independent(i)) fill(i);
  }
  m.weights_ = bind_weights(config, table, plan, [&](const PackedEntry& e) {
    return static_cast<const uint8_t*>(m.owned_[index.at(e.name)].data());
  }, "in-memory model", options.layout);
  m.owned_.emplace_back();
  bind_cosine_head(*m.weights_, m.owned_.back(), account);
  return m;
}

PackedModel PackedModel::adopt(std::vector<Buffer> owned, std::unique_ptr<ModelWeights> weights) {
  PackedModel m;
  m.owned_ = std::move(owned);
  m.weights_ = std::move(weights);
  if (m.weights_->config.cosine_head() && !(m.weights_->head.cos_scale > 0.0f)) {
    m.owned_.emplace_back();
    bind_cosine_head(*m.weights_, m.owned_.back(), nullptr);
  }
  return m;
}

void PackedModel::quantize_head_int8(MemoryAccount* account) {
  HeadWeights& h = weights_->head;
  if (h.format == HeadFormat::I8) return;
  TRITTER_CHECK(h.f32 != nullptr, "quantize_head_int8: the model has no f32 head");
  const int64_t V = weights_->config.vocab_size, D = weights_->config.hidden_size;
  Buffer q(static_cast<size_t>(V * D), MemCategory::Weights, account);
  Buffer scale(static_cast<size_t>(V) * sizeof(float), MemCategory::Weights, account);
  quantize_head_rows(static_cast<int8_t*>(q.data()), scale.as<float>().data(), h.f32, V, D, "LM head");
  if (h.f32 != weights_->embed) {
    for (Buffer& b : owned_) {
      if (b.data() == h.f32) b = Buffer();
    }
  }
  weights_->bytes_per_token += q.bytes() + scale.bytes() - static_cast<size_t>(V * D) * sizeof(float);
  h.format = HeadFormat::I8;
  h.f32 = nullptr;
  h.i8 = static_cast<const int8_t*>(q.data());
  h.row_scale = scale.as<float>().data();
  owned_.push_back(std::move(q));
  owned_.push_back(std::move(scale));
}

void PackedModel::quantize_head_int4(MemoryAccount* account) {
  HeadWeights& h = weights_->head;
  if (h.format == HeadFormat::I4) return;
  TRITTER_CHECK(h.f32 != nullptr || h.i8 != nullptr, "quantize_head_int4: the model has no head");
  const int64_t V = weights_->config.vocab_size, D = weights_->config.hidden_size;
  const int64_t G = head_i4_groups(D), row_bytes = head_i4_row_bytes(D);
  Buffer q(static_cast<size_t>(V * row_bytes), MemCategory::Weights, account);
  Buffer mult(static_cast<size_t>(V * G), MemCategory::Weights, account);
  Buffer scale(static_cast<size_t>(V) * sizeof(float), MemCategory::Weights, account);
  auto* qp = static_cast<uint8_t*>(q.data());
  auto* kp = static_cast<uint8_t*>(mult.data());
  float* sp = scale.as<float>().data();
  if (h.format == HeadFormat::F32) {
    head_i4_quantize_rows(qp, kp, sp, h.f32, V, D, "LM head");
  } else {  // an int8 head: its values, a block of rows at a time (no f32 copy of the whole head)
    constexpr int64_t kRows = 1024;
    std::vector<float> rows(static_cast<size_t>(std::min(V, kRows) * D));
    for (int64_t v0 = 0; v0 < V; v0 += kRows) {
      const int64_t n = std::min(kRows, V - v0);
      for (int64_t v = 0; v < n; ++v) head_row_values(h, v0 + v, D, rows.data() + v * D);
      head_i4_quantize_rows(qp + v0 * row_bytes, kp + v0 * G, sp + v0, rows.data(), n, D, "LM head");
    }
  }
  const size_t old_bytes = h.format == HeadFormat::F32 ? static_cast<size_t>(V * D) * sizeof(float)
                                                       : static_cast<size_t>(V * D + V * 4);
  for (Buffer& b : owned_) {  // the old head's buffers this model owns (not the embedding, not a mapped file)
    const void* p = b.data();
    if ((p == h.f32 && h.f32 != weights_->embed) || (p != nullptr && (p == h.i8 || p == h.row_scale))) b = Buffer();
  }
  weights_->bytes_per_token += q.bytes() + mult.bytes() + scale.bytes() - old_bytes;
  h.format = HeadFormat::I4;
  h.f32 = nullptr;
  h.i8 = nullptr;
  h.q4 = qp;
  h.mult = kp;
  h.row_scale = sp;
  owned_.push_back(std::move(q));
  owned_.push_back(std::move(mult));
  owned_.push_back(std::move(scale));
}

void PackedModel::use_ternary_layout(TernaryLayout layout, MemoryAccount* account) {
  std::vector<TernaryMatrix*> mats;
  for (LayerWeights& L : weights_->layers) {
    for (Proj p : kProjs) {
      TernaryMatrix& m = layer_matrix(L, p);
      if (m.data != nullptr && m.layout != layout) mats.push_back(&m);
    }
  }
  if (mats.empty()) return;
  // Each new buffer is allocated (and zeroed, so resident) just before its matrix is re-laid out, and a mapped
  // matrix's pages are dropped just after: the peak holds a matrix or two twice, not the model (MemoryAccount is
  // atomic).
  std::vector<Buffer> fresh(mats.size());
  parallel_for(0, static_cast<int64_t>(mats.size()), [&](int64_t i, int) {
    const TernaryMatrix& m = *mats[static_cast<size_t>(i)];
    Buffer& buf = fresh[static_cast<size_t>(i)];
    buf = Buffer(ternary_matrix_bytes(m.rows, m.cols, layout), MemCategory::Weights, account);
    auto* out = static_cast<uint8_t*>(buf.data());
    if (layout == TernaryLayout::T20) {
      ternary_matrix_to_t20(out, m.data, m.rows, m.cols);
    } else {
      ternary_matrix_from_t20(out, m.data, m.rows, m.cols);
    }
    if (file_ != nullptr && file_->maps(m.data)) drop_mapped_pages(m.data, ternary_matrix_bytes(m.rows, m.cols, m.layout));
  });
  for (size_t i = 0; i < mats.size(); ++i) {
    TernaryMatrix& m = *mats[i];
    const size_t old_bytes = ternary_matrix_bytes(m.rows, m.cols, m.layout);
    for (Buffer& b : owned_) {
      if (b.data() == m.data) b = Buffer();
    }
    weights_->bytes_per_token += fresh[i].bytes() - old_bytes;
    m.data = static_cast<const uint8_t*>(fresh[i].data());
    m.layout = layout;
    owned_.push_back(std::move(fresh[i]));
  }
}

float cosine_head_scale(const TritterConfig& c, float log_scale) {
  return static_cast<float>(std::clamp(std::exp(static_cast<double>(log_scale)), c.cos_scale_min, c.cos_scale_max));
}

void bind_cosine_head(ModelWeights& w, Buffer& unit, MemoryAccount* account) {
  const TritterConfig& c = w.config;
  if (!c.cosine_head()) return;
  TRITTER_CHECK(w.log_scale != nullptr && w.embed != nullptr, "cosine head: log_scale or the embedding is unbound");
  w.head.cos_scale = cosine_head_scale(c, *w.log_scale);
  if (w.head.format != HeadFormat::F32) return;
  const int64_t V = c.vocab_size, D = c.hidden_size;
  unit = Buffer(static_cast<size_t>(V * D) * sizeof(float), MemCategory::Weights, account);
  std::vector<float> r(static_cast<size_t>(V));
  Context ctx;
  l2norm_rows_forward(ctx, unit.as<float>().data(), r.data(), w.embed, V, D);
  w.head.f32 = unit.as<float>().data();
}

TernaryMatrix& layer_matrix(LayerWeights& L, Proj p) {
  return L.proj(p);
}

const TernaryMatrix& layer_matrix(const LayerWeights& L, Proj p) {
  return layer_matrix(const_cast<LayerWeights&>(L), p);  // the same field, read only
}

TernaryMatrix* layer_matrix_slot(LayerWeights& L, const std::string& k) { return L.proj_slot(k); }

const float** layer_norm_slot(LayerWeights& L, const std::string& k) { return L.norm_slot(k); }

std::string tritter_file_tokenizer_json(const SafeTensorsFile& file) {
  auto it = file.metadata().find(kTokenizerMetadataKey);
  return it == file.metadata().end() ? std::string() : it->second;
}

bool checkpoint_add_bos(const SafeTensorsFile& file) {
  auto it = file.metadata().find("add_bos_token");
  return it != file.metadata().end() && it->second == "true";
}

PackOptions checkpoint_pack_options(const SafeTensorsFile& checkpoint, HeadFormat head) {
  return PackOptions{head, tritter_file_tokenizer_json(checkpoint), checkpoint_add_bos(checkpoint)};
}

bool packed_add_bos(const SafeTensorsFile& file) {
  auto it = file.metadata().find("add_bos_token");
  return it == file.metadata().end() || it->second == "true";
}

}  // namespace tritter
