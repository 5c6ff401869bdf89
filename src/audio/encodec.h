// EnCodec (the 24 kHz, causal, mono family of Hugging Face's `facebook/encodec_24khz`): the SEANet encoder and decoder
// and the residual vector quantizer, loaded from a Hugging Face folder (config.json + model.safetensors, the
// transformers tensor names) and run for inference with kernels/conv.h. encode: samples → codes (n_q, frames), one
// frame per hop (the product of the upsampling ratios: 320 samples, 75 frames/s at 24 kHz); decode: codes →
// samples. The weight-normalized convolutions are folded (w = g·v/‖v‖) once at load.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "audio/seanet.h"
#include "core/context.h"
#include "core/dtype.h"

namespace tritter::audio {

struct EncodecConfig {
  int audio_channels = 1;
  int num_filters = 32;
  int kernel_size = 7, last_kernel_size = 7, residual_kernel_size = 3;
  int dilation_growth_rate = 2, num_residual_layers = 1, compress = 2, num_lstm_layers = 2;
  int hidden_size = 128;     // the latent and codebook dimension
  int codebook_size = 1024;
  int sampling_rate = 24000;
  std::vector<int> upsampling_ratios = {8, 5, 4, 2};
  std::vector<double> target_bandwidths = {1.5, 3.0, 6.0, 12.0, 24.0};
  bool use_conv_shortcut = true;
  double trim_right_ratio = 1.0;

  int64_t hop() const;        // samples per frame: the product of the ratios
  int frame_rate() const;     // ⌈sampling_rate / hop⌉
  // Codebooks for a bandwidth in kbps: ⌊1000·bw / (log2(codebook_size)·frame_rate)⌋, at least 1.
  int codebooks_for(double kbps) const;
  int max_codebooks() const;  // for the largest target bandwidth
};

// config.json of a Hugging Face EnCodec folder. Only the causal, weight-normalized, mono variant is taken: others
// (the 48 kHz stereo model, time_group_norm, normalize, chunking) are refused naming the field and value.
EncodecConfig parse_encodec_config(const std::string& json_text, const std::string& source);

class Encodec {
 public:
  // `path`: a folder with config.json and model.safetensors, or the .safetensors file with config.json beside it.
  static Encodec load(const std::string& path);
  const EncodecConfig& config() const { return cfg_; }
  int codebooks() const { return static_cast<int>(codebooks_.size()); }

  // The encoder's latents (hidden_size, frames) of mono samples (T) at the config's rate; frames = ⌈T / hop⌉.
  std::vector<float> encode_latents(const Context& ctx, const float* samples, int64_t T, int64_t* frames) const;
  // Codes (n_q, frames): each codebook's nearest entry to what the previous ones left (ties to the lowest id).
  std::vector<int32_t> quantize(const Context& ctx, const float* latents, int64_t frames, int n_q) const;
  // The sum of the n_q codebooks' entries (hidden_size, frames): the decoder's input.
  std::vector<float> dequantize(const int32_t* codes, int n_q, int64_t frames) const;
  // Samples (frames·hop) from latents (hidden_size, frames).
  std::vector<float> decode_latents(const Context& ctx, const float* latents, int64_t frames) const;

  std::vector<int32_t> encode(const Context& ctx, const float* samples, int64_t T, int n_q, int64_t* frames) const;
  std::vector<float> decode(const Context& ctx, const int32_t* codes, int n_q, int64_t frames) const;

  // Where the loader gets its tensors: the floats of `name` with the given shape, or nothing when there is no
  // such tensor (a shape or type mismatch is an Error of the source). load() reads a safetensors file; the codec
  // trainer hands out its parameters.
  using TensorSource = std::function<std::optional<std::vector<float>>(const std::string& name, const Shape& shape)>;
  // The stacks and codebooks of `cfg` from `source` (`what` names it in errors); weight-normalized convolutions are
  // folded here.
  static Encodec from_source(const EncodecConfig& cfg, const TensorSource& source, const std::string& what);

  const Seanet& encoder() const { return encoder_; }
  const Seanet& decoder() const { return decoder_; }
  const std::vector<float>& codebook(int q) const { return codebooks_[static_cast<size_t>(q)]; }  // (codebook_size, hidden_size)

 private:
  EncodecConfig cfg_;
  Seanet encoder_, decoder_;
  std::vector<std::vector<float>> codebooks_;    // each (codebook_size, hidden_size)
  std::vector<std::vector<float>> codebook_sq_;  // ‖entry‖² of each, (codebook_size)
};

// ‖entry‖² of each of the V rows of a codebook (V, D), summed in double: vq_nearest's table_sq.
std::vector<float> codebook_norms(const float* table, int64_t V, int64_t D);

// Codes on disk: a safetensors file with "codes" I32 (n_q, frames) and metadata format "tritter-audio-codes",
// sampling_rate and samples (the input's length, so a decode can trim the last frame's padding).
struct AudioCodes {
  std::vector<int32_t> codes;  // (n_q, frames)
  int n_q = 0;
  int64_t frames = 0;
  int sample_rate = 0;
  int64_t samples = 0;
};
void write_audio_codes(const std::string& path, const AudioCodes& c);  // atomic
AudioCodes read_audio_codes(const std::string& path);                  // Errors name the file and the field

}  // namespace tritter::audio
