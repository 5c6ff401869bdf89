// Audio files through libsndfile (decode, encode) and libsoxr (resampling): audio/audio_file.h.
#include "audio/audio_file.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tritter::audio {

namespace {

struct Named {
  int code;
  const char* name;
};
constexpr Named kContainers[] = {
    {SF_FORMAT_WAV, "WAV"},   {SF_FORMAT_WAVEX, "WAVEX"}, {SF_FORMAT_RF64, "RF64"}, {SF_FORMAT_FLAC, "FLAC"},
    {SF_FORMAT_OGG, "OGG"},   {SF_FORMAT_MPEG, "MPEG"},   {SF_FORMAT_AIFF, "AIFF"}, {SF_FORMAT_AU, "AU"},
    {SF_FORMAT_CAF, "CAF"},   {SF_FORMAT_W64, "W64"},     {SF_FORMAT_RAW, "RAW"},
};
constexpr Named kEncodings[] = {
    {SF_FORMAT_PCM_S8, "PCM_S8"}, {SF_FORMAT_PCM_U8, "PCM_U8"},   {SF_FORMAT_PCM_16, "PCM_16"},
    {SF_FORMAT_PCM_24, "PCM_24"}, {SF_FORMAT_PCM_32, "PCM_32"},   {SF_FORMAT_FLOAT, "FLOAT"},
    {SF_FORMAT_DOUBLE, "DOUBLE"}, {SF_FORMAT_ULAW, "ULAW"},       {SF_FORMAT_ALAW, "ALAW"},
    {SF_FORMAT_VORBIS, "VORBIS"}, {SF_FORMAT_OPUS, "OPUS"},       {SF_FORMAT_MPEG_LAYER_III, "MP3"},
    {SF_FORMAT_MPEG_LAYER_II, "MP2"}, {SF_FORMAT_IMA_ADPCM, "IMA_ADPCM"}, {SF_FORMAT_MS_ADPCM, "MS_ADPCM"},
};
std::string name_of(int code, std::span<const Named> table) {
  for (const Named& n : table)
    if (n.code == code) return n.name;
  return detail::concat("0x", std::hex, code);
}

// The open handle of one file; closed on every path out.
struct SndFile {
  SNDFILE* f = nullptr;
  SF_INFO info{};
  ~SndFile() {
    if (f) sf_close(f);
  }
};

// libsndfile's virtual I/O over a file in memory: bytes to read, or a growing string a writer fills (WAV and FLAC
// writers seek back to finish their headers).
struct MemoryFile {
  std::span<const uint8_t> in;
  std::string* out = nullptr;
  sf_count_t pos = 0;
  sf_count_t size() const { return static_cast<sf_count_t>(out ? out->size() : in.size()); }
  const uint8_t* data() const { return out ? reinterpret_cast<const uint8_t*>(out->data()) : in.data(); }
};
sf_count_t mem_length(void* user) { return static_cast<MemoryFile*>(user)->size(); }
sf_count_t mem_seek(sf_count_t offset, int whence, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size();
  const sf_count_t to = base + offset;
  if (to < 0 || to > m->size()) return -1;
  m->pos = to;
  return m->pos;
}
sf_count_t mem_read(void* ptr, sf_count_t count, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  const sf_count_t n = std::clamp<sf_count_t>(count, 0, m->size() - m->pos);
  if (n > 0) std::memcpy(ptr, m->data() + m->pos, static_cast<size_t>(n));
  m->pos += n;
  return n;
}
sf_count_t mem_write(const void* ptr, sf_count_t count, void* user) {
  auto* m = static_cast<MemoryFile*>(user);
  if (!m->out || count <= 0) return 0;
  if (m->pos + count > m->size()) m->out->resize(static_cast<size_t>(m->pos + count));
  std::memcpy(m->out->data() + m->pos, ptr, static_cast<size_t>(count));
  m->pos += count;
  return count;
}
sf_count_t mem_tell(void* user) { return static_cast<MemoryFile*>(user)->pos; }

AudioInfo info_of(const SF_INFO& i) {
  AudioInfo a;
  a.frames = i.frames;
  a.sample_rate = i.samplerate;
  a.channels = i.channels;
  a.container = name_of(i.format & SF_FORMAT_TYPEMASK, kContainers);
  a.encoding = name_of(i.format & SF_FORMAT_SUBMASK, kEncodings);
  return a;
}

// The header's fields a decoder relies on, each checked against its range.
void check_header(const AudioInfo& a, const std::string& name) {
  if (a.sample_rate < 1 || a.sample_rate > kMaxSampleRate) {
    throw_error("audio file '", name, "': sample rate: found ", a.sample_rate, " Hz, expected 1 to ", kMaxSampleRate);
  }
  if (a.channels < 1 || a.channels > kMaxChannels) {
    throw_error("audio file '", name, "': channels: found ", a.channels, ", expected 1 to ", kMaxChannels);
  }
  if (a.frames < 0) throw_error("audio file '", name, "': length: found ", a.frames, " frames, expected >= 0");
}

void check_length(const AudioInfo& a, const std::string& name, double max_seconds) {
  if (max_seconds > 0 && a.seconds() > max_seconds) {
    throw_error("audio file '", name, "': length: found ", a.seconds(), " s (", a.frames, " frames at ", a.sample_rate,
                " Hz), expected at most ", max_seconds, " s");
  }
}

Audio decode(SndFile& sf, const std::string& name, const ReadOptions& o) {
  const AudioInfo info = info_of(sf.info);
  check_header(info, name);
  check_length(info, name, o.max_seconds);
  Audio a;
  a.sample_rate = info.sample_rate;
  a.channels = info.channels;
  a.samples.resize(static_cast<size_t>(info.frames) * static_cast<size_t>(info.channels));
  const sf_count_t got = info.frames > 0 ? sf_readf_float(sf.f, a.samples.data(), info.frames) : 0;
  if (got != info.frames) {
    const int err = sf_error(sf.f);
    throw_error("audio file '", name, "': data: found ", got, " frames, the header declares ", info.frames,
                " (truncated or corrupt", err ? std::string(": ") + sf_error_number(err) : std::string(), ")");
  }
  for (size_t k = 0; k < a.samples.size(); ++k) {
    if (!std::isfinite(a.samples[k])) {
      throw_error("audio file '", name, "': frame ", k / static_cast<size_t>(a.channels), " channel ",
                  k % static_cast<size_t>(a.channels), ": found ", a.samples[k], ", expected a finite sample");
    }
  }
  if (o.mono && a.channels > 1) {
    a.samples = downmix(a.samples, a.channels);
    a.channels = 1;
  }
  if (o.sample_rate < 0 || o.sample_rate > kMaxSampleRate) {
    throw_error("read audio '", name, "': target sample rate: found ", o.sample_rate, " Hz, expected 0 (keep) or 1 to ",
                kMaxSampleRate);
  }
  if (o.sample_rate > 0 && o.sample_rate != a.sample_rate) {
    a.samples = resample(a.samples, a.channels, a.sample_rate, o.sample_rate);
    a.sample_rate = o.sample_rate;
  }
  return a;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

}  // namespace

AudioInfo probe_audio(const std::string& path) {
  require_regular_file(path, "audio file");  // a FIFO would block libsndfile's open
  SndFile sf;
  sf.f = sf_open(path.c_str(), SFM_READ, &sf.info);
  if (!sf.f) throw_error("audio file '", path, "': cannot be read as audio: ", sf_strerror(nullptr));
  const AudioInfo a = info_of(sf.info);
  check_header(a, path);
  return a;
}

Audio read_audio(const std::string& path, const ReadOptions& options) {
  require_regular_file(path, "audio file");
  SndFile sf;
  sf.f = sf_open(path.c_str(), SFM_READ, &sf.info);
  if (!sf.f) throw_error("audio file '", path, "': cannot be read as audio: ", sf_strerror(nullptr));
  return decode(sf, path, options);
}

Audio read_audio_bytes(std::span<const uint8_t> bytes, const std::string& name, const ReadOptions& options) {
  MemoryFile mem{bytes, 0};
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  SndFile sf;
  sf.f = sf_open_virtual(&io, SFM_READ, &sf.info, &mem);
  if (!sf.f) throw_error("audio file '", name, "': cannot be read as audio: ", sf_strerror(nullptr));
  return decode(sf, name, options);
}

void write_audio(const std::string& path, std::span<const float> samples, int sample_rate, int channels) {
  const std::string ext = lower_extension(path);
  int format = 0;
  if (ext == ".wav") format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  else if (ext == ".flac") format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
  else if (ext == ".ogg") format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
  else throw_error("write audio '", path, "': extension: found '", ext, "', expected .wav, .flac or .ogg");
  if (sample_rate < 1 || sample_rate > kMaxSampleRate) {
    throw_error("write audio '", path, "': sample rate: found ", sample_rate, " Hz, expected 1 to ", kMaxSampleRate);
  }
  if (channels < 1 || channels > kMaxChannels) {
    throw_error("write audio '", path, "': channels: found ", channels, ", expected 1 to ", kMaxChannels);
  }
  if (samples.size() % static_cast<size_t>(channels) != 0) {
    throw_error("write audio '", path, "': samples: found ", samples.size(), ", expected a multiple of the ", channels,
                " channels");
  }
  for (size_t k = 0; k < samples.size(); ++k) {
    if (!std::isfinite(samples[k])) {
      throw_error("write audio '", path, "': sample ", k, ": found ", samples[k], ", expected a finite value");
    }
  }
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = format;
  if (!sf_format_check(&info)) {
    throw_error("write audio '", path, "': ", ext, " does not take ", channels, " channels at ", sample_rate, " Hz");
  }
  // Encoded in memory, then written by the project's atomic writer (a temporary sibling, fsync, rename): a failure
  // leaves any existing file as it was.
  std::string bytes;
  MemoryFile mem;
  mem.out = &bytes;
  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  {
    SndFile sf;
    sf.f = sf_open_virtual(&io, SFM_WRITE, &info, &mem);
    if (!sf.f) throw_error("write audio '", path, "': ", sf_strerror(nullptr));
    const sf_count_t frames = static_cast<sf_count_t>(samples.size()) / channels;
    sf_count_t put = 0;
    if ((format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16) {
      // Rounded to the nearest of the 65536 levels q/32768 that reading gives back (libsndfile's own float
      // conversion truncates toward zero: up to a whole step off, and biased), clipped to [−1, 32767/32768].
      std::vector<int16_t> pcm(samples.size());
      for (size_t k = 0; k < samples.size(); ++k) {
        const float q = std::nearbyint(samples[k] * 32768.0f);
        pcm[k] = static_cast<int16_t>(std::clamp(q, -32768.0f, 32767.0f));
      }
      put = sf_writef_short(sf.f, pcm.data(), frames);
    } else {
      sf_command(sf.f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
      put = sf_writef_float(sf.f, samples.data(), frames);
    }
    const int err = sf_error(sf.f);
    const int closed = sf_close(sf.f);
    sf.f = nullptr;
    if (put != frames || err || closed) {
      throw_error("write audio '", path, "': encoded ", put, " of ", frames, " frames: ",
                  sf_error_number(err ? err : closed));
    }
  }
  write_file_atomic(path, bytes);
}

std::vector<float> resample(std::span<const float> samples, int channels, int from_rate, int to_rate) {
  if (channels < 1) throw_error("resample: channels: found ", channels, ", expected >= 1");
  if (from_rate < 1 || to_rate < 1 || from_rate > kMaxSampleRate || to_rate > kMaxSampleRate) {
    throw_error("resample: rates: found ", from_rate, " -> ", to_rate, " Hz, expected 1 to ", kMaxSampleRate);
  }
  const size_t frames = samples.size() / static_cast<size_t>(channels);
  if (from_rate == to_rate || frames == 0) return {samples.begin(), samples.begin() + static_cast<ptrdiff_t>(frames * channels)};
  // soxr's one-shot call gives round(frames·to/from) frames once flushed; one more for its rounding.
  const size_t out_frames =
      static_cast<size_t>(std::ceil(static_cast<double>(frames) * to_rate / from_rate)) + 1;
  std::vector<float> out(out_frames * static_cast<size_t>(channels));
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
  size_t done = 0;
  const soxr_error_t err = soxr_oneshot(from_rate, to_rate, static_cast<unsigned>(channels), samples.data(), frames,
                                        nullptr, out.data(), out_frames, &done, &io, &q, nullptr);
  if (err) throw_error("resample ", from_rate, " -> ", to_rate, " Hz: ", err);
  out.resize(done * static_cast<size_t>(channels));
  return out;
}

std::vector<float> downmix(std::span<const float> samples, int channels) {
  if (channels < 1) throw_error("downmix: channels: found ", channels, ", expected >= 1");
  const size_t frames = samples.size() / static_cast<size_t>(channels);
  std::vector<float> mono(frames);
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0.0f;
    for (int c = 0; c < channels; ++c) sum += samples[f * static_cast<size_t>(channels) + static_cast<size_t>(c)];
    mono[f] = sum / static_cast<float>(channels);
  }
  return mono;
}

}  // namespace tritter::audio
