// The stages of a tokenizer.json pipeline over a parsed TokenizerSpec: normalizer, pre-tokenizer, BPE, decoder.
#include <queue>

#include "core/error.h"
#include "text/hf_tokenizer_parts.h"
#include "text/unicode.h"

namespace tritter::hf {

namespace {

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0;;) {
    const size_t j = s.find(from, i);
    if (j == std::string_view::npos) {
      out.append(s.substr(i));
      return out;
    }
    out.append(s.substr(i, j - i)).append(to);
    i = j + from.size();
  }
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const char32_t c = unicode::decode_utf8(s, i);
    unicode::append_utf8(out, c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  return out;
}

}  // namespace

std::string_view run_normalizer(const TokenizerSpec& s, std::string_view section, std::string& storage) {
  if (s.normalizer.empty()) return section;
  std::string text(section);
  for (const auto& n : s.normalizer) {
    switch (n.kind) {
      case NormStep::prepend: if (!text.empty()) text.insert(0, n.a); break;
      case NormStep::replace: text = replace_all(text, n.a, n.b); break;
      case NormStep::nfc: text = unicode::normalize(text, unicode::NormalForm::nfc); break;
      case NormStep::nfd: text = unicode::normalize(text, unicode::NormalForm::nfd); break;
      case NormStep::nfkc: text = unicode::normalize(text, unicode::NormalForm::nfkc); break;
      case NormStep::nfkd: text = unicode::normalize(text, unicode::NormalForm::nfkd); break;
      case NormStep::lowercase: text = lowercase(text); break;
    }
  }
  storage = std::move(text);
  return storage;
}

void pre_tokenize(const TokenizerSpec& s, std::string_view text, bool first_section, std::string& storage,
                  std::vector<std::string_view>& pieces) {
  // Steps that rewrite the text (a prefix space, Metaspace's ▁) come first in every real file; apply them to the
  // whole section, then split. A rewrite after a split would need per-piece storage, which no known file needs.
  std::string_view current = text;
  std::vector<std::string_view> next;
  pieces.assign(1, current);
  for (const auto& p : s.pre_tokenizer) {
    if (p.kind == PreStep::metaspace || (p.kind == PreStep::byte_level && p.add_prefix_space)) {
      if (pieces.size() != 1 || pieces[0].data() != current.data() || pieces[0].size() != current.size()) {
        throw_error("tokenizer.json: a prefix-adding pre-tokenizer after a splitting one is not supported");
      }
      std::string t(current);
      if (p.kind == PreStep::byte_level) {
        if (t.empty() || t[0] != ' ') t = " " + t;
      } else {
        t = replace_all(t, " ", p.replacement);
        const bool prepend = p.scheme == PreStep::always || (p.scheme == PreStep::first && first_section);
        if (prepend && t.compare(0, p.replacement.size(), p.replacement) != 0) t.insert(0, p.replacement);
      }
      storage = std::move(t);
      current = storage;
      pieces.assign(1, current);
    }
    if (p.kind == PreStep::metaspace && p.split_on_replacement) {
      next.clear();
      for (std::string_view piece : pieces) {  // split before each ▁ (MergedWithNext)
        size_t start = 0;
        for (size_t j = piece.find(p.replacement, 1); j != std::string_view::npos; j = piece.find(p.replacement, j + 1)) {
          next.push_back(piece.substr(start, j - start));
          start = j;
        }
        next.push_back(piece.substr(start));
      }
      pieces.swap(next);
    } else if (p.kind == PreStep::split || (p.kind == PreStep::byte_level && p.use_regex)) {
      next.clear();
      for (std::string_view piece : pieces) split_pieces(piece, p.kind == PreStep::split ? p.pattern : SplitPattern::gpt2, next);
      pieces.swap(next);
    }
  }
}

namespace {

struct Candidate {
  int32_t rank, pos, id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

const Merge* find_merge(const TokenizerSpec& s, int32_t a, int32_t b) {
  const auto it = s.merges.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
  return it == s.merges.end() ? nullptr : &it->second;
}

void initial_symbols(const TokenizerSpec& s, std::string_view piece, std::vector<Symbol>& sym) {
  sym.clear();
  const auto push = [&](int32_t id, int32_t len) {
    if (id < 0) return;
    if (s.fuse_unk && id == s.unk && !sym.empty() && sym.back().id == s.unk) {
      sym.back().len += len;
      return;
    }
    sym.push_back({id, static_cast<int32_t>(sym.size()) - 1, -1, len});
  };
  if (s.byte_level) {
    for (char ch : piece) push(s.byte_ids[static_cast<uint8_t>(ch)] >= 0 ? s.byte_ids[static_cast<uint8_t>(ch)] : s.unk, 1);
  } else {
    for (size_t i = 0; i < piece.size();) {
      const size_t start = i;
      unicode::decode_utf8(piece, i);
      const auto it = s.vocab.find(piece.substr(start, i - start));
      if (it != s.vocab.end()) {
        push(it->second, static_cast<int32_t>(i - start));
      } else if (s.byte_fallback && [&] {
                   for (size_t k = start; k < i; ++k) if (s.fallback_ids[static_cast<uint8_t>(piece[k])] < 0) return false;
                   return true;
                 }()) {
        for (size_t k = start; k < i; ++k) push(s.fallback_ids[static_cast<uint8_t>(piece[k])], 1);
      } else {
        push(s.unk, static_cast<int32_t>(i - start));
      }
    }
  }
  for (size_t k = 0; k < sym.size(); ++k) {
    sym[k].prev = static_cast<int32_t>(k) - 1;
    sym[k].next = k + 1 < sym.size() ? static_cast<int32_t>(k) + 1 : -1;
  }
}

}  // namespace

int32_t whole_piece_id(const TokenizerSpec& s, std::string_view piece, std::string& mapped) {
  if (s.byte_level && !s.raw_vocab.empty()) return s.raw_vocab.find(piece);
  std::string_view key = piece;
  if (s.byte_level) {
    mapped.resize(2 * piece.size());  // each byte's character is 1 or 2 UTF-8 bytes
    char* w = mapped.data();
    for (char ch : piece) {
      const auto& c = s.byte_chars[static_cast<uint8_t>(ch)];
      w[0] = c[0], w[1] = c[1];
      w += c[1] ? 2 : 1;
    }
    key = std::string_view(mapped.data(), static_cast<size_t>(w - mapped.data()));
  }
  const auto it = s.vocab.find(key);
  return it == s.vocab.end() ? -1 : it->second;
}

void bpe_piece(const TokenizerSpec& s, std::string_view piece, std::vector<int32_t>& out, std::vector<Symbol>& sym,
               std::string& mapped) {
  if (s.ignore_merges) {  // a piece that is itself in the vocabulary is one token
    if (const int32_t id = whole_piece_id(s, piece, mapped); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  initial_symbols(s, piece, sym);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  for (size_t k = 0; k + 1 < sym.size(); ++k) {
    if (const Merge* m = find_merge(s, sym[k].id, sym[k + 1].id)) queue.push({m->rank, static_cast<int32_t>(k), m->id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol& right = sym[left.next];
    const Merge* m = find_merge(s, left.id, right.id);
    if (!m || m->id != top.id) continue;  // stale: a neighbour changed since this pair was queued
    const int32_t gone = left.next;
    left.id = top.id;
    left.len += right.len;
    left.next = right.next;
    sym[gone].len = 0;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* p = find_merge(s, sym[left.prev].id, left.id)) queue.push({p->rank, left.prev, p->id});
    }
    if (left.next >= 0) {
      if (const Merge* n = find_merge(s, left.id, sym[left.next].id)) queue.push({n->rank, top.pos, n->id});
    }
  }
  for (size_t k = 0; k < sym.size(); ++k) if (sym[k].len > 0) out.push_back(sym[k].id);
}

namespace {

int fallback_byte(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  const int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string byte_level_bytes(std::string_view t) {
  std::string out;
  for (size_t i = 0; i < t.size();) {
    const size_t start = i;
    const int b = unicode::unicode_to_byte(unicode::decode_utf8(t, i));
    if (b >= 0) out += static_cast<char>(b);
    else out.append(t.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::string run_decoder(const TokenizerSpec& s, std::vector<std::string> tokens) {
  for (const auto& d : s.decoder) {
    switch (d.kind) {
      case DecStep::byte_level: {
        std::string all;
        for (const auto& t : tokens) all += byte_level_bytes(t);
        tokens.assign(1, std::move(all));
        break;
      }
      case DecStep::replace:
        for (auto& t : tokens) t = replace_all(t, d.a, d.b);
        break;
      case DecStep::byte_fallback: {  // runs of <0xHH> become their bytes, or one U+FFFD per byte when not UTF-8
        std::vector<std::string> out;
        std::string bytes;
        int count = 0;
        const auto flush = [&] {
          if (count == 0) return;
          if (unicode::is_valid_utf8(bytes)) out.push_back(bytes);
          else for (int k = 0; k < count; ++k) out.push_back("\xEF\xBF\xBD");
          bytes.clear(), count = 0;
        };
        for (auto& t : tokens) {
          const int b = fallback_byte(t);
          if (b >= 0) {
            bytes += static_cast<char>(b), ++count;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens.swap(out);
        break;
      }
      case DecStep::fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecStep::strip:
        for (auto& t : tokens) {
          int a = 0, z = 0;
          while (a < d.start && t.compare(a * d.a.size(), d.a.size(), d.a) == 0) ++a;
          t.erase(0, a * d.a.size());
          while (z < d.stop && t.size() >= d.a.size() && t.compare(t.size() - d.a.size(), d.a.size(), d.a) == 0) {
            t.erase(t.size() - d.a.size()), ++z;
          }
        }
        break;
      case DecStep::metaspace:
        for (size_t k = 0; k < tokens.size(); ++k) {
          tokens[k] = replace_all(tokens[k], d.a, " ");
          if (k == 0 && d.strip_first_space && !tokens[k].empty() && tokens[k][0] == ' ') tokens[k].erase(0, 1);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::string piece_bytes(const TokenizerSpec& s, int32_t id) {
  const std::string& p = s.pieces[id];
  for (const auto& a : s.added) if (a.id == id) return a.content;
  if (s.byte_level) return byte_level_bytes(p);
  if (const int b = fallback_byte(p); b >= 0 && s.byte_fallback) return std::string(1, static_cast<char>(b));
  return replace_all(p, "\xE2\x96\x81", " ");
}

}  // namespace tritter::hf
