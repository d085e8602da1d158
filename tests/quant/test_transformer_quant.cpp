// Transformer linear layers (MatMul [in, out], Gemm both layouts, the Gather embedding
// table and the LM head) under weight-only W4A16/W3A16 group-wise and W8A8/W4A8
// quantization, checked against hand-written group loops; the PTQ algorithms on them.
#include "transformer_fixture.h"

#include "measure/fidelity.h"
#include "quant/session.h"
#include "runtime/plan.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <set>

using namespace qs;
using namespace qs::test;

namespace {

// Quantize-dequantize of one group by hand (round half to even, restricted symmetric grid).
std::vector<float> naiveGroup(const std::vector<float>& x, int bits, bool symmetric, float& scale)
{
    float lo = 0, hi = 0, m = 0;
    for (float v : x) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        m = std::max(m, std::abs(v));
    }
    std::vector<float> out;
    if (symmetric) {
        const float qmax = float((1 << (bits - 1)) - 1);
        scale = m > 0 ? m / qmax : 1.f;
        for (float v : x)
            out.push_back(std::clamp(std::nearbyint(v / scale), -qmax, qmax) * scale);
    } else {
        const float qmax = float((1 << bits) - 1);
        scale = hi - lo > 0 ? (hi - lo) / qmax : 1.f;
        const float zp = std::clamp(std::nearbyint(-lo / scale), 0.f, qmax);
        for (float v : x)
            out.push_back((std::clamp(std::nearbyint(v / scale) + zp, 0.f, qmax) - zp) * scale);
    }
    return out;
}

// Element index of (out channel o, input channel i) in the stored weight.
struct Layout {
    int64_t outDim, inDim;
    bool inMajor; // [in, out] storage (MatMul, Gemm transB=0) vs [out, in] (Gemm transB=1, Gather)
    std::size_t at(int64_t o, int64_t i) const { return std::size_t(inMajor ? i * outDim + o : o * inDim + i); }
};

Layout layoutOf(const Graph& g, const std::string& layer)
{
    const Node& n = g.nodes[std::size_t(g.findNode(layer))];
    const Shape& s = g.constant(g.weightOf(n))->shape;
    if (n.opType == "Gather" || (n.opType == "Gemm" && n.attrInt("transB", 0)))
        return {s[0], s[1], false};
    return {s[1], s[0], true};
}

Tensor run(const QuantSession& s, bool quantized, const Tensor& x)
{
    return s.compile(quantized, x.shape)->run({x}).front();
}

const std::set<std::string> kLinear = {"embed", "q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2", "lm_head"};

} // namespace

class TestTransformerQuant : public QObject {
    Q_OBJECT

private slots:
    void findsEveryLinearLayer()
    {
        QuantSession s(tinyTransformer(), QuantizeOptions {});
        std::set<std::string> names;
        for (const auto& l : s.layers())
            names.insert(l.name);
        QCOMPARE(names, kLinear); // the activation x activation MatMuls (scores, attend) are not layers
        for (const auto& l : s.layers()) {
            const Layout lay = layoutOf(s.graph(), l.name);
            const int rank = 2;
            QCOMPARE(l.outAxis, lay.inMajor ? rank - 1 : 0);
            QCOMPARE(l.inAxis, lay.inMajor ? 0 : 1);
        }
    }

    void groupWiseMatchesNaive_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("W4A16 g32 symmetric") << 4 << 32 << true;
        QTest::newRow("W3A16 g16 affine") << 3 << 16 << false;
        QTest::newRow("W4A16 g64 (one group per row of d_model)") << 4 << 64 << true;
    }

    void groupWiseMatchesNaive()
    {
        QFETCH(int, bits);
        QFETCH(int, group);
        QFETCH(bool, symmetric);
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = bits, .symmetric = symmetric, .granularity = Granularity::Group,
            .groupSize = group};
        o.config.defaults.activation.bits = 16;
        QuantSession s(tinyTransformer(), o);
        Progress p;
        s.calibrate(tokenData({}, 8, 3), p, CancelToken());
        QVERIFY(s.activationParams.empty()); // weight-only
        s.quantizeWeights();
        for (const auto& l : s.layers()) {
            const Layout lay = layoutOf(s.graph(), l.name);
            const std::vector<float> w = s.graph().constant(l.weight)->toFloat();
            const auto got = s.weightOverrides.at(l.weight).data<float>();
            const std::vector<float>& scales = s.weightScales.at(l.weight);
            const int64_t groups = lay.inDim / group;
            QCOMPARE(int64_t(scales.size()), lay.outDim * groups);
            for (int64_t oc = 0; oc < lay.outDim; ++oc)
                for (int64_t gi = 0; gi < groups; ++gi) {
                    std::vector<float> x;
                    for (int64_t i = gi * group; i < (gi + 1) * group; ++i)
                        x.push_back(w[lay.at(oc, i)]);
                    float scale = 0;
                    const std::vector<float> want = naiveGroup(x, bits, symmetric, scale);
                    QCOMPARE(scales[std::size_t(oc * groups + gi)], scale);
                    for (int64_t i = 0; i < group; ++i)
                        if (std::abs(got[lay.at(oc, gi * group + i)] - want[std::size_t(i)]) > 1e-6f * scale)
                            QFAIL(qPrintable(QString("%1: out %2 in %3: %4 vs naive %5")
                                                 .arg(QString::fromStdString(l.name))
                                                 .arg(oc)
                                                 .arg(gi * group + i)
                                                 .arg(got[lay.at(oc, gi * group + i)])
                                                 .arg(want[std::size_t(i)])));
                }
            // Stored bits: the codes, a 32-bit scale per group, a zero point per group when affine.
            const int64_t n = lay.outDim * lay.inDim, blocks = lay.outDim * groups;
            QCOMPARE(s.layerSizeBits(l), n * bits + blocks * 32 + (symmetric ? 0 : blocks * bits));
        }
    }

    void groupSizeMustDivideTheInputDimension_data()
    {
        QTest::addColumn<int>("group");
        QTest::addColumn<QString>("message");
        QTest::newRow("48 does not divide 64") << 48 << "dimension 64 is not a multiple of the group size 48";
        QTest::newRow("128 exceeds 64") << 128 << "embedding dimension 64 is smaller than the group size 128";
    }

    void groupSizeMustDivideTheInputDimension()
    {
        QFETCH(int, group);
        QFETCH(QString, message);
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = 4, .granularity = Granularity::Group, .groupSize = group};
        try {
            QuantSession s(tinyTransformer(), o);
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
            QVERIFY2(QString(e.what()).startsWith("layer \""), e.what());
        }
    }

    void weightAndActivationModes_data()
    {
        QTest::addColumn<int>("wbits");
        QTest::addColumn<double>("minSqnrDb");
        QTest::newRow("W8A8 per channel") << 8 << 15.0; // per-tensor inputs with 12x outlier channels
        QTest::newRow("W4A8 per channel") << 4 << 8.0;
    }

    void weightAndActivationModes()
    {
        QFETCH(int, wbits);
        QFETCH(double, minSqnrDb);
        QuantizeOptions o;
        o.config.defaults.weight.bits = wbits;
        QuantSession s(tinyTransformer(), o);
        Progress p;
        s.calibrate(tokenData({}, 32, 4), p, CancelToken());
        s.quantizeWeights();
        // Every linear layer's float input is calibrated; the embedding's token indices are not.
        std::set<std::string> want, got;
        for (const auto& l : s.layers())
            if (l.op != "Gather")
                want.insert(l.input);
        for (const auto& [value, q] : s.activationParams)
            got.insert(value);
        QCOMPARE(got, want);
        QCOMPARE(int(got.size()), 5); // ln1 (q, k, v), attention output, ln2, ReLU, ln_f
        QCOMPARE(int(s.weightOverrides.size()), 8);
        const Tensor x = tokenData({}, 8, 5).first();
        FidelityMeter m;
        m.add(run(s, false, x), run(s, true, x));
        qInfo("W%dA8 logits SQNR %.2f dB", wbits, m.sqnrDb());
        QVERIFY2(m.sqnrDb() > minSqnrDb, qPrintable(QString::number(m.sqnrDb())));
        QVERIFY(m.sqnrDb() < 80); // it did quantize
    }

    // W8A8 suffers from ln1/ln_f's outlier channels; SmoothQuant migrates them into the weights.
    void smoothQuantHelpsW8A8()
    {
        auto sqnr = [](bool smooth) {
            QuantizeOptions o;
            QuantSession s(tinyTransformer(), o);
            Progress p;
            const Dataset calib = tokenData({}, 32, 4);
            if (smooth) {
                algorithm("smoothquant").apply(s, calib, nlohmann::json::object(), p, CancelToken());
                s.refreshLayers();
            }
            s.calibrate(calib, p, CancelToken());
            s.quantizeWeights();
            const Tensor x = tokenData({}, 8, 5).first();
            FidelityMeter m;
            m.add(run(s, false, x), run(s, true, x));
            return m.sqnrDb();
        };
        const double rtn = sqnr(false), smooth = sqnr(true);
        qInfo("W8A8 logits SQNR: RTN %.2f dB, SmoothQuant %.2f dB", rtn, smooth);
        QVERIFY2(smooth > rtn + 2, qPrintable(QString("%1 vs %2").arg(smooth).arg(rtn)));
    }

    // The function-preserving algorithms on the transformer: FP32 logits unchanged.
    void algorithmsKeepTheFp32Function_data()
    {
        QTest::addColumn<QString>("algo");
        QTest::addColumn<QString>("params");
        QTest::addColumn<int>("entries");
        QTest::newRow("smoothquant") << "smoothquant" << "{}" << 7;
        QTest::newRow("awq W4 g32") << "awq" << "{}" << 7;
        QTest::newRow("rotation online") << "rotation" << R"({"online": true})" << 5;
    }

    void algorithmsKeepTheFp32Function()
    {
        QFETCH(QString, algo);
        QFETCH(QString, params);
        QFETCH(int, entries);
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = 4, .granularity = Granularity::Group, .groupSize = 32};
        QuantSession s(tinyTransformer(), o);
        const Tensor x = tokenData({}, 8, 6).first();
        const Tensor before = run(s, false, x);
        Progress p;
        algorithm(algo.toStdString())
            .apply(s, tokenData({}, 32, 7), nlohmann::json::parse(params.toStdString()), p, CancelToken());
        s.refreshLayers();
        const Tensor after = run(s, false, x);
        const double diff = maxRelDiff(before, after);
        QVERIFY2(diff < 1e-4, qPrintable(QString::number(diff)));
        // The weights an algorithm replaced by its own copies are not counted as stored.
        const int64_t fp32Bits = QuantSession(tinyTransformer(), o).floatSizeBits();
        if (algo != "rotation") // rotation adds its float d x d matrices, which are stored
            QVERIFY2(s.floatSizeBits() < fp32Bits + fp32Bits / 20, qPrintable(QString::number(s.floatSizeBits())));
        std::set<std::string> names; // the inserted Mul / x Q MatMul nodes are no quantized layers
        for (const auto& l : s.layers())
            names.insert(l.name);
        QCOMPARE(names, kLinear);
        const nlohmann::json& notes = s.notes[algo.toStdString()];
        const nlohmann::json& list = algo == "rotation" ? notes["online"] : notes["layers"];
        QCOMPARE(int(list.size()), entries);
        if (algo == "awq")
            for (const auto& l : list)
                QVERIFY(l["proxy_error_awq"].get<double>() <= l["proxy_error_rtn"].get<double>());
        if (algo == "smoothquant") // ln1's outlier channels are what it migrates
            for (const auto& l : list)
                if (l["layer"] == "q_proj")
                    QVERIFY(l["act_channel_spread_after"].get<double>() <
                        0.5 * l["act_channel_spread_before"].get<double>());
        if (algo == "rotation")
            for (const auto& r : list)
                if (r["input"] == "ln1_out") {
                    QCOMPARE(r["rotation"].get<std::string>(), std::string("hadamard"));
                    QVERIFY(r["activation"]["after"]["max_over_std"].get<double>() <
                        0.7 * r["activation"]["before"]["max_over_std"].get<double>());
                }
    }

    // Text data (targets): quantizeModel reports FP32 and quantized next-token perplexity,
    // here checked against exp(mean NLL) computed by hand from the two models' logits.
    void reportsPerplexityOnTextData()
    {
        const TransformerDims d;
        Dataset text = tokenData(d, 10, 31);
        std::vector<int64_t> next;
        for (float v : text.first().data<float>())
            next.push_back((int64_t(v) * 7 + 3) % d.vocab); // any targets in [0, V)
        text.kind = "text";
        text.targets = Tensor::fromVector(Shape {10, d.context}, next);
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = 4, .granularity = Granularity::Group, .groupSize = 32};
        o.config.defaults.activation.bits = 16;
        o.batch = 4; // 4 + 4 + 2 windows
        Progress p;
        const QuantizeResult r = quantizeModel(tinyTransformer(), text, text, o, p, CancelToken());
        QVERIFY(r.perplexity && r.fp32Perplexity);
        QuantSession s(tinyTransformer(), o);
        s.calibrate(text, p, CancelToken());
        s.quantizeWeights();
        auto naive = [&](bool quantized) {
            const Tensor logits = run(s, quantized, text.first());
            auto z = logits.data<float>();
            double nll = 0;
            for (std::size_t t = 0; t < next.size(); ++t) {
                const float* row = z.data() + t * std::size_t(d.vocab);
                double m = row[0], sum = 0;
                for (int64_t v = 0; v < d.vocab; ++v)
                    m = std::max(m, double(row[v]));
                for (int64_t v = 0; v < d.vocab; ++v)
                    sum += std::exp(double(row[v]) - m);
                nll += m + std::log(sum) - row[next[t]];
            }
            return std::exp(nll / double(next.size()));
        };
        qInfo("perplexity FP32 %.4f, W4 g32 %.4f", *r.fp32Perplexity, *r.perplexity);
        QVERIFY(std::abs(*r.fp32Perplexity - naive(false)) < 1e-4 * naive(false));
        QVERIFY(std::abs(*r.perplexity - naive(true)) < 1e-4 * naive(true));
        QVERIFY(*r.perplexity != *r.fp32Perplexity);
    }

    void gptqOnTransformerLayers()
    {
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = 3, .granularity = Granularity::Group, .groupSize = 32};
        o.config.defaults.activation.bits = 16;
        QuantSession s(tinyTransformer(), o);
        Progress p;
        s.calibrate(tokenData({}, 32, 8), p, CancelToken());
        s.quantizeWeights();
        const auto rtnWeights = s.weightOverrides;
        algorithm("gptq").apply(s, tokenData({}, 32, 8), nlohmann::json::object(), p, CancelToken());
        const nlohmann::json& layers = s.notes["gptq"]["layers"];
        QCOMPARE(int(layers.size()), 7); // all but the embedding table (a lookup has no Hessian)
        // Layer by layer, on held-out tokens through the float model: ||(W - Q) x||^2 summed
        // over tokens by a naive loop, for GPTQ's weights and round-to-nearest's.
        const Dataset held = tokenData({}, 16, 9);
        CompileOptions co;
        co.inputShapes["input"] = held.first().shape;
        auto plan = compilePlan(s.graph(), co);
        std::map<std::string, Tensor> seen;
        for (const auto& l : s.layers())
            if (l.op != "Gather")
                plan->addTap(s.graph().nodes[std::size_t(s.graph().findNode(l.name))].input(0),
                    [&seen](const std::string& v, const Tensor& t) { seen[v] = t; });
        plan->run({held.first()});
        double rtn = 0, gptq = 0;
        for (const auto& l : s.layers()) {
            if (l.op == "Gather")
                continue;
            const Layout lay = layoutOf(s.graph(), l.name);
            const auto w = s.graph().constant(l.weight)->toFloat();
            const auto qg = s.weightOverrides.at(l.weight).toFloat(), qr = rtnWeights.at(l.weight).toFloat();
            const auto x = seen.at(s.graph().nodes[std::size_t(s.graph().findNode(l.name))].input(0)).toFloat();
            const int64_t tokens = int64_t(x.size()) / lay.inDim;
            double eg = 0, er = 0;
            for (int64_t t = 0; t < tokens; ++t)
                for (int64_t o_ = 0; o_ < lay.outDim; ++o_) {
                    double dg = 0, dr = 0;
                    for (int64_t i = 0; i < lay.inDim; ++i) {
                        const double xi = x[std::size_t(t * lay.inDim + i)], wi = w[lay.at(o_, i)];
                        dg += (wi - qg[lay.at(o_, i)]) * xi;
                        dr += (wi - qr[lay.at(o_, i)]) * xi;
                    }
                    eg += dg * dg;
                    er += dr * dr;
                }
            qInfo("%s: ||(W-Q)x||^2 GPTQ %.4g, RTN %.4g", l.name.c_str(), eg, er);
            gptq += eg;
            rtn += er;
        }
        qInfo("held-out layer output error, all layers: GPTQ %.4g vs RTN %.4g", gptq, rtn);
        QVERIFY2(gptq < 0.9 * rtn, qPrintable(QString("GPTQ %1, RTN %2").arg(gptq).arg(rtn)));
        // The stored grid is GPTQ's own: every weight is an integer multiple of its group's
        // scale, within the 3-bit range.
        for (const auto& l : s.layers()) {
            if (l.op == "Gather")
                continue;
            const Layout lay = layoutOf(s.graph(), l.name);
            const auto q = s.weightOverrides.at(l.weight).data<float>();
            const auto& scales = s.weightScales.at(l.weight);
            for (int64_t oc = 0; oc < lay.outDim; ++oc)
                for (int64_t i = 0; i < lay.inDim; ++i) {
                    const double k = q[lay.at(oc, i)] / scales[std::size_t(oc * (lay.inDim / 32) + i / 32)];
                    QVERIFY2(std::abs(k - std::nearbyint(k)) < 1e-3 && std::abs(k) <= 3.0 + 1e-3,
                        qPrintable(QString("%1: %2").arg(QString::fromStdString(l.name)).arg(k)));
                }
        }
    }
};

QTEST_MAIN(TestTransformerQuant)
#include "test_transformer_quant.moc"
