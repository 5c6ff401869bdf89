// The seven BitLinear projections of a layer, in tensor-table order: the one list that LoRA targeting, the
// adapter files, the packed model's slots and the engines name them by. Which input each reads is the LoRA
// branch's input (docs/lora.md): q/k/v the attention input, o the attention output, gate/up the MLP input, down
// the MLP activation.
#pragma once
#include <array>
#include <optional>
#include <string_view>

namespace tritter {

enum class Proj { Q, K, V, O, Gate, Up, Down };
inline constexpr int kProjCount = 7;
inline constexpr std::array<Proj, kProjCount> kProjs = {Proj::Q, Proj::K,  Proj::V,   Proj::O,
                                                        Proj::Gate, Proj::Up, Proj::Down};

// The input a projection reads, in layer order.
enum class ProjInput { AttnIn, AttnOut, MlpIn, MlpAct };
inline constexpr int kProjInputCount = 4;

inline constexpr int proj_index(Proj p) { return static_cast<int>(p); }

// "q_proj" ... "down_proj": the tensor table's kind and PEFT's target_modules name.
inline constexpr const char* proj_name(Proj p) {
  constexpr const char* kNames[kProjCount] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
  return kNames[proj_index(p)];
}

// "self_attn" or "mlp": the module the tensor's name sits under (model.layers.N.<block>.<name>.weight).
inline constexpr const char* proj_block(Proj p) { return proj_index(p) < proj_index(Proj::Gate) ? "self_attn" : "mlp"; }

inline constexpr ProjInput proj_input(Proj p) {
  switch (p) {
    case Proj::Q:
    case Proj::K:
    case Proj::V: return ProjInput::AttnIn;
    case Proj::O: return ProjInput::AttnOut;
    case Proj::Gate:
    case Proj::Up: return ProjInput::MlpIn;
    case Proj::Down: break;
  }
  return ProjInput::MlpAct;
}

// The projection named `name` ("q_proj" ...); nullopt for any other name (norms, "qkv", ...).
inline std::optional<Proj> proj_from_name(std::string_view name) {
  for (Proj p : kProjs)
    if (name == proj_name(p)) return p;
  return std::nullopt;
}

// For error messages: "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj".
inline constexpr const char* kProjNameList = "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj";

}  // namespace tritter
