// The report-only secret scan and its SARIF form (see secret_scan.h): documents are read in batches, scanned in
// parallel with one Hyperscan scratch per thread, and merged in input order.
#include "data/secret_scan.h"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "kernels/parallel.h"

namespace tritter::data {

SecretScanReport scan_secrets_only(const std::vector<std::string>& inputs, const SourceConfig& config, Context& ctx,
                                   const std::filesystem::path& rule_cache_dir) {
  const auto t0 = std::chrono::steady_clock::now();
  SecretScanReport rep;
  const int threads = std::max(1, ctx.threads);
  const SecretScanner scanner(rule_cache_dir);
  // Names are scanned too: a file, tar member or JSONL field may carry a secret even when the text is clean, and
  // a skipped file's name is reported like a scanned one's.
  SecretScanner::Scratch name_scratch(scanner);
  auto scan_name = [&](const std::string& value, const char* field, std::vector<PathFinding>& out) {
    for (auto& f : scanner.scan(value, name_scratch)) out.push_back({"", std::move(f), field});
  };
  auto name_findings = [&](const Document& d) {
    std::vector<PathFinding> out;
    scan_name(d.path, "path", out);
    scan_name(d.source, "source", out);
    scan_name(d.license, "license", out);
    scan_name(d.language, "language", out);
    return out;
  };
  auto shown_path = [](const std::string& path, const std::vector<PathFinding>& names) {
    std::vector<SecretFinding> in_path;
    for (const auto& n : names)
      if (n.field == "path") in_path.push_back(n.finding);
    return in_path.empty() ? path : redact_secrets(path, in_path);
  };
  DocumentSource source(inputs, config, [&](const std::string& path, const std::string&) {
    std::vector<PathFinding> names;
    scan_name(path, "path", names);
    const std::string shown = shown_path(path, names);
    for (auto& n : names) {
      n.path = shown;
      rep.findings.push_back(std::move(n));
    }
  });
  std::vector<std::unique_ptr<SecretScanner::Scratch>> scratch;
  for (int i = 0; i < threads; ++i) scratch.push_back(std::make_unique<SecretScanner::Scratch>(scanner));
  std::vector<Document> batch;
  std::vector<std::vector<SecretFinding>> found;
  for (bool more = true; more;) {
    batch.clear();
    size_t bytes = 0;
    while (batch.size() < 1024 && bytes < (64u << 20)) {
      Document d;
      if (!source.next(d)) {
        more = false;
        break;
      }
      bytes += d.text.size();
      batch.push_back(std::move(d));
    }
    found.assign(batch.size(), {});
    parallel_for(threads, static_cast<int64_t>(batch.size()), [&](int64_t i, int t) {
      found[size_t(i)] = scanner.scan(batch[size_t(i)].text, *scratch[size_t(t)]);
    });
    for (size_t i = 0; i < batch.size(); ++i) {
      ++rep.files_scanned;
      rep.bytes_scanned += batch[i].text.size();
      std::vector<PathFinding> names = name_findings(batch[i]);
      const std::string shown = shown_path(batch[i].path, names);
      for (auto& n : names) {
        n.path = shown;
        rep.findings.push_back(std::move(n));
      }
      for (auto& f : found[i]) rep.findings.push_back({shown, std::move(f), ""});
    }
  }
  rep.skipped = source.skipped();
  rep.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

std::string findings_text(const SecretScanReport& report) {
  std::string out;
  for (const auto& f : report.findings)
    out += f.path + ":" + std::to_string(f.field.empty() ? f.finding.line : 0) + ":" + std::to_string(f.finding.col) +
           ": " + f.finding.rule + " " + f.finding.fingerprint + (f.field.empty() ? "" : " (in the " + f.field + ")") +
           "\n";
  return out;
}

std::string findings_sarif(const SecretScanReport& report) {
  using nlohmann::json;
  json rules = json::array();
  std::map<std::string, size_t> index;
  for (const auto& r : secret_rules()) {
    if (index.count(r.id)) continue;
    index[r.id] = rules.size();
    rules.push_back({{"id", r.id},
                     {"name", r.id},
                     {"shortDescription", {{"text", r.description}}},
                     {"defaultConfiguration", {{"level", "error"}}}});
  }
  json results = json::array();
  for (const auto& f : report.findings) {
    results.push_back(
        {{"ruleId", f.finding.rule},
         {"ruleIndex", index.at(f.finding.rule)},
         {"level", "error"},
         {"message",
          {{"text", "secret found by rule " + f.finding.rule + (f.field.empty() ? "" : " in the file's " + f.field) +
                        " (" + f.finding.fingerprint + ")"}}},
         {"locations",
          json::array({{{"physicalLocation",
                         f.field.empty()
                             ? json{{"artifactLocation", {{"uri", f.path}}},
                                    {"region", {{"startLine", f.finding.line}, {"startColumn", f.finding.col}}}}
                             : json{{"artifactLocation", {{"uri", f.path}}}}}}})},
         {"partialFingerprints", {{"secretSha256/v1", f.finding.fingerprint}}}});
  }
  const json sarif = {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
      {"version", "2.1.0"},
      {"runs", json::array({{{"tool", {{"driver", {{"name", "tritter-secrets"}, {"version", "1"}, {"rules", rules}}}}},
                             {"results", results}}})}};
  return sarif.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace tritter::data
