// Rebuilding a run's QuantSession: the same steps quantizeModel takes before it
// evaluates, on the same inputs, then a field-by-field check against the store.
#include "export/replay.h"

#include "graph/onnx_import.h"
#include "graph/subgraphs.h"
#include "util/error.h"
#include "util/hash.h"

#include <cmath>
#include <filesystem>

namespace qs {
namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& where)
{
    if (!j.is_object() || !j.contains(key))
        fail(where, ": missing field ", quoted(key));
    return j.at(key);
}

void applyStage(
    QuantSession& s, const Dataset& calib, AlgorithmInfo::Stage stage, Progress& progress, const CancelToken& cancel)
{
    for (const auto& use : s.options().config.algorithms) {
        const AlgorithmInfo& a = algorithm(use.name);
        if (a.stage == stage) {
            cancel.check();
            a.apply(s, calib, use.params, progress, cancel);
        }
    }
}

void expectEqual(const RunRecord& run, const std::string& layer, const std::string& what, double stored, double derived)
{
    // Stored values are floats widened to double: equality is exact.
    if (float(stored) != float(derived))
        fail("run ", run.id, ": layer ", quoted(layer), ": re-derived ", what, " ", derived,
            " differs from the stored ", stored, "; the run cannot be reproduced from its config, model and data");
}

} // namespace

std::unique_ptr<QuantSession> prepareSession(const Graph& source, const QuantizeOptions& options, const Dataset& calib,
    Progress& progress, const CancelToken& cancel)
{
    for (const auto& use : options.config.algorithms)
        (void)algorithm(use.name); // unknown names fail before any work
    auto session = std::make_unique<QuantSession>(source, options);
    QuantSession& s = *session;
    Progress pre = progress.sub(0.0, 0.1);
    applyStage(s, calib, AlgorithmInfo::Stage::BeforeCalibration, pre, cancel);
    s.refreshLayers();
    Progress cp = progress.sub(0.1, 0.8);
    s.calibrate(calib, cp, cancel);
    s.chooseWeightGrids(calib, cp, cancel); // weight ranges by output MSE, as quantizeModel
    s.quantizeWeights();
    Progress post = progress.sub(0.8, 1.0);
    applyStage(s, calib, AlgorithmInfo::Stage::AfterWeights, post, cancel);
    return session;
}

QuantizeOptions optionsFromRunConfig(const nlohmann::json& config)
{
    const std::string where = "run config";
    nlohmann::json qc = nlohmann::json::object();
    for (const char* key : {"default", "layers", "exclude", "algorithms", "attention", "ranges"})
        if (config.is_object() && config.contains(key))
            qc[key] = config.at(key);
    QuantizeOptions o;
    o.config = QuantConfig::fromJson(qc);
    o.batch = field(config, "batch", where).get<int64_t>();
    o.calibLimit = field(field(config, "calibration", where), "samples", where + ".calibration").get<int64_t>();
    if (config.contains("int8") && config.at("int8").is_boolean())
        o.int8 = config.at("int8").get<bool>();
    return o;
}

DataOptions dataOptionsFromRunConfig(const nlohmann::json& entry, const std::string& where)
{
    DataOptions d;
    const char* key = "data";
    try {
        d.spec = field(entry, key, where).get<std::string>();
        for (const char* k : {"mean", "std"})
            if (entry.contains(k)) {
                key = k;
                (std::string(k) == "mean" ? d.mean : d.std) = entry.at(k).get<std::vector<float>>();
            }
        if (entry.contains("context")) {
            key = "context";
            d.context = entry.at("context").get<int64_t>();
        }
        if (entry.contains("input_shapes")) {
            key = "input_shapes";
            d.inputShapes = entry.at(key).get<std::map<std::string, Shape>>();
        }
        if (entry.contains("preprocess")) { // images: the pipeline as it ran (data/preprocess.h)
            key = "preprocess";
            d.preprocess = entry.at(key).get<std::string>();
        }
        if (entry.contains("tokenizer")) { // text: the tokenizer that made the ids (data/tokenizer.h)
            key = "tokenizer";
            d.tokenizer = entry.at(key).get<std::string>();
        }
    } catch (const nlohmann::json::exception&) {
        fail(where, ": field ", quoted(key), " is malformed");
    }
    return d;
}

RunReplay replayRun(const Store& store, int64_t runId, Progress& progress, const CancelToken& cancel)
{
    RunReplay r;
    r.run = store.run(runId);
    if (r.run.kind != RunKind::Quantization)
        fail("run ", runId, " is a ", runKindName(r.run.kind), " run; only quantization runs can be exported");
    if (r.run.state != RunState::Done)
        fail("run ", runId, " is ", runStateName(r.run.state), "; only finished (done) runs can be exported");
    auto model = store.model(r.run.modelId);
    if (!model)
        fail("run ", runId, ": its model (id ", r.run.modelId, ") is not in the store");
    if (!std::filesystem::exists(model->path))
        fail("run ", runId, ": model file ", model->path, " is gone; it is needed to re-derive the quantizer");
    if (sha256File(model->path) != model->hash)
        fail("run ", runId, ": model file ", model->path, " changed since the run (SHA-256 differs)");
    r.source = importOnnx(model->path);
    QuantizeOptions opts;
    try {
        opts = optionsFromRunConfig(r.run.config);
    } catch (const Error& e) {
        fail("run ", runId, ": ", e.what());
    }

    // The calibration data as the quantize command loaded it: its spec, the
    // normalization and text window recorded with it, the first N samples. A relative
    // path that was the evaluation data is taken from the dataset row (stored absolute).
    DataOptions cal;
    try {
        cal = dataOptionsFromRunConfig(field(r.run.config, "calibration", "run config"), "run config.calibration");
    } catch (const Error& e) {
        fail("run ", runId, ": ", e.what());
    }
    if (r.run.config.contains("evaluation") && r.run.config["evaluation"].value("data", "") == cal.spec &&
        !r.run.datasetPath.empty())
        cal.spec = r.run.datasetPath;
    cal.limit = opts.calibLimit;
    cal.inputValues = r.run.config["calibration"].value("input_values", std::map<std::string, double> {});
    inlineIfsForInputs(r.source, cal.inputValues); // as the quantize command did
    r.calib = loadDataset(cal, r.source);

    r.session = prepareSession(r.source, opts, r.calib, progress, cancel);
    QuantSession& s = *r.session;

    r.stored = store.layerResults(runId);
    // Attention operand rows (after the layers) are checked against the session's operands.
    std::vector<LayerResult> operandRows;
    while (!r.stored.empty() && r.stored.back().extra.contains("attention_operand")) {
        operandRows.insert(operandRows.begin(), r.stored.back());
        r.stored.pop_back();
    }
    if (operandRows.size() != s.operands().size())
        fail("run ", runId, ": the store has ", operandRows.size(), " attention operands, the re-derived session ",
            s.operands().size());
    for (std::size_t i = 0; i < operandRows.size(); ++i) {
        const LayerResult& st = operandRows[i];
        const auto& o = s.operands()[i];
        if (st.layer != o.point.name || (st.actBits && *st.actBits != o.spec.bits))
            fail("run ", runId, ": stored attention operand ", i, " is ", quoted(st.layer), " at ",
                st.actBits.value_or(0), " bits, re-derived ", quoted(o.point.name), " at ", o.spec.bits);
    }
    if (r.stored.size() != s.layers().size())
        fail("run ", runId, ": the store has ", r.stored.size(), " layers, the re-derived session ", s.layers().size());
    for (std::size_t i = 0; i < r.stored.size(); ++i) {
        const LayerResult& st = r.stored[i];
        const SessionLayer& l = s.layers()[i];
        if (st.layer != l.name)
            fail("run ", runId, ": stored layer ", i, " is ", quoted(st.layer), ", re-derived ", quoted(l.name));
        if (st.weightBits && *st.weightBits != l.spec.weight.bits)
            fail("run ", runId, ": layer ", quoted(l.name), ": stored weight bits ", *st.weightBits, ", config gives ",
                l.spec.weight.bits);
        if (st.actBits && *st.actBits != l.spec.activation.bits)
            fail("run ", runId, ": layer ", quoted(l.name), ": stored activation bits ", *st.actBits, ", config gives ",
                l.spec.activation.bits);
        if (st.sizeBits)
            expectEqual(r.run, l.name, "size in bits", double(*st.sizeBits), double(s.layerSizeBits(l)));
        if (!l.spec.weight.isFloat() && st.scales.contains("min") && st.scales.contains("max")) {
            auto plan = s.weightPlan(l);
            float lo = INFINITY, hi = 0;
            for (const auto& p : plan.params) {
                lo = std::min(lo, p.scale);
                hi = std::max(hi, p.scale);
            }
            expectEqual(r.run, l.name, "smallest weight scale", st.scales["min"].get<double>(), lo);
            expectEqual(r.run, l.name, "largest weight scale", st.scales["max"].get<double>(), hi);
        }
        auto range = s.activationRanges.find(l.input);
        if (st.actClip.has_value() != (range != s.activationRanges.end()))
            fail("run ", runId, ": layer ", quoted(l.name), ": the store ", st.actClip ? "has" : "has no",
                " activation range, the re-derived session ", st.actClip ? "none" : "one");
        if (st.actClip) {
            expectEqual(r.run, l.name, "activation range low", st.actClip->lo, range->second.lo);
            expectEqual(r.run, l.name, "activation range high", st.actClip->hi, range->second.hi);
        }
        ++r.checkedLayers;
    }
    return r;
}

} // namespace qs
