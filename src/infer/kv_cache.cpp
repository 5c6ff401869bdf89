#include "infer/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/kv_quant.h"

namespace tritter {

namespace {

struct Layout {
  int64_t capacity = 0;
  size_t row = 0;  // bytes per position per head for K data (same for V)
  size_t k_off = 0, v_off = 0, kp_off = 0, vp_off = 0, kr_off = 0, per_head = 0;
};


bool quantized(KvDtype t) { return t == KvDtype::I8 || t == KvDtype::I4; }
int kv_bits(KvDtype t) { return t == KvDtype::I8 ? 8 : 4; }  // the quantized dtypes' bits per level

Layout kv_layout(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch) {
  if (max_batch < 1) throw_error("kv cache: max batch ", max_batch, ", expected at least 1");
  if (context < 1 || context > c.max_position_embeddings) {
    throw_error("kv cache: context ", context, ", expected 1 .. ", c.max_position_embeddings,
                " (max_position_embeddings)");
  }
  const int64_t d = c.head_dim;
  if (dtype == KvDtype::I4 && d % 2 != 0) throw_error("kv cache: int4 needs an even head_dim, found ", d);
  Layout L;
  const int64_t group = quantized(dtype) ? kKvKeyGroup : 1;
  const int64_t held = c.sliding_window ? std::min(context, *c.sliding_window + max_batch - 1) : context;
  L.capacity = (held + group - 1) / group * group;
  switch (dtype) {
    case KvDtype::F32: L.row = d * 4; break;
    case KvDtype::F16: L.row = d * 2; break;
    case KvDtype::I8: L.row = d; break;
    case KvDtype::I4: L.row = d / 2; break;
  }
  size_t off = 0;
  L.k_off = off;
  off += align64(L.capacity * L.row);
  L.v_off = off;
  off += align64(L.capacity * L.row);
  if (quantized(dtype)) {
    L.kp_off = off;
    off += align64((L.capacity / kKvKeyGroup) * 2 * d * sizeof(float));
    L.vp_off = off;
    off += align64(L.capacity * (d / kv_value_group(d)) * 2 * sizeof(float));
    L.kr_off = off;
    off += align64(kKvKeyGroup * d * sizeof(float));
  }
  L.per_head = off;
  return L;
}

}  // namespace

KvDtype kv_dtype_from_name(const std::string& name) {
  if (name == "f32") return KvDtype::F32;
  if (name == "f16") return KvDtype::F16;
  if (name == "int8" || name == "i8") return KvDtype::I8;
  if (name == "int4" || name == "i4") return KvDtype::I4;
  throw_error("kv cache dtype: found '", name, "', expected f32, f16, int8 or int4");
}

const char* kv_dtype_name(KvDtype t) {
  switch (t) {
    case KvDtype::F32: return "f32";
    case KvDtype::F16: return "f16";
    case KvDtype::I8: return "int8";
    case KvDtype::I4: return "int4";
  }
  return "?";
}

size_t kv_cache_bytes(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch) {
  return kv_layout(c, context, dtype, max_batch).per_head * static_cast<size_t>(c.num_hidden_layers * c.num_key_value_heads);
}

int64_t kv_cache_capacity(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch) {
  return kv_layout(c, context, dtype, max_batch).capacity;
}

KvCache::KvCache(const TritterConfig& c, int64_t context, KvDtype dtype, int64_t max_batch, MemoryAccount* account)
    : config_(c), context_(context), max_batch_(max_batch), kv_heads_(c.num_key_value_heads), d_(c.head_dim), gv_(kv_value_group(c.head_dim)),
      dtype_(dtype) {
  const Layout L = kv_layout(c, context, dtype, max_batch);
  capacity_ = L.capacity;
  elem_bytes_k_ = elem_bytes_v_ = L.row;
  k_off_ = L.k_off;
  v_off_ = L.v_off;
  kp_off_ = L.kp_off;
  vp_off_ = L.vp_off;
  kr_off_ = L.kr_off;
  per_head_ = L.per_head;
  storage_ = Buffer(kv_cache_bytes(c, context, dtype, max_batch), MemCategory::KvCache, account);
  written_.assign(c.num_hidden_layers, 0);
}

void KvCache::clear() { std::fill(written_.begin(), written_.end(), 0); }

int64_t KvCache::truncate(int64_t n) {
  int64_t m = std::clamp<int64_t>(n, 0, written());
  if (dtype_ == KvDtype::I8 || dtype_ == KvDtype::I4) m = m / kKvKeyGroup * kKvKeyGroup;  // the residual is gone
  for (int64_t w : written_) {
    if (w > capacity_) m = 0;  // wrapped: the early positions were overwritten
  }
  for (int64_t& w : written_) w = std::min(w, m);
  return m;
}

int64_t KvCache::copy_prefix(const KvCache& from, int64_t n) {
  if (from.dtype_ != dtype_ || from.capacity_ != capacity_ || from.per_head_ != per_head_ ||
      from.written_.size() != written_.size() || from.context_ != context_) {
    throw_error("kv cache: copy from a cache of another shape (", kv_dtype_name(from.dtype_), ", ", from.capacity_,
                " slots) into ", kv_dtype_name(dtype_), ", ", capacity_, " slots");
  }
  if (&from == this) return truncate(n);
  int64_t m = std::clamp<int64_t>(n, 0, from.written());
  for (int64_t w : from.written_) m = std::min(m, w > capacity_ ? 0 : w);  // a wrapped ring holds no prefix
  const bool q = quantized(dtype_);
  if (q) m = m / kKvKeyGroup * kKvKeyGroup;  // whole key groups: the residual is not copied
  for (size_t lh = 0; lh < written_.size() * static_cast<size_t>(kv_heads_); ++lh) {
    std::memcpy(kdata(lh), from.kdata(lh), static_cast<size_t>(m) * elem_bytes_k_);
    std::memcpy(vdata(lh), from.vdata(lh), static_cast<size_t>(m) * elem_bytes_v_);
    if (q) {
      std::memcpy(kparams(lh), from.kparams(lh), static_cast<size_t>(m / kKvKeyGroup * 2 * d_) * sizeof(float));
      std::memcpy(vparams(lh), from.vparams(lh), static_cast<size_t>(m * (d_ / gv_) * 2) * sizeof(float));
    }
  }
  std::fill(written_.begin(), written_.end(), m);
  return m;
}

uint8_t* KvCache::kdata(size_t lh) const {
  return const_cast<uint8_t*>(static_cast<const uint8_t*>(storage_.data())) + lh * per_head_ + k_off_;
}
uint8_t* KvCache::vdata(size_t lh) const {
  return const_cast<uint8_t*>(static_cast<const uint8_t*>(storage_.data())) + lh * per_head_ + v_off_;
}
float* KvCache::kparams(size_t lh) const {
  return reinterpret_cast<float*>(const_cast<uint8_t*>(static_cast<const uint8_t*>(storage_.data())) +
                                  lh * per_head_ + kp_off_);
}
float* KvCache::vparams(size_t lh) const {
  return reinterpret_cast<float*>(const_cast<uint8_t*>(static_cast<const uint8_t*>(storage_.data())) +
                                  lh * per_head_ + vp_off_);
}
float* KvCache::kresidual(size_t lh) const {
  return reinterpret_cast<float*>(const_cast<uint8_t*>(static_cast<const uint8_t*>(storage_.data())) +
                                  lh * per_head_ + kr_off_);
}

void KvCache::flush_key_group(int layer, int head, int64_t group_start) {
  const size_t lh = head_index(layer, head);
  const int64_t slot0 = group_start % capacity_;
  float* params = kparams(lh) + (slot0 / kKvKeyGroup) * 2 * d_;  // (2, d): min, scale
  kv_quantize_key_group(kdata(lh) + slot0 * elem_bytes_k_, elem_bytes_k_, params, kresidual(lh), kKvKeyGroup, d_,
                        kv_bits(dtype_));
}

void KvCache::write(int layer, int64_t pos0, int64_t T, const float* k, const float* v) {
  TRITTER_CHECK(layer >= 0 && layer < static_cast<int>(written_.size()), "layer ", layer);
  if (pos0 != written_[layer]) {
    throw_error("kv cache: layer ", layer, " write at position ", pos0, ", expected ", written_[layer]);
  }
  if (T > max_batch_) throw_error("kv cache: a write of ", T, " positions, expected at most ", max_batch_);
  if (pos0 + T > context_) {
    throw_error("kv cache: positions up to ", pos0 + T, " exceed the context of ", context_, " tokens");
  }
  for (int64_t t = 0; t < T; ++t) {
    const int64_t pos = pos0 + t, slot = pos % capacity_;
    for (int64_t h = 0; h < kv_heads_; ++h) {
      const size_t lh = head_index(layer, h);
      const float* kx = k + (t * kv_heads_ + h) * d_;
      const float* vx = v + (t * kv_heads_ + h) * d_;
      switch (dtype_) {
        case KvDtype::F32:
          std::memcpy(kdata(lh) + slot * elem_bytes_k_, kx, d_ * sizeof(float));
          std::memcpy(vdata(lh) + slot * elem_bytes_v_, vx, d_ * sizeof(float));
          break;
        case KvDtype::F16:
          kv_f16_encode(reinterpret_cast<uint16_t*>(kdata(lh) + slot * elem_bytes_k_), kx, d_);
          kv_f16_encode(reinterpret_cast<uint16_t*>(vdata(lh) + slot * elem_bytes_v_), vx, d_);
          break;
        case KvDtype::I8:
        case KvDtype::I4: {
          std::memcpy(kresidual(lh) + (pos % kKvKeyGroup) * d_, kx, d_ * sizeof(float));
          if (pos % kKvKeyGroup == kKvKeyGroup - 1) flush_key_group(layer, static_cast<int>(h), pos - (kKvKeyGroup - 1));
          kv_quantize_value_row(vdata(lh) + slot * elem_bytes_v_, vparams(lh) + slot * (d_ / gv_) * 2, vx, d_, gv_,
                                kv_bits(dtype_));
          break;
        }
      }
    }
  }
  written_[layer] = pos0 + T;
}

void KvCache::append_random(int64_t n, uint64_t seed) {
  const int64_t B = max_batch_, p0 = written();
  std::vector<float> k(static_cast<size_t>(B * kv_heads_ * d_)), v(k.size());
  Rng rng(seed);
  for (auto& x : k) x = rng.normal();
  for (auto& x : v) x = rng.normal();
  for (int64_t p = p0; p < p0 + n; p += B) {
    const int64_t m = std::min(B, p0 + n - p);
    for (int layer = 0; layer < static_cast<int>(written_.size()); ++layer) write(layer, p, m, k.data(), v.data());
  }
}

bool KvCache::view(int layer, int head, int64_t p0, int64_t n, const float** k, const float** v) const {
  const uint8_t *kp, *vp;
  if (dtype_ != KvDtype::F32 || !contiguous_rows(layer, head, p0, n, &kp, &vp)) return false;
  *k = reinterpret_cast<const float*>(kp);
  *v = reinterpret_cast<const float*>(vp);
  return true;
}

bool KvCache::view_f16(int layer, int head, int64_t p0, int64_t n, const uint16_t** k, const uint16_t** v) const {
  const uint8_t *kp, *vp;
  if (dtype_ != KvDtype::F16 || !contiguous_rows(layer, head, p0, n, &kp, &vp)) return false;
  *k = reinterpret_cast<const uint16_t*>(kp);
  *v = reinterpret_cast<const uint16_t*>(vp);
  return true;
}

bool KvCache::view_levels(int layer, int head, int64_t p0, int64_t n, KvLevels* out) const {
  if ((dtype_ != KvDtype::I8 && dtype_ != KvDtype::I4) || n <= 0) return false;
  const int64_t flushed = written_[layer] / kKvKeyGroup * kKvKeyGroup;
  if (p0 + n > flushed || p0 / kKvKeyGroup != (p0 + n - 1) / kKvKeyGroup) return false;
  const uint8_t *kp, *vp;
  if (!contiguous_rows(layer, head, p0, n, &kp, &vp)) return false;
  const size_t lh = head_index(layer, head);
  const int64_t slot = p0 % capacity_;  // the capacity is a multiple of the key group: slot groups are position groups
  out->bits = kv_bits(dtype_);
  out->k = kp;
  out->v = vp;
  out->kparams = kparams(lh) + (slot / kKvKeyGroup) * 2 * d_;
  out->vparams = vparams(lh) + slot * (d_ / gv_) * 2;
  out->gv = gv_;
  return true;
}

bool KvCache::contiguous_rows(int layer, int head, int64_t p0, int64_t n, const uint8_t** k, const uint8_t** v) const {
  const int64_t end = written_[layer];
  TRITTER_CHECK(p0 >= 0 && p0 + n <= end && p0 >= end - capacity_, "kv view [", p0, ", ", p0 + n, ") of layer ",
                layer, " holding [", std::max<int64_t>(0, end - capacity_), ", ", end, ")");
  const int64_t slot = p0 % capacity_;
  if (slot + n > capacity_) return false;
  const size_t lh = head_index(layer, head);
  *k = kdata(lh) + slot * elem_bytes_k_;
  *v = vdata(lh) + slot * elem_bytes_v_;
  return true;
}

void KvCache::read(int layer, int head, int64_t p0, int64_t n, float* kb, float* vb) const {
  const int64_t end = written_[layer];
  TRITTER_CHECK(p0 >= 0 && p0 + n <= end && p0 >= end - capacity_, "kv read [", p0, ", ", p0 + n, ") of layer ",
                layer, " holding [", std::max<int64_t>(0, end - capacity_), ", ", end, ")");
  const size_t lh = head_index(layer, head);
  const int64_t flushed = end / kKvKeyGroup * kKvKeyGroup;  // keys below this are quantized; the rest residual
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = p0 + t, slot = pos % capacity_;
    float* ko = kb + t * d_;
    float* vo = vb + t * d_;
    switch (dtype_) {
      case KvDtype::F32:
        std::memcpy(ko, kdata(lh) + slot * elem_bytes_k_, d_ * sizeof(float));
        std::memcpy(vo, vdata(lh) + slot * elem_bytes_v_, d_ * sizeof(float));
        break;
      case KvDtype::F16:
        kv_f16_decode(ko, reinterpret_cast<const uint16_t*>(kdata(lh) + slot * elem_bytes_k_), d_);
        kv_f16_decode(vo, reinterpret_cast<const uint16_t*>(vdata(lh) + slot * elem_bytes_v_), d_);
        break;
      case KvDtype::I8:
      case KvDtype::I4: {
        if (pos >= flushed) {
          std::memcpy(ko, kresidual(lh) + (pos % kKvKeyGroup) * d_, d_ * sizeof(float));
        } else {
          kv_dequantize_key_row(ko, kdata(lh) + slot * elem_bytes_k_, kparams(lh) + (slot / kKvKeyGroup) * 2 * d_, d_,
                                kv_bits(dtype_));
        }
        kv_dequantize_value_row(vo, vdata(lh) + slot * elem_bytes_v_, vparams(lh) + slot * (d_ / gv_) * 2, d_, gv_,
                                kv_bits(dtype_));
        break;
      }
    }
  }
}

KvRows KvCache::rows(int layer) const {
  KvRows r;
  r.store = this;
  r.layer = layer;
  r.fetch = [](const void* store, int l, int head, int64_t p0, int64_t n, float* kb, float* vb, const float** k,
               const float** v) {
    const KvCache& cache = *static_cast<const KvCache*>(store);
    if (!cache.view(l, head, p0, n, k, v)) {
      cache.read(l, head, p0, n, kb, vb);
      *k = kb;
      *v = vb;
    }
  };
  if (dtype_ == KvDtype::I8 || dtype_ == KvDtype::I4) {
    r.view_levels = [](const void* store, int l, int head, int64_t p0, int64_t n, KvLevels* out) {
      return static_cast<const KvCache*>(store)->view_levels(l, head, p0, n, out);
    };
  }
  if (dtype_ == KvDtype::F16) {
    r.view_f16 = [](const void* store, int l, int head, int64_t p0, int64_t n, const uint16_t** k,
                    const uint16_t** v) { return static_cast<const KvCache*>(store)->view_f16(l, head, p0, n, k, v); };
  }
  return r;
}

}  // namespace tritter
