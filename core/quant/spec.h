// What to do to one tensor (QuantSpec) and to a whole model (QuantConfig). The
// config's JSON is what the CLI reads, the GUI edits and the store records.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs {

enum class Granularity { Tensor, Channel, Group };
enum class Rounding { Nearest, Stochastic };

struct QuantSpec {
    int bits = 8;                 // 2..8 integer bits; 16 or 32 means float (not quantized)
    bool symmetric = true;
    Granularity granularity = Granularity::Tensor;
    int groupSize = 128;          // for Granularity::Group, along the input channels
    Rounding rounding = Rounding::Nearest;
    std::string calibrator = "minmax"; // minmax | ema | percentile | mse | entropy (activations)
    double calibratorParam = 0;   // e.g. 99.99 for percentile, momentum for ema
    std::optional<std::pair<float, float>> range; // user-set clipping range, overrides calibration

    bool isFloat() const { return bits >= 16; }
    bool operator==(const QuantSpec&) const = default;
};

struct LayerQuant {
    // Defaults: W8 symmetric per-channel, A8 affine per-tensor min-max.
    QuantSpec weight{.granularity = Granularity::Channel};
    QuantSpec activation{.symmetric = false};
    bool operator==(const LayerQuant&) const = default;
};

// The inputs of activation-by-activation MatMuls in attention (quant/attention.h):
// Q and K of Q x K^T, P (the softmax output) and V of P x V.
enum class OperandRole { Q, K, V, P };
// Per tensor, per head (one range per head, axis -3 of a [batch, heads, tokens, dim]
// operand), per token (dynamic: each token's vector gets its own min-max range at run
// time) or per channel (one range per channel of the head dimension).
enum class OperandGranularity { Tensor, Head, Token, Channel };

struct OperandSpec {
    int bits = 32;           // 2..8 integer bits; 16 or 32: not quantized (the default)
    bool symmetric = true;
    OperandGranularity granularity = OperandGranularity::Tensor;
    std::string calibrator = "minmax"; // static granularities; per token is min-max at run time
    double calibratorParam = 0;

    bool isFloat() const { return bits >= 16; }
    bool operator==(const OperandSpec&) const = default;
};

// Attention operand quantization: a spec per role and overrides by point name
// ("<MatMul node>:K"). Off by default; JSON "attention", written only when set.
struct AttentionQuant {
    OperandSpec q, k, v, p{.symmetric = false};
    std::map<std::string, OperandSpec> points;
    // Fixed ranges by point name, one [lo, hi] per slice of its static granularity (one
    // per tensor), overriding calibration (QAT's learned grids); JSON "ranges":
    // {"<node>:K": [[lo, hi], ...]}, written only when set.
    std::map<std::string, std::vector<std::pair<float, float>>> ranges;

    OperandSpec& role(OperandRole r) { return r == OperandRole::Q ? q : r == OperandRole::K ? k : r == OperandRole::V ? v : p; }
    const OperandSpec& role(OperandRole r) const { return const_cast<AttentionQuant*>(this)->role(r); }
    bool operator==(const AttentionQuant&) const = default;
};

struct AlgorithmUse {
    std::string name;        // e.g. "bias_correction", "cle"
    nlohmann::json params = nlohmann::json::object();
};

struct QuantConfig {
    LayerQuant defaults;                       // applied to every quantizable layer
    std::map<std::string, LayerQuant> layers;  // per-layer overrides (whole LayerQuant)
    std::set<std::string> excluded;            // layers kept in float
    std::vector<AlgorithmUse> algorithms;      // applied in order
    // Per-tensor clipping ranges, tensor name -> [lo, hi]: a quantized layer's input
    // (activation) or weight as the quantized graph names them (a BatchNorm-folded
    // conv's weight is "<node>.weight_bnfolded"). They override calibration and any
    // layer spec's range; JSON "ranges": {"name": [lo, hi]}, written only when set.
    std::map<std::string, std::pair<float, float>> ranges;
    AttentionQuant attention;                  // attention operands (off unless set)

    // The effective spec of a layer (override or default); nullopt when excluded.
    std::optional<LayerQuant> forLayer(const std::string& layer) const;
    // The effective spec of an attention operand point ("<node>:K"); nullopt when it is
    // excluded or not quantized (float).
    std::optional<OperandSpec> forOperand(const std::string& point, OperandRole role) const;

    nlohmann::json toJson() const;
    // Throws Error naming the field at fault.
    static QuantConfig fromJson(const nlohmann::json& j);
    static QuantConfig load(const std::string& path);
    void save(const std::string& path) const;
};

QuantSpec parseSpecJson(const nlohmann::json& j, const QuantSpec& base, const std::string& where);
nlohmann::json specToJson(const QuantSpec& s);
// [lo, hi] with lo < hi, both finite; errors name `where`.
std::pair<float, float> parseRange(const nlohmann::json& v, const std::string& where);
const char* granularityName(Granularity g);
// "tensor", "channel" or "group:N"
void parseGranularity(const std::string& text, QuantSpec& spec);
// "minmax", "ema:0.9", "percentile:99.99", "mse", "entropy"
void parseCalibrator(const std::string& text, QuantSpec& spec);
const char* operandRoleName(OperandRole r); // "Q", "K", "V", "P"
const char* operandGranularityName(OperandGranularity g);
// "tensor", "head", "token" or "channel"; errors name `where`.
OperandGranularity parseOperandGranularity(const std::string& text, const std::string& where);
OperandSpec parseOperandSpecJson(const nlohmann::json& j, const OperandSpec& base, const std::string& where);
nlohmann::json operandSpecToJson(const OperandSpec& s);

} // namespace qs
