// What the command line says before CLI11 parses it: `tritter` alone lists the commands, an unknown command or
// option is named (with the nearest registered name), and a single-dash word such as llama.cpp's `-ngl` is not
// read as `-n gl`. Generic over the registered subcommands: a new command file needs nothing here.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"

namespace tritter::cli {

namespace {

// Edit distance (insert, delete, substitute), for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest of `names` to `word` within a third of its length (at least 2 edits), or "" when none is close.
std::string nearest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& n : names) {
    const size_t d = n.rfind(word, 0) == 0 && word.size() >= 3 ? 1 : edit_distance(word, n);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

// llama.cpp's GPU flags: Tritter has no GPU backend yet, so these get a sentence rather than only "unknown".
bool is_gpu_flag(const std::string& name) {
  for (const char* g : {"-ngl", "--n-gpu-layers", "--gpu-layers", "-mg", "--main-gpu", "-sm", "--split-mode", "-ts",
                        "--tensor-split", "-dev", "--device", "-ngld", "--n-gpu-layers-draft"}) {
    if (name == g) return true;
  }
  return false;
}

// llama.cpp spellings that Tritter spells differently (the rest of its common long names are accepted as is).
std::string llama_equivalent(const std::string& name) {
  if (name == "-ctk" || name == "-ctv" || name == "--cache-type-k" || name == "--cache-type-v") {
    return "Tritter's K and V cache share one dtype: --kv-cache f16|q8_0|q4_0|f32";
  }
  if (name == "-tb" || name == "--threads-batch") return "Tritter uses one thread count: -t/--threads";
  if (name == "-hf" || name == "-hfr" || name == "--hf-repo") return "give a local model file or directory with -m";
  return "";
}

struct Known {
  std::vector<std::string> long_names, short_names;  // with their dashes
  std::vector<std::string> valued;                   // names whose option takes a value
  std::vector<std::string> short_flags;              // single-letter names of flags (combinable: -vq)
};

void collect(const CLI::App& app, Known& k) {
  for (const CLI::Option* o : app.get_options()) {
    const bool takes_value = o->get_type_size_max() > 0 && o->get_expected_max() > 0;
    for (const auto& n : o->get_lnames()) {
      k.long_names.push_back("--" + n);
      if (takes_value) k.valued.push_back("--" + n);
    }
    for (const auto& n : o->get_snames()) {
      k.short_names.push_back("-" + n);
      (takes_value ? k.valued : k.short_flags).push_back("-" + n);
    }
  }
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool is_number(const std::string& s) {  // -1, -0.5: a value, not an option
  if (s.size() < 2 || s[0] != '-') return false;
  return std::isdigit(static_cast<unsigned char>(s[1])) || (s[1] == '.' && s.size() > 2);
}

std::string command_path(const std::vector<const CLI::App*>& chain) {
  std::string path = "tritter";
  for (size_t i = 1; i < chain.size(); ++i) path += " " + chain[i]->get_name();
  return path;
}

int unknown_option(const std::string& token, const std::vector<const CLI::App*>& chain, const Known& k) {
  std::string msg = "error: unknown option '" + token + "' for '" + command_path(chain) + "'";
  if (is_gpu_flag(token)) {
    msg += ": Tritter runs on the CPU; GPU offload is not supported yet, so drop the flag";
  } else if (const std::string eq = llama_equivalent(token); !eq.empty()) {
    msg += ": " + eq;
  } else {
    std::vector<std::string> all = k.long_names;
    all.insert(all.end(), k.short_names.begin(), k.short_names.end());
    const std::string near = nearest(token, all);
    if (!near.empty()) msg += "; did you mean '" + near + "'?";
  }
  std::fprintf(stderr, "%s\n%s --help lists its options\n", msg.c_str(), command_path(chain).c_str());
  return 2;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(s->get_name());
  return names;
}

const CLI::App* find_subcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (s->get_name() == name) return s;
  }
  return nullptr;
}

}  // namespace

void print_command_list(const CLI::App& app, std::FILE* out) {
  std::fprintf(out, "%s\n\nusage: tritter [-t N] [-v|-q] COMMAND [options]\n\ncommands:\n",
               app.get_description().c_str());
  for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; })) {
    std::fprintf(out, "  %-12s %s\n", s->get_name().c_str(), s->get_description().c_str());
  }
  std::fprintf(out, "\n`tritter COMMAND --help` shows a command's options; `tritter --help` the global ones.\n");
}

int check_command_line(const CLI::App& app, int argc, char** argv) {
  if (argc <= 1) {
    print_command_list(app, stdout);
    return 0;
  }
  std::vector<const CLI::App*> chain{&app};
  Known known;
  collect(app, known);
  bool skip_value = false;
  for (int i = 1; i < argc; ++i) {
    std::string tok = argv[i];
    if (skip_value) {
      skip_value = false;
      if (tok.empty() || tok[0] != '-' || is_number(tok) || tok == "-") continue;
    }
    if (tok == "--") break;  // the rest are positionals
    if (tok.size() >= 2 && tok[0] == '-' && !is_number(tok)) {
      if (tok[1] == '-') {
        const std::string name = tok.substr(0, tok.find('='));
        if (!contains(known.long_names, name)) return unknown_option(name, chain, known);
        skip_value = contains(known.valued, name) && name.size() == tok.size();
        continue;
      }
      const std::string first = tok.substr(0, 2);
      if (!contains(known.short_names, first)) return unknown_option(tok, chain, known);
      if (tok.size() == 2) {
        skip_value = contains(known.valued, first);
        continue;
      }
      // -n12 is -n 12; but -ngl, -ctk (letters after a valued short option) are long names CLI11 would split.
      const std::string rest = tok.substr(2);
      const bool letters = std::all_of(rest.begin(), rest.end(), [](char ch) {
        return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
      });
      if (contains(known.valued, first)) {
        if (letters) return unknown_option(tok, chain, known);
        continue;
      }
      for (char ch : rest) {  // combined flags: -vq
        if (!contains(known.short_flags, std::string("-") + ch)) return unknown_option(tok, chain, known);
      }
      continue;
    }
    // A word: a subcommand of the current command, or a positional of a command that takes positionals.
    const CLI::App* cur = chain.back();
    if (const CLI::App* sub = find_subcommand(*cur, tok)) {
      chain.push_back(sub);
      collect(*sub, known);
      continue;
    }
    const auto names = subcommand_names(*cur);
    const bool has_positionals = !cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
    if (!names.empty() && !has_positionals && (cur == &app || cur->get_require_subcommand_min() > 0)) {
      const std::string near = nearest(tok, names);
      std::string msg = "error: unknown command '" + tok + "'";
      if (cur != &app) msg = "error: '" + command_path(chain) + "' has no subcommand '" + tok + "'";
      if (!near.empty()) msg += "; did you mean '" + near + "'?";
      std::fprintf(stderr, "%s\n", msg.c_str());
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      std::fprintf(stderr, "%s commands: %s\n", command_path(chain).c_str(), list.c_str());
      return 2;
    }
  }
  return -1;
}

}  // namespace tritter::cli
