// What-if session: a change evaluated by re-running only the graph downstream of it
// equals a full simulated quantization of the changed configuration from scratch
// (quantizeModel: calibrate, quantize, evaluate); the histogram error estimate
// against the exact error of the values.
#include "../quant/demo_data.h"

#include "analysis/whatif.h"
#include "measure/stats.h"
#include "quant/quantizer.h"
#include "quant/session.h"
#include "util/error.h"
#include "util/lru_cache.h"
#include "util/memory_budget.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;

Q_DECLARE_METATYPE(qs::QuantConfig)

namespace {

// 100 samples in batches of 40: two full batches and one of 20 (two plan shapes).
QuantizeOptions demoOptions(const QuantConfig& config = {})
{
    QuantizeOptions o;
    o.config = config;
    o.batch = 40;
    o.calibLimit = 64;
    o.evalLimit = 100;
    o.threads = 1; // two OpenMP threads on a loaded 2-core machine cost several times more
    return o;
}

const Dataset& data()
{
    static const Dataset d = test::demoData(100);
    return d;
}

const Graph& model()
{
    static const Graph g = importOnnx(test::kDemoModel);
    return g;
}

void near(double got, double want, double tol, const char* what)
{
    const bool ok = (std::isinf(got) && std::isinf(want)) || std::abs(got - want) <= tol;
    QVERIFY2(ok, qPrintable(QStringLiteral("%1: what-if %2, full re-run %3").arg(what).arg(got, 0, 'g', 12).arg(want, 0, 'g', 12)));
}

// The full re-run of `config` agrees with the what-if result on every number.
void compareWithFullRun(const WhatIfResult& r)
{
    Progress p;
    QuantizeResult full = quantizeModel(model(), data(), data(), demoOptions(r.config), p, CancelToken());
    QVERIFY(full.top1 && r.metrics.top1);
    near(*r.metrics.top1, *full.top1, 1e-6, "top-1");
    near(r.metrics.top1Agreement, full.top1Agreement, 1e-6, "top-1 agreement");
    near(r.metrics.outputSqnrDb, full.sqnrDb, 1e-6, "output SQNR dB");
    near(r.metrics.kl, full.kl, 1e-6, "KL");
    near(r.metrics.cosine, full.cosine, 1e-6, "cosine");
    QVERIFY(r.fp32Top1 && full.fp32Top1);
    near(*r.fp32Top1, *full.fp32Top1, 1e-6, "FP32 top-1");
    bool found = false;
    for (const auto& l : full.layers)
        if (l.name == r.layer) {
            found = true;
            near(r.layerSqnrDb, l.outputSqnrDb, 1e-6, "layer SQNR dB");
            near(r.weightSqnrDb, l.weightSqnrDb, 1e-6, "weight SQNR dB");
            if (l.activationRange && r.activationRange) {
                QCOMPARE(r.activationRange->lo, l.activationRange->lo);
                QCOMPARE(r.activationRange->hi, l.activationRange->hi);
            }
        }
    QVERIFY(found);
}

} // namespace

class TestWhatIf : public QObject {
    Q_OBJECT

private slots:
    void matchesFullRerun_data()
    {
        QTest::addColumn<QuantConfig>("base");
        QTest::addColumn<int>("layer");     // index into the session's layers
        QTest::addColumn<QString>("change"); // what to change

        QuantConfig perTensor;
        perTensor.defaults.weight.granularity = Granularity::Tensor;
        QuantConfig entropy;
        entropy.defaults.activation.calibrator = "entropy";
        QTest::newRow("weight 8->4 bits (down1)") << QuantConfig() << 1 << "w4";
        QTest::newRow("weight 8->4 bits (head Gemm)") << QuantConfig() << 7 << "w4";
        QTest::newRow("per-tensor -> per-channel (res1 conv2)") << perTensor << 3 << "channel";
        QTest::newRow("activation 8->4 bits (res2 conv1, entropy)") << entropy << 5 << "a4";
        QTest::newRow("weights and activations 4 bits (stem)") << QuantConfig() << 0 << "w4a4";
        QTest::newRow("layer to float (res1 conv1)") << QuantConfig() << 2 << "float";
        QTest::newRow("clipped activation range (res1 conv1 input, a skip value)") << QuantConfig() << 2 << "clip-input";
        QTest::newRow("clipped weight range (head Gemm)") << QuantConfig() << 7 << "clip-weight";
        QTest::newRow("clipped weight range (BN-folded down1 conv)") << QuantConfig() << 1 << "clip-folded-weight";
        QTest::newRow("two clipped ranges, one downstream of the other") << QuantConfig() << 1 << "clip-two";
    }

    void matchesFullRerun()
    {
        QFETCH(QuantConfig, base);
        QFETCH(int, layer);
        QFETCH(QString, change);
        Progress p;
        WhatIfSession s(model(), data(), data(), demoOptions(base), p, CancelToken());
        QCOMPARE(s.samples(), int64_t(100));
        const auto& layers = s.session().layers();
        QCOMPARE(layers.size(), std::size_t(8));
        const SessionLayer& l = layers[std::size_t(layer)];
        WhatIfChange c;
        c.layer = l.name;
        LayerQuant spec = l.spec;
        if (change == "w4") {
            spec.weight.bits = 4;
            c.spec = spec;
        } else if (change == "channel") {
            QCOMPARE(int(spec.weight.granularity), int(Granularity::Tensor));
            spec.weight.granularity = Granularity::Channel;
            c.spec = spec;
        } else if (change == "a4") {
            spec.activation.bits = 4;
            c.spec = spec;
        } else if (change == "w4a4") {
            spec.weight.bits = spec.activation.bits = 4;
            c.spec = spec;
        } else if (change == "float") {
            spec.weight.bits = spec.activation.bits = 32;
            c.spec = spec;
        } else if (change == "clip-input") {
            const ClipRange r = s.session().activationRanges.at(l.input);
            c.setRanges[l.input] = {r.lo * 0.5f, r.hi * 0.4f};
        } else if (change == "clip-weight") {
            const Tensor* w = s.session().graph().constant(l.weight);
            std::vector<float> v = w->toFloat();
            const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
            c.setRanges[l.weight] = {*mn * 0.3f, *mx * 0.3f};
        } else if (change == "clip-folded-weight") {
            // The tensor quantized is the BN-folded one, not the model's initializer.
            QCOMPARE(l.weight, l.name + ".weight_bnfolded");
            QVERIFY(!model().constant(l.weight));
            const Tensor* w = s.session().graph().constant(l.weight);
            QVERIFY(w);
            std::vector<float> v = w->toFloat();
            const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
            c.setRanges[l.weight] = {*mn * 0.4f, *mx * 0.4f};
        } else if (change == "clip-two") {
            for (std::size_t i : {std::size_t(1), std::size_t(4)}) {
                const ClipRange r = s.session().activationRanges.at(layers[i].input);
                c.setRanges[layers[i].input] = {r.lo, r.hi * 0.3f};
            }
        }
        WhatIfResult r = s.evaluate(c);
        QVERIFY2(!r.changedWeights.empty() || !r.changedActivations.empty(), "the change changes nothing");
        // The change is visible (it is not a no-op measured twice).
        QVERIFY(r.metrics.outputSqnrDb != r.base.outputSqnrDb);
        QVERIFY(r.layerSqnrDb != r.baseLayerSqnrDb || change == "clip-two");
        compareWithFullRun(r);
        if (QTest::currentTestFailed())
            return;

        // Kept: the session's current metrics become the evaluated ones, and a second
        // change is measured from there.
        s.apply(c, p, CancelToken());
        near(s.current().outputSqnrDb, r.metrics.outputSqnrDb, 1e-9, "current after apply");
        near(s.layerSqnrDb(r.layer), r.layerSqnrDb, 1e-9, "layer SQNR after apply");
        const SessionLayer& six = s.session().layers()[6]; // apply() made a new session
        WhatIfChange next;
        next.layer = six.name;
        LayerQuant spec5 = six.spec;
        spec5.weight.bits = 3;
        next.spec = spec5;
        WhatIfResult r2 = s.evaluate(next);
        QCOMPARE(r2.config.toJson(), s.changed(next).toJson());
        near(r2.base.outputSqnrDb, r.metrics.outputSqnrDb, 1e-9, "base of the second change");
        compareWithFullRun(r2);
    }

    void unchangedConfigurationEqualsCurrent()
    {
        Progress p;
        WhatIfSession s(model(), data(), data(), demoOptions(), p, CancelToken());
        const SessionLayer& l = s.session().layers()[2];
        WhatIfChange c;
        c.layer = l.name;
        c.spec = l.spec;
        WhatIfResult r = s.evaluate(c);
        QVERIFY(r.changedWeights.empty() && r.changedActivations.empty());
        QCOMPARE(r.metrics.outputSqnrDb, s.current().outputSqnrDb);
        QCOMPARE(r.top1Delta().value_or(1), 0.0);
        // And the current configuration itself equals a full run of it.
        compareWithFullRun(r);
    }

    void errorsNameTheLayerOrTensor_data()
    {
        QTest::addColumn<QString>("what");
        QTest::addColumn<QString>("expected");
        QTest::newRow("unknown layer") << "layer" << "\"nope\" is not a quantizable layer";
        QTest::newRow("unknown tensor") << "tensor" << "\"nope\" is neither the input nor the weight";
        QTest::newRow("bad range") << "range" << "lo must be below hi";
        QTest::newRow("bad bits") << "bits" << "9 bits is not 2..8";
    }

    void errorsNameTheLayerOrTensor()
    {
        QFETCH(QString, what);
        QFETCH(QString, expected);
        Progress p;
        static WhatIfSession s(model(), data(), data(), demoOptions(), p, CancelToken());
        const SessionLayer& l = s.session().layers()[0];
        WhatIfChange c;
        c.layer = l.name;
        if (what == "layer") {
            c.layer = "nope";
            c.spec = l.spec;
        } else if (what == "tensor") {
            c.setRanges["nope"] = {0.f, 1.f};
        } else if (what == "range") {
            c.setRanges[l.input] = {1.f, 1.f};
        } else {
            c.spec = l.spec;
            c.spec->weight.bits = 9;
        }
        try {
            s.evaluate(c);
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).contains(expected), e.what());
        }
    }

    void refusesAlgorithms()
    {
        QuantConfig c;
        c.algorithms.push_back({"bias_correction", {}});
        Progress p;
        QVERIFY_THROWS_EXCEPTION(Error, WhatIfSession(model(), data(), data(), demoOptions(c), p, CancelToken()));
    }

    void cancelStopsEvaluation()
    {
        Progress p;
        WhatIfSession s(model(), data(), data(), demoOptions(), p, CancelToken());
        WhatIfChange c;
        c.layer = s.session().layers()[1].name;
        c.spec = s.session().layers()[1].spec;
        c.spec->weight.bits = 4;
        CancelToken cancel;
        cancel.cancel();
        QVERIFY_THROWS_EXCEPTION(Cancelled, s.evaluate(c, cancel));
        QVERIFY(s.evaluate(c).metrics.outputSqnrDb < s.current().outputSqnrDb); // still usable
    }

    // The histogram estimate against the exact quantization error of the values.
    void histogramErrorMatchesExact_data()
    {
        QTest::addColumn<float>("lo");
        QTest::addColumn<float>("hi");
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("full range 8 bits affine") << -4.f << 6.f << 8 << false;
        QTest::newRow("clipped 4 bits affine") << -1.5f << 2.f << 4 << false;
        QTest::newRow("clipped 6 bits symmetric") << -2.f << 2.f << 6 << true;
    }

    void histogramErrorMatchesExact()
    {
        QFETCH(float, lo);
        QFETCH(float, hi);
        QFETCH(int, bits);
        QFETCH(bool, symmetric);
        std::mt19937 rng(7);
        std::normal_distribution<float> n(0.5f, 1.f);
        std::vector<float> v(200000);
        for (float& x : v)
            x = std::clamp(n(rng), -4.f, 6.f);
        const Histogram h = makeHistogram(v, 4096);
        const QParams q = qparamsFor(lo, hi, bits, symmetric);
        double err = 0, sig = 0;
        int64_t clipped = 0;
        for (float x : v) {
            const double d = double(x) - fakeQuant(x, q);
            err += d * d;
            sig += double(x) * x;
            clipped += x < lo || x > hi;
        }
        const double mse = err / double(v.size());
        const TensorQuantError e = histogramQuantError(h, lo, hi, bits, symmetric);
        QVERIFY2(std::abs(e.mse - mse) < 0.05 * mse, qPrintable(QStringLiteral("%1 vs %2").arg(e.mse).arg(mse)));
        QVERIFY(std::abs(e.sqnrDb - 10 * std::log10(sig / err)) < 0.25);
        QVERIFY(std::abs(e.clippedFraction - double(clipped) / double(v.size())) < 2e-3);
    }

    // The cache within a small budget: least recently used entries go first, one larger
    // than the whole budget is not kept, and a value computed again after its eviction
    // equals the one evicted.
    void lruCacheEvictsWithinBudget()
    {
        LruCache<int, std::vector<float>> c(100);
        auto make = [](int k) {
            std::vector<float> v(10);
            for (std::size_t i = 0; i < v.size(); ++i)
                v[i] = float(k) * 0.1f + float(i);
            return v;
        };
        for (int k = 0; k < 3; ++k)
            c.put(k, make(k), 40); // the third evicts the first
        QCOMPARE(c.size(), std::size_t(2));
        QCOMPARE(c.bytes(), int64_t(80));
        QVERIFY(!c.contains(0));
        QVERIFY(c.find(1)); // 1 is now the most recently used: 2 goes next
        c.put(3, make(3), 40);
        QVERIFY(c.contains(1) && c.contains(3) && !c.contains(2));
        QCOMPARE(c.evictions(), int64_t(2));
        auto big = c.put(4, make(4), 101); // larger than the budget: returned, not kept
        QVERIFY(big && !c.contains(4));
        QCOMPARE(c.bytes(), int64_t(80));
        int computed = 0;
        auto again = c.getOrCompute(0, [&] {
            ++computed;
            return std::pair(make(0), int64_t(40));
        });
        QCOMPARE(computed, 1);
        QCOMPARE(*again, make(0));
        QVERIFY(c.bytes() <= c.budget());
        c.setBudget(40);
        QCOMPARE(c.size(), std::size_t(1));
        QVERIFY(c.contains(0));
    }

    void byteSizes()
    {
        QCOMPARE(parseByteSize("512M", "x"), int64_t(512) << 20);
        QCOMPARE(parseByteSize("2G", "x"), int64_t(2) << 30);
        QCOMPARE(parseByteSize("1.5GiB", "x"), int64_t(3) << 29);
        QCOMPARE(parseByteSize("1048576", "x"), int64_t(1) << 20);
        for (const char* bad : {"", "12", "2X", "-1G", "G"}) {
            bool threw = false;
            try {
                (void)parseByteSize(bad, "--cache-budget");
            } catch (const Error& e) {
                threw = std::string(e.what()).find("--cache-budget") != std::string::npos;
            }
            QVERIFY2(threw, bad);
        }
        QVERIFY(defaultCacheBudgetBytes() >= (int64_t(256) << 20));
    }

    // A what-if session whose cache holds about one of its three batches evicts the
    // others and recomputes them when a change needs them: every number equals the
    // session that keeps them all, before and after a change is applied.
    void evictedBatchesAreRecomputedEqual()
    {
        Progress p;
        WhatIfSession all(model(), data(), data(), demoOptions(), p, CancelToken());
        const int64_t everything = all.cachedBytes();
        QVERIFY(everything > 0);
        QCOMPARE(all.cacheEvictions(), int64_t(0));
        const int64_t budget = everything / 2;
        WhatIfSession small(model(), data(), data(), demoOptions(), p, CancelToken(), budget);
        QCOMPARE(small.cacheBudget(), budget);
        QVERIFY(small.cachedBytes() <= budget);
        QVERIFY(small.cacheEvictions() > 0);
        QCOMPARE(small.current().outputSqnrDb, all.current().outputSqnrDb);
        QCOMPARE(small.current().kl, all.current().kl);
        QCOMPARE(*small.fp32Top1(), *all.fp32Top1());
        const std::vector<SessionLayer> layers = all.session().layers(); // apply() replaces the session
        for (const std::size_t li : {std::size_t(1), std::size_t(5), std::size_t(2)}) {
            WhatIfChange c;
            c.layer = layers[li].name;
            LayerQuant spec = layers[li].spec;
            spec.weight.bits = spec.activation.bits = 4;
            c.spec = spec;
            const WhatIfResult a = all.evaluate(c), b = small.evaluate(c);
            QCOMPARE(b.metrics.outputSqnrDb, a.metrics.outputSqnrDb);
            QCOMPARE(b.metrics.kl, a.metrics.kl);
            QCOMPARE(b.metrics.cosine, a.metrics.cosine);
            QCOMPARE(b.metrics.top1Agreement, a.metrics.top1Agreement);
            QCOMPARE(b.layerSqnrDb, a.layerSqnrDb);
            QVERIFY(small.cachedBytes() <= budget);
            all.apply(c, p, CancelToken());
            small.apply(c, p, CancelToken());
            QCOMPARE(small.current().outputSqnrDb, all.current().outputSqnrDb);
            QCOMPARE(small.layerSqnrDb(c.layer), all.layerSqnrDb(c.layer));
        }
        QCOMPARE(all.cacheEvictions(), int64_t(0));
    }
};

QTEST_GUILESS_MAIN(TestWhatIf)
#include "test_whatif.moc"
