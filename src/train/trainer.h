// The training loop (issue 5): gradient accumulation, clipping, AdamW, schedules, validation bits-per-byte,
// progress lines and JSON logs, NaN/Inf steps skipped and counted, and training checkpoints that resume exactly.
//
// Checkpoint directory (docs/training.md): OUT/step-00000500/{model.safetensors (spec §2 names, F32 latent
// weights, __metadata__ format + config + step), optimizer.safetensors (m.<name>, v.<name>), state.json (step,
// AdamW t, data RNG state, tokens seen, skipped steps, the run's options)}; OUT/latest names the newest. Each
// file is written atomically and the directory is renamed into place, so a kill -9 leaves the previous one intact.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/context.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "train/data.h"
#include "train/dist.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/parallel.h"

namespace tritter::train {

// One optimizer step as the loop saw it, for a caller that plots or records every step (TrainOptions::on_step).
struct StepRecord {
  int64_t step = 0, steps = 0;  // optimizer steps done (1-based after this one), of the run's total
  double loss = 0;              // mean training loss (nats per token); NaN for a skipped step
  double lr = 0, wd = 0, grad_norm = 0;
  int64_t tokens = 0;           // training tokens seen so far
  double tokens_per_s = 0, elapsed_s = 0;  // over this invocation
  double val_bpb = -1;          // validation bits per byte when this step ran one, else -1
  int64_t skipped = 0;          // non-finite steps skipped so far
  bool skipped_step = false;    // this step's update was skipped (non-finite loss or gradients)
};

struct TrainOptions {
  TritterConfig config;
  DataOptions data;
  int64_t batch = 8, seq = 256, steps = 1000, accum = 1;
  Schedule schedule;  // total_steps is set from steps
  AdamWParams adam;
  double clip = 1.0;
  uint64_t seed = 1234;         // weight init and data sampling
  int64_t eval_every = 200;     // steps between validation passes (0: only at the end)
  int64_t eval_windows = 64;    // validation windows of `seq` tokens per pass
  int64_t checkpoint_every = 500;
  int64_t keep = 3;             // checkpoints kept
  int64_t log_every = 10;
  std::string out_dir;
  bool recompute = false;
  // Attention of every training sequence: "causal", or "prefix_lm" with prefix_length P (1 ≤ P < seq): positions
  // < P see each other and the loss counts only targets after the prefix (mask_prefix_targets), in training and
  // validation alike. "bidirectional" is refused: every next-token target would be visible.
  std::string attention = "causal";
  int64_t prefix_length = 0;
  std::string log_json;         // JSON lines, one per logged step
  int64_t max_bad_steps = 10;   // consecutive NaN/Inf steps before the run stops
  // Called after every step (skipped ones included), on the loop's thread; not saved in checkpoints.
  std::function<void(const StepRecord&)> on_step = {};
  // Data parallelism over processes (docs/distributed.md); not saved in checkpoints. Null or size 1: one process.
  // Rank r takes rows shard_range(batch, r, size) of every global batch; gradients are summed in rank order.
  Communicator* comm = nullptr;
  bool zero1 = true;  // with comm size > 1: AdamW moments sharded across the ranks (ZeRO-1)
  // A fresh run into an out_dir that holds a run replaces it (its checkpoints go once the new run's first one is
  // whole); without it such an out_dir is refused. Not saved in checkpoints.
  bool overwrite = false;
  // The model's tokenizer (a Hugging Face tokenizer.json text, e.g. from `tritter train-tokenizer`); "" trains on
  // bytes with the byte tokenizer. Kept in every checkpoint's model.safetensors (and so in the packed file), not
  // in state.json: a resumed run reads it from there.
  std::string tokenizer_json;
};
nlohmann::json train_options_to_json(const TrainOptions& o);
TrainOptions train_options_from_json(const nlohmann::json& j);

// Everything besides weights and moments that a resumed run needs.
struct TrainState {
  int64_t step = 0;  // optimizer steps done
  int64_t tokens = 0;
  int64_t skipped = 0;
  std::array<uint64_t, 4> data_rng{};
  double last_loss = 0;
};

void save_train_checkpoint(const std::filesystem::path& out_dir, const TrainOptions& options, TrainModel& model,
                           const AdamW& adam, const TrainState& state);
// The same with the moments streamed from `moments(which, tensor, sink)` (which 0 = m, 1 = v; sink takes bytes,
// all numel·4 of them in order): a ZeRO-1 run gathers each tensor's moments from the ranks' shards while rank 0
// writes, so no rank ever holds the whole vectors.
using MomentSource = std::function<void(int which, const TensorInfo& tensor,
                                        const std::function<void(const void*, size_t)>& sink)>;
void save_train_checkpoint(const std::filesystem::path& out_dir, const TrainOptions& options, TrainModel& model,
                           const MomentSource& moments, int64_t adam_t, const TrainState& state);
// The newest checkpoint directory of out_dir (from `latest`, else the highest step-*); throws when none.
std::filesystem::path latest_checkpoint(const std::filesystem::path& out_dir);
// Reads options and state of a checkpoint directory (weights and moments follow in load_train_checkpoint).
TrainOptions read_checkpoint_options(const std::filesystem::path& ckpt_dir);
// state.json's progress fields (step, tokens, skipped, last loss, AdamW t, data RNG), each checked and named.
void read_train_state(const std::filesystem::path& ckpt_dir, TrainState& state, AdamW& adam);
// Reads adam's shard of the moments only (the whole vectors for an unsharded AdamW).
void load_train_checkpoint(const std::filesystem::path& ckpt_dir, TrainModel& model, AdamW& adam, TrainState& state);

// Stated maxima of a run's batch shape (docs/training.md, "Limits"), checked by check_batch_shape before anything
// is allocated; sequence length is bounded by kMaxPositions (model/config.h).
inline constexpr int64_t kMaxBatch = 65536;
inline constexpr int64_t kMaxAccum = 65536;
inline constexpr int64_t kMaxBatchTokens = int64_t{1} << 31;  // B·T of one micro-batch
// Throws Error naming `who` and the flag when batch, seq, accum or steps is out of range.
void check_batch_shape(const TrainOptions& o, const char* who);

// Readies a run's output directory before any work (docs/training.md, "Output directory"): refuses a path that is
// not a directory, creates it, takes its lock (Error "... is locked by pid N" while another run writes it),
// removes temporaries that killed or disk-full runs left there, and refuses a directory that already holds a run
// unless `resuming` or `overwrite`. `who` ("train", "finetune") starts every message. The lock is held while the
// returned object lives.
OutputLock prepare_output_dir(const std::filesystem::path& out_dir, bool resuming, bool overwrite, const char* who);
// A checkpoint directory's name, "step-00000042": zero-padded, so names sort in step order.
std::string step_name(int64_t step);
// Whether out_dir holds a run: a `latest` file, a step-* checkpoint or a top-level model/adapter.
bool holds_run(const std::filesystem::path& out_dir);
// Removes every step-* checkpoint of out_dir but `keep` (the first checkpoint of an --overwrite run).
void remove_other_checkpoints(const std::filesystem::path& out_dir, const std::filesystem::path& keep);

struct TrainResult {
  int64_t steps_done = 0;
  int64_t skipped = 0;
  bool interrupted = false;
  double last_loss = 0;
  double last_val_bpb = -1;
  std::vector<double> losses;  // per optimizer step of this invocation (NaN for skipped steps)
  double tokens_per_s = 0;
};

// The optimizer loop that full training and LoRA fine-tuning share: micro-batches from `data` (windows drawn with
// data_rng), gradient accumulation, clipping, non-finite steps skipped and counted (opt.max_bad_steps in a row
// stop the run with an Error naming `who`), evaluation, the progress line and --log-json, checkpoints every
// opt.checkpoint_every steps and at the end, and `stop` (a checkpoint, then return with interrupted = true).
// `state` and data_rng continue where a resumed run left them; state.data_rng is set before every save().
struct TrainLoopHooks {
  std::function<void()> zero_grad;
  // Forward + backward of one (B, T) micro-batch, gradients accumulated scaled by grad_scale; the mean loss.
  // An Error saying "expected a finite value" (the quantizers' refusal of NaN/Inf) counts as a non-finite step.
  std::function<double(const int32_t* inputs, const int32_t* targets, float grad_scale)> micro_step;
  // Optional: called before each optimizer step's micro-steps with the step index (0-based) and the total
  // (the cosine head's auxiliary weight β follows embed_pred_weight over the run's progress).
  std::function<void(int64_t step, int64_t steps)> begin_step = {};
  std::span<float> grads;
  std::function<void(double lr, double wd)> update;  // AdamW on the clipped gradients
  std::function<double()> eval;                      // validation bits per byte
  std::function<void()> save;
  // Data parallelism (optional; empty = one process). reduce: after a step's micro-batches, sums the gradients
  // and returns the global loss from this rank's share; clip_norm(clip): the global gradient norm, clipped (in
  // place of clip_grad_norm over `grads`); any_stop(local): whether any rank was asked to stop. root: this rank
  // writes --log-json.
  std::function<double(double local_loss)> reduce;
  std::function<double(double clip)> clip_norm;
  std::function<bool(bool local_stop)> any_stop;
  bool root = true;
};
TrainResult run_train_loop(const TrainOptions& opt, const TokenData& data, TrainState& state, Rng& data_rng,
                           bool resumed, const TrainLoopHooks& hooks, const char* who,
                           const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print);

// Runs (or, with resume_from non-empty, continues) a training run. `stop` (may be null) is polled after every
// step: when set, a checkpoint is written and the function returns with interrupted = true. `print` receives
// the human progress lines.
TrainResult run_training(Context& ctx, const TrainOptions& options, const std::filesystem::path& resume_from,
                         const std::atomic<bool>* stop, const std::function<void(const std::string&)>& print);

// Mean loss over validation windows, in bits per token (= bits per byte for byte tokens; <eos> counts as one).
// Uses at most max_windows windows of T tokens, B at a time. Returns -1 when the split holds no window.
double evaluate_bits_per_byte(TrainModel& model, const TokenData& data, int64_t B, int64_t T, int64_t max_windows);
double evaluate_bits_per_byte(ParallelTrainModel& model, const TokenData& data, int64_t B, int64_t T,
                              int64_t max_windows);
// The same over any model (LoRA fine-tuning): window_loss(inputs, targets) returns the mean loss of one (B, T) batch.
double evaluate_bits_per_byte(const std::function<double(const int32_t*, const int32_t*)>& window_loss,
                              const TokenData& data, int64_t B, int64_t T, int64_t max_windows);

}  // namespace tritter::train
