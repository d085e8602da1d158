#include "quant/eval_batches.h"

#include "measure/perplexity.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace qs {

BatchRange shardBatches(int64_t total, int64_t batch, int shardIndex, int shardCount)
{
    const int64_t batches = batch > 0 ? (total + batch - 1) / batch : 0;
    return {batches * shardIndex / shardCount, batches * (shardIndex + 1) / shardCount};
}

namespace {

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

} // namespace

EvalTotals combineEvalBatches(const std::vector<EvalBatch>& batches, bool text, std::size_t layers)
{
    EvalTotals t;
    PerplexityMeter fp, q;
    std::vector<double> signal(layers, 0.0), noise(layers, 0.0), ms, fpMs;
    for (const EvalBatch& b : batches) {
        t.meter.add(b.fidelity);
        fp.add(b.nllFp32, b.tokens);
        q.add(b.nllQuant, b.tokens);
        for (std::size_t l = 0; l < layers && l < b.layerSignal.size() && l < b.layerNoise.size(); ++l) {
            signal[l] += b.layerSignal[l];
            noise[l] += b.layerNoise[l];
        }
        ms.push_back(b.ms);
        fpMs.push_back(b.fp32Ms);
    }
    if (text) {
        t.perplexity = q.perplexity();
        t.fp32Perplexity = fp.perplexity();
    }
    for (std::size_t l = 0; l < layers; ++l)
        t.layerSqnrDb.push_back(noise[l] > 0 ? 10 * std::log10(signal[l] / noise[l]) : INFINITY);
    t.latencyMs = median(ms);
    t.fp32LatencyMs = median(fpMs);
    return t;
}

nlohmann::json evalBatchJson(const EvalBatch& b)
{
    const FidelityMeter::Sums& f = b.fidelity;
    return {{"index", b.index},
        {"fidelity",
            {f.signal, f.noise, f.cosSum, f.klSum, f.agree, f.samples, f.refCorrect, f.testCorrect, f.labelled}},
        {"nll", {b.nllFp32, b.nllQuant, b.tokens}}, {"layer_signal", b.layerSignal}, {"layer_noise", b.layerNoise},
        {"ms", {b.fp32Ms, b.ms}}};
}

EvalBatch evalBatchFromJson(const nlohmann::json& j, const std::string& where)
{
    try {
        EvalBatch b;
        b.index = j.at("index").get<int64_t>();
        const nlohmann::json& f = j.at("fidelity");
        if (f.size() != 9)
            fail(where, ".fidelity: expected 9 sums, got ", f.size());
        b.fidelity = {f[0].get<double>(), f[1].get<double>(), f[2].get<double>(), f[3].get<double>(),
            f[4].get<double>(), f[5].get<int64_t>(), f[6].get<int64_t>(), f[7].get<int64_t>(), f[8].get<int64_t>()};
        const nlohmann::json& nll = j.at("nll");
        b.nllFp32 = nll.at(0).get<double>();
        b.nllQuant = nll.at(1).get<double>();
        b.tokens = nll.at(2).get<int64_t>();
        b.layerSignal = j.at("layer_signal").get<std::vector<double>>();
        b.layerNoise = j.at("layer_noise").get<std::vector<double>>();
        b.fp32Ms = j.at("ms").at(0).get<double>();
        b.ms = j.at("ms").at(1).get<double>();
        return b;
    } catch (const nlohmann::json::exception& e) {
        fail(where, ": not an evaluation batch (", e.what(), ")");
    }
}

} // namespace qs
