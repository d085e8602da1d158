#include "record/quantize_run.h"

#include "record/recording.h"
#include "store/report.h"
#include "util/error.h"
#include "util/json_number.h"

#include <cmath>

namespace qs {
namespace {

nlohmann::json opt(const std::optional<double>& v)
{
    return v ? jsonNumber(*v) : nlohmann::json(nullptr);
}

std::optional<StoredHistogram> stored(const Histogram& h)
{
    return h.bins() > 0 ? std::optional(toStoredHistogram(h)) : std::nullopt;
}

} // namespace

nlohmann::json dataConfig(const Dataset& d)
{
    nlohmann::json j = {{"data", d.path}, {"samples", d.count()}};
    if (!d.mean.empty())
        j["mean"] = d.mean;
    if (!d.std.empty())
        j["std"] = d.std;
    if (d.kind == "text" && !d.inputs.empty() && d.inputs.front().samples.shape.size() == 2)
        j["context"] = d.inputs.front().samples.shape[1];
    if (!d.inputValues.empty())
        j["input_values"] = d.inputValues;
    if (!d.boundShapes.empty()) // the shapes unknown input dimensions took, for a replay on random data
        j["input_shapes"] = d.boundShapes;
    if (!d.preprocess.empty()) // images: the pipeline, replayed by export and parity
        j["preprocess"] = d.preprocess;
    if (!d.tokenizer.empty()) // text: the tokenizer that made the ids, replayed by export and parity
        j["tokenizer"] = d.tokenizer;
    return j;
}

StoredHistogram toStoredHistogram(const Histogram& h)
{
    StoredHistogram s;
    if (h.bins() == 0)
        return s;
    s.counts = h.counts;
    s.edges.resize(h.counts.size() + 1);
    for (std::size_t i = 0; i < s.edges.size(); ++i)
        s.edges[i] = float(h.lo + double(i) * h.binWidth());
    s.edges.back() = float(h.hi);
    return s;
}

std::optional<StoredHistogram> histogramFromJson(const nlohmann::json& j)
{
    if (!j.is_object() || !j.contains("edges") || !j.contains("counts"))
        return std::nullopt;
    try {
        StoredHistogram h{j["edges"].get<std::vector<float>>(), j["counts"].get<std::vector<uint64_t>>()};
        if (h.edges.size() != h.counts.size() + 1)
            return std::nullopt;
        return h;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

Dataset evaluationPart(Dataset d, int64_t from)
{
    if (from == 0)
        return d;
    if (from < 0 || from >= d.count())
        fail("evaluation data ", quoted(d.path), ": from sample ", from, " leaves no samples (it has ", d.count(), ")");
    d = d.slice(from, d.count() - from);
    d.path += str("[", from, ":]"); // the store records the part, not the whole file
    d.hash += str(":from", from);
    return d;
}

nlohmann::json quantizationRunConfig(const QuantizeOptions& options, const Dataset& calib, const Dataset& eval)
{
    nlohmann::json c = options.config.toJson();
    c["calibration"] = dataConfig(calib);
    c["evaluation"] = dataConfig(eval);
    c["int8"] = options.int8;
    c["batch"] = options.batch;
    if (options.evalShards > 0)
        c["shard"] = str(options.evalShard, "/", options.evalShards);
    return c;
}

std::vector<LayerResult> quantizationLayerResults(const QuantizeResult& r)
{
    std::vector<LayerResult> layers;
    for (const auto& l : r.layers) {
        LayerResult lr;
        lr.layer = l.name;
        lr.op = l.op;
        lr.weightBits = l.wbits;
        lr.actBits = l.abits;
        lr.granularity = l.granularity;
        if (std::isfinite(l.outputSqnrDb))
            lr.sqnrDb = l.outputSqnrDb;
        lr.sizeBits = l.sizeBits;
        lr.scales = {{"min", l.scaleMin}, {"max", l.scaleMax}};
        if (l.activationRange)
            lr.actClip = StoredRange{l.activationRange->lo, l.activationRange->hi};
        if (l.weightRange)
            lr.weightClip = StoredRange{l.weightRange->lo, l.weightRange->hi};
        lr.weightHist = stored(l.weightHist);
        lr.actHist = stored(l.actHist);
        lr.extra = {{"weight_sqnr_db", jsonNumber(l.weightSqnrDb)}, {"params", l.params}};
        if (l.quantizedWeightHist.bins() > 0)
            lr.extra["quantized_weight_hist"] = histogramToJson(toStoredHistogram(l.quantizedWeightHist));
        if (l.quantizedActHist.bins() > 0)
            lr.extra["quantized_act_hist"] = histogramToJson(toStoredHistogram(l.quantizedActHist));
        layers.push_back(std::move(lr));
    }
    // Attention operands: a row each, weightless ("MatMul:K" and the like as op).
    for (const auto& o : r.operands) {
        LayerResult lr;
        lr.layer = o.name;
        lr.op = "MatMul:" + o.role;
        lr.weightBits = 32;
        lr.actBits = o.bits;
        lr.granularity = o.granularity;
        if (std::isfinite(o.sqnrDb))
            lr.sqnrDb = o.sqnrDb;
        if (o.range)
            lr.actClip = StoredRange {o.range->lo, o.range->hi};
        lr.extra = {
            {"attention_operand", {{"node", o.node}, {"value", o.value}, {"role", o.role}, {"cache", o.cache}}}};
        layers.push_back(std::move(lr));
    }
    return layers;
}

RunMetrics quantizationMetrics(const QuantizeResult& r)
{
    RunMetrics m;
    m.top1 = r.top1;
    m.sqnrDb = std::isfinite(r.sqnrDb) ? std::optional<double>(r.sqnrDb) : std::nullopt;
    m.cosine = r.cosine;
    m.top1Agreement = r.top1Agreement;
    m.kl = r.kl;
    m.sizeBits = double(r.sizeBits);
    m.latencyMs = r.latencyMs;
    m.extra = {{"fp32_top1", opt(r.fp32Top1)}, {"fp32_size_bits", r.fp32SizeBits}, {"compression", r.compression},
        {"fp32_latency_ms", r.fp32LatencyMs}, {"eval_samples", r.evalSamples}, {"algorithms", r.applied},
        {"algorithm_notes", r.algorithmNotes}};
    return m;
}

RecordedQuantization quantizeAndRecord(Store* store, const Graph& graph, const std::string& modelPath,
    const Dataset& calib, const Dataset& eval, const QuantizeOptions& options, Progress& progress,
    const CancelToken& cancel, const std::vector<std::string>& tags, const std::string& note)
{
    RecordedQuantization out;
    if (!store) {
        out.result = quantizeModel(graph, calib, eval, options, progress, cancel);
        return out;
    }
    RunStart start = runStart(*store, RunKind::Quantization, graph, modelPath, eval,
                              quantizationRunConfig(options, calib, eval), tags);
    start.note = note;
    out.runId = recordRun(*store, start, [&](RunGuard& run) {
        out.result = quantizeModel(graph, calib, eval, options, progress, cancel);
        run.addLayers(quantizationLayerResults(out.result));
        RunMetrics m = quantizationMetrics(out.result);
        if (options.evalShards > 0) { // what merging the shards adds up (cluster/merge.h)
            nlohmann::json batches = nlohmann::json::array();
            for (const EvalBatch& b : out.result.evalBatches)
                batches.push_back(evalBatchJson(b));
            m.extra["eval_batches"] = std::move(batches);
            m.extra["eval_batch_count"] = out.result.evalBatchCount;
        }
        return m;
    });
    return out;
}

} // namespace qs
