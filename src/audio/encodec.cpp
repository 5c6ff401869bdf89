// EnCodec inference (audio/encodec.h): the transformers module lists rebuilt from config.json, their tensors loaded
// by name, and the causal padding and trimming rules of transformers' EncodecConv1d / EncodecConvTranspose1d.
#include "audio/encodec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/memory.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "kernels/conv.h"

namespace tritter::audio {

int64_t EncodecConfig::hop() const {
  int64_t h = 1;
  for (int r : upsampling_ratios) h *= r;
  return h;
}
int EncodecConfig::frame_rate() const {
  return static_cast<int>((sampling_rate + hop() - 1) / hop());
}
int EncodecConfig::codebooks_for(double kbps) const {
  const double per_q = std::log2(static_cast<double>(codebook_size)) * frame_rate();
  const double n = std::floor(kbps * 1000.0 / per_q);
  return n >= 1 ? static_cast<int>(std::min(n, 65536.0)) : 1;  // NaN and tiny bandwidths: one codebook
}
int EncodecConfig::max_codebooks() const {
  double bw = 0;
  for (double b : target_bandwidths) bw = std::max(bw, b);
  return codebooks_for(bw);
}

EncodecConfig parse_encodec_config(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw_error("encodec config '", source, "': not JSON: ", e.what());
  }
  if (!j.is_object()) throw_error("encodec config '", source, "': found ", j.type_name(), ", expected an object");
  EncodecConfig c;
  auto get_int = [&](const char* key, int& out, int lo, int hi) {
    if (!j.contains(key)) return;
    if (!j[key].is_number_integer()) throw_error("encodec config '", source, "': ", key, ": found ", j[key].dump(), ", expected an integer");
    const int64_t v = j[key].get<int64_t>();
    if (v < lo || v > hi) throw_error("encodec config '", source, "': ", key, ": found ", v, ", expected ", lo, " to ", hi);
    out = static_cast<int>(v);
  };
  auto expect_value = [&](const char* key, const nlohmann::json& want) {
    if (j.contains(key) && j[key] != want) {
      throw_error("encodec config '", source, "': ", key, ": found ", j[key].dump(), ", expected ", want.dump(),
                  " (Tritter runs the causal, weight-normalized, mono EnCodec)");
    }
  };
  if (j.contains("model_type") && j["model_type"] != "encodec") {
    throw_error("encodec config '", source, "': model_type: found ", j["model_type"].dump(), ", expected \"encodec\"");
  }
  get_int("audio_channels", c.audio_channels, 1, 1);
  get_int("num_filters", c.num_filters, 1, 4096);
  get_int("kernel_size", c.kernel_size, 1, 64);
  get_int("last_kernel_size", c.last_kernel_size, 1, 64);
  get_int("residual_kernel_size", c.residual_kernel_size, 1, 64);
  get_int("dilation_growth_rate", c.dilation_growth_rate, 1, 16);
  get_int("num_residual_layers", c.num_residual_layers, 0, 16);
  get_int("compress", c.compress, 1, 64);
  get_int("num_lstm_layers", c.num_lstm_layers, 1, 8);
  get_int("hidden_size", c.hidden_size, 1, 8192);
  get_int("codebook_size", c.codebook_size, 2, 1 << 20);
  get_int("sampling_rate", c.sampling_rate, 1, 768000);
  expect_value("use_causal_conv", true);
  expect_value("norm_type", "weight_norm");
  expect_value("pad_mode", "reflect");
  expect_value("normalize", false);
  if (j.contains("chunk_length_s") && !j["chunk_length_s"].is_null()) expect_value("chunk_length_s", nullptr);
  if (j.contains("codebook_dim") && j["codebook_dim"] != c.hidden_size) {
    throw_error("encodec config '", source, "': codebook_dim: found ", j["codebook_dim"].dump(), ", expected ",
                c.hidden_size, " (the hidden_size)");
  }
  auto get_bool = [&](const char* key, bool& out) {
    if (!j.contains(key)) return;
    if (!j[key].is_boolean()) throw_error("encodec config '", source, "': ", key, ": found ", j[key].dump(), ", expected true or false");
    out = j[key].get<bool>();
  };
  auto number = [&](const nlohmann::json& v, const char* key) {
    if (!v.is_number()) throw_error("encodec config '", source, "': ", key, ": found ", v.dump(), ", expected a number");
    return v.get<double>();
  };
  get_bool("use_conv_shortcut", c.use_conv_shortcut);
  if (j.contains("trim_right_ratio")) c.trim_right_ratio = number(j["trim_right_ratio"], "trim_right_ratio");
  if (!(c.trim_right_ratio >= 0 && c.trim_right_ratio <= 1)) {
    throw_error("encodec config '", source, "': trim_right_ratio: found ", c.trim_right_ratio, ", expected 0 to 1");
  }
  if (j.contains("upsampling_ratios")) {
    c.upsampling_ratios.clear();
    if (!j["upsampling_ratios"].is_array()) {
      throw_error("encodec config '", source, "': upsampling_ratios: found ", j["upsampling_ratios"].dump(), ", expected a list");
    }
    for (const auto& r : j["upsampling_ratios"]) {
      if (!r.is_number_integer() || r.get<int64_t>() < 1 || r.get<int64_t>() > 64) {
        throw_error("encodec config '", source, "': upsampling_ratios: found ", r.dump(), ", expected integers 1 to 64");
      }
      c.upsampling_ratios.push_back(r.get<int>());
    }
    if (c.upsampling_ratios.empty() || c.upsampling_ratios.size() > 8) {
      throw_error("encodec config '", source, "': upsampling_ratios: found ", c.upsampling_ratios.size(),
                  " ratios, expected 1 to 8");
    }
  }
  if (j.contains("target_bandwidths")) {
    c.target_bandwidths.clear();
    if (!j["target_bandwidths"].is_array()) {
      throw_error("encodec config '", source, "': target_bandwidths: found ", j["target_bandwidths"].dump(), ", expected a list");
    }
    for (const auto& b : j["target_bandwidths"]) {
      const double kbps = number(b, "target_bandwidths");
      if (!(kbps > 0 && kbps <= 10000)) {
        throw_error("encodec config '", source, "': target_bandwidths: found ", kbps, ", expected kbps in (0, 10000]");
      }
      c.target_bandwidths.push_back(kbps);
    }
    if (c.target_bandwidths.empty()) throw_error("encodec config '", source, "': target_bandwidths: empty");
  }
  return c;
}

namespace {

using Source = Encodec::TensorSource;

std::vector<float> need(const Source& src, const std::string& what, const std::string& name, const Shape& shape) {
  std::optional<std::vector<float>> t = src(name, shape);
  if (!t) throw_error("encodec '", what, "': no tensor '", name, "'");
  return std::move(*t);
}

// A weight-normalized (or plain) convolution `prefix`.conv.{weight_g, weight_v | parametrizations... | weight}, bias.
SeanetConv load_conv(const Source& src, const std::string& what, const std::string& prefix, int64_t cin, int64_t cout,
                     int64_t k, int64_t stride, int64_t dilation, bool transposed) {
  SeanetConv c{prefix, cin, cout, k, stride, dilation, transposed, {}, {}};
  const int64_t rows = transposed ? cin : cout, cols = transposed ? cout : cin;  // weight_norm over dim 0
  const Shape wshape = {rows, cols, k};
  const std::string p = prefix + ".conv.";
  std::optional<std::vector<float>> g = src(p + "weight_g", {rows, 1, 1});
  std::string v_name = p + "weight_v";
  if (!g) {
    g = src(p + "parametrizations.weight.original0", {rows, 1, 1});
    v_name = p + "parametrizations.weight.original1";
  }
  if (g) {
    const std::vector<float> v = need(src, what, v_name, wshape);
    c.w.resize(v.size());
    Context ctx;
    weight_norm_forward(ctx, c.w.data(), g->data(), v.data(), rows, cols * k);
  } else {
    c.w = need(src, what, p + "weight", wshape);
  }
  c.b = need(src, what, p + "bias", {cout});
  return c;
}

SeanetLayer conv_layer(SeanetConv c) {
  SeanetLayer l;
  l.kind = SeanetLayer::kConv;
  l.conv = std::move(c);
  return l;
}
SeanetLayer elu_layer() { return SeanetLayer{}; }

SeanetLayer res_block(const Source& src, const std::string& what, const std::string& prefix, const EncodecConfig& c,
                      int64_t dim, int64_t dilation) {
  SeanetLayer l;
  l.kind = SeanetLayer::kResBlock;
  const int64_t hidden = dim / c.compress;
  l.res_a = load_conv(src, what, prefix + ".block.1", dim, hidden, c.residual_kernel_size, 1, dilation, false);
  l.res_b = load_conv(src, what, prefix + ".block.3", hidden, dim, 1, 1, 1, false);
  if (c.use_conv_shortcut) l.shortcut = load_conv(src, what, prefix + ".shortcut", dim, dim, 1, 1, 1, false);
  return l;
}

SeanetLayer lstm_layer(const Source& src, const std::string& what, const std::string& prefix, const EncodecConfig& c,
                       int64_t dim) {
  SeanetLayer l;
  l.kind = SeanetLayer::kLstm;
  l.lstm.name = prefix;
  l.lstm.dim = dim;
  for (int n = 0; n < c.num_lstm_layers; ++n) {
    const std::string s = std::to_string(n);
    l.lstm.w_ih.push_back(need(src, what, prefix + ".lstm.weight_ih_l" + s, {4 * dim, dim}));
    l.lstm.w_hh.push_back(need(src, what, prefix + ".lstm.weight_hh_l" + s, {4 * dim, dim}));
    l.lstm.b_ih.push_back(need(src, what, prefix + ".lstm.bias_ih_l" + s, {4 * dim}));
    l.lstm.b_hh.push_back(need(src, what, prefix + ".lstm.bias_hh_l" + s, {4 * dim}));
  }
  return l;
}


}  // namespace

std::vector<float> codebook_norms(const float* table, int64_t V, int64_t D) {
  std::vector<float> sq(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) {
    double s = 0;
    for (int64_t k = 0; k < D; ++k) s += static_cast<double>(table[v * D + k]) * table[v * D + k];
    sq[static_cast<size_t>(v)] = static_cast<float>(s);
  }
  return sq;
}

Encodec Encodec::load(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    throw_error("encodec '", path, "': not found, expected a Hugging Face EnCodec folder (config.json, "
                "model.safetensors) or its model.safetensors");
  }
  const fs::path weights = fs::is_directory(p) ? p / "model.safetensors" : p;
  const fs::path config = weights.parent_path() / "config.json";
  const EncodecConfig cfg = parse_encodec_config(read_file_bytes(config, 1 << 20), config.string());  // a few hundred bytes
  const SafeTensorsFile f(weights);
  // F32 only: the published EnCodec checkpoints are f32.
  const Source source = [&f](const std::string& name, const Shape& shape) -> std::optional<std::vector<float>> {
    if (!f.find(name)) return std::nullopt;
    const SafeTensor& t = f.expect(name, DType::F32, shape);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), t.data, v.size() * sizeof(float));
    return v;
  };
  return from_source(cfg, source, weights.string());
}

Encodec Encodec::from_source(const EncodecConfig& cfg, const TensorSource& src, const std::string& what) {
  Encodec m;
  m.cfg_ = cfg;
  const EncodecConfig& c = m.cfg_;
  // Encoder: conv, then per ratio (reversed) the residual blocks, ELU and a strided conv; LSTM, ELU, conv.
  int idx = 0;
  auto name = [](const char* stack, int i) { return std::string(stack) + ".layers." + std::to_string(i); };
  m.encoder_.push_back(conv_layer(load_conv(src, what, name("encoder", idx++), c.audio_channels, c.num_filters, c.kernel_size, 1, 1, false)));
  int64_t scale = 1;
  for (auto it = c.upsampling_ratios.rbegin(); it != c.upsampling_ratios.rend(); ++it) {
    const int64_t dim = scale * c.num_filters;
    int64_t dil = 1;
    for (int j = 0; j < c.num_residual_layers; ++j, dil *= c.dilation_growth_rate)
      m.encoder_.push_back(res_block(src, what, name("encoder", idx++), c, dim, dil));
    m.encoder_.push_back(elu_layer());
    ++idx;
    m.encoder_.push_back(conv_layer(load_conv(src, what, name("encoder", idx++), dim, 2 * dim, 2 * *it, *it, 1, false)));
    scale *= 2;
  }
  m.encoder_.push_back(lstm_layer(src, what, name("encoder", idx), c, scale * c.num_filters));
  ++idx;
  m.encoder_.push_back(elu_layer());
  ++idx;
  m.encoder_.push_back(conv_layer(load_conv(src, what, name("encoder", idx++), scale * c.num_filters, c.hidden_size, c.last_kernel_size, 1, 1, false)));
  // Decoder: conv, LSTM, then per ratio ELU, a transposed conv and the residual blocks; ELU, conv.
  idx = 0;
  m.decoder_.push_back(conv_layer(load_conv(src, what, name("decoder", idx++), c.hidden_size, scale * c.num_filters, c.kernel_size, 1, 1, false)));
  m.decoder_.push_back(lstm_layer(src, what, name("decoder", idx), c, scale * c.num_filters));
  ++idx;
  for (int ratio : c.upsampling_ratios) {
    const int64_t dim = scale * c.num_filters;
    m.decoder_.push_back(elu_layer());
    ++idx;
    m.decoder_.push_back(conv_layer(load_conv(src, what, name("decoder", idx++), dim, dim / 2, 2 * ratio, ratio, 1, true)));
    int64_t dil = 1;
    for (int j = 0; j < c.num_residual_layers; ++j, dil *= c.dilation_growth_rate)
      m.decoder_.push_back(res_block(src, what, name("decoder", idx++), c, dim / 2, dil));
    scale /= 2;
  }
  m.decoder_.push_back(elu_layer());
  ++idx;
  m.decoder_.push_back(conv_layer(load_conv(src, what, name("decoder", idx++), c.num_filters, c.audio_channels, c.last_kernel_size, 1, 1, false)));
  // The residual quantizer's codebooks: as many as the source holds, at most the largest bandwidth's.
  for (int q = 0; q < c.max_codebooks(); ++q) {
    std::optional<std::vector<float>> cb =
        src("quantizer.layers." + std::to_string(q) + ".codebook.embed", {c.codebook_size, c.hidden_size});
    if (!cb) break;
    m.codebooks_.push_back(std::move(*cb));
    m.codebook_sq_.push_back(codebook_norms(m.codebooks_.back().data(), c.codebook_size, c.hidden_size));
  }
  if (m.codebooks_.empty()) throw_error("encodec '", what, "': no quantizer.layers.0.codebook.embed tensor");
  return m;
}

namespace {
// Activations of a whole signal at once (no chunking, as transformers runs it): each stage holds channels × steps
// ≤ num_filters·T floats (channels double as steps divide by a ratio ≥ 2), and a residual block keeps about six such
// buffers alive (input, ELU, hidden, ELU, shortcut, sum): ~24·num_filters bytes a sample (768 B at 32 filters;
// measured 640 on 60 s). Checked before starting, so a long file is an error, not the OOM killer.
void check_activation_memory(const EncodecConfig& c, int64_t samples, const char* what) {
  check_allocation(24.0 * c.num_filters * static_cast<double>(samples),
                   detail::concat(what, " of ", samples, " samples (", static_cast<double>(samples) / c.sampling_rate,
                                  " s) at once"));
}
}  // namespace

std::vector<float> Encodec::encode_latents(const Context& ctx, const float* samples, int64_t T, int64_t* frames) const {
  if (T < 1) throw_error("encodec encode: found ", T, " samples, expected at least 1");
  check_activation_memory(cfg_, T, "encodec encode");
  int64_t L = T;
  std::vector<float> z = seanet_forward(ctx, encoder_, std::vector<float>(samples, samples + T), 1, 1, &L, cfg_.trim_right_ratio, nullptr);
  *frames = L;
  return z;
}

std::vector<int32_t> Encodec::quantize(const Context& ctx, const float* latents, int64_t frames, int n_q) const {
  if (n_q < 1 || n_q > codebooks()) throw_error("encodec quantize: codebooks: found ", n_q, ", expected 1 to ", codebooks());
  const int64_t D = cfg_.hidden_size;
  std::vector<float> residual = swap_last_axes(std::vector<float>(latents, latents + D * frames), 1, D, frames);  // (frames, D)
  std::vector<int32_t> codes(static_cast<size_t>(n_q * frames));
  for (int q = 0; q < n_q; ++q) {
    int32_t* ids = codes.data() + q * frames;
    vq_nearest(ctx, ids, residual.data(), codebooks_[q].data(), codebook_sq_[q].data(), frames, D, cfg_.codebook_size);
    for (int64_t t = 0; t < frames; ++t)
      for (int64_t k = 0; k < D; ++k) residual[t * D + k] -= codebooks_[q][ids[t] * D + k];
  }
  return codes;
}

std::vector<float> Encodec::dequantize(const int32_t* codes, int n_q, int64_t frames) const {
  if (n_q < 1 || n_q > codebooks()) throw_error("encodec decode: codebooks: found ", n_q, ", expected 1 to ", codebooks());
  const int64_t D = cfg_.hidden_size;
  std::vector<float> z(static_cast<size_t>(D * frames), 0.0f);  // (D, frames)
  for (int q = 0; q < n_q; ++q)
    for (int64_t t = 0; t < frames; ++t) {
      const int32_t id = codes[q * frames + t];
      if (id < 0 || id >= cfg_.codebook_size) {
        throw_error("encodec decode: codebook ", q, " frame ", t, ": found code ", id, ", expected 0 to ",
                    cfg_.codebook_size - 1);
      }
      for (int64_t k = 0; k < D; ++k) z[k * frames + t] += codebooks_[q][id * D + k];
    }
  return z;
}

std::vector<float> Encodec::decode_latents(const Context& ctx, const float* latents, int64_t frames) const {
  check_activation_memory(cfg_, frames * cfg_.hop(), "encodec decode");
  int64_t L = frames;
  return seanet_forward(ctx, decoder_, std::vector<float>(latents, latents + cfg_.hidden_size * frames), 1,
                        cfg_.hidden_size, &L, cfg_.trim_right_ratio, nullptr);
}

std::vector<int32_t> Encodec::encode(const Context& ctx, const float* samples, int64_t T, int n_q, int64_t* frames) const {
  const std::vector<float> z = encode_latents(ctx, samples, T, frames);
  return quantize(ctx, z.data(), *frames, n_q);
}

std::vector<float> Encodec::decode(const Context& ctx, const int32_t* codes, int n_q, int64_t frames) const {
  const std::vector<float> z = dequantize(codes, n_q, frames);
  return decode_latents(ctx, z.data(), frames);
}

void write_audio_codes(const std::string& path, const AudioCodes& c) {
  if (c.n_q < 1 || c.frames < 1 || c.codes.size() != static_cast<size_t>(c.n_q) * static_cast<size_t>(c.frames)) {
    throw_error("audio codes '", path, "': found ", c.codes.size(), " codes for n_q=", c.n_q, " frames=", c.frames,
                ", expected n_q·frames >= 1");
  }
  SafeTensorOut t;
  t.name = "codes";
  t.dtype = DType::I32;
  t.shape = {c.n_q, c.frames};
  t.data = c.codes.data();
  write_safetensors(path, {t},
                    {{"format", "tritter-audio-codes"}, {"sampling_rate", std::to_string(c.sample_rate)},
                     {"samples", std::to_string(c.samples)}});
}

AudioCodes read_audio_codes(const std::string& path) {
  const SafeTensorsFile f(path);
  const auto& meta = f.metadata();
  auto field = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) throw_error("audio codes '", path, "': metadata '", key, "' missing (not a tritter audio encode output?)");
    return it->second;
  };
  if (field("format") != "tritter-audio-codes") {
    throw_error("audio codes '", path, "': format: found '", field("format"), "', expected 'tritter-audio-codes'");
  }
  const SafeTensor* t = f.find("codes");
  if (!t) throw_error("audio codes '", path, "': no tensor 'codes'");
  if (t->dtype != DType::I32 || t->shape.size() != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
    throw_error("audio codes '", path, "': codes: found ", dtype_name(t->dtype), " ", shape_str(t->shape),
                ", expected I32 [n_q, frames] with both >= 1");
  }
  AudioCodes c;
  c.n_q = static_cast<int>(t->shape[0]);
  c.frames = t->shape[1];
  c.codes.resize(static_cast<size_t>(t->numel()));
  std::memcpy(c.codes.data(), t->data, c.codes.size() * sizeof(int32_t));
  try {
    c.sample_rate = std::stoi(field("sampling_rate"));
    c.samples = std::stoll(field("samples"));
  } catch (const std::logic_error&) {
    throw_error("audio codes '", path, "': sampling_rate '", field("sampling_rate"), "' / samples '", field("samples"),
                "': expected integers");
  }
  if (c.sample_rate < 1 || c.samples < 1) {
    throw_error("audio codes '", path, "': sampling_rate ", c.sample_rate, ", samples ", c.samples, ": expected >= 1");
  }
  return c;
}

}  // namespace tritter::audio
