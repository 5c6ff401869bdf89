// libtritter's public API: the one header that code outside Tritter includes (installed as <tritter/tritter.h>;
// <tritter.h> works too). Open a packed model, tokenize, run tokens → logits, generate with a per-token callback,
// embed a text, train and LoRA fine-tune. docs/api.md is the guide.
//
// Shape of the API: a few classes with an opaque implementation (Model, Session: a std::unique_ptr<Impl> each)
// plus plain option/result structs and free functions for the long-running jobs. Why: the layers' types (packed
// weights, engines, the KV cache, Highway/OpenBLAS/nlohmann) stay out of this header, so it pulls in only the
// standard library and core/error.h, and the internals can change without breaking code built against it.
//
// Lifetimes: a Model owns its weights (a read-only mapping of the file, or the in-memory tensors) and its LoRA
// adapters. A Session keeps a pointer into its Model: the Model must outlive every Session made from it (moving
// the Model object is fine; destroying it is not). Nothing here keeps a reference to a caller's argument after
// the call returns, except the callbacks, which are called only during the call they were given to.
//
// Errors: every function reports what a user can cause (a missing or malformed file, a bad option, a prompt
// longer than the context, a memory budget too small) by throwing tritter::Error (a std::runtime_error, declared
// in core/error.h, installed beside this header) whose what() names the file/option, the value found and the one
// expected. Internal invariant failures abort with a message. Nothing calls exit().
//
// Threads: a Model is read-only once open; its const members may be called from any thread and several Sessions
// of one Model may run concurrently, one thread each. A Session is used by one thread at a time; its forward
// passes use SessionOptions::threads OpenMP threads inside.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"  // tritter::Error

namespace tritter {

// The byte tokenizer's special ids (byte b is id b + 8; 264 ids hold every byte).
namespace token {
inline constexpr int32_t pad = 0, bos = 1, eos = 2, unk = 3, text = 4, code = 5, image = 6, audio = 7;
inline constexpr int32_t byte_offset = 8;
inline constexpr int32_t byte_vocab_size = 264;
}  // namespace token

// "512M", "1.5G", "2GiB", "1000000" → bytes. `what` names the value in the Error a bad one throws.
int64_t parse_size(const std::string& text, const std::string& what);

struct OpenOptions {
  // LoRA adapters ("DIR" or "DIR:weight", PEFT layout as `tritter finetune` writes it), applied unmerged to
  // every Session of the model.
  std::vector<std::string> lora = {};
  // Layer streaming: read the layers from the file in groups during each forward pass, so the weights need not
  // fit in memory; everything a Session allocates is checked against memory_budget at its construction.
  bool stream = false;
  int64_t memory_budget = 0;         // bytes (parse_size); 0: this machine's safe budget
  std::string desktop = "headless";  // what the OS keeps of RAM: headless, x11, wayland, macos, windows:N
  int layer_group_size = 0;          // layers per streamed group; 0: the largest group the budget allows
  bool prefetch = true;              // read group g+1 while g computes (two buffers) or read on demand (one)
  // The LM head of a model converted at load (HF folder, GGUF, checkpoint): "auto" (int8 when a GGUF stores it in
  // 8 bits or fewer, f32 otherwise), "i8" (per-row int8, a quarter of f32's bytes per token), "i4" (4-bit groups
  // of 32 quantized at load from any model's head, about half of int8's bytes; not with stream) or "f32". A
  // packed file keeps the head it was packed with ("i8" also quantizes an f32 one).
  std::string head = "auto";
  // The layout the ternary matrices of a resident model run in: "t16" (2 bits per weight), "t20" (1.6 bits: 20 %
  // fewer bytes per token; one-stream decode up to 1.3x faster on AVX-512 VNNI with 2+ threads, batches of 2+
  // tokens slower), re-laid out at load when the file stores the other one, or "auto" (t20 on a CPU with AVX-512
  // VNNI, t16 elsewhere). A streamed model runs the layout its file stores (auto or that one).
  std::string ternary_layout = "auto";
};

struct ModelInfo {
  std::string path;  // "" for Model::random
  std::string size;  // the preset name it came from ("test", "7B") or "custom"
  int64_t vocab_size = 0, num_layers = 0, hidden_size = 0, intermediate_size = 0;
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t max_context = 0;  // max_position_embeddings
  int64_t parameters = 0;   // of the full-precision model the file was packed from
  bool add_bos = false;     // whether prompts start with <bos> (the file's add_bos_token)
  bool streaming = false;
  int lora_adapters = 0;
  // "tritter-packed", "tritter-checkpoint", "hf-folder" or "gguf"; the tokenizer's kind ("byte", "bpe-byte-level",
  // "bpe-sentencepiece") and where it came from; whether a chat template is known (the file's, or Tritter's
  // built-in one for the byte tokenizer) and where it came from.
  std::string format;
  std::string tokenizer, tokenizer_source;
  int64_t tokenizer_vocab_size = 0;
  bool chat_template = false;
  std::string chat_template_source;
  double load_seconds = 0;  // HF folders and GGUF files: the conversion into the engine's layout
  std::string ternary_layout;  // "t16" or "t20": the layout the ternary matrices run in (streamed: the file's)
};

// A Hugging Face folder's generation_config.json sampling defaults (has_* false where it says nothing, and for
// every other kind of file). `tritter generate` uses them where its flags are not given.
struct GenerationDefaults {
  bool has_temperature = false, has_top_k = false, has_top_p = false, has_repeat_penalty = false;
  float temperature = 0, top_p = 1, repeat_penalty = 1;
  int top_k = 0;
};

// One message of a chat: role "system", "user", "assistant" (others are passed to the template as given).
struct ChatTurn {
  std::string role, content;
};

class Model {
 public:
  // Opens a model: a packed file (tritter-packed-v1: `tritter export`, `tritter pack`, `tritter init --packed`),
  // mapped read-only and validated, or with options.stream only its header read (the layers come from the file
  // during forward passes); a full-precision checkpoint (packed in memory; not streamable); a training run
  // directory (its latest checkpoint); a Hugging Face model folder or a GGUF file (docs/model-files.md: converted
  // in memory, not streamable), with the tokenizer, chat template and generation defaults the files carry.
  static Model open(const std::string& path, const OpenOptions& options = {});
  // A model with random weights built in memory from a preset ("test", "tiny", ...): examples and tests.
  static Model random(const std::string& preset = "test", uint64_t seed = 1);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  ModelInfo info() const;

  // ids ← text with the model's tokenizer: [<bos>] ids of text [<eos>]. The byte tokenizer (Tritter's own files):
  // b0+8 b1+8 ..., lossless for any bytes, plain text never yields a special. A tokenizer.json or GGUF vocabulary:
  // its BPE ids (special-token text such as "<|eot_id|>" becomes its id); bos/eos are the tokenizer's (none added
  // when it has none).
  std::vector<int32_t> tokenize(std::string_view text, bool bos, bool eos = false) const;
  // The text of ids; specials give nothing, or their text ("<eos>", "<|eot_id|>") with show_special. The byte
  // tokenizer gives nothing (or "<id 300>") for ids ≥ 264 of a larger model vocabulary.
  std::string detokenize(std::span<const int32_t> ids, bool show_special = false) const;
  // One id as text: the byte tokenizer's byte or special name ("<bos>", "<id 300>"); a BPE vocabulary's piece as
  // the file spells it ("Ġthe", "▁the").
  std::string token_piece(int32_t id) const;
  // The bytes one id adds to a decoded text (streaming); "" for specials.
  std::string token_text(int32_t id) const;
  // Ids that end a generated turn (<eos>, <|eot_id|>, generation_config.json's eos_token_id, ...).
  std::vector<int32_t> end_of_generation() const;
  GenerationDefaults generation_defaults() const;

  // The chat template: the file's (tokenizer_config.json's chat_template, GGUF tokenizer.chat_template), or for
  // the byte tokenizer Tritter's built-in "<|role|>\ncontent\n" format. chat_prompt renders the messages (then
  // the assistant's opening when add_generation_prompt) with the tokenizer's bos/eos text; it throws Error naming
  // the model file when the model has no template, or the template's own error (raise_exception).
  bool has_chat_template() const;
  std::string chat_prompt(const std::vector<ChatTurn>& messages, bool add_generation_prompt = true) const;
  // Stop strings the chat format implies: "\n<|" for the built-in one; none for a file's template (its
  // end-of-turn token ends the reply).
  std::vector<std::string> chat_stop() const;
  // Replaces the chat template with this Jinja source (e.g. `generate --chat-template-file`); throws Error on a
  // syntax error.
  void set_chat_template(const std::string& source);

  struct Impl;

 private:
  friend class Session;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
  int64_t context = 0;         // positions the KV cache holds; 0: min(max_context, 4096)
  int threads = 0;             // OpenMP threads of the kernels; 0: the physical cores this process may use
  std::string kv_cache = "f32";  // KV cache dtype: f32, f16, int8, int4
  int64_t batch = 64;          // prompt tokens per forward chunk
  std::string kernels = "auto";  // auto, reference, scalar, avx2, avx512vnni
  bool timings = false;        // time every op, for SessionStats' per-phase split (the clock costs ~2 % a step)
};

struct EmbedOptions {
  std::string pooling = "mean";      // mean (every position) or last (the last position's state)
  std::string attention = "causal";  // causal, or bidirectional (every position sees the whole text)
};

struct Sampling {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  uint64_t seed = 0;         // same seed, same logits → same tokens
};

struct GenerationParams {
  int64_t max_tokens = 128;
  Sampling sampling;
  std::vector<std::string> stop = {};  // stop strings: never delivered, held back while one might still be forming
  bool stop_at_eos = true;
  // softmax: sample from the logits; knn: a cosine-head model's KNN exit (the nearest embedding row; greedy, no
  // logits, no repetition penalty). Both give the same ids at temperature 0 without a repetition penalty.
  std::string exit = "softmax";
  // Continuous thought: N > 0 runs <bot>, N thoughts (the last hidden state times latent_scale fed back as the next
  // input; 0: the embedding rows' RMS) and <eot> after the prompt before sampling. Needs a model trained for it
  // and vocab_size ≥ 268 (docs/embedding-prediction.md).
  int64_t latent_steps = 0;
  float latent_scale = 0.0f;
};

struct Generation {
  std::string text;             // what the callback received as text
  std::vector<int32_t> tokens;  // generated ids (a stop string's tokens included; <eos> not)
  int64_t prompt_tokens = 0;
  int64_t decode_steps = 0;     // forward passes after the prompt
  int64_t latent_steps = 0;     // thoughts run between <bot> and <eot>
  double prompt_s = 0, decode_s = 0, sample_s = 0;
  std::string stop_reason;      // "eos", "stop", "length", "context", "callback"
};

// Called once per generated token with its id and the text that became final with it (empty while a stop string
// may still be forming, and for specials). Return false to stop (stop_reason "callback"). After the last token,
// held-back text that turned out not to start a stop string comes in one more call with token −1 (its return
// value is ignored).
using TokenCallback = std::function<bool(int32_t token, std::string_view text)>;

// What a Session ran with and where its time went (for --verbose-style reports).
struct SessionStats {
  int64_t context = 0, batch = 0;
  int threads = 0;
  std::string kv_cache;             // "f32", ...
  int64_t kv_cache_bytes = 0;
  int64_t bytes_per_token = 0;      // weight bytes one decode step reads
  std::string head;                 // the LM head's format: "f32", "i8" or "i4"
  double matmul_s = 0, attention_s = 0, head_s = 0, other_s = 0;  // summed over forward passes
  std::string streaming_report;     // the streaming plan, peak use and I/O lines; "" when resident
};

// An inference engine over a Model: a KV cache of one sequence, its activations and its threads.
class Session {
 public:
  // Allocates the cache (and, for a streaming model, checks everything against the budget and starts the
  // loader). `model` must outlive the session.
  explicit Session(const Model& model, const SessionOptions& options = {});
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // Runs tokens (n ≥ 1) at positions position() .. position()+n−1, appending them to the sequence. logits: (V)
  // of the last token, or (n, V) with all_logits. Throws Error on an id outside [0, V), a full context or a
  // logits span too small.
  void forward(std::span<const int32_t> tokens, std::span<float> logits, bool all_logits = false);
  std::vector<float> forward(std::span<const int32_t> tokens);  // the last token's logits (V)
  int64_t position() const;
  int64_t context() const;
  void reset();  // a new, empty sequence

  // Prefills `prompt` (≥ 1 token, after whatever the session already holds), then samples and decodes one token
  // at a time until an end-of-generation id (Model::end_of_generation, with stop_at_eos), a stop string,
  // max_tokens, a full context or the callback says stop.
  Generation generate(std::span<const int32_t> prompt, const GenerationParams& params,
                      const TokenCallback& on_token = {});

  // One unit vector (hidden_size) for a text: the text's tokens (no <bos>/<eos>) run as one sequence, the final
  // RMSNorm'd hidden state of every token averaged (mean pooling: every position counts, not only the last,
  // which a causal model would make depend on the text's end), then L2-normalized so that a dot product is the
  // cosine similarity. Resets the session before and after. Throws Error on an empty text or one longer than the
  // context.
  std::vector<float> embed(std::string_view text);
  std::vector<float> embed_tokens(std::span<const int32_t> tokens);
  // The same with a choice of pooling and attention (docs/embedding-prediction.md). EmbedOptions{} is the call
  // above. Bidirectional attention runs the text as one chunk on a temporary engine (resident models only).
  std::vector<float> embed(std::string_view text, const EmbedOptions& options);
  std::vector<float> embed_tokens(std::span<const int32_t> tokens, const EmbedOptions& options);

  SessionStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Training and fine-tuning. Progress lines (the step, loss, learning rate, throughput, validation) go to the
// callback; returning false stops the run after the current step with a checkpoint (interrupted = true), as
// Ctrl-C stops `tritter train`.
using ProgressCallback = std::function<bool(const std::string& line)>;

// The optimizer loop's settings, shared by train_model and finetune_model (their defaults differ).
struct LoopParams {
  std::vector<std::string> data = {};   // files or directories (recursive); .jsonl/.jsonl.zst read `text`
  std::vector<std::string> extensions = {};  // kept when walking directories; empty: .py .jsonl .jsonl.zst .txt .md
  double val_fraction = 0.05;           // share of documents held out (by hash) for validation
  std::string out = {};                 // checkpoint directory
  // Continue the run in this directory (its latest checkpoint) exactly: the saved settings apply, except
  // steps, data, out and log_json when given (steps > 0, the others non-empty).
  std::string resume = {};
  int64_t steps = 0;  // optimizer steps; 0: 1000 for training, 200 for fine-tuning
  int64_t batch = 8, seq = 256, accum = 1;
  std::string schedule = {};  // "bitnet", "cosine", "wsd", "constant"
  double lr = 0, wd = 0, min_lr_ratio = 0.1, clip = 1.0;
  int64_t warmup = -1;  // −1: the schedule's default
  uint64_t seed = 1234;
  int64_t eval_every = 0, eval_windows = 64, checkpoint_every = 0, keep = 3, log_every = 10, max_bad_steps = 10;
  std::string log_json = {};  // also write progress as JSON lines here
  bool recompute = false; // gradient checkpointing
  int threads = 0;        // 0: the physical cores this process may use
};

struct TrainParams {
  std::string config = "tiny";  // a preset (test, tiny, small, ...) or a config JSON file
  LoopParams loop = training_defaults();
  static LoopParams training_defaults();  // bitnet schedule, lr 1.5e-3, wd 0.1, eval 200, checkpoints 500
};

struct TrainSummary {
  int64_t steps_done = 0, skipped = 0;
  bool interrupted = false;
  double last_loss = 0, last_val_bpb = -1;  // -1: no validation pass
  std::vector<double> losses;                 // per step of this invocation (NaN for skipped steps)
  double tokens_per_s = 0;
};

// Quantization-aware training from scratch (or resumed); checkpoints under loop.out (docs/training.md).
TrainSummary train_model(const TrainParams& params, const ProgressCallback& progress = {});

struct FinetuneParams {
  std::string base = {};  // packed model file or full-precision checkpoint (frozen)
  int64_t rank = 16;
  double alpha = 16, dropout = 0;
  std::string targets = "q_proj,k_proj,v_proj,o_proj";  // or all, attn, or any of gate_proj,up_proj,down_proj
  std::string init = "kaiming";                          // or gaussian
  LoopParams loop = finetune_defaults();
  static LoopParams finetune_defaults();  // cosine, lr 1e-3, wd 0, warmup 5 %, eval 50, checkpoints 100
};

struct FinetuneSummary {
  TrainSummary train;
  double base_val_bpb = -1;  // the base's validation bits per byte before the first step
  int64_t adapter_params = 0;
};

// LoRA fine-tuning on a frozen packed ternary base; the adapter ends up in loop.out (Model::open's lora).
FinetuneSummary finetune_model(const FinetuneParams& params, const ProgressCallback& progress = {});

// Every optimizer step as numbers, for a caller that plots a loss curve (the Python bindings' callback): the
// text lines come only every log_every steps, these after each step, skipped (non-finite) steps included.
struct TrainStep {
  int64_t step = 0, steps = 0;  // steps done after this one (1-based), of the run's total
  double loss = 0;              // mean training loss, nats per token; NaN when skipped
  double lr = 0, wd = 0, grad_norm = 0;
  int64_t tokens = 0;           // training tokens seen so far (of a resumed run: since its start)
  double tokens_per_s = 0, elapsed_s = 0;  // over this call
  double val_bpb = -1;          // validation bits per byte when this step ran a validation pass, else -1
  int64_t skipped = 0;          // non-finite steps skipped so far
  bool skipped_step = false;    // this step's update was skipped
};
// Called on the calling thread after every step; false stops the run as ProgressCallback's false does.
using StepCallback = std::function<bool(const TrainStep& step)>;

// As above, with a per-step record beside the text lines (either callback may be empty).
TrainSummary train_model(const TrainParams& params, const ProgressCallback& progress, const StepCallback& on_step);
FinetuneSummary finetune_model(const FinetuneParams& params, const ProgressCallback& progress,
                               const StepCallback& on_step);

// ---- Data curation (docs/curation.md) --------------------------------------------------------------------------
// Lives in libtritter_api's curate.o and needs the curation library (tritter_data, the build tree's `tritter`
// target); an installed prefix holds neither, so code built against it must not call curate().
struct CurateParams {
  std::vector<std::string> inputs = {};  // directories, source files, .jsonl / .jsonl.zst files
  std::string out = {};                  // output directory (built beside it, renamed into place)
  std::string config = {};               // .json or .toml config file (keys in docs/curation.md); "": defaults
  std::string config_json = {};          // or the config itself as JSON object text; at most one of the two
  bool extract_triton = false;           // @triton.jit files to triton/shard-*.jsonl.zst
  std::string text_key = {};             // JSONL field holding the text; "": the config's (text)
  bool near_dedup = true;                // false: exact dedup only
  int threads = 0;                       // 0: the physical cores this process may use
};
// Runs the curation pipeline; returns report.json's content (the same JSON text the output directory holds).
std::string curate(const CurateParams& params);

}  // namespace tritter
