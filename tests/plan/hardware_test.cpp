// Hardware profiles (original.md §11 + H200), the OS reservations and safe-budget rule (§7.3), nvidia-smi parsing
// and profile matching, and `hw check` verdicts on known cases.
#include "plan/hardware.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "util/test_util.h"

namespace tritter {
namespace {

using test::expect_error;

TEST(Hardware, ProfilesAreTheOriginalsPlusH200) {
  const auto& p = gpu_profiles();
  ASSERT_EQ(p.size(), 11u);
  const char* keys[] = {"rtx5080", "rtx3090ti", "rtx5090", "rtx4090", "rtx4080", "rtx3090",
                        "rtx3080", "a100-80gb", "a100-40gb", "h100", "h200"};
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i].key, keys[i]);
    EXPECT_GT(p[i].bandwidth_gbs, 0) << p[i].key;
    EXPECT_LE(p[i].default_budget_gib, p[i].memory_gib) << p[i].key;
  }
  const HardwareProfile& r5080 = find_gpu_profile("rtx5080");
  EXPECT_EQ(r5080.memory_gib, 16);
  EXPECT_EQ(r5080.default_budget_gib, 14.0);
  EXPECT_EQ(r5080.layer_group_size, 4);
  EXPECT_EQ(r5080.prefetch_mb, 512);
  EXPECT_TRUE(r5080.verified);
  EXPECT_EQ(r5080.claimed_qlora, "40B");
  EXPECT_EQ(find_gpu_profile("rtx3080").default_budget_gib, 8.5);
  EXPECT_EQ(find_gpu_profile("h100").layer_group_size, 16);
}

TEST(Hardware, ProfileNamesAreForgiving) {
  EXPECT_EQ(find_gpu_profile("5080").key, "rtx5080");
  EXPECT_EQ(find_gpu_profile("RTX-5080").key, "rtx5080");
  EXPECT_EQ(find_gpu_profile("NVIDIA RTX 3090 Ti").key, "rtx3090ti");
  EXPECT_EQ(find_gpu_profile("A100 80GB").key, "a100-80gb");
  expect_error([] { find_gpu_profile("rtx9999"); }, {"profile 'rtx9999' is unknown", "rtx5080", "h200", "cpu"});
  expect_error([] { find_gpu_profile(""); }, {"unknown"});
}

// original.md §11.1: get_adjusted_budget for an RTX 5080 is 13.0 headless, 12.77 on X11, 12.68 on Wayland and
// on Windows with one monitor.
TEST(Hardware, SafeBudgetRule) {
  const HardwareProfile& p = find_gpu_profile("rtx5080");
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("headless")), (16 - 0.1 - 0.3) * 0.9 - 1.0, 1e-12);
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("headless")), 13.04, 0.005);
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("x11")), 12.77, 0.005);
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("wayland")), 12.68, 0.005);
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("windows")), 12.68, 0.005);
  EXPECT_NEAR(os_reservation("windows:4").gib, 1.4, 1e-12);  // "1.4 GiB for four"
  EXPECT_NEAR(os_reservation("macos").gib, 0.8, 1e-12);
  // The profile's default caps it: an H100 would allow (80 − 0.4)·0.9 − 1 = 70.64, below its 76.
  EXPECT_NEAR(safe_budget_gib(find_gpu_profile("h100"), os_reservation("headless")), 70.64, 1e-9);
  HardwareProfile tiny = p;
  tiny.memory_gib = 1.4;  // u = (1.4 − 0.4)·0.9 = 0.9 ≤ 1: halved
  EXPECT_NEAR(safe_budget_gib(tiny, os_reservation("headless")), 0.45, 1e-12);
  tiny.memory_gib = 0.2;
  EXPECT_EQ(safe_budget_gib(tiny, os_reservation("headless")), 0.0);
  expect_error([] { os_reservation("beos"); }, {"'beos'", "headless", "windows:N"});
  expect_error([] { os_reservation("windows:0"); }, {"'0'", "1 to 16"});
  expect_error([] { os_reservation("windows:two"); }, {"'two'"});
}

TEST(Hardware, CpuProfile) {
  CpuFeatures cpu;
  cpu.logical_cores = 2;
  cpu.model_name = "Test CPU";
  const HardwareProfile p = cpu_profile(cpu, int64_t{24} << 30, int64_t{20} << 30, 12.5);
  EXPECT_EQ(p.key, "cpu");
  EXPECT_TRUE(p.is_cpu);
  EXPECT_EQ(p.memory_gib, 24.0);
  EXPECT_EQ(p.default_budget_gib, 20.0);
  EXPECT_EQ(p.bandwidth_gbs, 12.5);
  EXPECT_NE(p.name.find("Test CPU"), std::string::npos);
  // No CUDA runtime on the CPU: (24 − 0.1)·0.9 − 1 = 20.51, capped by the 20 GiB available.
  EXPECT_NEAR(safe_budget_gib(p, os_reservation("headless")), 20.0, 1e-12);
}

TEST(Hardware, BandwidthProbeRuns) {
  // A sanity check only (speed lives in benchmarks): a small triad returns a finite positive rate.
  const double gbs = measure_memory_bandwidth_gbs(1, 1 << 20, 1);
  EXPECT_GT(gbs, 0.0);
  EXPECT_TRUE(std::isfinite(gbs));
}

// nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader,nounits
TEST(Hardware, ParsesNvidiaSmiAndMatchesProfiles) {
  const std::string out =
      "NVIDIA H100 80GB HBM3, 81559, 1, 550.54.15\n"
      "NVIDIA GeForce RTX 5080, 16303, 512, 570.86.10\n"
      "NVIDIA A100-SXM4-40GB, 40960, 0, 535.104.05\n"
      "NVIDIA A100-SXM4-80GB, 81920, 0, 535.104.05\n"
      "NVIDIA H200, 143771, [N/A], 560.35.03\n"
      "\n"
      "Tesla T4, 15360, 0, 535.104.05\n";
  const auto gpus = parse_nvidia_smi_csv(out);
  ASSERT_EQ(gpus.size(), 6u);
  EXPECT_EQ(gpus[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpus[0].memory_total_mib, 81559);
  EXPECT_EQ(gpus[1].memory_used_mib, 512);
  EXPECT_EQ(gpus[1].driver, "570.86.10");
  EXPECT_EQ(gpus[4].memory_used_mib, 0);  // [N/A]
  const char* expected[] = {"h100", "rtx5080", "a100-40gb", "a100-80gb", "h200"};
  for (int i = 0; i < 5; ++i) {
    const auto p = match_gpu_profile(gpus[i]);
    ASSERT_TRUE(p.has_value()) << gpus[i].name;
    EXPECT_EQ(p->key, expected[i]);
  }
  EXPECT_FALSE(match_gpu_profile(gpus[5]).has_value());
  const HardwareProfile t4 = profile_for_gpu(gpus[5]);
  EXPECT_EQ(t4.key, "detected");
  EXPECT_EQ(t4.memory_gib, 15.0);
  EXPECT_EQ(t4.default_budget_gib, 13.0);
  expect_error([] { parse_nvidia_smi_csv("NVIDIA H100, 81559\n"); }, {"line 1", "found 2 fields, expected 4"});
  expect_error([] { parse_nvidia_smi_csv("\nX, lots, 0, 1\n"); }, {"line 2", "memory.total 'lots'"});
}

TEST(Hardware, DetectionSaysWhatHappened) {
  const Detection d = detect_gpus();
  EXPECT_FALSE(d.note.empty());
  if (!d.nvidia_smi_ran) {
    EXPECT_TRUE(d.gpus.empty());
  }
}

// `hw check` verdicts on known cases (safe budget of an RTX 5080, headless: 13.04 GiB).
TEST(Hardware, CheckVerdicts) {
  const double budget = safe_budget_gib(find_gpu_profile("rtx5080"), os_reservation("headless"));
  const TritterConfig c7 = preset_config("7B");
  PlanOptions infer;
  infer.context = 32768;
  FitCheck r = check_fit(c7, infer, budget);
  EXPECT_TRUE(r.fits);
  EXPECT_NEAR(r.headroom_gib, budget - r.total_gib, 1e-12);
  EXPECT_TRUE(r.suggestions.empty());

  // 128K with an f16 cache (16 GiB) does not fit; an INT4 cache alone does, and is the first suggestion.
  infer.context = 131072;
  r = check_fit(c7, infer, budget);
  EXPECT_FALSE(r.fits);
  ASSERT_FALSE(r.suggestions.empty());
  EXPECT_NE(r.suggestions[0].change.find("INT4"), std::string::npos);
  EXPECT_TRUE(r.suggestions[0].fits);
  bool smaller_context = false;
  for (const auto& s : r.suggestions) smaller_context |= s.change.find("--context 65536") != std::string::npos;
  EXPECT_TRUE(smaller_context);

  // Full training of 7B needs 16 bytes per parameter: no; QLoRA is suggested and fits.
  PlanOptions train;
  train.mode = PlanMode::Train;
  train.context = 2048;
  r = check_fit(c7, train, budget);
  EXPECT_FALSE(r.fits);
  EXPECT_GT(r.total_gib, 16.0 * 6.2e9 / kGiB);
  bool qlora = false;
  for (const auto& s : r.suggestions) qlora |= s.fits && s.change.find("QLoRA") != std::string::npos;
  EXPECT_TRUE(qlora);

  PlanOptions q = train;
  q.mode = PlanMode::Qlora;
  EXPECT_TRUE(check_fit(c7, q, budget).fits);

  // 70B inference cannot hold its weights (≈ 20 GiB): layer streaming with the profile's group of 4 fits.
  PlanOptions big;
  big.context = 4096;
  big.kv = KvDtype::I4;
  r = check_fit(preset_config("70B"), big, budget, 4);
  EXPECT_FALSE(r.fits);
  ASSERT_FALSE(r.suggestions.empty());
  EXPECT_NE(r.suggestions[0].change.find("--stream-group 4"), std::string::npos) << r.suggestions[0].change;
  EXPECT_TRUE(r.suggestions[0].fits);
}

}  // namespace
}  // namespace tritter
