// What the experiment store records: models, datasets, runs with their metrics,
// per-layer results and exported artifacts. Plain values; ids are SQLite rowids
// (0 = not stored yet). Times are milliseconds since the Unix epoch, UTC.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qs {

enum class RunKind { Inference, Calibration, Sensitivity, Quantization, MixedPrecisionSearch };
enum class RunState { Running, Done, Failed, Cancelled, Interrupted };

// Stable names, as stored and shown: "inference", ..., "mixed-precision-search";
// "running", "done", "failed", "cancelled", "interrupted".
std::string runKindName(RunKind kind);
std::string runStateName(RunState state);
// Throw an Error listing the accepted names.
RunKind parseRunKind(const std::string& name);
RunState parseRunState(const std::string& name);

struct ModelRecord {
    int64_t id = 0;
    std::string hash; // SHA-256 of the file: the same file is one model
    std::string name;
    std::string path;
    int64_t sizeBytes = 0;
    nlohmann::json opCounts = nlohmann::json::object(); // {"Conv": 3, ...}
    int64_t params = 0;
    int64_t importedMs = 0; // 0 on upsert: now
};

struct DatasetRecord {
    int64_t id = 0;
    std::string kind; // "idx", "npy", "random", ...
    std::string path;
    int64_t count = 0; // samples
    std::string hash;  // content hash of the source files; (kind, hash) is one dataset
    int64_t addedMs = 0;
};

// The machine a run was recorded on (schema v2).
struct MachineInfo {
    std::string hostname, os, cpu;
    int cores = 0;
    int64_t memoryBytes = 0;
};
MachineInfo currentMachine();

// Fidelity and cost of a run. Absent values are not measured, never zero.
struct RunMetrics {
    std::optional<double> top1;          // fraction of labels hit, 0..1
    std::optional<double> sqnrDb;        // output SQNR vs FP32, dB
    std::optional<double> cosine;        // output cosine similarity vs FP32
    std::optional<double> top1Agreement; // fraction agreeing with FP32's top-1
    std::optional<double> kl;            // KL(FP32 softmax || quantized softmax), nats
    std::optional<double> sizeBits;      // model size in bits actually stored
    std::optional<double> latencyMs;     // per batch
    nlohmann::json extra = nlohmann::json::object(); // anything else, by name
};

struct RunStart {
    int64_t modelId = 0;
    std::optional<int64_t> datasetId;
    RunKind kind = RunKind::Inference;
    nlohmann::json config = nlohmann::json::object(); // the full configuration
    std::vector<std::string> tags;
    std::string note;
};

struct RunRecord {
    int64_t id = 0;
    int64_t modelId = 0;
    std::string modelName, modelHash;
    std::optional<int64_t> datasetId;
    std::string datasetPath;
    RunKind kind = RunKind::Inference;
    nlohmann::json config;
    // As stored, except that a `running` run whose writer is gone reads as
    // Interrupted even before a writable open has recorded that.
    RunState state = RunState::Running;
    int64_t startedMs = 0;
    std::optional<int64_t> finishedMs;
    std::string error;
    RunMetrics metrics;
    std::vector<std::string> tags;
    std::string note;
    int64_t layerCount = 0;
    int64_t writerPid = 0;
    std::string writerHost;
    std::optional<MachineInfo> machine;
};

// A histogram with explicit bin edges: edges.size() == counts.size() + 1 (or both
// empty). Stored as a compact blob, see store/histogram_blob.h.
struct StoredHistogram {
    std::vector<float> edges;
    std::vector<uint64_t> counts;
    bool operator==(const StoredHistogram&) const = default;
};

struct StoredRange {
    double lo = 0, hi = 0;
    bool operator==(const StoredRange&) const = default;
};

// One layer of one run. Everything but the name is optional: a sensitivity run
// has no bits, an inference run may have only SQNR.
struct LayerResult {
    std::string layer; // node name; unique within a run, the key of comparisons
    std::string op;
    int position = 0; // order within the run; assigned by the store
    std::optional<int> weightBits, actBits; // 2..8 integer, 16/32 float
    std::string granularity;                // "per-tensor", "per-channel", "group:N"
    std::optional<bool> symmetric;
    nlohmann::json scales = nlohmann::json::object(); // summary: {"min","max","mean","count"}
    std::optional<double> sqnrDb;                     // layer output SQNR, dB
    std::optional<double> sensitivity;                // the headline value (e.g. SQNR drop at the tested bits)
    nlohmann::json sensitivityDetail = nlohmann::json::object(); // e.g. {"w4": 12.1, "w8": 31.0}
    std::optional<int64_t> sizeBits;
    std::optional<StoredHistogram> weightHist, actHist;
    std::optional<StoredRange> weightClip, actClip;
    nlohmann::json extra = nlohmann::json::object();
};

struct ArtifactRecord {
    int64_t id = 0;
    int64_t runId = 0;
    std::string path;
    std::string format; // "onnx-qdq", "encodings-json", "report-html", ...
    std::string hash;   // SHA-256 of the file
    int64_t sizeBytes = 0;
    int64_t createdMs = 0; // 0 on insert: now
};

// Measured latency of one quantizable layer on one machine (schema v3), milliseconds
// per batch, each the median over repeats. The INT8 numbers are absent when the
// layer has no INT8 kernel.
struct LayerLatency {
    std::string layer, op;
    double fp32Ms = 0;                  // its kernels in the FP32 plan (fused activations included)
    std::optional<double> int8Ms;       // its oneDNN int8 primitive (requantization fused)
    std::optional<double> quantizeMs;   // float -> 8 bits of its input: paid when its producer is float
    std::optional<double> dequantizeMs; // 8 bits -> float of its output: paid when a consumer is float
    bool operator==(const LayerLatency&) const = default;
};

// A model's per-layer latency table as measured on one machine (schema v3).
struct LatencyProfile {
    int64_t id = 0;
    std::string modelHash; // ModelRecord::hash
    int batch = 1;
    int threads = 0;                   // as asked (0: all cores)
    std::string isa;                   // oneDNN's effective ISA, e.g. "avx512_core_vnni"
    std::vector<std::string> cpuFlags; // relevant /proc/cpuinfo flags present (avx2, avx512f, avx512_vnni, amx_int8, ...)
    int warmup = 0, repeats = 0;
    double fp32TotalMs = 0;            // the whole FP32 model, one pass
    double int8TotalMs = 0;            // the whole model with every INT8-capable layer in INT8
    double otherMs = 0;                // FP32 kernels outside the quantizable layers (pools, reshapes)
    std::vector<LayerLatency> layers;  // graph order
    int64_t measuredMs = 0;            // 0 on insert: now
    std::optional<MachineInfo> machine; // filled when read back
};

struct RunFilter {
    std::optional<std::string> model; // model name (exact) or hash prefix
    std::optional<RunKind> kind;
    std::optional<RunState> state;     // as stored
    std::optional<std::string> tag;
    int64_t limit = -1;                // newest first; < 0: all
};

} // namespace qs
