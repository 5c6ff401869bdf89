// The public API (tritter.h) over the layers: Model wraps a PackedModel (or, streaming, the file's layout) and its
// LoRA set; Session an Engine over resident or streamed weights with its own Context; train_model / finetune_model the trainer's
// entry points. Generation runs infer's generate_tokens (the loop the CLI runs too) with the caller's per-token
// callback.
#include "tritter.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "api/model_source.h"
#include "core/context.h"
#include "core/memory.h"
#include "infer/embed_pool.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/kv_cache.h"
#include "infer/layer_loader.h"
#include "infer/lora_apply.h"
#include "infer/memory_manager.h"
#include "infer/sampler.h"
#include "infer/streaming_engine.h"
#include "kernels/ops.h"
#include "kernels/parallel.h"
#include "model/config.h"
#include "core/hardware_profile.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/model_files.h"
#include "model/model_text.h"
#include "model/packed_model.h"
#include "model/tensor_table.h"
#include "text/byte_tokenizer.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/lora.h"
#include "train/lora_finetune.h"
#include "train/trainer.h"

namespace tritter {

static_assert(token::pad == kTokenPad && token::bos == kTokenBos && token::eos == kTokenEos &&
              token::unk == kTokenUnk && token::text == kTokenText && token::code == kTokenCode &&
              token::image == kTokenImage && token::audio == kTokenAudio &&
              token::byte_offset == kTokenByteOffset && token::byte_vocab_size == kByteVocabSize);

int64_t parse_size(const std::string& text, const std::string& what) { return parse_bytes(text, what); }

// ---- Model ------------------------------------------------------------------------------------------------------

struct Model::Impl {
  std::string path;
  TritterConfig config;
  bool add_bos = false;
  ModelFileKind kind = ModelFileKind::TritterPacked;
  double load_seconds = 0;
  MemoryAccount memory;               // the in-memory model's tensors and the adapters
  std::optional<PackedModel> packed;  // resident (mapped or in memory); empty when streaming
  OpenOptions open;
  int64_t budget = 0;                 // streaming: the resolved memory budget
  std::vector<float> final_norm;      // streaming: (D), read from the file for embed()
  TernaryLayout stream_layout = TernaryLayout::T16;  // streaming: the file's qweight_layout, run as stored
  LoraSet lora;
  ModelText text;                     // tokenizer, chat template, generation defaults
  std::optional<ChatTemplate> chat;   // text.chat_template parsed (empty when there is none)
  bool byte_tokenizer() const { return text.tokenizer->kind() == "byte"; }
};

namespace {
void parse_chat_template(Model::Impl& m) {
  if (m.text.chat_template.empty()) return;
  try {
    m.chat.emplace(m.text.chat_template);
  } catch (const Error& e) {
    throw_error("model '", m.path, "': ", m.text.chat_template_where, ": ", e.what());
  }
}
}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::open(const std::string& path, const OpenOptions& options) {
  auto m = std::make_unique<Impl>();
  m->open = options;
  // The header first: a truncated or foreign file is named before anything is mapped as weights. A run directory
  // means its latest checkpoint; a full-precision checkpoint is packed in memory (its fp32 weights dropped after).
  const ModelSource src = resolve_model_source(path);
  const std::string file = src.file.string();
  const HeadChoice head = head_choice_from_name(options.head);
  const LayoutChoice layout = layout_choice_from_name(options.ternary_layout);
  const TernaryLayout resident_layout = resolve_ternary_layout(layout, detect_cpu());
  m->path = file;
  m->add_bos = src.add_bos;
  m->kind = src.kind;
  if (src.foreign()) {
    if (options.stream) {
      throw_error("model '", file, "': layer streaming reads a Tritter packed file, found a ",
                  src.kind == ModelFileKind::HfFolder ? "Hugging Face folder" : "GGUF file",
                  "; convert it first (tritter convert ", file, " OUT.safetensors)");
    }
    LoadedModel loaded = load_any_model(src.file, &m->memory, LoadOptions{head, layout});
    m->add_bos = loaded.add_bos;
    m->load_seconds = loaded.load_seconds;
    m->packed.emplace(std::move(loaded.model));
    m->config = m->packed->config();
    m->text = load_model_text(src.kind, src.file, loaded.folder);
  } else if (!src.packed()) {
    if (options.stream) {
      throw_error("model '", file, "': layer streaming reads a packed file, found a full-precision checkpoint; ",
                  "pack it first (tritter pack ", file, " OUT)");
    }
    m->packed.emplace(open_lora_base(src.file, &m->memory));
    apply_head_choice(*m->packed, head, src.file, &m->memory);
    m->packed->use_ternary_layout(resident_layout, &m->memory);
    m->config = m->packed->config();
  } else if (options.stream) {
    if (head != HeadChoice::Auto) {
      throw_error("model '", file, "': layer streaming runs the head the file was packed with; --head ",
                  options.head, " applies to a resident model");
    }
    const PackedFileLayout file_layout(file);
    m->config = file_layout.config();
    m->stream_layout = file_layout.qweight_layout();
    if (layout != LayoutChoice::Auto && resident_layout != m->stream_layout) {
      throw_error("model '", file, "': layer streaming runs the matrices in the layout the file stores, ",
                  ternary_layout_name(m->stream_layout), "; ternary layout ", options.ternary_layout,
                  " applies to a resident model (or pack the file with --ternary-layout ", options.ternary_layout, ")");
    }
    const SystemMemory ram = system_memory();
    m->budget = resolve_memory_budget(options.memory_budget, ram.total_bytes, ram.available_bytes,
                                      os_reservation(options.desktop));
    m->final_norm.resize(static_cast<size_t>(m->config.hidden_size));
    std::ifstream in(file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(file_layout.final_norm_offset()));
    in.read(reinterpret_cast<char*>(m->final_norm.data()),
            static_cast<std::streamsize>(m->final_norm.size() * sizeof(float)));
    if (!in) throw_error("file '", file, "': cannot read the final norm");
  } else {
    m->packed.emplace(PackedModel::open(file));
    apply_head_choice(*m->packed, head, src.file, &m->memory);
    m->packed->use_ternary_layout(resident_layout, &m->memory);
    m->config = m->packed->config();
  }
  if (!m->text.tokenizer) m->text = load_model_text(src.kind, src.file, {});
  if (!m->byte_tokenizer() && m->text.tokenizer->vocab_size() > m->config.vocab_size) {
    throw_error("model '", file, "': the tokenizer (", m->text.where, ") has ", m->text.tokenizer->vocab_size(),
                " ids, more than the model's vocab_size ", m->config.vocab_size);
  }
  parse_chat_template(*m);
  for (const std::string& spec : options.lora) {
    const auto [dir, weight] = parse_lora_spec(spec);
    m->lora.add(dir, weight, m->config, &m->memory);
  }
  return Model(std::move(m));
}

Model Model::random(const std::string& preset, uint64_t seed) {
  auto m = std::make_unique<Impl>();
  m->config = preset_config(preset);
  std::vector<float> params(static_cast<size_t>(parameter_count(m->config)));
  init_parameters(params, m->config, seed);
  m->packed.emplace(PackedModel::in_memory(m->config, [&](float* out, const TensorInfo& info, size_t) {
    std::memcpy(out, params.data() + info.offset, static_cast<size_t>(info.numel()) * sizeof(float));
  }, PackOptions{}, &m->memory));
  m->text = byte_model_text();
  parse_chat_template(*m);
  return Model(std::move(m));  // add_bos false, as the packed files Tritter writes say
}

ModelInfo Model::info() const {
  const TritterConfig& c = impl_->config;
  ModelInfo i;
  i.path = impl_->path;
  i.size = c.model_size;
  i.vocab_size = c.vocab_size;
  i.num_layers = c.num_hidden_layers;
  i.hidden_size = c.hidden_size;
  i.intermediate_size = c.intermediate_size;
  i.num_heads = c.num_attention_heads;
  i.num_kv_heads = c.num_key_value_heads;
  i.head_dim = c.head_dim;
  i.max_context = c.max_position_embeddings;
  i.parameters = parameter_count(c);
  i.add_bos = impl_->add_bos;
  i.streaming = !impl_->packed;
  i.lora_adapters = static_cast<int>(impl_->lora.size());
  i.format = impl_->path.empty() ? "random" : model_file_kind_name(impl_->kind);
  i.tokenizer = impl_->text.tokenizer->kind();
  i.tokenizer_source = impl_->text.where;
  i.tokenizer_vocab_size = impl_->text.tokenizer->vocab_size();
  i.chat_template = impl_->chat.has_value();
  i.chat_template_source = impl_->text.chat_template_where;
  i.load_seconds = impl_->load_seconds;
  i.ternary_layout = ternary_layout_name(impl_->stream_layout);
  if (impl_->packed && !impl_->packed->weights().layers.empty()) {
    i.ternary_layout = ternary_layout_name(layer_matrix(impl_->packed->weights().layers[0], Proj::Q).layout);
  }
  return i;
}

std::vector<int32_t> Model::tokenize(std::string_view text, bool bos, bool eos) const {
  if (impl_->byte_tokenizer()) return tritter::tokenize(text, {.bos = bos, .modality = -1, .eos = eos});
  const Tokenizer& t = *impl_->text.tokenizer;
  std::vector<int32_t> ids;
  if (bos && t.special_ids().bos >= 0) ids.push_back(t.special_ids().bos);
  const std::vector<int32_t> body = t.encode(text, false);
  ids.insert(ids.end(), body.begin(), body.end());
  if (eos && t.special_ids().eos >= 0) ids.push_back(t.special_ids().eos);
  return ids;
}

std::string Model::detokenize(std::span<const int32_t> ids, bool show_special) const {
  if (impl_->byte_tokenizer()) return tritter::detokenize(ids, show_special);
  return impl_->text.tokenizer->decode(ids, !show_special);
}

std::string Model::token_piece(int32_t id) const {
  if (id < 0 || id >= impl_->config.vocab_size) throw_error("token_piece: id ", id, ", expected 0 .. ", impl_->config.vocab_size - 1);
  if (impl_->byte_tokenizer()) {
    const std::string bytes = token_bytes(id);
    return bytes.empty() ? token_name(id) : bytes;
  }
  const Tokenizer& t = *impl_->text.tokenizer;
  return id < t.vocab_size() ? t.token_piece(id) : "<id " + std::to_string(id) + ">";
}

std::string Model::token_text(int32_t id) const {
  if (id < 0 || id >= impl_->config.vocab_size) throw_error("token_text: id ", id, ", expected 0 .. ", impl_->config.vocab_size - 1);
  const Tokenizer& t = *impl_->text.tokenizer;
  return id < t.vocab_size() ? t.token_bytes(id) : "";
}

std::vector<int32_t> Model::end_of_generation() const { return impl_->text.end_ids; }

GenerationDefaults Model::generation_defaults() const {
  const GenerationConfig& g = impl_->text.generation;
  GenerationDefaults d;
  if (const std::optional<float> t = generation_temperature(g)) d.has_temperature = true, d.temperature = *t;
  if (g.top_k) d.has_top_k = true, d.top_k = *g.top_k;
  if (g.top_p) d.has_top_p = true, d.top_p = *g.top_p;
  if (g.repetition_penalty) d.has_repeat_penalty = true, d.repeat_penalty = *g.repetition_penalty;
  return d;
}

bool Model::has_chat_template() const { return impl_->chat.has_value(); }

std::string Model::chat_prompt(const std::vector<ChatTurn>& messages, bool add_generation_prompt) const {
  if (!impl_->chat) {
    const std::string where = impl_->kind == ModelFileKind::Gguf ? "key 'tokenizer.chat_template' is missing"
                            : impl_->kind == ModelFileKind::HfFolder ? "tokenizer_config.json has no chat_template"
                                                                       : "no chat template";
    throw_error("model '", impl_->path, "': ", where, " (", impl_->text.where,
                "), so it has no chat format; expected a model whose files carry one, or give one with "
                "--chat-template-file");
  }
  std::vector<ChatMessage> ms;
  ms.reserve(messages.size());
  for (const ChatTurn& t : messages) ms.push_back({t.role, t.content});
  ChatTemplateOptions o;
  o.add_generation_prompt = add_generation_prompt;
  o.bos_token = impl_->text.bos_token;
  o.eos_token = impl_->text.eos_token;
  return impl_->chat->apply(ms, o);
}

std::vector<std::string> Model::chat_stop() const {
  if (impl_->chat && impl_->text.chat_template == builtin_chat_template()) return {builtin_chat_stop()};
  return {};
}

void Model::set_chat_template(const std::string& source) {
  impl_->text.chat_template = source;
  impl_->text.chat_template_where = "given template";
  impl_->chat.reset();
  parse_chat_template(*impl_);
}

// ---- Session ----------------------------------------------------------------------------------------------------

struct Session::Impl {
  const Model::Impl* model = nullptr;
  Context ctx;  // per session: a streamed source's memory account is its budget's ledger
  EngineOptions options;  // resolved
  std::unique_ptr<StreamedWeights> streamed;  // when streaming: the engine's weight source
  std::unique_ptr<Engine> engine;             // declared last: destroyed before its source
};

Session::Session(const Model& model, const SessionOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  const Model::Impl& m = *model.impl_;
  s.model = &m;
  s.ctx.threads = options.threads > 0 ? options.threads : default_thread_count();
  s.ctx.kernels = kernel_tier_from_name(options.kernels);
  if (options.timings) s.ctx.log_level = LogLevel::Verbose;  // the engine times its ops at this level
  EngineOptions eo;
  eo.context = options.context;
  eo.kv_dtype = kv_dtype_from_name(options.kv_cache);
  eo.max_batch = options.batch;
  s.options = resolve_engine_options(m.config, eo);
  if (m.packed) {
    s.engine = std::make_unique<Engine>(s.ctx, m.packed->weights(), eo);
  } else {
    const StreamingOptions so{eo, m.budget, m.open.layer_group_size, m.open.prefetch};
    s.streamed = std::make_unique<StreamedWeights>(s.ctx, m.path, so);
    s.engine = std::make_unique<Engine>(s.ctx, *s.streamed, s.streamed->engine_options());
  }
  s.engine->set_lora(&m.lora);
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

void Session::forward(std::span<const int32_t> tokens, std::span<float> logits, bool all_logits) {
  const int64_t V = impl_->model->config.vocab_size;
  const size_t need = static_cast<size_t>((all_logits ? static_cast<int64_t>(tokens.size()) : 1) * V);
  if (logits.size() < need) throw_error("forward: logits hold ", logits.size(), " floats, expected at least ", need);
  impl_->engine->forward(tokens, logits.data(), all_logits);
}

std::vector<float> Session::forward(std::span<const int32_t> tokens) {
  std::vector<float> logits(static_cast<size_t>(impl_->model->config.vocab_size));
  impl_->engine->forward(tokens, logits.data(), false);
  return logits;
}

int64_t Session::position() const { return impl_->engine->position(); }
int64_t Session::context() const { return impl_->engine->context(); }
void Session::reset() { impl_->engine->reset(); }

Generation Session::generate(std::span<const int32_t> prompt, const GenerationParams& params,
                             const TokenCallback& on_token) {
  const Sampling& p = params.sampling;
  GenerateOptions o;
  o.max_tokens = params.max_tokens;
  o.stop = params.stop;
  o.stop_at_eos = params.stop_at_eos;
  if (params.exit != "softmax" && params.exit != "knn") {
    throw_error("generate: exit '", params.exit, "', expected softmax or knn");
  }
  o.knn_exit = params.exit == "knn";
  o.latent_steps = params.latent_steps;
  o.latent_scale = params.latent_scale;
  o.tokenizer = impl_->model->text.tokenizer.get();
  o.end_ids = impl_->model->text.end_ids;
  o.sampler = SamplerOptions{.temperature = p.temperature, .top_k = p.top_k, .top_p = p.top_p, .min_p = p.min_p,
                             .repeat_penalty = p.repeat_penalty, .repeat_last_n = p.repeat_last_n, .seed = p.seed};
  GenerateResult g = generate_tokens(*impl_->engine, prompt, o, on_token);  // the loop every caller runs
  Generation r;
  r.text = std::move(g.text);
  r.tokens = std::move(g.tokens);
  r.prompt_tokens = g.prompt_tokens;
  r.decode_steps = g.decode_steps;
  r.latent_steps = g.latent_steps;
  r.prompt_s = g.prompt_s;
  r.decode_s = g.decode_s;
  r.sample_s = g.sample_s;
  r.stop_reason = std::move(g.stop_reason);
  return r;
}

std::vector<float> Session::embed(std::string_view text) { return embed(text, EmbedOptions{}); }

std::vector<float> Session::embed_tokens(std::span<const int32_t> tokens) {
  return embed_tokens(tokens, EmbedOptions{});
}

std::vector<float> Session::embed(std::string_view text, const EmbedOptions& options) {
  if (text.empty()) throw_error("embed: empty text");
  const Model::Impl& m = *impl_->model;
  if (m.byte_tokenizer()) {
    return embed_tokens(tritter::tokenize(text, {.bos = false, .modality = -1, .eos = false}), options);
  }
  return embed_tokens(m.text.tokenizer->encode(text, false), options);
}

std::vector<float> Session::embed_tokens(std::span<const int32_t> tokens, const EmbedOptions& options) {
  Impl& s = *impl_;
  const TritterConfig& c = s.model->config;
  const int64_t n = static_cast<int64_t>(tokens.size()), D = c.hidden_size;
  if (n < 1) throw_error("embed: no tokens");
  if (options.attention != "causal" && options.attention != "bidirectional") {
    throw_error("embed: attention '", options.attention, "', expected causal or bidirectional");
  }
  const bool bidirectional = options.attention == "bidirectional";
  if (n > s.engine->context()) {
    throw_error("embed: the text has ", n, " tokens, more than the context of ", s.engine->context());
  }
  EmbeddingPool pool(D, embed_pooling_from_name(options.pooling));
  const float* gain = s.model->packed ? s.model->packed->weights().final_norm : s.model->final_norm.data();
  if (bidirectional) {
    // Every position must see the whole text: one chunk of n tokens on an engine sized for it.
    if (!s.model->packed) throw_error("embed: bidirectional attention needs a resident model (not streamed)");
    EngineOptions eo;
    eo.context = n;
    eo.max_batch = n;
    Engine engine(s.ctx, s.model->packed->weights(), eo);
    engine.set_lora(&s.model->lora);
    engine.set_mask(AttnMask::bidirectional(c.sliding_window));
    engine.forward(tokens, nullptr, false);
    std::vector<float> normed(static_cast<size_t>(n * D));
    rmsnorm(s.ctx, normed.data(), engine.hidden_states(), gain, n, D, static_cast<float>(c.rms_norm_eps));
    pool.add(normed.data(), n);
    return pool.finish();
  }
  const int64_t B = s.options.max_batch;
  std::vector<float> normed(static_cast<size_t>(B * D));
  s.engine->reset();
  // One forward per chunk of ≤ max_batch tokens: hidden_states() then holds that whole chunk.
  for (int64_t start = 0; start < n; start += B) {
    const int64_t T = std::min(B, n - start);
    s.engine->forward(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(T)), nullptr, false);
    rmsnorm(s.ctx, normed.data(), s.engine->hidden_states(), gain, T, D, static_cast<float>(c.rms_norm_eps));
    pool.add(normed.data(), T);
  }
  s.engine->reset();
  return pool.finish();
}

SessionStats Session::stats() const {
  const Impl& s = *impl_;
  const Engine& e = *s.engine;
  SessionStats st;
  st.context = e.context();
  st.batch = s.options.max_batch;
  st.threads = s.ctx.threads;
  st.kv_cache = kv_dtype_name(s.options.kv_dtype);
  st.kv_cache_bytes = static_cast<int64_t>(e.cache().bytes());
  st.bytes_per_token = static_cast<int64_t>(e.weights().bytes_per_token);
  st.head = head_format_name(e.weights().head.format);
  const EngineTimings& t = e.timings();
  st.matmul_s = t.matmul_s;
  st.attention_s = t.attention_s;
  st.head_s = t.head_s;
  st.other_s = t.other_s;
  if (s.streamed) st.streaming_report = s.streamed->report();
  return st;
}

// ---- Training ---------------------------------------------------------------------------------------------------

LoopParams TrainParams::training_defaults() {
  LoopParams l;
  l.schedule = "bitnet";
  l.lr = 1.5e-3;
  l.wd = 0.1;
  l.eval_every = 200;
  l.checkpoint_every = 500;
  return l;
}

LoopParams FinetuneParams::finetune_defaults() {
  LoopParams l;
  l.schedule = "cosine";
  l.lr = 1e-3;
  l.wd = 0;
  l.eval_every = 50;
  l.checkpoint_every = 100;
  return l;
}

namespace {

void apply_loop(const LoopParams& l, int64_t steps, train::TrainOptions& o) {
  o.data.paths = l.data;
  if (!l.extensions.empty()) o.data.extensions = l.extensions;
  o.data.val_fraction = l.val_fraction;
  o.batch = l.batch;
  o.seq = l.seq;
  o.steps = steps;
  o.accum = l.accum;
  o.schedule.kind = l.schedule;
  o.schedule.peak_lr = l.lr;
  o.schedule.wd = l.wd;
  o.schedule.min_ratio = l.min_lr_ratio;
  o.clip = l.clip;
  o.seed = l.seed;
  o.eval_every = l.eval_every;
  o.eval_windows = l.eval_windows;
  o.checkpoint_every = l.checkpoint_every;
  o.keep = l.keep;
  o.log_every = l.log_every;
  o.out_dir = l.out;
  o.recompute = l.recompute;
  o.log_json = l.log_json;
  o.max_bad_steps = l.max_bad_steps;
}

void apply_resume(const LoopParams& l, train::TrainOptions& o) {
  if (l.steps > 0) o.steps = l.steps;
  if (!l.data.empty()) o.data.paths = l.data;
  if (!l.out.empty()) o.out_dir = l.out;
  if (!l.log_json.empty()) o.log_json = l.log_json;
}

// The loop's Context, and its print and step hooks that turn a callback's false into the loop's stop flag.
struct Run {
  Context ctx;
  std::atomic<bool> stop{false};
  std::function<void(const std::string&)> print;
  std::function<void(const train::StepRecord&)> step;
  Run(int threads, const ProgressCallback& progress, const StepCallback& on_step = {}) {
    ctx.threads = threads > 0 ? threads : default_thread_count();
    print = [this, progress](const std::string& line) {
      if (progress && !progress(line)) stop.store(true);
    };
    if (on_step) {
      step = [this, on_step](const train::StepRecord& r) {
        const TrainStep s{r.step,  r.steps,        r.loss,      r.lr,      r.wd,      r.grad_norm,
                          r.tokens, r.tokens_per_s, r.elapsed_s, r.val_bpb, r.skipped, r.skipped_step};
        if (!on_step(s)) stop.store(true);
      };
    }
  }
};

TrainSummary summary(const train::TrainResult& r) {
  return {r.steps_done, r.skipped, r.interrupted, r.last_loss, r.last_val_bpb, r.losses, r.tokens_per_s};
}

}  // namespace

TrainSummary train_model(const TrainParams& params, const ProgressCallback& progress) {
  return train_model(params, progress, {});
}

TrainSummary train_model(const TrainParams& params, const ProgressCallback& progress, const StepCallback& on_step) {
  const LoopParams& l = params.loop;
  train::TrainOptions o;
  std::filesystem::path resume;
  if (!l.resume.empty()) {
    resume = train::latest_checkpoint(l.resume);
    o = train::read_checkpoint_options(resume);
    apply_resume(l, o);
  } else {
    if (l.data.empty()) throw_error("train: data: none given, expected files or directories");
    if (l.out.empty()) throw_error("train: out: none given, expected a directory for checkpoints");
    o.config = std::filesystem::exists(params.config) ? load_config_file(params.config) : preset_config(params.config);
    if (l.seq > o.config.max_position_embeddings) o.config.max_position_embeddings = l.seq;
    o.config.validate();
    apply_loop(l, l.steps > 0 ? l.steps : 1000, o);
    o.schedule.warmup = l.warmup;
  }
  Run run(l.threads, progress, on_step);
  o.on_step = run.step;
  return summary(train::run_training(run.ctx, o, resume, &run.stop, run.print));
}

FinetuneSummary finetune_model(const FinetuneParams& params, const ProgressCallback& progress) {
  return finetune_model(params, progress, {});
}

FinetuneSummary finetune_model(const FinetuneParams& params, const ProgressCallback& progress,
                               const StepCallback& on_step) {
  const LoopParams& l = params.loop;
  train::FinetuneOptions o;
  std::filesystem::path resume;
  if (!l.resume.empty()) {
    resume = train::latest_checkpoint(l.resume);
    o = train::read_finetune_options(resume);
    apply_resume(l, o.train);
  } else {
    if (params.base.empty()) throw_error("finetune: base: none given, expected a packed model or checkpoint");
    if (l.data.empty()) throw_error("finetune: data: none given, expected files or directories");
    if (l.out.empty()) throw_error("finetune: out: none given, expected a directory for the adapter");
    o.base = params.base;
    o.lora.rank = params.rank;
    o.lora.alpha = params.alpha;
    o.lora.dropout = params.dropout;
    o.lora.targets = parse_lora_targets(params.targets);
    o.lora.init = params.init;
    const int64_t steps = l.steps > 0 ? l.steps : 200;
    apply_loop(l, steps, o.train);
    o.train.schedule.warmup = l.warmup >= 0 ? l.warmup : steps > 1 ? std::max<int64_t>(1, steps / 20) : 0;
  }
  Run run(l.threads, progress, on_step);
  o.train.on_step = run.step;
  const train::FinetuneResult r = train::run_finetune(run.ctx, o, resume, &run.stop, run.print);
  return {summary(r.train), r.base_val_bpb, r.adapter_params};
}

}  // namespace tritter
