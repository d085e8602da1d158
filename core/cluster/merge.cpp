#include "cluster/merge.h"

#include "quant/eval_batches.h"
#include "record/sensitivity_record.h"
#include "store/store.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

namespace qs {

ShardSpec parseShardSpec(const std::string& text, const std::string& option)
{
    const std::size_t slash = text.find('/');
    auto number = [&](const std::string& part) {
        if (part.empty() || part.size() > 6 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
            fail(option, " ", quoted(text), ": expected I/N with whole numbers, 0 <= I < N");
        return std::stoi(part);
    };
    if (slash == std::string::npos)
        fail(option, " ", quoted(text), ": expected I/N with whole numbers, 0 <= I < N");
    ShardSpec s {number(text.substr(0, slash)), number(text.substr(slash + 1))};
    if (s.count < 1 || s.index >= s.count)
        fail(option, " ", quoted(text), ": expected I/N with whole numbers, 0 <= I < N");
    return s;
}

ShardRun readShard(const std::string& file)
{
    StoreOptions so;
    so.mode = OpenMode::ReadOnly;
    Store store = Store::open(file, so);
    std::optional<RunRecord> run;
    for (const RunRecord& r : store.runs()) // newest first
        if ((r.kind == RunKind::Sensitivity || r.kind == RunKind::MixedPrecisionSearch ||
                r.kind == RunKind::Quantization) &&
            r.config.contains(kShardConfigKey)) {
            run = r;
            break;
        }
    if (!run)
        fail(file, ": no sensitivity, mixed or evaluation shard run (config.", kShardConfigKey, ")");
    if (run->state != RunState::Done)
        fail(file, ": shard run ", run->id, " is ", runStateName(run->state), ", not done",
            run->error.empty() ? "" : ": ", run->error);
    const nlohmann::json& spec = run->config[kShardConfigKey];
    if (!spec.is_string())
        fail(file, ": config.", kShardConfigKey, " is not \"I/N\"");
    ShardRun s;
    s.file = file;
    s.shard = parseShardSpec(spec.get<std::string>(), file + ": config." + kShardConfigKey);
    s.run = *run;
    const std::optional<ModelRecord> model = store.model(run->modelId);
    if (!model)
        fail(file, ": run ", run->id, " names model ", run->modelId, ", which is not stored");
    s.model = *model;
    std::optional<DatasetRecord> dataset = run->datasetId ? store.dataset(*run->datasetId) : std::nullopt;
    if (!dataset)
        fail(file, ": run ", run->id, " has no dataset row");
    s.dataset = *dataset;
    if (run->kind == RunKind::Sensitivity)
        s.result = loadSensitivityRun(store, run->id);
    s.rows = store.layerResults(run->id);
    return s;
}

ShardIdentity identityOf(const ShardRun& shard)
{
    ShardIdentity id;
    id.kind = shard.run.kind;
    id.modelHash = shard.model.hash;
    id.datasetHash = shard.dataset.hash;
    id.config = shard.run.config;
    id.config.erase(kShardConfigKey);
    id.count = shard.shard.count;
    return id;
}

void checkShard(const ShardRun& shard, const ShardIdentity& expected)
{
    const ShardIdentity got = identityOf(shard);
    if (got.kind != expected.kind)
        fail(shard.file, ": run kind ", runKindName(got.kind), " is not the sweep's ", runKindName(expected.kind));
    if (got.modelHash != expected.modelHash)
        fail(shard.file, ": model hash ", got.modelHash.substr(0, 12), " is not the sweep's ",
            expected.modelHash.substr(0, 12), " (another model)");
    if (got.datasetHash != expected.datasetHash)
        fail(shard.file, ": dataset hash ", got.datasetHash.substr(0, 12), " is not the sweep's ",
            expected.datasetHash.substr(0, 12), " (other data)");
    if (got.count != expected.count)
        fail(shard.file, ": config.shard count ", got.count, " is not the sweep's ", expected.count);
    std::set<std::string> keys;
    for (const auto& [k, v] : got.config.items())
        keys.insert(k);
    for (const auto& [k, v] : expected.config.items())
        keys.insert(k);
    for (const std::string& k : keys)
        if (!got.config.contains(k) || !expected.config.contains(k) || got.config[k] != expected.config[k])
            fail(shard.file, ": config.", k, " ",
                got.config.contains(k) ? got.config[k].dump() : std::string("(absent)"), " is not the sweep's ",
                expected.config.contains(k) ? expected.config[k].dump() : std::string("(absent)"));
}

SensitivityResult mergeShardResults(const std::vector<ShardRun>& shards)
{
    SensitivityResult merged;
    if (shards.empty())
        return merged;
    const SensitivityResult& first = shards.front().result;
    merged.method = first.method;
    merged.mode = first.mode;
    merged.estimator = first.estimator;
    merged.samples = first.samples;
    merged.fp32Top1 = first.fp32Top1;
    std::set<int> seen;
    bool complete = true;
    for (const ShardRun& s : shards) {
        seen.insert(s.shard.index);
        complete &= s.result.complete;
    }
    merged.complete = complete && int(seen.size()) == shards.front().shard.count;
    for (const LayerSensitivity& l : first.layers) {
        LayerSensitivity m = l;
        m.byBits.clear();
        for (const ShardRun& s : shards)
            for (const LayerSensitivity& sl : s.result.layers)
                if (sl.layer == l.layer)
                    m.byBits.insert(sl.byBits.begin(), sl.byBits.end());
        merged.layers.push_back(std::move(m));
    }
    return merged;
}

namespace {

// The merged run's start: the shards' model and dataset rows upserted, their kind and
// config without the shard entry.
RunStart mergedRunStart(Store& store, const ShardRun& first)
{
    ModelRecord model = first.model;
    model.id = 0;
    model.importedMs = 0;
    DatasetRecord dataset = first.dataset;
    dataset.id = 0;
    dataset.addedMs = 0;
    RunStart start;
    start.modelId = store.upsertModel(model);
    start.datasetId = store.upsertDataset(dataset);
    start.kind = first.run.kind;
    start.config = identityOf(first).config;
    return start;
}

// The merged run: done when complete, else cancelled or failed with what came.
int64_t recordMerged(Store& store, const ShardRun& first, const std::vector<LayerResult>& rows, const RunMetrics& m,
    bool complete, const MergeRecord& record)
{
    RunGuard run(store, mergedRunStart(store, first));
    run.addLayers(rows);
    if (complete)
        run.finish(m);
    else if (record.cancelled)
        run.cancel(m);
    else
        run.fail(record.error.empty() ? "merge: shards missing" : record.error, m);
    return run.id();
}

// Mixed shards: the first shard's rows and metrics, each front point's measurement and
// the chosen point's (metrics top1, sqnrDb) from the shard that verified it.
int64_t recordMergedMixed(Store& store, const std::vector<ShardRun>& shards, const MergeRecord& record)
{
    RunMetrics m = shards.front().run.metrics;
    nlohmann::json& front = m.extra["front"];
    std::set<int> seen;
    for (const ShardRun& s : shards) {
        seen.insert(s.shard.index);
        const nlohmann::json& theirs = s.run.metrics.extra.value("front", nlohmann::json::array());
        if (!front.is_array() || theirs.size() != front.size())
            fail(s.file, ": metrics.front has ", theirs.size(), " points, the first shard's ", front.size());
        for (std::size_t k = 0; k < front.size(); ++k)
            if (theirs[k].contains("measured") && !theirs[k]["measured"].is_null())
                front[k]["measured"] = theirs[k]["measured"];
        if (s.run.metrics.sqnrDb) {
            m.sqnrDb = s.run.metrics.sqnrDb;
            m.top1 = s.run.metrics.top1;
        }
    }
    m.extra["cluster"] = record.cluster;
    return recordMerged(store, shards.front(), shards.front().rows, m, int(seen.size()) == shards.front().shard.count, record);
}

// Evaluation shards (quantize --shard I/N): the batches' sums of every shard, which
// must follow on from each other in shard order, added up as the single-machine run
// adds them; the first shard's rows and metrics with the evaluation's values replaced.
int64_t recordMergedEvaluation(Store& store, const std::vector<ShardRun>& shards, const MergeRecord& record)
{
    std::vector<EvalBatch> batches;
    const ShardRun& first = shards.front();
    const int64_t count = first.run.metrics.extra.value("eval_batch_count", int64_t(-1));
    std::set<int> seen;
    for (const ShardRun& s : shards) {
        seen.insert(s.shard.index);
        const nlohmann::json& extra = s.run.metrics.extra;
        if (!extra.contains("eval_batches") || !extra["eval_batches"].is_array())
            fail(s.file, ": metrics.eval_batches is missing (not an evaluation shard)");
        if (extra.value("eval_batch_count", int64_t(-1)) != count)
            fail(s.file, ": metrics.eval_batch_count ", extra.value("eval_batch_count", int64_t(-1)),
                " is not the first shard's ", count);
        const BatchRange range = shardBatches(count, 1, s.shard.index, s.shard.count);
        const nlohmann::json& list = extra["eval_batches"];
        if (int64_t(list.size()) != range.last - range.first)
            fail(s.file, ": ", list.size(), " evaluation batches, shard ", s.shard.index, "/", s.shard.count, " has ",
                range.last - range.first);
        for (std::size_t i = 0; i < list.size(); ++i) {
            EvalBatch b = evalBatchFromJson(list[i], str(s.file, ": metrics.eval_batches[", i, "]"));
            if (b.index != range.first + int64_t(i))
                fail(s.file, ": metrics.eval_batches[", i, "] is batch ", b.index, ", expected ",
                    range.first + int64_t(i));
            if (b.layerSignal.size() != first.rows.size() || b.layerNoise.size() != first.rows.size())
                fail(s.file, ": metrics.eval_batches[", i, "] has ", b.layerSignal.size(), " layers, the run ",
                    first.rows.size());
            batches.push_back(std::move(b));
        }
    }
    const bool complete = int(seen.size()) == first.shard.count && int64_t(batches.size()) == count;
    const EvalTotals t = combineEvalBatches(batches, false, first.rows.size());
    RunMetrics m = first.run.metrics;
    m.top1 = t.meter.testTop1();
    m.sqnrDb = std::isfinite(t.meter.sqnrDb()) ? std::optional<double>(t.meter.sqnrDb()) : std::nullopt;
    m.cosine = t.meter.cosine();
    m.top1Agreement = t.meter.top1Agreement();
    m.kl = t.meter.kl();
    m.latencyMs = t.latencyMs;
    m.extra["fp32_top1"] = t.meter.refTop1() ? nlohmann::json(*t.meter.refTop1()) : nlohmann::json(nullptr);
    m.extra["fp32_latency_ms"] = t.fp32LatencyMs;
    m.extra["eval_samples"] = t.meter.samples();
    m.extra.erase("eval_batches");
    m.extra.erase("eval_batch_count");
    m.extra["cluster"] = record.cluster;
    std::vector<LayerResult> rows = first.rows;
    for (std::size_t l = 0; l < rows.size(); ++l)
        rows[l].sqnrDb = std::isfinite(t.layerSqnrDb[l]) ? std::optional<double>(t.layerSqnrDb[l]) : std::nullopt;
    return recordMerged(store, first, rows, m, complete, record);
}

} // namespace

int64_t recordMergedRun(Store& store, const std::vector<ShardRun>& shards, const MergeRecord& record)
{
    if (shards.empty())
        fail("merge: no finished shard to record");
    if (shards.front().run.kind == RunKind::MixedPrecisionSearch)
        return recordMergedMixed(store, shards, record);
    if (shards.front().run.kind == RunKind::Quantization)
        return recordMergedEvaluation(store, shards, record);
    SensitivityResult merged = mergeShardResults(shards);
    merged.seconds = record.seconds;
    RunMetrics m = sensitivityRunMetrics(merged);
    m.extra["cluster"] = record.cluster;
    return recordMerged(store, shards.front(), sensitivityLayerRows(merged), m, merged.complete, record);
}

int64_t mergeShardFiles(Store& store, const std::vector<std::string>& files)
{
    if (files.empty())
        fail("merge: no shard files given");
    std::vector<ShardRun> shards;
    std::map<int, std::string> byIndex;
    for (const std::string& f : files) {
        shards.push_back(readShard(f));
        const ShardRun& s = shards.back();
        if (shards.size() == 1)
            continue;
        checkShard(s, identityOf(shards.front()));
    }
    for (const ShardRun& s : shards) {
        auto [it, fresh] = byIndex.emplace(s.shard.index, s.file);
        if (!fresh)
            fail(s.file, ": config.shard ", s.shard.index, "/", s.shard.count, " is also ", it->second);
    }
    const int count = shards.front().shard.count;
    std::string missing;
    for (int i = 0; i < count; ++i)
        if (!byIndex.count(i))
            missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    if (!missing.empty())
        fail("merge: shards ", missing, " of ", count, " are missing (give every shard file of the sweep)");
    std::sort(shards.begin(), shards.end(),
        [](const ShardRun& a, const ShardRun& b) { return a.shard.index < b.shard.index; });
    MergeRecord rec;
    nlohmann::json seconds = nlohmann::json::array();
    for (const ShardRun& s : shards) {
        rec.seconds += s.result.seconds;
        seconds.push_back(s.result.seconds);
    }
    rec.cluster = {{"shards", count}, {"shard_seconds", seconds}, {"files", files}};
    return recordMergedRun(store, shards, rec);
}

namespace {

// Doubles equal bit for bit (so -0 differs from 0 and a NaN equals itself).
bool sameBits(double a, double b)
{
    return std::memcmp(&a, &b, sizeof a) == 0;
}

void diffJson(const nlohmann::json& a, const nlohmann::json& b, const std::string& at, std::vector<std::string>& out)
{
    if (a.is_number_float() || b.is_number_float()) {
        if (!a.is_number() || !b.is_number() || !sameBits(a.get<double>(), b.get<double>()) ||
            a.is_number_float() != b.is_number_float())
            out.push_back(str(at, ": ", a.dump(), " vs ", b.dump()));
        return;
    }
    if (a.type() != b.type()) {
        out.push_back(str(at, ": ", a.dump(), " vs ", b.dump()));
        return;
    }
    if (a.is_object()) {
        std::set<std::string> keys;
        for (const auto& [k, v] : a.items())
            keys.insert(k);
        for (const auto& [k, v] : b.items())
            keys.insert(k);
        for (const std::string& k : keys) {
            if (!a.contains(k) || !b.contains(k))
                out.push_back(str(at, ".", k, ": ", a.contains(k) ? "present" : "absent", " vs ",
                    b.contains(k) ? "present" : "absent"));
            else
                diffJson(a[k], b[k], at + "." + k, out);
        }
        return;
    }
    if (a.is_array()) {
        if (a.size() != b.size()) {
            out.push_back(str(at, ": ", a.size(), " items vs ", b.size()));
            return;
        }
        for (std::size_t i = 0; i < a.size(); ++i)
            diffJson(a[i], b[i], str(at, "[", i, "]"), out);
        return;
    }
    if (a != b)
        out.push_back(str(at, ": ", a.dump(), " vs ", b.dump()));
}

template<class T> nlohmann::json optJson(const std::optional<T>& v)
{
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json rangeJson(const std::optional<StoredRange>& r)
{
    return r ? nlohmann::json {r->lo, r->hi} : nlohmann::json(nullptr);
}

// A layer row as JSON, each field under its own name (histograms by their bins).
nlohmann::json rowJson(const LayerResult& l)
{
    auto hist = [](const std::optional<StoredHistogram>& h) {
        return h ? nlohmann::json {{"edges", h->edges}, {"counts", h->counts}} : nlohmann::json(nullptr);
    };
    return {{"layer", l.layer}, {"op", l.op}, {"position", l.position}, {"weight_bits", optJson(l.weightBits)},
        {"act_bits", optJson(l.actBits)}, {"granularity", l.granularity}, {"symmetric", optJson(l.symmetric)},
        {"scales", l.scales}, {"sqnr_db", optJson(l.sqnrDb)}, {"sensitivity", optJson(l.sensitivity)},
        {"sensitivity_detail", l.sensitivityDetail}, {"size_bits", optJson(l.sizeBits)},
        {"weight_hist", hist(l.weightHist)}, {"act_hist", hist(l.actHist)}, {"weight_clip", rangeJson(l.weightClip)},
        {"act_clip", rangeJson(l.actClip)}, {"extra", l.extra}};
}

nlohmann::json runJson(const Store& store, const RunRecord& r)
{
    nlohmann::json extra = r.metrics.extra;
    extra.erase("seconds");
    extra.erase("cluster");
    extra.erase("fp32_latency_ms"); // wall clock, like latency_ms
    const std::optional<ModelRecord> model = store.model(r.modelId);
    const std::optional<DatasetRecord> dataset = r.datasetId ? store.dataset(*r.datasetId) : std::nullopt;
    return {{"kind", runKindName(r.kind)}, {"state", runStateName(r.state)}, {"error", r.error},
        {"model_hash", model ? model->hash : ""}, {"dataset_hash", dataset ? dataset->hash : ""}, {"config", r.config},
        {"layer_count", r.layerCount},
        {"metrics",
            {{"top1", optJson(r.metrics.top1)}, {"sqnr_db", optJson(r.metrics.sqnrDb)},
                {"cosine", optJson(r.metrics.cosine)}, {"top1_agreement", optJson(r.metrics.top1Agreement)},
                {"kl", optJson(r.metrics.kl)}, {"size_bits", optJson(r.metrics.sizeBits)},
                {"extra", extra}}}};
}

} // namespace

std::vector<std::string> storedRunDifferences(const Store& a, int64_t runA, const Store& b, int64_t runB)
{
    std::vector<std::string> out;
    diffJson(runJson(a, a.run(runA)), runJson(b, b.run(runB)), "run", out);
    const std::vector<LayerResult> la = a.layerResults(runA), lb = b.layerResults(runB);
    if (la.size() != lb.size())
        out.push_back(str("layers: ", la.size(), " rows vs ", lb.size()));
    for (std::size_t i = 0; i < std::min(la.size(), lb.size()); ++i)
        diffJson(rowJson(la[i]), rowJson(lb[i]), str("layer[", i, "]"), out);
    return out;
}

} // namespace qs
