// Hardware profiles, budgets, detection and the fit check (original.md §7.3, §11). docs/memory.md has the rules.
#include "plan/hardware.h"

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "kernels/bench.h"
#include "model/tensor_table.h"

namespace tritter {

namespace {

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// "NVIDIA RTX-5080" → "5080": lower case without spaces, dashes, underscores and the vendor/brand words.
std::string normalize_key(const std::string& key) {
  std::string s;
  for (char ch : lower(key)) {
    if (ch != ' ' && ch != '-' && ch != '_') s += ch;
  }
  for (const char* word : {"nvidia", "geforce", "rtx"}) {
    for (size_t pos; (pos = s.find(word)) != std::string::npos;) s.erase(pos, std::string(word).size());
  }
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

}  // namespace

const std::vector<HardwareProfile>& gpu_profiles() {
  // Bandwidths: vendor specifications (the original had none; its docs gave 960 for the 5080 and 717 for the
  // 4080). H200: nvidia-smi reports 143771 MiB ≈ 140 GiB; its budget follows the H100's 4 GiB-below-memory margin
  // scaled to the size. The claims are the original's; H200 has none.
  static const std::vector<HardwareProfile> kProfiles = {
      {"rtx5080", "NVIDIA RTX 5080", 16, 960, 14.0, 4, 512, true, false, "13B", "40B", "1B"},
      {"rtx3090ti", "NVIDIA RTX 3090 Ti", 24, 1008, 22.0, 6, 768, true, false, "30B", "65B", "3B"},
      {"rtx5090", "NVIDIA RTX 5090", 32, 1792, 30.0, 8, 1024, false, false, "40B", "70B", "7B"},
      {"rtx4090", "NVIDIA RTX 4090", 24, 1008, 22.0, 6, 768, false, false, "30B", "65B", "3B"},
      {"rtx4080", "NVIDIA RTX 4080", 16, 717, 14.0, 4, 512, false, false, "13B", "40B", "1B"},
      {"rtx3090", "NVIDIA RTX 3090", 24, 936, 22.0, 6, 768, false, false, "30B", "65B", "3B"},
      {"rtx3080", "NVIDIA RTX 3080", 10, 760, 8.5, 2, 256, false, false, "7B", "13B", "1B"},
      {"a100-80gb", "NVIDIA A100 80GB", 80, 2039, 76.0, 16, 2048, false, false, "70B", "70B", "13B"},
      {"a100-40gb", "NVIDIA A100 40GB", 40, 1555, 38.0, 8, 1024, false, false, "40B", "70B", "7B"},
      {"h100", "NVIDIA H100", 80, 3350, 76.0, 16, 4096, false, false, "70B", "70B", "13B"},
      {"h200", "NVIDIA H200", 140, 4800, 134.0, 16, 4096, false, false, "", "", ""},
  };
  return kProfiles;
}

std::string gpu_profile_keys() {
  std::string s;
  for (const auto& p : gpu_profiles()) s += (s.empty() ? "" : ", ") + p.key;
  return s;
}

const HardwareProfile& find_gpu_profile(const std::string& key) {
  const std::string want = normalize_key(key);
  for (const auto& p : gpu_profiles()) {
    if (!want.empty() && normalize_key(p.key) == want) return p;
  }
  throw_error("profile '", key, "' is unknown; expected one of ", gpu_profile_keys(), ", cpu");
}

double measure_memory_bandwidth_gbs(int threads, int64_t bytes_per_array, int repeats) {
  return kbench::measure_triad_gbs(std::max(threads, 1), static_cast<size_t>(std::max<int64_t>(bytes_per_array, 0)),
                                   std::max(repeats, 1));
}

std::vector<GpuInfo> parse_nvidia_smi_csv(const std::string& text) {
  std::vector<GpuInfo> gpus;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::vector<std::string> fields;
    std::stringstream ls(line);
    for (std::string f; std::getline(ls, f, ',');) fields.push_back(trim(f));
    if (fields.size() != 4) {
      throw_error("nvidia-smi output line ", line_no, " '", line, "': found ", fields.size(),
                  " fields, expected 4 (name, memory.total, memory.used, driver_version)");
    }
    auto number = [&](const std::string& f, const char* what, bool required) -> int64_t {
      try {
        size_t pos = 0;
        const int64_t v = std::stoll(f, &pos);
        if (pos == f.size() && v >= 0) return v;
      } catch (const std::exception&) {
      }
      if (required) {
        throw_error("nvidia-smi output line ", line_no, ": ", what, " '", f, "' is not a number of MiB");
      }
      return 0;  // "[N/A]" for memory.used on some boards
    };
    gpus.push_back({fields[0], number(fields[1], "memory.total", true), number(fields[2], "memory.used", false),
                    fields[3]});
  }
  return gpus;
}

std::optional<HardwareProfile> match_gpu_profile(const GpuInfo& gpu) {
  const std::string n = normalize_key(gpu.name);
  auto key = [&]() -> std::string {
    if (n.find("5080") != std::string::npos) return "rtx5080";
    if (n.find("3090ti") != std::string::npos) return "rtx3090ti";
    if (n.find("5090") != std::string::npos) return "rtx5090";
    if (n.find("4090") != std::string::npos) return "rtx4090";
    if (n.find("4080") != std::string::npos) return "rtx4080";
    if (n.find("3090") != std::string::npos) return "rtx3090";
    if (n.find("3080") != std::string::npos) return "rtx3080";
    if (n.find("a100") != std::string::npos) return gpu.memory_total_mib > 60 * 1024 ? "a100-80gb" : "a100-40gb";
    if (n.find("h200") != std::string::npos) return "h200";
    if (n.find("h100") != std::string::npos) return "h100";
    return "";
  }();
  if (key.empty()) return std::nullopt;
  return find_gpu_profile(key);
}

HardwareProfile profile_for_gpu(const GpuInfo& gpu) {
  if (auto p = match_gpu_profile(gpu)) return *p;
  HardwareProfile p;
  p.key = "detected";
  p.name = gpu.name;
  p.memory_gib = static_cast<double>(gpu.memory_total_mib) / 1024.0;
  p.default_budget_gib = std::max(0.0, p.memory_gib - 2.0);
  return p;
}

Detection detect_gpus() {
  Detection d;
  FILE* pipe = popen((std::string(kNvidiaSmiQuery) + " 2>/dev/null").c_str(), "r");
  if (!pipe) {
    d.note = "could not start a shell to run nvidia-smi: no GPU detection";
    return d;
  }
  std::string out;
  std::array<char, 4096> chunk;
  for (size_t n; (n = fread(chunk.data(), 1, chunk.size(), pipe)) > 0;) out.append(chunk.data(), n);
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 127) {
    d.note = "nvidia-smi not found: no NVIDIA GPU detected (no driver installed)";
  } else if (code != 0) {
    d.note = "nvidia-smi failed (exit " + std::to_string(code) + "): no usable NVIDIA GPU";
  } else {
    d.nvidia_smi_ran = true;
    try {
      d.gpus = parse_nvidia_smi_csv(out);
    } catch (const Error& e) {
      d.note = std::string("nvidia-smi ran but its output was not understood (") + e.what() + "): no GPU used";
      return d;
    }
    d.note = d.gpus.empty() ? "nvidia-smi ran but lists no GPU"
                            : "nvidia-smi found " + std::to_string(d.gpus.size()) + " GPU(s)";
  }
  return d;
}

// ---- The fit check --------------------------------------------------------------------------------------------

namespace {

double plan_gib(const TritterConfig& c, const PlanOptions& o) { return static_cast<double>(total_bytes(plan_memory(c, o))) / kGiB; }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Tries `o`; adds it as a suggestion and returns true when it fits.
bool try_change(std::vector<Suggestion>& out, const TritterConfig& c, const PlanOptions& o, double budget,
                const std::string& change, bool keep_if_not_fitting = false) {
  const double total = plan_gib(c, o);
  const bool fits = total <= budget;
  if (fits || keep_if_not_fitting) out.push_back({change, total, fits});
  return fits;
}

bool suggest_context(std::vector<Suggestion>& out, const TritterConfig& c, PlanOptions o, double budget,
                     int64_t floor, const std::string& what, const std::string& extra) {
  for (int64_t ctx = o.context / 2; ctx >= floor; ctx /= 2) {
    o.context = ctx;
    if (try_change(out, c, o, budget, what + " " + std::to_string(ctx) + " (--context " + std::to_string(ctx) + ")" + extra)) {
      return true;
    }
  }
  return false;
}

bool suggest_streaming(std::vector<Suggestion>& out, const TritterConfig& c, PlanOptions o, double budget,
                       int64_t preferred, const std::string& extra) {
  const int64_t L = c.num_hidden_layers;
  int64_t streamed = 0;
  for (int i = 0; i < L; ++i) streamed += layer_packed_bytes(c, i);
  auto describe = [&](int64_t g) {
    return "layer streaming in groups of " + std::to_string(g) + " layers (--stream-group " + std::to_string(g) + ")" +
           extra + ": " + fmt("%.2f GB", static_cast<double>(streamed) / 1e9) +
           " cross PCIe per forward pass, at most " + fmt("%.1f", 25e9 / static_cast<double>(streamed)) +
           " tokens/s at 25 GB/s";
  };
  std::vector<int64_t> groups;
  if (preferred >= 1 && 2 * preferred < L) groups.push_back(preferred);
  for (int64_t g = (L - 1) / 2; g >= 1; --g) {
    if (g != preferred) groups.push_back(g);
  }
  for (int64_t g : groups) {
    o.stream_group = g;
    if (try_change(out, c, o, budget, describe(g))) return true;
  }
  return false;
}

void suggest_smaller_model(std::vector<Suggestion>& out, const TritterConfig& c, const PlanOptions& o, double budget) {
  const auto& sizes = spec_size_names();
  const int64_t params = parameter_count(c);
  for (auto it = sizes.rbegin(); it != sizes.rend(); ++it) {
    const TritterConfig smaller = preset_config(*it);
    if (parameter_count(smaller) >= params) continue;
    if (try_change(out, smaller, o, budget, "a smaller model: " + *it + " (the largest size that fits as asked)")) return;
  }
}

}  // namespace

FitCheck check_fit(const TritterConfig& config, const PlanOptions& options, double budget_gib,
                   int64_t preferred_group) {
  FitCheck r;
  r.model_size = config.model_size;
  r.mode = options.mode;
  r.options = options;
  r.items = plan_memory(config, options);
  r.total_gib = static_cast<double>(total_bytes(r.items)) / kGiB;
  r.budget_gib = budget_gib;
  r.headroom_gib = budget_gib - r.total_gib;
  r.fits = r.total_gib <= budget_gib;
  if (r.fits) return r;
  auto& s = r.suggestions;
  const TritterConfig& c = config;
  if (options.mode == PlanMode::Infer) {
    PlanOptions int4 = options;
    int4.kv = KvDtype::I4;
    const bool can_int4 = options.kv != KvDtype::I4;
    bool fixed = can_int4 && try_change(s, c, int4, budget_gib, "an INT4 KV cache (--kv int4)");
    fixed = suggest_context(s, c, options, budget_gib, 512, "a context of", "") || fixed;
    fixed = suggest_streaming(s, c, options, budget_gib, preferred_group, "") || fixed;
    if (options.head == HeadFormat::F32) {
      PlanOptions i8 = options;
      i8.head = HeadFormat::I8;
      fixed = try_change(s, c, i8, budget_gib, "an int8 LM head (--head i8)") || fixed;
    }
    if (options.head != HeadFormat::I4) {
      PlanOptions i4 = options;
      i4.head = HeadFormat::I4;
      fixed = try_change(s, c, i4, budget_gib, "a 4-bit LM head (--head i4)") || fixed;
    }
    if (!fixed && can_int4) {  // no single change is enough: combine with INT4
      suggest_context(s, c, int4, budget_gib, 512, "a context of", " with --kv int4");
      suggest_streaming(s, c, int4, budget_gib, preferred_group, " with --kv int4");
    }
  } else {
    if (!options.recompute) {
      PlanOptions o = options;
      o.recompute = true;
      try_change(s, c, o, budget_gib, "activation recomputation (drop --no-recompute)");
    }
    if (options.mode == PlanMode::Train) {
      PlanOptions o = options;
      o.mode = PlanMode::Qlora;
      o.lora_rank = 16;
      try_change(s, c, o, budget_gib, "QLoRA r=16 on q,k,v,o instead of full training (--mode qlora)", true);
    } else if (options.lora_rank > 8) {
      PlanOptions o = options;
      o.lora_rank = 8;
      try_change(s, c, o, budget_gib, "LoRA rank 8 (--rank 8)");
    }
    suggest_context(s, c, options, budget_gib, 256, "a training sequence length of", "");
  }
  if (config.model_size != "custom") suggest_smaller_model(s, c, options, budget_gib);
  std::stable_sort(s.begin(), s.end(), [](const Suggestion& a, const Suggestion& b) { return a.fits && !b.fits; });
  return r;
}

}  // namespace tritter
