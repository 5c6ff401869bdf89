// The `tritter._tritter` extension (docs/python.md): pybind11 bindings over the public header src/tritter.h
// only. Model (open/random, tokenize, generate, logits, embed, session), Session (step-wise forward), train,
// finetune and curate; tritter::Error → tritter.Error (a RuntimeError) with the same message.
//
// Design goals: the GIL is released around every compute (open, forward, generate, embed, train, curate) and
// re-acquired only inside callbacks, which also check for Ctrl-C (PyErr_CheckSignals) and then stop the run the
// way the façade stops it (a callback's false); arrays are returned without a copy after the compute (the
// std::vector that was computed into becomes the array's memory, owned by a capsule).
// Non-goals: anything the façade does not offer; the pure-Python conveniences live in tritter/__init__.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tritter.h"

namespace py = pybind11;
using namespace tritter;

namespace {

// ---- helpers ----------------------------------------------------------------------------------------------------

// A vector's memory as a numpy array that owns it: no copy; the vector lives until the array (and every view of
// it) is gone.
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owned->data(), owner);
}

std::string fspath(const py::handle& p) {
  return py::module_::import("os").attr("fspath")(p).cast<std::string>();
}

// Text from bytes that need not be valid UTF-8 (a byte tokenizer can stop inside a character): bad bytes become
// U+FFFD, as bytes.decode("utf-8", "replace") does.
py::str decode(std::string_view bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

// Where the longest prefix of `s` ends that does not stop inside a UTF-8 sequence (at most 3 bytes held back).
size_t utf8_complete_prefix(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back for its lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

// Catches a Python exception raised inside a callback (the GIL held) so that it can be re-raised once the
// façade has stopped cleanly and the GIL is held again.
struct PendingError {
  std::exception_ptr error;
  void rethrow() {
    if (error) std::rethrow_exception(std::exchange(error, nullptr));
  }
};

std::vector<int32_t> ids_of(const py::handle& obj, const Model& model, bool bos) {
  if (py::isinstance<py::str>(obj)) return model.tokenize(obj.cast<std::string>(), bos);
  if (py::isinstance<py::bytes>(obj)) return model.tokenize(std::string(obj.cast<py::bytes>()), bos);
  try {
    return obj.cast<std::vector<int32_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error("expected str, bytes or a sequence of int token ids, found " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
}

// ---- Model ------------------------------------------------------------------------------------------------------

// What a Python Model holds: shared with every call in flight, every Session and every stream made from it, so
// Model.close() (or garbage collection) frees the weights only when the last of them is done.
struct Core {
  Model model;
  SessionOptions session_options;
  std::mutex mu;                   // guards `session`
  std::optional<Session> session;  // reused by logits/generate/embed; declared after `model`: destroyed first
  explicit Core(Model m, SessionOptions o) : model(std::move(m)), session_options(std::move(o)) {}
};

// Runs f(Session&) on the model's reused session, or on a fresh one when another call holds it (two threads on
// one Model then still run at once). Called with the GIL released.
template <class F>
auto with_session(Core& core, F&& f) {
  std::unique_lock lock(core.mu, std::try_to_lock);
  if (lock.owns_lock()) {
    if (!core.session) core.session.emplace(core.model, core.session_options);
    core.session->reset();
    return f(*core.session);
  }
  Session temp(core.model, core.session_options);
  return f(temp);
}

struct PyModel {
  std::shared_ptr<Core> core;
  Core& get() const {
    if (!core) throw py::value_error("tritter.Model: the model is closed");
    return *core;
  }
  std::shared_ptr<Core> share() const {
    get();
    return core;
  }
};

GenerationParams generation_params(int64_t max_tokens, float temperature, int top_k, float top_p, float min_p,
                                   float repeat_penalty, int repeat_last_n, uint64_t seed, const py::object& stop,
                                   bool stop_at_eos) {
  if (max_tokens < 0) throw py::value_error("generate: max_tokens: found " + std::to_string(max_tokens) + ", expected >= 0");
  if (temperature < 0) throw py::value_error("generate: temperature: found a negative value, expected >= 0");
  GenerationParams p;
  p.max_tokens = max_tokens;
  p.sampling = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .min_p = min_p,
                .repeat_penalty = repeat_penalty, .repeat_last_n = repeat_last_n, .seed = seed};
  if (!stop.is_none()) {
    if (py::isinstance<py::str>(stop)) p.stop = {stop.cast<std::string>()};
    else p.stop = stop.cast<std::vector<std::string>>();
  }
  p.stop_at_eos = stop_at_eos;
  return p;
}

// ---- streaming --------------------------------------------------------------------------------------------------

// The pieces a worker thread's generation hands to the Python iterator. The worker never touches Python.
struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;  // bytes, not yet split at UTF-8 boundaries
  bool done = false;
  std::exception_ptr error;
  std::optional<Generation> result;
  std::atomic<bool> cancel{false};
};

class TokenStream {
 public:
  TokenStream(std::shared_ptr<Core> core, std::vector<int32_t> ids, GenerationParams params)
      : core_(std::move(core)), state_(std::make_shared<StreamState>()) {
    worker_ = std::thread([core = core_, st = state_, ids = std::move(ids), params = std::move(params)] {
      try {
        Generation g = with_session(*core, [&](Session& s) {
          return s.generate(ids, params, [&](int32_t, std::string_view text) {
            if (!text.empty()) {
              std::lock_guard lock(st->mu);
              st->pieces.emplace_back(text);
              st->cv.notify_one();
            }
            return !st->cancel.load();
          });
        });
        std::lock_guard lock(st->mu);
        st->result = std::move(g);
      } catch (...) {
        std::lock_guard lock(st->mu);
        st->error = std::current_exception();
      }
      std::lock_guard lock(st->mu);
      st->done = true;
      st->cv.notify_one();
    });
  }
  TokenStream(const TokenStream&) = delete;
  ~TokenStream() { stop(); }

  // The next piece of text (complete UTF-8 characters); StopIteration at the end. Waits with the GIL released,
  // waking every 50 ms to let Ctrl-C through (which cancels the generation and raises KeyboardInterrupt).
  py::str next() {
    for (;;) {
      std::string out;
      bool finished = false;
      {
        py::gil_scoped_release release;
        std::unique_lock lock(state_->mu);
        state_->cv.wait_for(lock, std::chrono::milliseconds(50),
                            [&] { return !state_->pieces.empty() || state_->done; });
        while (!state_->pieces.empty()) {
          pending_ += state_->pieces.front();
          state_->pieces.pop_front();
        }
        finished = state_->done;
      }
      const size_t cut = finished ? pending_.size() : utf8_complete_prefix(pending_);
      if (cut > 0) {
        out = pending_.substr(0, cut);
        pending_.erase(0, cut);
        return decode(out);
      }
      if (finished) {
        join();
        if (state_->error) std::rethrow_exception(std::exchange(state_->error, nullptr));
        throw py::stop_iteration();
      }
      if (PyErr_CheckSignals() != 0) {
        stop();
        throw py::error_already_set();
      }
    }
  }

  // Stops the generation at the next token and waits for the worker; the iterator then ends.
  void stop() {
    if (!worker_.joinable()) return;
    state_->cancel.store(true);
    join();
  }

  py::object result() const {
    std::lock_guard lock(state_->mu);
    if (!state_->done || !state_->result) return py::none();
    return py::cast(*state_->result);
  }

 private:
  void join() {
    if (!worker_.joinable()) return;
    py::gil_scoped_release release;
    worker_.join();
  }
  std::shared_ptr<Core> core_;
  std::shared_ptr<StreamState> state_;
  std::thread worker_;
  std::string pending_;
};

// ---- Model methods ----------------------------------------------------------------------------------------------

PyModel model_open(const py::object& path_obj, int64_t context, int threads, const std::string& kv_cache,
                   int64_t batch, const std::string& kernels, const py::object& lora, bool stream,
                   const py::object& memory_budget, const std::string& desktop, int layer_group_size, bool prefetch,
                   const std::string& head, const std::string& ternary_layout) {
  const std::string path = fspath(path_obj);
  OpenOptions o;
  if (!lora.is_none()) {
    if (py::isinstance<py::str>(lora) || py::hasattr(lora, "__fspath__")) o.lora = {fspath(lora)};
    else for (const auto& item : lora) o.lora.push_back(fspath(item));
  }
  o.stream = stream;
  if (py::isinstance<py::str>(memory_budget)) {
    o.memory_budget = parse_size(memory_budget.cast<std::string>(), "memory_budget");
  } else if (py::isinstance<py::int_>(memory_budget)) {
    o.memory_budget = memory_budget.cast<int64_t>();
  } else {
    throw py::type_error("Model.open: memory_budget: expected int (bytes) or str ('512M'), found " +
                         std::string(py::str(py::type::handle_of(memory_budget).attr("__name__"))));
  }
  if (o.memory_budget < 0) throw py::value_error("Model.open: memory_budget: found a negative value, expected >= 0");
  o.desktop = desktop;
  o.layer_group_size = layer_group_size;
  o.prefetch = prefetch;
  o.head = head;
  o.ternary_layout = ternary_layout;
  if (context < 0 || threads < 0 || batch < 1) {
    throw py::value_error("Model.open: context and threads must be >= 0 and batch >= 1");
  }
  SessionOptions so{.context = context, .threads = threads, .kv_cache = kv_cache, .batch = batch, .kernels = kernels};
  std::optional<Model> m;
  {
    py::gil_scoped_release release;
    m.emplace(Model::open(path, o));
  }
  return PyModel{std::make_shared<Core>(std::move(*m), std::move(so))};
}

py::object model_generate(const PyModel& self, const py::object& prompt, int64_t max_tokens, float temperature,
                          int top_k, float top_p, float min_p, float repeat_penalty, int repeat_last_n,
                          uint64_t seed, const py::object& stop, bool stop_at_eos, const py::object& bos,
                          bool stream, bool details) {
  std::shared_ptr<Core> core = self.share();
  const bool use_bos = bos.is_none() ? core->model.info().add_bos : bos.cast<bool>();
  std::vector<int32_t> ids = ids_of(prompt, core->model, use_bos);
  if (ids.empty()) throw py::value_error("generate: empty prompt");
  GenerationParams p = generation_params(max_tokens, temperature, top_k, top_p, min_p, repeat_penalty,
                                         repeat_last_n, seed, stop, stop_at_eos);
  if (stream) return py::cast(std::make_unique<TokenStream>(std::move(core), std::move(ids), std::move(p)));
  PendingError pending;
  Generation g;
  {
    py::gil_scoped_release release;
    g = with_session(*core, [&](Session& s) {
      return s.generate(ids, p, [&](int32_t, std::string_view) {
        py::gil_scoped_acquire acquire;  // only to let Ctrl-C through: a few µs a token
        if (PyErr_CheckSignals() != 0) {
          pending.error = std::make_exception_ptr(py::error_already_set());
          return false;
        }
        return true;
      });
    });
  }
  pending.rethrow();
  if (details) return py::cast(std::move(g));
  return decode(g.text);
}

py::array_t<float> model_logits(const PyModel& self, const py::object& ids_obj, bool last) {
  std::shared_ptr<Core> core = self.share();
  const std::vector<int32_t> ids = ids_of(ids_obj, core->model, false);
  if (ids.empty()) throw py::value_error("logits: no token ids");
  const int64_t n = static_cast<int64_t>(ids.size()), V = core->model.info().vocab_size;
  std::vector<float> out(static_cast<size_t>((last ? 1 : n) * V));
  {
    py::gil_scoped_release release;
    with_session(*core, [&](Session& s) { s.forward(ids, out, !last); });
  }
  if (last) return to_numpy(std::move(out), {V});
  return to_numpy(std::move(out), {n, V});
}

py::array_t<float> model_embed(const PyModel& self, const py::object& texts, const std::string& pooling,
                               const std::string& attention) {
  const EmbedOptions options{.pooling = pooling, .attention = attention};
  std::shared_ptr<Core> core = self.share();
  const int64_t D = core->model.info().hidden_size;
  const bool one = py::isinstance<py::str>(texts) || py::isinstance<py::bytes>(texts);
  std::vector<std::string> list;
  if (one) list = {py::isinstance<py::str>(texts) ? texts.cast<std::string>() : std::string(texts.cast<py::bytes>())};
  else list = texts.cast<std::vector<std::string>>();
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].empty()) throw py::value_error("embed: text " + std::to_string(i) + " is empty");
  }
  std::vector<float> out;
  out.reserve(list.size() * static_cast<size_t>(D));
  {
    py::gil_scoped_release release;
    with_session(*core, [&](Session& s) {
      for (const std::string& t : list) {
        if (one) {
          out = s.embed(t, options);  // the computed vector itself becomes the array
          return;
        }
        const std::vector<float> e = s.embed(t, options);
        out.insert(out.end(), e.begin(), e.end());
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      }
    });
  }
  if (one) return to_numpy(std::move(out), {D});
  return to_numpy(std::move(out), {static_cast<py::ssize_t>(list.size()), D});
}

// ---- Session (step-wise) ----------------------------------------------------------------------------------------

struct PySession {
  std::shared_ptr<Core> core;  // keeps the model alive while the session exists
  std::mutex mu;
  std::optional<Session> session;
  Session& get() {
    if (!session) throw py::value_error("tritter.Session: the session is closed");
    return *session;
  }
};

std::unique_ptr<PySession> make_session(const PyModel& self, const py::object& context, const py::object& threads,
                                        const py::object& kv_cache) {
  auto s = std::make_unique<PySession>();
  s->core = self.share();
  SessionOptions o = s->core->session_options;
  if (!context.is_none()) o.context = context.cast<int64_t>();
  if (!threads.is_none()) o.threads = threads.cast<int>();
  if (!kv_cache.is_none()) o.kv_cache = kv_cache.cast<std::string>();
  py::gil_scoped_release release;
  s->session.emplace(s->core->model, o);
  return s;
}

py::array_t<float> session_forward(PySession& self, const py::object& ids_obj, bool all) {
  const std::vector<int32_t> ids = ids_of(ids_obj, self.core->model, false);
  if (ids.empty()) throw py::value_error("Session.forward: no token ids");
  const int64_t n = static_cast<int64_t>(ids.size()), V = self.core->model.info().vocab_size;
  std::vector<float> out(static_cast<size_t>((all ? n : 1) * V));
  {
    py::gil_scoped_release release;
    std::lock_guard lock(self.mu);  // get() under the lock: close() on another thread waits for this forward
    self.get().forward(ids, out, all);
  }
  if (all) return to_numpy(std::move(out), {n, V});
  return to_numpy(std::move(out), {V});
}

void session_close(PySession& self) {
  py::gil_scoped_release release;  // a forward on another thread holds mu until it is done
  std::lock_guard lock(self.mu);
  self.session.reset();
}

// ---- training, curation -----------------------------------------------------------------------------------------

// Sets LoopParams fields from Python keyword arguments; an unknown name is a TypeError, a bad type too.
void apply_loop_options(LoopParams& l, const py::dict& options, const char* who) {
  for (const auto& [key_obj, value] : options) {
    const std::string key = key_obj.cast<std::string>();
    try {
      if (value.is_none()) continue;  // None: the default
      if (key == "data") {
        l.data.clear();
        if (py::isinstance<py::str>(value) || py::hasattr(value, "__fspath__")) l.data.push_back(fspath(value));
        else for (const auto& d : value) l.data.push_back(fspath(d));
      } else if (key == "out") l.out = fspath(value);
      else if (key == "resume") l.resume = fspath(value);
      else if (key == "log_json") l.log_json = fspath(value);
      else if (key == "extensions") l.extensions = value.cast<std::vector<std::string>>();
      else if (key == "val_fraction") l.val_fraction = value.cast<double>();
      else if (key == "steps") l.steps = value.cast<int64_t>();
      else if (key == "batch") l.batch = value.cast<int64_t>();
      else if (key == "seq") l.seq = value.cast<int64_t>();
      else if (key == "accum") l.accum = value.cast<int64_t>();
      else if (key == "schedule") l.schedule = value.cast<std::string>();
      else if (key == "lr") l.lr = value.cast<double>();
      else if (key == "wd") l.wd = value.cast<double>();
      else if (key == "min_lr_ratio") l.min_lr_ratio = value.cast<double>();
      else if (key == "clip") l.clip = value.cast<double>();
      else if (key == "warmup") l.warmup = value.cast<int64_t>();
      else if (key == "seed") l.seed = value.cast<uint64_t>();
      else if (key == "eval_every") l.eval_every = value.cast<int64_t>();
      else if (key == "eval_windows") l.eval_windows = value.cast<int64_t>();
      else if (key == "checkpoint_every") l.checkpoint_every = value.cast<int64_t>();
      else if (key == "keep") l.keep = value.cast<int64_t>();
      else if (key == "log_every") l.log_every = value.cast<int64_t>();
      else if (key == "max_bad_steps") l.max_bad_steps = value.cast<int64_t>();
      else if (key == "recompute") l.recompute = value.cast<bool>();
      else if (key == "threads") l.threads = value.cast<int>();
      else throw py::type_error(std::string(who) + "() got an unexpected keyword argument '" + key + "'");
    } catch (const py::cast_error&) {
      throw py::type_error(std::string(who) + ": option '" + key + "': wrong type " +
                           std::string(py::str(py::type::handle_of(value).attr("__name__"))));
    }
  }
}

py::dict summary_dict(const TrainSummary& s) {
  py::dict d;
  d["steps_done"] = s.steps_done;
  d["skipped"] = s.skipped;
  d["interrupted"] = s.interrupted;
  d["last_loss"] = s.last_loss;
  d["last_val_bpb"] = s.last_val_bpb < 0 ? py::object(py::none()) : py::float_(s.last_val_bpb);
  d["losses"] = s.losses;
  d["tokens_per_s"] = s.tokens_per_s;
  return d;
}

// The two callbacks a training run gets: the text lines to `log`, every step's record to `callback`; both check
// Ctrl-C first. A Python exception (KeyboardInterrupt included) stops the run after its step, with a
// checkpoint, and is raised when the call returns.
struct TrainCallbacks {
  py::object callback, log;
  PendingError pending;
  bool check(const std::function<bool()>& call) {
    py::gil_scoped_acquire acquire;
    if (pending.error) return false;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return call();
    } catch (...) {
      pending.error = std::current_exception();
      return false;
    }
  }
  ProgressCallback progress() {
    return [this](const std::string& line) {
      return check([&] {
        if (!log.is_none()) log(decode(line));
        return true;
      });
    };
  }
  StepCallback step() {
    return [this](const TrainStep& s) {
      return check([&] {
        if (callback.is_none()) return true;
        const py::object r = callback(py::cast(s));  // a copy: the record may be kept
        return r.is_none() || r.cast<bool>();
      });
    };
  }
};

py::dict train(const std::string& config, const py::object& callback, const py::object& log, const py::kwargs& kw) {
  TrainParams p;
  p.config = config;
  apply_loop_options(p.loop, kw, "train");
  TrainCallbacks cb{callback, log, {}};
  TrainSummary s;
  {
    py::gil_scoped_release release;
    s = train_model(p, cb.progress(), cb.step());
  }
  cb.pending.rethrow();
  return summary_dict(s);
}

py::dict finetune(const py::object& base, int64_t rank, double alpha, double dropout, const std::string& targets,
                  const std::string& init, const py::object& callback, const py::object& log, const py::kwargs& kw) {
  FinetuneParams p;
  if (!base.is_none()) p.base = fspath(base);
  p.rank = rank;
  p.alpha = alpha;
  p.dropout = dropout;
  p.targets = targets;
  p.init = init;
  apply_loop_options(p.loop, kw, "finetune");
  TrainCallbacks cb{callback, log, {}};
  FinetuneSummary s;
  {
    py::gil_scoped_release release;
    s = finetune_model(p, cb.progress(), cb.step());
  }
  cb.pending.rethrow();
  py::dict d = summary_dict(s.train);
  d["base_val_bpb"] = s.base_val_bpb < 0 ? py::object(py::none()) : py::float_(s.base_val_bpb);
  d["adapter_params"] = s.adapter_params;
  return d;
}

std::string curate_json(const std::vector<std::string>& inputs, const std::string& out, const std::string& config,
                        const std::string& config_json, bool extract_triton, const std::string& text_key,
                        bool near_dedup, int threads) {
  CurateParams p{inputs, out, config, config_json, extract_triton, text_key, near_dedup, threads};
  py::gil_scoped_release release;
  return curate(p);
}

}  // namespace

PYBIND11_MODULE(_tritter, m) {
  m.doc() = "Tritter's C++ engine for ternary transformers (the public API of tritter.h); see docs/python.md.";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);  // the message is what() itself
  m.attr("BOS") = token::bos;
  m.attr("EOS") = token::eos;
  m.attr("BYTE_OFFSET") = token::byte_offset;

  m.def("parse_size", &parse_size, py::arg("text"), py::arg("what") = "size",
        "'512M', '1.5G', '2GiB', '1000000' -> bytes; tritter.Error names `what` on a bad one.");

  py::class_<ModelInfo>(m, "ModelInfo", "What a model file says about its model (Model.info).")
      .def_readonly("path", &ModelInfo::path)
      .def_readonly("size", &ModelInfo::size)
      .def_readonly("vocab_size", &ModelInfo::vocab_size)
      .def_readonly("num_layers", &ModelInfo::num_layers)
      .def_readonly("hidden_size", &ModelInfo::hidden_size)
      .def_readonly("intermediate_size", &ModelInfo::intermediate_size)
      .def_readonly("num_heads", &ModelInfo::num_heads)
      .def_readonly("num_kv_heads", &ModelInfo::num_kv_heads)
      .def_readonly("head_dim", &ModelInfo::head_dim)
      .def_readonly("max_context", &ModelInfo::max_context)
      .def_readonly("parameters", &ModelInfo::parameters)
      .def_readonly("add_bos", &ModelInfo::add_bos)
      .def_readonly("streaming", &ModelInfo::streaming)
      .def_readonly("lora_adapters", &ModelInfo::lora_adapters)
      .def_readonly("ternary_layout", &ModelInfo::ternary_layout)
      .def("__repr__", [](const ModelInfo& i) {
        return "ModelInfo(path='" + i.path + "', size='" + i.size + "', parameters=" + std::to_string(i.parameters) +
               ", layers=" + std::to_string(i.num_layers) + ", hidden=" + std::to_string(i.hidden_size) +
               ", vocab=" + std::to_string(i.vocab_size) + ", max_context=" + std::to_string(i.max_context) + ")";
      });

  py::class_<Generation>(m, "Generation", "A generate(..., details=True) result: text, tokens and timings.")
      .def_property_readonly("text", [](const Generation& g) { return decode(g.text); },
                             "The generated text (invalid UTF-8 bytes as U+FFFD).")
      .def_property_readonly("text_bytes", [](const Generation& g) { return py::bytes(g.text); })
      .def_readonly("tokens", &Generation::tokens)
      .def_readonly("prompt_tokens", &Generation::prompt_tokens)
      .def_readonly("decode_steps", &Generation::decode_steps)
      .def_readonly("prompt_s", &Generation::prompt_s)
      .def_readonly("decode_s", &Generation::decode_s)
      .def_readonly("sample_s", &Generation::sample_s)
      .def_readonly("stop_reason", &Generation::stop_reason)
      .def_property_readonly("decode_tokens_per_s",
                             [](const Generation& g) { return g.decode_s > 0 ? g.decode_steps / g.decode_s : 0.0; })
      .def("__repr__", [](const Generation& g) {
        return "Generation(tokens=" + std::to_string(g.tokens.size()) + ", stop_reason='" + g.stop_reason + "')";
      });

  py::class_<TokenStream>(m, "TokenStream",
                          "Iterator of text pieces from generate(..., stream=True). Generation runs on a worker "
                          "thread; pieces are whole UTF-8 characters. Breaking out of the loop, close() or "
                          "garbage collection stops it at the next token.")
      .def("__iter__", [](TokenStream& s) -> TokenStream& { return s; })
      .def("__next__", &TokenStream::next)
      .def("close", &TokenStream::stop, "Stop the generation and wait for its thread.")
      .def("__enter__", [](TokenStream& s) -> TokenStream& { return s; })
      .def("__exit__", [](TokenStream& s, py::args) { s.stop(); })
      .def_property_readonly("result", &TokenStream::result,
                             "The Generation (tokens, timings, stop_reason) once the iterator is exhausted, else None.");

  py::class_<TrainStep>(m, "TrainStep", "One optimizer step, as train/finetune's callback receives it.")
      .def_readonly("step", &TrainStep::step)
      .def_readonly("steps", &TrainStep::steps)
      .def_readonly("loss", &TrainStep::loss)
      .def_readonly("lr", &TrainStep::lr)
      .def_readonly("wd", &TrainStep::wd)
      .def_readonly("grad_norm", &TrainStep::grad_norm)
      .def_readonly("tokens", &TrainStep::tokens)
      .def_readonly("tokens_per_s", &TrainStep::tokens_per_s)
      .def_readonly("elapsed_s", &TrainStep::elapsed_s)
      .def_property_readonly("val_bpb", [](const TrainStep& s) -> py::object {
        return s.val_bpb < 0 ? py::object(py::none()) : py::float_(s.val_bpb);
      })
      .def_readonly("skipped", &TrainStep::skipped)
      .def_readonly("skipped_step", &TrainStep::skipped_step)
      .def("__repr__", [](const TrainStep& s) {
        return "TrainStep(step=" + std::to_string(s.step) + "/" + std::to_string(s.steps) +
               ", loss=" + std::to_string(s.loss) + ", lr=" + std::to_string(s.lr) +
               ", tokens_per_s=" + std::to_string(s.tokens_per_s) + ")";
      });

  py::class_<PySession>(m, "Session",
                        "One sequence over a Model (Model.session()): forward appends tokens and returns logits. "
                        "Keeps its Model alive. One thread at a time.")
      .def("forward", &session_forward, py::arg("ids"), py::arg("all") = false,
           "Run ids (or text) after what the session holds; logits (V,) of the last one, or (n, V) with all=True.")
      .def("reset", [](PySession& s) {
        py::gil_scoped_release release;
        std::lock_guard lock(s.mu);
        s.get().reset();
      }, "Start a new, empty sequence.")
      .def_property_readonly("position", [](PySession& s) { return s.get().position(); })
      .def_property_readonly("context", [](PySession& s) { return s.get().context(); })
      .def("close", &session_close, "Free the KV cache now (after a forward in progress on another thread).")
      .def("__enter__", [](PySession& s) -> PySession& { return s; })
      .def("__exit__", [](PySession& s, py::args) { session_close(s); });

  py::class_<PyModel>(m, "Model", "A packed ternary model: open with Model.open(path, ...).")
      .def_static("open", &model_open, py::arg("path"), py::kw_only(), py::arg("context") = 0,
                  py::arg("threads") = 0, py::arg("kv_cache") = "f32", py::arg("batch") = 64,
                  py::arg("kernels") = "auto", py::arg("lora") = py::none(), py::arg("stream") = false,
                  py::arg("memory_budget") = 0, py::arg("desktop") = "headless", py::arg("layer_group_size") = 0,
                  py::arg("prefetch") = true, py::arg("head") = "auto", py::arg("ternary_layout") = "auto",
                  "Open a model file the way `tritter generate -m` does (mapped read-only and validated; with "
                  "stream=True only the header, the layers read during each forward pass). context, threads, "
                  "kv_cache, batch and kernels are the options of the sessions the model's calls use; head: the LM head run "
                  "(auto, f32, i8, i4), as generate --head; ternary_layout: t16, t20 (1.6 bits per weight) or auto "
                  "(t20 with AVX-512 VNNI), as generate --ternary-layout.")
      .def_static("random", [](const std::string& preset, uint64_t seed, int threads) {
        return PyModel{std::make_shared<Core>(Model::random(preset, seed), SessionOptions{.threads = threads})};
      }, py::arg("preset") = "test", py::arg("seed") = 1, py::kw_only(), py::arg("threads") = 0,
         "A model with random weights from a preset ('test', 'tiny', ...), for tests.")
      .def_property_readonly("info", [](const PyModel& s) { return s.get().model.info(); })
      .def_property_readonly("closed", [](const PyModel& s) { return !s.core; })
      .def("close", [](PyModel& s) { s.core.reset(); },
           "Release the model; its memory is freed once no stream or Session made from it is running.")
      .def("__enter__", [](PyModel& s) -> PyModel& { return s; })
      .def("__exit__", [](PyModel& s, py::args) { s.core.reset(); })
      .def("tokenize", [](const PyModel& s, const py::object& text, const py::object& bos, bool eos) {
        const Model& m = s.get().model;
        const bool b = bos.is_none() ? m.info().add_bos : bos.cast<bool>();
        std::vector<int32_t> ids = py::isinstance<py::bytes>(text) ? m.tokenize(std::string(text.cast<py::bytes>()), b, eos)
                                                                    : m.tokenize(text.cast<std::string>(), b, eos);
        return ids;
      }, py::arg("text"), py::kw_only(), py::arg("bos") = py::none(), py::arg("eos") = false,
         "Token ids of text (str as UTF-8, or bytes): byte b is id b + 8; bos defaults to the model file's add_bos.")
      .def("detokenize", [](const PyModel& s, const std::vector<int32_t>& ids, bool show_special) {
        return decode(s.get().model.detokenize(ids, show_special));
      }, py::arg("ids"), py::kw_only(), py::arg("show_special") = false,
         "Text of token ids (invalid UTF-8 as U+FFFD); specials give nothing, or their names with show_special.")
      .def("detokenize_bytes", [](const PyModel& s, const std::vector<int32_t>& ids) {
        return py::bytes(s.get().model.detokenize(ids, false));
      }, py::arg("ids"), "The bytes of token ids, exactly.")
      .def("token_piece", [](const PyModel& s, int32_t id) { return decode(s.get().model.token_piece(id)); },
           py::arg("id"))
      .def("generate", &model_generate, py::arg("prompt"), py::kw_only(), py::arg("max_tokens") = 128,
           py::arg("temperature") = 0.0f, py::arg("top_k") = 40, py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f,
           py::arg("repeat_penalty") = 1.0f, py::arg("repeat_last_n") = 64, py::arg("seed") = 0,
           py::arg("stop") = py::none(), py::arg("stop_at_eos") = true, py::arg("bos") = py::none(),
           py::arg("stream") = false, py::arg("details") = false,
           "Continue prompt (str, bytes or ids): the generated text; with stream=True an iterator of pieces; "
           "with details=True a Generation (tokens, timings, stop_reason).")
      .def("logits", &model_logits, py::arg("ids"), py::kw_only(), py::arg("last") = false,
           "Logits of ids (or text, no <bos>) run as one new sequence: float32 (n, V), or (V,) of the last "
           "token with last=True. The array owns its memory (no copy) and outlives the model.")
      .def("embed", &model_embed, py::arg("texts"), py::kw_only(), py::arg("pooling") = "mean",
           py::arg("attention") = "causal",
           "Unit embedding (hidden_size,) float32 of one text, or (N, hidden_size) for a list of texts; pooling "
           "mean|last, attention causal|bidirectional.")
      .def("session", &make_session, py::kw_only(), py::arg("context") = py::none(), py::arg("threads") = py::none(),
           py::arg("kv_cache") = py::none(), "A Session of its own (a KV cache) for step-wise forward passes.");

  m.def("_train", &train, py::arg("config"), py::arg("callback") = py::none(), py::arg("log") = py::none());
  m.def("_finetune", &finetune, py::arg("base"), py::arg("rank") = 16, py::arg("alpha") = 16.0,
        py::arg("dropout") = 0.0, py::arg("targets") = "q_proj,k_proj,v_proj,o_proj", py::arg("init") = "kaiming",
        py::arg("callback") = py::none(), py::arg("log") = py::none());
  m.def("_curate", &curate_json, py::arg("inputs"), py::arg("out"), py::arg("config") = "",
        py::arg("config_json") = "", py::arg("extract_triton") = false, py::arg("text_key") = "",
        py::arg("near_dedup") = true, py::arg("threads") = 0);
}
