#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/printable.h"

namespace tritter {

namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 3;  // {name: {shape: [..]}}: anything deeper is not a safetensors header

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}


// Parses the header, rejecting duplicate keys in any object (nlohmann keeps the last one silently) and
// nesting deeper than a header can be (bounded work on hostile input).
json parse_header(std::string_view text, const std::string& where) {
  std::vector<std::set<std::string>> keys;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (keys.size() >= kMaxJsonDepth) throw_error(where, ": header JSON nests deeper than ", kMaxJsonDepth, " levels");
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (!keys.empty() && !keys.back().insert(k).second) {
          throw_error(where, ": duplicate key ", printable(k), " in the header");
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw_error(where, ": header is not valid JSON: ", e.what());
  }
}

uint64_t as_u64(const json& v, const std::string& where, const char* what) {
  if (!v.is_number_unsigned()) throw_error(where, ": ", what, " must be a non-negative integer, found ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

SafeTensorsFile::SafeTensorsFile(const std::filesystem::path& path) : map_(path), source_(path.string()) {
  parse(map_.data(), map_.size());
}

SafeTensorsFile::SafeTensorsFile(const uint8_t* bytes, size_t size, std::string source) : source_(std::move(source)) {
  parse(bytes, size);
}

void SafeTensorsFile::parse(const uint8_t* bytes, size_t size) {
  const std::string where = "file '" + source_ + "'";
  size_ = size;
  if (size < 8) throw_error(where, ": too short for a safetensors header: found ", size, " bytes, expected at least 8");
  const uint64_t n = read_u64_le(bytes);
  if (n > kSafetensorsMaxHeader) {
    throw_error(where, ": header length ", n, " exceeds the limit: expected at most ", kSafetensorsMaxHeader);
  }
  if (n > size - 8) {
    throw_error(where, ": header length ", n, " runs past the end of the file: found ", size - 8,
                " bytes after the length, expected at least ", n);
  }
  if (n < 2 || bytes[8] != '{') throw_error(where, ": header does not start with '{' (not a safetensors file?)");
  header_bytes_ = static_cast<size_t>(n);
  const json header = parse_header(std::string_view(reinterpret_cast<const char*>(bytes + 8), header_bytes_), where);
  if (!header.is_object()) throw_error(where, ": header is not a JSON object");

  const uint64_t data_begin = 8 + n;
  const uint64_t data_len = size - data_begin;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw_error(where, ": __metadata__ must be an object of strings, found ", entry.type_name());
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          throw_error(where, ": __metadata__ ", printable(k), ": found a ", v.type_name(), ", expected a string");
        }
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string tw = where + ": tensor " + printable(name);
    if (name.empty()) throw_error(where, ": empty tensor name");
    if (!entry.is_object()) throw_error(tw, ": entry must be an object, found ", entry.type_name());
    for (const auto& [k, v] : entry.items()) {
      (void)v;
      if (k != "dtype" && k != "shape" && k != "data_offsets") throw_error(tw, ": unknown field ", printable(k));
    }
    if (!entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
      throw_error(tw, ": needs dtype, shape and data_offsets");
    }
    SafeTensor t;
    t.name = name;
    const json& dt = entry["dtype"];
    if (!dt.is_string()) throw_error(tw, ": dtype must be a string, found ", dt.dump());
    const auto dtype = dtype_from_name(dt.get_ref<const std::string&>());
    if (!dtype) {
      throw_error(tw, ": unsupported dtype ", printable(dt.get_ref<const std::string&>()),
                  ", expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL");
    }
    t.dtype = *dtype;
    const json& shape = entry["shape"];
    if (!shape.is_array()) throw_error(tw, ": shape must be an array, found ", shape.dump());
    for (const json& d : shape) {
      const uint64_t v = as_u64(d, tw, "a shape dimension");
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) throw_error(tw, ": dimension ", v, " too large");
      t.shape.push_back(static_cast<int64_t>(v));
    }
    int64_t numel = 0;
    try {
      numel = shape_numel(t.shape);
    } catch (const Error& e) {
      throw_error(tw, ": ", e.what());
    }
    const json& off = entry["data_offsets"];
    if (!off.is_array() || off.size() != 2) throw_error(tw, ": data_offsets must be [begin, end], found ", off.dump());
    t.begin = as_u64(off[0], tw, "data_offsets[0]");
    t.end = as_u64(off[1], tw, "data_offsets[1]");
    if (t.end < t.begin) throw_error(tw, ": data_offsets [", t.begin, ", ", t.end, "] end before begin");
    if (t.end > data_len) {
      throw_error(tw, ": data_offsets [", t.begin, ", ", t.end, "] out of range: the data region has ", data_len,
                  " bytes");
    }
    const uint64_t esize = dtype_size(t.dtype);
    if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / esize ||
        static_cast<uint64_t>(numel) * esize != t.end - t.begin) {
      throw_error(tw, ": ", dtype_name(t.dtype), " ", shape_str(t.shape), " needs ",
                  static_cast<unsigned long long>(numel) * esize, " bytes, found data_offsets [", t.begin, ", ",
                  t.end, "] = ", t.end - t.begin, " bytes");
    }
    t.data = bytes + data_begin + t.begin;
    tensors_.push_back(std::move(t));
  }

  // Sorted by offset, the tensors must tile the data region exactly: no gap, no overlap, nothing after.
  std::sort(tensors_.begin(), tensors_.end(), [](const SafeTensor& a, const SafeTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const SafeTensor& t = tensors_[i];
    if (t.begin < pos) {
      throw_error(where, ": tensor ", printable(t.name), " data_offsets [", t.begin, ", ", t.end, "] overlap tensor ",
                  printable(tensors_[i - 1].name), " which ends at ", pos);
    }
    if (t.begin > pos) {
      throw_error(where, ": gap in the data region before tensor ", printable(t.name), ": found begin ", t.begin,
                  ", expected ", pos);
    }
    pos = t.end;
  }
  if (pos != data_len) {
    throw_error(where, ": tensors cover ", pos, " bytes of the data region, expected all ", data_len,
                " (trailing bytes or a truncated header?)");
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const std::string& SafeTensorsFile::metadata_value(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) throw_error("file '", source_, "': __metadata__ has no '", key, "'");
  return it->second;
}

const SafeTensor* SafeTensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafeTensor& SafeTensorsFile::get(std::string_view name) const {
  const SafeTensor* t = find(name);
  if (!t) throw_error("file '", source_, "': tensor '", name, "' is missing");
  return *t;
}

const SafeTensor& SafeTensorsFile::expect(std::string_view name, DType dtype, const Shape& shape) const {
  const SafeTensor& t = get(name);
  if (t.shape != shape) {
    throw_error("file '", source_, "': tensor '", name, "': shape ", shape_str(t.shape), ", expected ",
                shape_str(shape));
  }
  if (t.dtype != dtype) {
    throw_error("file '", source_, "': tensor '", name, "': dtype ", dtype_name(t.dtype), ", expected ",
                dtype_name(dtype));
  }
  return t;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<SafeTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = "writing '" + path.string() + "'";
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const SafeTensorOut& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") throw_error(where, ": invalid tensor name ", printable(t.name));
    if (!seen.insert(t.name).second) throw_error(where, ": duplicate tensor name ", printable(t.name));
    if (!t.data && !t.fill) throw_error(where, ": tensor ", printable(t.name), " has no data");
    const uint64_t bytes = static_cast<uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts at 8 + N, a multiple of 8
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));

  AtomicFile out(path);
  out.write(len, 8);
  out.write(text);
  for (const SafeTensorOut& t : tensors) {
    const size_t bytes = static_cast<size_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
    if (t.data) {
      out.write(t.data, bytes);
      continue;
    }
    const size_t before = out.bytes_written();
    t.fill([&](const void* p, size_t n) { out.write(p, n); });
    const size_t wrote = out.bytes_written() - before;
    if (wrote != bytes) {
      throw_error(where, ": tensor ", printable(t.name), ": the producer wrote ", wrote, " bytes, expected ", bytes);
    }
  }
  out.commit();
}

}  // namespace tritter
