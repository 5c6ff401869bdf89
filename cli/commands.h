// The subcommands. Each adds itself to the app; its callback parses nothing else, calls the library and prints.
// Add one line here and one in main.cpp per new command file.
#pragma once
#include <filesystem>

#include "common.h"

namespace tritter::cli {

void add_version_command(CLI::App& app, GlobalOptions& global);
CLI::App& bench_command(CLI::App& app); void add_bench_command(CLI::App& app, GlobalOptions& global);  // bench_command: the shared `bench` parent
void add_specs_command(CLI::App& app, GlobalOptions& global); void add_hw_command(CLI::App& app, GlobalOptions& global);
void add_curate_command(CLI::App& app, GlobalOptions& global); void add_bench_curate_command(CLI::App& app, GlobalOptions& global);
std::filesystem::path curate_rule_cache_dir();  // $XDG_CACHE_HOME/tritter or ~/.cache/tritter: the compiled secret rules
void add_inference_commands(CLI::App& app, GlobalOptions& global);  // init pack inspect tokenize generate, bench model
void add_bench_stream_command(CLI::App& app, GlobalOptions& global);  // bench stream (layer streaming)
void add_train_command(CLI::App& app, GlobalOptions& global); void add_grads_command(CLI::App& app, GlobalOptions& global); void add_eval_command(CLI::App& app, GlobalOptions& global); void add_export_command(CLI::App& app, GlobalOptions& global); void add_bench_train_command(CLI::App& app, GlobalOptions& global);
void add_expand_command(CLI::App& app, GlobalOptions& global);  // depth up-scaling
void add_bench_long_command(CLI::App& app, GlobalOptions& global);  // bench long: decode at a long context

void add_convert_command(CLI::App& app, GlobalOptions& global);  // convert between Tritter, HF folders and GGUF
void add_finetune_command(CLI::App& app, GlobalOptions& global); void add_merge_lora_command(CLI::App& app, GlobalOptions& global);  // LoRA

void add_serve_command(CLI::App& app, GlobalOptions& global);  // the OpenAI-compatible HTTP server
void add_embed_command(CLI::App& app, GlobalOptions& global);  // text embeddings
void add_train_tokenizer_command(CLI::App& app, GlobalOptions& global);  // a BPE tokenizer for code (SentencePiece)
void add_audio_command(CLI::App& app, GlobalOptions& global);  // audio files: info, convert, encode, decode
void add_codec_training_commands(CLI::App* audio, GlobalOptions& global);  // audio train-codec, audio eval

}  // namespace tritter::cli
