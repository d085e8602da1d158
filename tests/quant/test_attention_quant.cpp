// Attention operands as quantization points (quant/attention.h): detection on the
// tiny transformer and a KV-cache block, each granularity against a naive 4-D loop,
// the session's simulation, the one-at-a-time sweep against full re-runs, the config
// JSON, and the QDQ export run by ONNX Runtime against our simulation.
#include "transformer_fixture.h"

#include "analysis/sensitivity.h"
#include "analysis/whatif.h"
#include "export/qdq.h"
#include "graph/onnx_export.h"
#include "quant/attention.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "support/ort_runner.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <fstream>

using namespace qs;
using namespace qs::test;

namespace {

// One value quantize-dequantized on the grid of [lo, hi] by hand.
float naiveQ(float x, float lo, float hi, int bits, bool symmetric)
{
    if (symmetric) {
        const float qmax = float((1 << (bits - 1)) - 1), m = std::max(std::abs(lo), std::abs(hi));
        const float scale = m > 0 ? m / qmax : 1.f;
        return std::clamp(std::nearbyint(x / scale), -qmax, qmax) * scale;
    }
    lo = std::min(lo, 0.f);
    hi = std::max(hi, 0.f);
    const float qmax = float((1 << bits) - 1), scale = hi - lo > 0 ? (hi - lo) / qmax : 1.f;
    const float zp = std::clamp(std::nearbyint(-lo / scale), 0.f, qmax);
    return (std::clamp(std::nearbyint(x / scale) + zp, 0.f, qmax) - zp) * scale;
}

// The naive reference for a [B, H, R, C] operand: which elements share a range. Tokens
// are rows (R) for Q, V, P and columns (C) for K^T; channels the other axis.
std::vector<float> naiveOperand(const std::vector<float>& x, const int64_t (&d)[4], OperandRole role,
    OperandGranularity g, int bits, bool symmetric)
{
    auto at = [&](int64_t b, int64_t h, int64_t r, int64_t c) {
        return std::size_t(((b * d[1] + h) * d[2] + r) * d[3] + c);
    };
    const bool kT = role == OperandRole::K;
    // key(b, h, r, c): the group an element belongs to.
    auto key = [&](int64_t b, int64_t h, int64_t r, int64_t c) -> int64_t {
        switch (g) {
        case OperandGranularity::Tensor:
            return 0;
        case OperandGranularity::Head:
            return h;
        case OperandGranularity::Channel:
            return kT ? r : c;
        case OperandGranularity::Token:
            return ((b * d[1] + h) * 1000 + (kT ? c : r));
        }
        return 0;
    };
    std::map<int64_t, std::pair<float, float>> range;
    for (int64_t b = 0; b < d[0]; ++b)
        for (int64_t h = 0; h < d[1]; ++h)
            for (int64_t r = 0; r < d[2]; ++r)
                for (int64_t c = 0; c < d[3]; ++c) {
                    auto [it, fresh] = range.try_emplace(key(b, h, r, c), x[at(b, h, r, c)], x[at(b, h, r, c)]);
                    it->second.first = std::min(it->second.first, x[at(b, h, r, c)]);
                    it->second.second = std::max(it->second.second, x[at(b, h, r, c)]);
                }
    std::vector<float> out(x.size());
    for (int64_t b = 0; b < d[0]; ++b)
        for (int64_t h = 0; h < d[1]; ++h)
            for (int64_t r = 0; r < d[2]; ++r)
                for (int64_t c = 0; c < d[3]; ++c) {
                    const auto& [lo, hi] = range.at(key(b, h, r, c));
                    out[at(b, h, r, c)] = naiveQ(x[at(b, h, r, c)], lo, hi, bits, symmetric);
                }
    return out;
}

Attribute ints(std::vector<int64_t> v)
{
    Attribute a;
    a.kind = Attribute::Kind::Ints;
    a.ints = std::move(v);
    return a;
}

// One attention step of a KV-cache decoder: x [N, 1, D] and past keys/values
// [N, 1, P, D] in; Q x K^T over Concat(past, present), softmax, P x V; the present
// keys/values out.
Graph kvCacheBlock(int64_t D = 8, int64_t past = 5)
{
    GraphBuilder b(Shape {1, 1, D});
    b.g.opsets[""] = 13;
    for (const char* name : {"past_key", "past_value"}) {
        ValueInfo v;
        v.name = name;
        v.dtype = DType::Float;
        v.dims = std::vector<Dim> {Dim {-1, "N"}, Dim {1, ""}, Dim {past, ""}, Dim {D, ""}};
        b.g.inputs.push_back(v);
    }
    b.init("wq", randomTensor({D, D}, 3, 0.5f));
    b.init("wk", randomTensor({D, D}, 4, 0.5f));
    b.init("wv", randomTensor({D, D}, 5, 0.5f));
    b.init("axes1", Tensor::fromVector(Shape {1}, std::vector<int64_t> {1}));
    auto node = [&](const std::string& op, std::vector<std::string> in, const std::string& name) -> Node& {
        Node& n = b.add(op, std::move(in));
        n.name = name;
        n.outputs = {name + "_out"};
        b.last = n.outputs[0];
        return n;
    };
    node("MatMul", {"input", "wq"}, "q_proj");
    node("MatMul", {"input", "wk"}, "k_proj");
    node("MatMul", {"input", "wv"}, "v_proj");
    node("Unsqueeze", {"q_proj_out", "axes1"}, "q_heads");
    node("Unsqueeze", {"k_proj_out", "axes1"}, "k_heads");
    node("Unsqueeze", {"v_proj_out", "axes1"}, "v_heads");
    node("Concat", {"past_key", "k_heads_out"}, "present_key").attrs["axis"] = intAttribute(2);
    node("Concat", {"past_value", "v_heads_out"}, "present_value").attrs["axis"] = intAttribute(2);
    node("Transpose", {"present_key_out"}, "k_t").attrs["perm"] = ints({0, 1, 3, 2});
    node("MatMul", {"q_heads_out", "k_t_out"}, "scores");
    node("Softmax", {"scores_out"}, "probs").attrs["axis"] = intAttribute(-1);
    node("MatMul", {"probs_out", "present_value_out"}, "attend");
    Graph g = b.finish();
    g.outputs.front().dims = std::vector<Dim> {Dim {-1, "N"}, Dim {1, ""}, Dim {1, ""}, Dim {D, ""}};
    g.index();
    return g;
}

Dataset kvData(int64_t n, int64_t D = 8, int64_t past = 5)
{
    Dataset data;
    data.kind = "random";
    data.path = "test:kv";
    data.inputs = {{"input", data.path, randomTensor({n, 1, D}, 21)},
        {"past_key", data.path, randomTensor({n, 1, past, D}, 22)},
        {"past_value", data.path, randomTensor({n, 1, past, D}, 23)}};
    return data;
}

// `f` throws an Error whose message holds `text`.
template<class F> bool failsNaming(F&& f, const std::string& text)
{
    try {
        f();
    } catch (const Error& e) {
        if (std::string(e.what()).find(text) != std::string::npos)
            return true;
        qWarning("error without %s: %s", text.c_str(), e.what());
        return false;
    }
    qWarning("no error (expected one naming %s)", text.c_str());
    return false;
}

// A session on `g` calibrated on `data` with its weights quantized.
QuantSession calibratedSession(const Graph& g, const QuantizeOptions& o, const Dataset& data)
{
    QuantSession s(g, o);
    Progress progress;
    s.calibrate(data, progress, CancelToken());
    s.quantizeWeights();
    return s;
}

std::vector<float> simulatedLogits(const QuantSession& s, const Dataset& data)
{
    std::vector<float> out;
    for (int64_t start = 0; start < data.count(); start += 8) {
        const int64_t n = std::min<int64_t>(8, data.count() - start);
        auto plan = s.compile(true, data.inputShapes(n));
        const std::vector<float> y = plan->run(data.batch(start, n)).front().toFloat();
        out.insert(out.end(), y.begin(), y.end());
    }
    return out;
}

} // namespace

class TestAttentionQuant : public QObject {
    Q_OBJECT

private slots:
    void findsTheOperandsOfDecomposedAttention()
    {
        const AttentionPatterns p = findAttentionOperands(tinyTransformer());
        QVERIFY(p.unmapped.empty());
        std::vector<std::string> got;
        for (const auto& a : p.points)
            got.push_back(a.name + "=" + a.value);
        const std::vector<std::string> want = {
            "scores:Q=q_proj_out", "scores:K=k_t_out", "attend:P=probs_out", "attend:V=v_proj_out"};
        QCOMPARE(got, want);
    }

    void findsTheKvCacheInputs()
    {
        const AttentionPatterns p = findAttentionOperands(kvCacheBlock());
        QCOMPARE(int(p.points.size()), 4);
        for (const auto& a : p.points) {
            const std::string want = a.role == OperandRole::K ? "past_key"
                : a.role == OperandRole::V                    ? "past_value"
                                                              : "";
            QCOMPARE(a.cache, want);
        }
    }

    void namesPatternsItCannotMap()
    {
        GraphBuilder b(Shape {1, 4, 4});
        b.add("Relu", {"input"});
        b.add("MatMul", {"input", b.last}); // two activations, no softmax anywhere
        Node& fused = b.add("Attention", {b.last});
        fused.domain = "com.microsoft";
        const AttentionPatterns p = findAttentionOperands(b.finish());
        QVERIFY(p.points.empty());
        QCOMPARE(int(p.unmapped.size()), 2);
        QCOMPARE(p.unmapped[0].op, std::string("MatMul"));
        QVERIFY(p.unmapped[0].reason.find("neither Q x K^T") != std::string::npos);
        QCOMPARE(p.unmapped[1].op, std::string("Attention"));
        QVERIFY(p.unmapped[1].reason.find("decomposed") != std::string::npos);

        // A config naming a point that does not exist fails naming it and listing the model's.
        QuantizeOptions o;
        o.config.attention.points["scores:X"] = {.bits = 8};
        QVERIFY_THROWS_EXCEPTION(Error, QuantSession(tinyTransformer(), o));
        o.config =
            QuantConfig::fromJson(nlohmann::json::parse(R"({"attention": {"points": {"attend:K": {"bits": 4}}}})"));
        QVERIFY(failsNaming([&] { QuantSession s(tinyTransformer(), o); }, "scores:K"));
    }

    void granularityMatchesNaiveLoop_data()
    {
        QTest::addColumn<int>("role");
        QTest::addColumn<int>("granularity");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("symmetric");
        const char* roles[] = {"Q", "K", "V", "P"};
        const char* grans[] = {"tensor", "head", "token", "channel"};
        for (int r = 0; r < 4; ++r)
            for (int g = 0; g < 4; ++g) {
                if (r == 3 && g == 3)
                    continue; // P has no per-channel (tested below)
                for (int bits : {4, 8})
                    QTest::addRow("%s %s %d-bit %s", roles[r], grans[g], bits, bits == 4 ? "symmetric" : "affine")
                        << r << g << bits << (bits == 4);
            }
    }

    void granularityMatchesNaiveLoop()
    {
        QFETCH(int, role);
        QFETCH(int, granularity);
        QFETCH(int, bits);
        QFETCH(bool, symmetric);
        const int64_t d[4] = {2, 3, 5, 4};
        AttentionPoint p {"m:X", "m", "x", OperandRole(role), 0, ""};
        OperandSpec spec {.bits = bits, .symmetric = symmetric, .granularity = OperandGranularity(granularity)};
        // Calibrated on two batches; the second (checked) one holds the extremes of the first's shape.
        const Tensor first = randomTensor({d[0], d[1], d[2], d[3]}, 31, 0.5f);
        Tensor x = randomTensor({d[0], d[1], d[2], d[3]}, 32, 2.f);
        for (float& v : x.data<float>())
            v += role == 3 ? 3.f : 0.f; // probabilities-like: a positive operand
        OperandObserver obs(p, spec.granularity);
        obs.observe(first);
        obs.observe(x);
        const OperandQuant q = chooseOperandQuant(p, spec, &obs);
        Tensor y = x;
        fakeQuantOperand(y, q);
        // Static ranges span both batches: the naive loop sees them concatenated on the batch axis.
        std::vector<float> both = first.toFloat(), xv = x.toFloat();
        both.insert(both.end(), xv.begin(), xv.end());
        const int64_t d2[4] = {2 * d[0], d[1], d[2], d[3]};
        std::vector<float> want;
        if (spec.granularity == OperandGranularity::Token) {
            want = naiveOperand(xv, d, p.role, spec.granularity, bits, symmetric);
        } else {
            want = naiveOperand(both, d2, p.role, spec.granularity, bits, symmetric);
            want.erase(want.begin(), want.begin() + std::ptrdiff_t(xv.size()));
        }
        const auto got = y.data<float>();
        for (std::size_t i = 0; i < want.size(); ++i)
            QVERIFY2(std::abs(got[i] - want[i]) <= 1e-5f * (1 + std::abs(want[i])),
                qPrintable(QString("element %1: %2 vs naive %3").arg(i).arg(got[i]).arg(want[i])));
    }

    void refusesGranularitiesWithoutTheirAxis()
    {
        AttentionPoint p {"attend:P", "attend", "probs_out", OperandRole::P, 0, ""};
        QVERIFY_THROWS_EXCEPTION(Error, staticSliceAxis(p, OperandGranularity::Channel, Shape {1, 2, 3, 3}));
        p.role = OperandRole::Q;
        QVERIFY(failsNaming([&] { staticSliceAxis(p, OperandGranularity::Head, Shape {1, 3, 3}); }, "attend:P"));
        QVERIFY_THROWS_EXCEPTION(Error,
            chooseOperandQuant(p, {.bits = 4, .granularity = OperandGranularity::Token, .calibrator = "mse"}, nullptr));
    }

    void configJsonIsUnchangedWhenOff()
    {
        const nlohmann::json before = nlohmann::json::parse(
            R"({"default": {"weight": {"bits": 4, "granularity": "group:32"}}, "exclude": ["lm_head"]})");
        const QuantConfig c = QuantConfig::fromJson(before);
        QVERIFY(!c.toJson().contains("attention"));
        QCOMPARE(QuantConfig::fromJson(c.toJson()).toJson().dump(), c.toJson().dump());

        QuantConfig a = c;
        a.attention.k = {.bits = 4, .granularity = OperandGranularity::Channel};
        a.attention.v = {.bits = 4, .granularity = OperandGranularity::Token};
        a.attention.points["scores:Q"] = {
            .bits = 8, .symmetric = false, .calibrator = "percentile", .calibratorParam = 99.9};
        const QuantConfig back = QuantConfig::fromJson(a.toJson());
        QVERIFY(back.attention == a.attention);
        QCOMPARE(back.forOperand("attend:P", OperandRole::P).has_value(), false);
        QCOMPARE(back.forOperand("scores:K", OperandRole::K)->granularity, OperandGranularity::Channel);
        QCOMPARE(back.forOperand("scores:Q", OperandRole::Q)->calibrator, std::string("percentile"));

        for (const char* bad : {R"({"attention": {"k": {"granularity": "row"}}})", R"({"attention": {"x": {}}})",
                 R"({"attention": {"k": {"bits": 12}}})", R"({"attention": {"points": {"scores": {"bits": 4}}}})",
                 R"({"attention": {"v": {"group_size": 4}}})"}) {
            QVERIFY2(failsNaming([&] { QuantConfig::fromJson(nlohmann::json::parse(bad)); }, "attention"), bad);
        }
    }

    // The session fake-quantizes each operand where the MatMul reads it: the K^T and V
    // the quantized plan computes are the FP32 ones on the grid (weights and layer
    // inputs stay float), and quantizeModel reports a row per operand.
    void sessionQuantizesTheOperands()
    {
        const TransformerDims d;
        const Dataset calib = tokenData(d, 16, 5);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 32;
        o.config.defaults.activation.bits = 32;
        o.config.attention.k = {.bits = 4, .granularity = OperandGranularity::Channel};
        o.config.attention.v = {.bits = 4, .granularity = OperandGranularity::Token};
        o.batch = 8;
        QuantSession s(tinyTransformer(d), o);
        QCOMPARE(int(s.operands().size()), 2);
        Progress progress;
        s.calibrate(calib, progress, CancelToken());
        QCOMPARE(int(s.operandQuant.at("scores:K").params.size()), int(d.dModel));
        CompileOptions keep = s.compileOptions(false, calib.inputShapes(8));
        keep.keepValues = {"k_t_out", "v_proj_out"};
        auto fp = compilePlan(s.graph(), keep);
        auto q = s.compile(true, calib.inputShapes(8));
        std::map<std::string, Tensor> seen;
        for (const char* v : {"k_t_out", "v_proj_out"})
            q->addTap(v, [&seen](const std::string& name, const Tensor& t) { seen[name] = t; });
        fp->run(calib.batch(0, 8));
        q->run(calib.batch(0, 8));
        for (const auto& [value, point] : {std::pair {"k_t_out", "scores:K"}, {"v_proj_out", "attend:V"}}) {
            Tensor want = fp->valueOf(value);
            fakeQuantOperand(want, s.operandQuant.at(point));
            QCOMPARE(seen.at(value).toFloat(), want.toFloat());
            QVERIFY(want.toFloat() != fp->valueOf(value).toFloat());
        }

        const QuantizeResult r = quantizeModel(tinyTransformer(d), calib, calib, o, progress, CancelToken());
        QCOMPARE(int(r.operands.size()), 2);
        for (const auto& row : r.operands) {
            QVERIFY2(std::isfinite(row.sqnrDb) && row.sqnrDb > 5 && row.sqnrDb < 60, row.name.c_str());
            QCOMPARE(row.bits, 4);
        }
        QCOMPARE(r.operands[0].granularity, std::string("channel"));
        QVERIFY(r.sqnrDb < 60); // the model output moved
    }

    // The cached sweep (runFrom from the operand's value) against a full re-run of the
    // model per configuration; fewer bits, more noise.
    void sweepMatchesFullReruns()
    {
        const TransformerDims d;
        Dataset data = tokenData(d, 12, 9);
        // The input stays unnamed (fed by position): the naive sweep once looked the model
        // input's name up in the data's shapes and threw std::map::at.
        QCOMPARE(data.inputs.front().name, std::string());
        SensitivityOptions o;
        o.bits = {3, 8};
        o.limit = 12;
        o.batch = 6;
        o.attention = true;
        o.base.attention.v.granularity = OperandGranularity::Token;
        Progress p;
        const SensitivityResult cached = measureSensitivity(tinyTransformer(d), data, o, p, CancelToken());
        o.naive = true;
        const SensitivityResult naive = measureSensitivity(tinyTransformer(d), data, o, p, CancelToken());
        QCOMPARE(cached.layers.size(), naive.layers.size());
        int operands = 0;
        for (std::size_t i = 0; i < cached.layers.size(); ++i) {
            const LayerSensitivity& a = cached.layers[i];
            if (a.op.rfind("MatMul:", 0) != 0)
                continue;
            ++operands;
            QVERIFY2(a.byBits.size() == 2 && naive.layers[i].byBits.size() == 2,
                qPrintable(QString("%1: %2 cached, %3 naive")
                               .arg(a.layer.c_str())
                               .arg(a.byBits.size())
                               .arg(naive.layers[i].byBits.size())));
            for (int bits : o.bits)
                QVERIFY2(std::abs(a.byBits.at(bits).sqnrDb - naive.layers[i].byBits.at(bits).sqnrDb) < 1e-3,
                    a.layer.c_str());
            QVERIFY2(a.byBits.at(3).sqnrDb < a.byBits.at(8).sqnrDb, a.layer.c_str());
        }
        QCOMPARE(operands, 4);
    }

    // The what-if session quantizes the operands as quantizeModel does: its current
    // configuration and a changed layer give the same model output SQNR.
    void whatIfKeepsTheOperands()
    {
        const TransformerDims d;
        const Dataset calib = tokenData(d, 16, 5), eval = tokenData(d, 16, 6);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 6;
        o.config.attention.k = {.bits = 3, .granularity = OperandGranularity::Channel};
        o.config.attention.v = {.bits = 3, .granularity = OperandGranularity::Token};
        o.batch = 8;
        Progress progress;
        WhatIfSession w(tinyTransformer(d), calib, eval, o, progress, CancelToken());
        const QuantizeResult full = quantizeModel(tinyTransformer(d), calib, eval, o, progress, CancelToken());
        QVERIFY2(std::abs(w.current().outputSqnrDb - full.sqnrDb) < 1e-3,
            qPrintable(QString("what-if %1 dB, quantize %2 dB").arg(w.current().outputSqnrDb).arg(full.sqnrDb)));

        WhatIfChange change;
        change.layer = "fc1";
        change.spec = o.config.defaults;
        change.spec->weight.bits = 2;
        const WhatIfResult r = w.evaluate(change);
        QuantizeOptions changed = o;
        changed.config = r.config;
        const QuantizeResult again = quantizeModel(tinyTransformer(d), calib, eval, changed, progress, CancelToken());
        QVERIFY2(std::abs(r.metrics.outputSqnrDb - again.sqnrDb) < 1e-3,
            qPrintable(QString("what-if %1 dB, quantize %2 dB").arg(r.metrics.outputSqnrDb).arg(again.sqnrDb)));

        // An operand's own edit: V down to 2 bits per tensor. The what-if re-runs the
        // changed configuration in full; quantizeModel is the reference, and applying
        // the change makes it the current configuration with the same numbers.
        WhatIfChange operand;
        operand.operand = "attend:V";
        operand.operandSpec = OperandSpec {.bits = 2};
        const WhatIfResult v = w.evaluate(operand);
        QCOMPARE(v.layer, std::string("attend:V"));
        QCOMPARE(v.config.attention.points.at("attend:V").bits, 2);
        QVERIFY(v.metrics.outputSqnrDb < v.base.outputSqnrDb - 1);
        QVERIFY(std::isnan(v.layerSqnrDb));
        changed.config = v.config;
        const QuantizeResult v2 = quantizeModel(tinyTransformer(d), calib, eval, changed, progress, CancelToken());
        QVERIFY2(std::abs(v.metrics.outputSqnrDb - v2.sqnrDb) < 1e-3,
            qPrintable(QString("what-if %1 dB, quantize %2 dB").arg(v.metrics.outputSqnrDb).arg(v2.sqnrDb)));
        // V's base spec again (3 bits per token): nothing changes, the base numbers.
        operand.operandSpec = o.config.attention.v;
        QCOMPARE(w.evaluate(operand).metrics.outputSqnrDb, v.base.outputSqnrDb);
        operand.operandSpec = OperandSpec {.bits = 2};
        w.apply(operand, progress, CancelToken());
        QCOMPARE(w.current().outputSqnrDb, v.metrics.outputSqnrDb);
        operand.operand = "attend:X";
        QVERIFY(failsNaming([&] { w.evaluate(operand); }, "attend:X"));
        operand.operand = "attend:V";
        operand.operandSpec = OperandSpec {.bits = 12};
        QVERIFY(failsNaming([&] { w.evaluate(operand); }, "12 bits"));

        // Per head does not apply to this single-head model's rank-3 operands.
        QuantConfig perHead = o.config;
        perHead.attention.k.granularity = OperandGranularity::Head;
        QVERIFY(failsNaming([&] { w.setConfig(perHead, progress, CancelToken()); }, "scores:K"));
    }

    // QDQ on the MatMul inputs (per tensor, and per axis for K's channels), checked by
    // ONNX's checker and run by ONNX Runtime as written: the same logits as our simulation.
    void qdqExportRunsInOrt()
    {
        const TransformerDims d;
        const Dataset data = tokenData(d, 24, 13);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 8;
        o.config.defaults.activation.bits = 8;
        o.config.attention.q.bits = 8;
        o.config.attention.k = {.bits = 4, .granularity = OperandGranularity::Channel};
        o.config.attention.v = {.bits = 4};
        o.config.attention.p.bits = 8;
        o.batch = 8;
        const QuantSession s = calibratedSession(tinyTransformer(d), o, data);
        const QdqModel qdq = buildQdqModel(s);
        const std::string bytes = exportOnnxBytes(qdq.graph);
        checkOnnxBytes(bytes, "attention.onnx");
        int perAxis = 0;
        for (const Node& n : qdq.graph.nodes)
            perAxis += n.opType == "QuantizeLinear" && n.attrs.count("axis") && n.inputs[0] == "k_t_out";
        QCOMPARE(perAxis, 1);
        QTemporaryDir dir;
        const QString path = dir.filePath("attention.onnx");
        std::ofstream(path.toStdString(), std::ios::binary) << bytes;
        const std::vector<float> ours = simulatedLogits(s, data);
        const std::vector<float> ort = ortLogits(path, data, "disabled", dir.path());
        QCOMPARE(ort.size(), ours.size());
        double maxDiff = 0, maxAbs = 0;
        for (std::size_t i = 0; i < ours.size(); ++i) {
            maxDiff = std::max(maxDiff, double(std::abs(ours[i] - ort[i])));
            maxAbs = std::max(maxAbs, double(std::abs(ours[i])));
        }
        QVERIFY2(maxDiff < 1e-3 * maxAbs, qPrintable(QString("max |ours - ORT| %1 of %2").arg(maxDiff).arg(maxAbs)));

        // Per token has no static QDQ form: a one-line error naming the point.
        QuantizeOptions t = o;
        t.config.attention.v.granularity = OperandGranularity::Token;
        const QuantSession st = calibratedSession(tinyTransformer(d), t, data);
        QVERIFY(failsNaming([&] { buildQdqModel(st); }, "attend:V"));
    }

    // 8-bit per-tensor operands run as oneDNN int8 matmuls of the two values: the INT8
    // plan computes what the simulation does (integer products, exact int32 sums); other
    // widths are refused naming the point.
    void int8AttentionMatchesSimulation()
    {
        const TransformerDims d;
        const Dataset data = tokenData(d, 16, 17);
        QuantizeOptions o;
        for (OperandSpec* s : {&o.config.attention.q, &o.config.attention.k, &o.config.attention.v})
            s->bits = 8;
        o.config.attention.p.bits = 8;
        o.batch = 8;
        // INT8 against the simulation, as the layers alone agree (a rounding tie the two
        // break differently moves a value by a step) and with the operands in INT8.
        auto agreementDb = [&](const QuantizeOptions& opts, int expectOperandKernels) {
            const QuantSession s = calibratedSession(tinyTransformer(d), opts, data);
            auto sim = s.compile(true, data.inputShapes(8));
            auto int8 = s.compileInt8(data.inputShapes(8));
            int operandKernels = 0;
            for (const auto& k : int8->kernelSummary())
                operandKernels += k.find("int8 operands") != std::string::npos;
            if (operandKernels != expectOperandKernels)
                return -1.0;
            const std::vector<float> a = sim->run(data.batch(0, 8)).front().toFloat();
            const std::vector<float> b = int8->run(data.batch(0, 8)).front().toFloat();
            double signal = 0, noise = 0;
            for (std::size_t i = 0; i < a.size() && a.size() == b.size(); ++i) {
                signal += double(a[i]) * a[i];
                noise += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
            }
            return 10 * std::log10(signal / std::max(noise, 1e-30));
        };
        const double layersOnly = agreementDb(QuantizeOptions {.batch = 8}, 0);
        const double withOperands = agreementDb(o, 2);
        qInfo("INT8 vs simulation: %.1f dB with the operands in INT8, %.1f dB layers only", withOperands, layersOnly);
        QVERIFY2(layersOnly > 35 && withOperands > layersOnly - 6,
            qPrintable(QString("INT8 vs simulation: %1 dB with the operands, %2 dB layers only")
                           .arg(withOperands)
                           .arg(layersOnly)));

        QuantizeOptions four = o;
        four.config.attention.v.bits = 4;
        const QuantSession s4 = calibratedSession(tinyTransformer(d), four, data);
        QVERIFY(failsNaming([&] { s4.compileInt8(data.inputShapes(8)); }, "attend:V"));
    }

    // The KV-cache block quantizes K and V including the past tokens, in the simulation
    // and in ONNX Runtime alike.
    void kvCacheBlockExportMatches()
    {
        const Dataset data = kvData(16);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 32;
        o.config.defaults.activation.bits = 32;
        o.config.attention.k = {.bits = 4, .granularity = OperandGranularity::Head};
        o.config.attention.v = {.bits = 4, .granularity = OperandGranularity::Channel};
        o.batch = 8;
        const QuantSession s = calibratedSession(kvCacheBlock(), o, data);
        QCOMPARE(int(s.operandQuant.at("scores:K").params.size()), 1); // one head
        QCOMPARE(int(s.operandQuant.at("attend:V").params.size()), 8);
        const QdqModel qdq = buildQdqModel(s);
        checkOnnxBytes(exportOnnxBytes(qdq.graph), "kv.onnx");
    }
};

QTEST_GUILESS_MAIN(TestAttentionQuant)
#include "test_attention_quant.moc"
