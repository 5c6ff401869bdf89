#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/printable.h"

namespace tritter {

namespace {

constexpr int kMaxArrayDepth = 4;  // arrays of arrays of ...: bounded recursion on hostile input

// A bounds-checked little-endian cursor over the header. Every read names what it was reading when it runs out.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::string& where) : p_(p), n_(n), where_(where) {}
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }

  void need(uint64_t bytes, const std::string& what) const {
    if (bytes > left()) {
      throw_error(where_, ": ", what, " at byte ", pos_, ": needs ", bytes, " bytes, file has ", left(), " left");
    }
  }
  uint64_t uint(int bytes, const std::string& what) {
    need(bytes, what);
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p_[pos_ + i];
    pos_ += bytes;
    return v;
  }
  uint32_t u32(const std::string& what) { return static_cast<uint32_t>(uint(4, what)); }
  uint64_t u64(const std::string& what) { return uint(8, what); }
  std::string str(const std::string& what) {
    const uint64_t len = u64(what + " length");
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& where_;
};

// Smallest encoding of one value of `t` (bounds an array's count before anything is reserved).
uint64_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::Bool: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::String: case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::Array: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::F64); }

GgufValue read_value(Reader& r, GgufValueType t, const std::string& what, int depth) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufValueType::U8: v.u = r.uint(1, what); break;
    case GgufValueType::U16: v.u = r.uint(2, what); break;
    case GgufValueType::U32: v.u = r.uint(4, what); break;
    case GgufValueType::U64: v.u = r.uint(8, what); break;
    case GgufValueType::I8: v.i = static_cast<int8_t>(r.uint(1, what)); break;
    case GgufValueType::I16: v.i = static_cast<int16_t>(r.uint(2, what)); break;
    case GgufValueType::I32: v.i = static_cast<int32_t>(r.uint(4, what)); break;
    case GgufValueType::I64: v.i = static_cast<int64_t>(r.uint(8, what)); break;
    case GgufValueType::F32: v.f = std::bit_cast<float>(static_cast<uint32_t>(r.uint(4, what))); break;
    case GgufValueType::F64: v.f = std::bit_cast<double>(r.uint(8, what)); break;
    case GgufValueType::Bool: {
      v.u = r.uint(1, what);
      if (v.u > 1) throw_error(what, ": bool value ", v.u, ", expected 0 or 1");
      break;
    }
    case GgufValueType::String: v.s = r.str(what); break;
    case GgufValueType::Array: {
      if (depth >= kMaxArrayDepth) throw_error(what, ": arrays nest deeper than ", kMaxArrayDepth);
      const uint32_t et = r.u32(what + " element type");
      if (!valid_value_type(et)) throw_error(what, ": array element type ", et, ", expected 0..12");
      v.elem = static_cast<GgufValueType>(et);
      const uint64_t count = r.u64(what + " array count");
      const uint64_t min = min_value_bytes(v.elem);
      if (count > r.left() / min) {
        throw_error(what, ": array of ", count, " ", gguf_value_type_name(v.elem), " needs at least ", count, " × ",
                    min, " bytes, file has ", r.left(), " left");
      }
      v.array.reserve(count);
      for (uint64_t k = 0; k < count; ++k) v.array.push_back(read_value(r, v.elem, what, depth + 1));
      break;
    }
  }
  return v;
}

void write_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void write_str(std::string& out, std::string_view s) {
  write_le(out, s.size(), 8);
  out.append(s);
}

void write_value(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::U8: case GgufValueType::Bool: write_le(out, v.u, 1); break;
    case GgufValueType::U16: write_le(out, v.u, 2); break;
    case GgufValueType::U32: write_le(out, v.u, 4); break;
    case GgufValueType::U64: write_le(out, v.u, 8); break;
    case GgufValueType::I8: write_le(out, static_cast<uint64_t>(v.i), 1); break;
    case GgufValueType::I16: write_le(out, static_cast<uint64_t>(v.i), 2); break;
    case GgufValueType::I32: write_le(out, static_cast<uint64_t>(v.i), 4); break;
    case GgufValueType::I64: write_le(out, static_cast<uint64_t>(v.i), 8); break;
    case GgufValueType::F32: write_le(out, std::bit_cast<uint32_t>(static_cast<float>(v.f)), 4); break;
    case GgufValueType::F64: write_le(out, std::bit_cast<uint64_t>(v.f), 8); break;
    case GgufValueType::String: write_str(out, v.s); break;
    case GgufValueType::Array:
      write_le(out, static_cast<uint32_t>(v.elem), 4);
      write_le(out, v.array.size(), 8);
      for (const GgufValue& e : v.array) {
        TRITTER_CHECK(e.type == v.elem, "array element of type ", gguf_value_type_name(e.type), " in an array of ",
                      gguf_value_type_name(v.elem));
        write_value(out, e);
      }
      break;
  }
}

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  static const char* kNames[] = {"U8", "I8", "U16", "I16", "U32", "I32", "F32", "BOOL", "STRING", "ARRAY",
                                 "U64", "I64", "F64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "?";
}

GgufValue GgufValue::u32(uint32_t v) { GgufValue x; x.type = GgufValueType::U32; x.u = v; return x; }
GgufValue GgufValue::i32(int32_t v) { GgufValue x; x.type = GgufValueType::I32; x.i = v; return x; }
GgufValue GgufValue::u64(uint64_t v) { GgufValue x; x.type = GgufValueType::U64; x.u = v; return x; }
GgufValue GgufValue::f32(float v) { GgufValue x; x.type = GgufValueType::F32; x.f = v; return x; }
GgufValue GgufValue::boolean(bool v) { GgufValue x; x.type = GgufValueType::Bool; x.u = v ? 1 : 0; return x; }
GgufValue GgufValue::str(std::string v) { GgufValue x; x.type = GgufValueType::String; x.s = std::move(v); return x; }
GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  GgufValue x;
  x.type = GgufValueType::Array;
  x.elem = GgufValueType::String;
  for (const auto& s : v) x.array.push_back(str(s));
  return x;
}
GgufValue GgufValue::i32s(const std::vector<int32_t>& v) {
  GgufValue x;
  x.type = GgufValueType::Array;
  x.elem = GgufValueType::I32;
  for (int32_t e : v) x.array.push_back(i32(e));
  return x;
}
GgufValue GgufValue::f32s(const std::vector<float>& v) {
  GgufValue x;
  x.type = GgufValueType::Array;
  x.elem = GgufValueType::F32;
  for (float e : v) x.array.push_back(f32(e));
  return x;
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::U16: case GgufValueType::I16:
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::U64: case GgufValueType::I64:
      return true;
    default:
      return false;
  }
}

int64_t GgufValue::as_int() const {
  TRITTER_CHECK(is_integer(), "as_int on ", gguf_value_type_name(type));
  switch (type) {
    case GgufValueType::I8: case GgufValueType::I16: case GgufValueType::I32: case GgufValueType::I64: return i;
    default:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw_error("value ", u, " does not fit int64");
      return static_cast<int64_t>(u);
  }
}

double GgufValue::as_double() const {
  if (type == GgufValueType::F32 || type == GgufValueType::F64) return f;
  return static_cast<double>(as_int());
}

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  static const GgmlTypeInfo kTypes[40] = {
      {"F32", 1, 4}, {"F16", 1, 2}, {"Q4_0", 32, 18}, {"Q4_1", 32, 20}, {nullptr, 0, 0}, {nullptr, 0, 0},
      {"Q5_0", 32, 22}, {"Q5_1", 32, 24}, {"Q8_0", 32, 34}, {"Q8_1", 32, 36}, {"Q2_K", 256, 84},
      {"Q3_K", 256, 110}, {"Q4_K", 256, 144}, {"Q5_K", 256, 176}, {"Q6_K", 256, 210}, {"Q8_K", 256, 292},
      {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50}, {"IQ4_NL", 32, 18},
      {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82}, {"IQ4_XS", 256, 136}, {"I8", 1, 1}, {"I16", 1, 2}, {"I32", 1, 4},
      {"I64", 1, 8}, {"F64", 1, 8}, {"IQ1_M", 256, 56}, {"BF16", 1, 2}, {nullptr, 0, 0}, {nullptr, 0, 0},
      {nullptr, 0, 0}, {"TQ1_0", 256, 54}, {"TQ2_0", 256, 66}, {"I2_S", 4, 1}, {nullptr, 0, 0}, {nullptr, 0, 0},
      {"MXFP4", 32, 17}};
  if (id >= 40 || kTypes[id].name == nullptr) return nullptr;
  return &kTypes[id];
}

uint64_t ggml_tensor_bytes(GgmlType type, const std::vector<int64_t>& ne, const std::string& where) {
  const GgmlTypeInfo* ti = ggml_type_info(static_cast<uint32_t>(type));
  if (!ti) throw_error(where, ": ggml type ", static_cast<uint32_t>(type), " is unknown or removed");
  uint64_t n = 1;
  for (int64_t d : ne) {
    if (d < 0) throw_error(where, ": dimension ", d, " is negative");
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / 4 / static_cast<uint64_t>(d)) {
      throw_error(where, ": element count overflows");
    }
    n *= static_cast<uint64_t>(d);
  }
  const int64_t ne0 = ne.empty() ? 1 : ne[0];
  if (ne0 % ti->block != 0) throw_error(where, ": ne[0] = ", ne0, " is not a multiple of ", ti->name, "'s block ", ti->block);
  uint64_t bytes = n / static_cast<uint64_t>(ti->block) * static_cast<uint64_t>(ti->bytes);
  if (type == GgmlType::I2_S) bytes += 32;  // the fork's tail: the f32 scale, padded to 32 bytes
  return bytes;
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

GgufFile::GgufFile(const std::filesystem::path& path) : map_(path), source_(path.string()) {
  parse(map_.data(), map_.size());
}

GgufFile::GgufFile(const uint8_t* bytes, size_t size, std::string source) : source_(std::move(source)) {
  parse(bytes, size);
}

void GgufFile::parse(const uint8_t* bytes, size_t size) {
  size_ = size;
  const std::string where = "file '" + source_ + "'";
  Reader r(bytes, size, where);
  const uint32_t magic = r.u32("magic");
  if (magic != kGgufMagic) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", magic);
    throw_error(where, ": bad magic ", buf, ", expected 0x46554747 (\"GGUF\")");
  }
  version_ = r.u32("version");
  if (version_ != 2 && version_ != 3) throw_error(where, ": GGUF version ", version_, ", expected 3 (or 2)");
  const uint64_t n_tensors = r.u64("tensor_count");
  const uint64_t n_kv = r.u64("metadata_kv_count");
  // Each key-value needs ≥ 13 bytes and each tensor info ≥ 24: counts past the file are rejected up front.
  if (n_kv > r.left() / 13) throw_error(where, ": metadata_kv_count ", n_kv, " cannot fit in ", size, " bytes");
  if (n_tensors > r.left() / 24) throw_error(where, ": tensor_count ", n_tensors, " cannot fit in ", size, " bytes");
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("metadata key " + std::to_string(k));
    const std::string what = where + ": key " + printable(key);
    if (key.empty()) throw_error(where, ": metadata key ", k, " is empty");
    if (kv_index_.count(key)) throw_error(what, " appears twice");
    const uint32_t t = r.u32(what + " type");
    if (!valid_value_type(t)) throw_error(what, ": value type ", t, ", expected 0..12");
    GgufValue v = read_value(r, static_cast<GgufValueType>(t), what, 0);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = find_value("general.alignment")) {
    if (a->type != GgufValueType::U32) {
      throw_error(where, ": key 'general.alignment' has type ", gguf_value_type_name(a->type), ", expected U32");
    }
    if (a->u == 0 || !std::has_single_bit(a->u) || a->u % 8 != 0) {
      throw_error(where, ": key 'general.alignment' = ", a->u, ", expected a power of two ≥ 8");
    }
    alignment_ = static_cast<uint32_t>(a->u);
  }
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = r.str("tensor info " + std::to_string(k) + " name");
    const std::string what = where + ": tensor " + printable(t.name);
    if (t.name.size() >= kGgufMaxName) throw_error(what, ": name is ", t.name.size(), " bytes, expected < ", kGgufMaxName);
    if (index_.count(t.name)) throw_error(what, " appears twice");
    const uint32_t n_dims = r.u32(what + " n_dims");
    if (n_dims > static_cast<uint32_t>(kGgufMaxDims)) throw_error(what, ": n_dims ", n_dims, ", expected ≤ ", kGgufMaxDims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = r.u64(what + " ne[" + std::to_string(d) + "]");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw_error(what, ": ne[", d, "] = ", ne, " is too large");
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type = r.u32(what + " type");
    if (!ggml_type_info(type)) throw_error(what, ": ggml type ", type, " is unknown or removed (0..39, see docs/formats.md)");
    t.type = static_cast<GgmlType>(type);
    t.bytes = ggml_tensor_bytes(t.type, t.ne, what);
    t.offset = r.u64(what + " offset");
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  data_offset_ = static_cast<size_t>(pad_to(r.pos(), alignment_));
  if (!tensors_.empty() && data_offset_ > size) {
    throw_error(where, ": data section starts at byte ", data_offset_, ", past the end of the file (", size, " bytes)");
  }
  const uint64_t data_bytes = size >= data_offset_ ? size - data_offset_ : 0;
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  uint64_t prev_end = 0;
  std::string prev;
  for (size_t i : order) {
    GgufTensor& t = tensors_[i];
    const std::string what = where + ": tensor " + printable(t.name);
    if (t.offset % alignment_ != 0) throw_error(what, ": offset ", t.offset, " is not a multiple of the alignment ", alignment_);
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset) {
      throw_error(what, ": data [", t.offset, ", ", t.offset + t.bytes, ") lies past the end of the data section (",
                  data_bytes, " bytes)");
    }
    if (t.offset < prev_end) throw_error(what, ": data at offset ", t.offset, " overlaps tensor ", printable(prev), " (ends at ", prev_end, ")");
    prev_end = t.offset + t.bytes;
    prev = t.name;
    t.data = bytes + data_offset_ + t.offset;
  }
}

const GgufValue* GgufFile::find_value(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find_value(key);
  if (!v) throw_error("file '", source_, "': metadata has no key '", key, "'");
  return *v;
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufValueType::String) {
    throw_error("file '", source_, "': key '", key, "' has type ", gguf_value_type_name(v.type), ", expected STRING");
  }
  return v.s;
}

int64_t GgufFile::get_int(std::string_view key) const {
  const GgufValue& v = value(key);
  if (!v.is_integer()) {
    throw_error("file '", source_, "': key '", key, "' has type ", gguf_value_type_name(v.type), ", expected an integer");
  }
  return v.as_int();
}

double GgufFile::get_number(std::string_view key) const {
  const GgufValue& v = value(key);
  if (!v.is_number()) {
    throw_error("file '", source_, "': key '", key, "' has type ", gguf_value_type_name(v.type), ", expected a number");
  }
  return v.as_double();
}

const GgufTensor* GgufFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::get(std::string_view name) const {
  const GgufTensor* t = find(name);
  if (!t) throw_error("file '", source_, "': tensor '", name, "' is missing");
  return *t;
}

void write_gguf(const std::filesystem::path& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorOut>& tensors) {
  const std::string where = "write_gguf '" + path.string() + "'";
  uint64_t alignment = kGgufDefaultAlignment;
  std::set<std::string> keys;
  std::string header;
  write_le(header, kGgufMagic, 4);
  write_le(header, kGgufVersion, 4);
  write_le(header, tensors.size(), 8);
  write_le(header, metadata.size(), 8);
  for (const auto& [key, v] : metadata) {
    if (key.empty() || !keys.insert(key).second) throw_error(where, ": key '", key, "' is empty or repeated");
    if (key == "general.alignment") {
      if (v.type != GgufValueType::U32 || v.u < 8 || !std::has_single_bit(v.u)) {
        throw_error(where, ": general.alignment must be a U32 power of two ≥ 8");
      }
      alignment = v.u;
    }
    write_str(header, key);
    write_le(header, static_cast<uint32_t>(v.type), 4);
    write_value(header, v);
  }
  std::set<std::string> names;
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const GgufTensorOut& t : tensors) {
    const std::string what = where + ": tensor '" + t.name + "'";
    if (t.name.empty() || t.name.size() >= kGgufMaxName) throw_error(what, ": name must be 1..63 bytes");
    if (!names.insert(t.name).second) throw_error(what, " appears twice");
    if (t.ne.size() > static_cast<size_t>(kGgufMaxDims)) throw_error(what, ": more than ", kGgufMaxDims, " dims");
    if (t.type == GgmlType::I2_S) throw_error(what, ": Tritter never writes I2_S (id 36 is not a llama.cpp type)");
    sizes.push_back(ggml_tensor_bytes(t.type, t.ne, what));
    write_str(header, t.name);
    write_le(header, t.ne.size(), 4);
    for (int64_t d : t.ne) write_le(header, static_cast<uint64_t>(d), 8);
    write_le(header, static_cast<uint32_t>(t.type), 4);
    write_le(header, offset, 8);
    offset = pad_to(offset + sizes.back(), alignment);
  }
  header.resize(pad_to(header.size(), alignment), '\0');
  AtomicFile out(path);
  out.write(header);
  static const char kZeros[256] = {};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorOut& t = tensors[i];
    uint64_t written = 0;
    auto sink = [&](const void* p, size_t n) {
      if (written + n > sizes[i]) throw_error(where, ": tensor '", t.name, "': producer wrote more than ", sizes[i], " bytes");
      out.write(p, n);
      written += n;
    };
    if (t.data) {
      sink(t.data, sizes[i]);
    } else {
      TRITTER_CHECK(static_cast<bool>(t.fill), "tensor ", t.name, " has neither data nor fill");
      t.fill(sink);
    }
    if (written != sizes[i]) throw_error(where, ": tensor '", t.name, "': producer wrote ", written, " bytes, expected ", sizes[i]);
    const uint64_t pad = pad_to(written, alignment) - written;
    // ggml pads after every tensor, the last included (its reader reads the padded blob in one piece).
    for (uint64_t left = pad; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, sizeof kZeros));
      out.write(kZeros, n);
      left -= n;
    }
  }
  out.commit();
}

}  // namespace tritter
