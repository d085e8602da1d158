// The latency axis of the mixed-precision search (analysis/latency_front.h) and the
// crossings predictLatencyMs counts: on a hand-made chain of layers, the options carry the
// measured times in ns and a float option, the front is the Pareto set of a brute-force
// enumeration of every assignment priced by predictLatencyMs, and precisionBoundaries
// lists the quantize/dequantize a hand count of the chain gives.
#include "analysis/latency_front.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>

using namespace qs;

namespace {

// A chain a -> b -> c; b has no INT8 kernel when `bFloatOnly`.
LatencyProfile chainProfile(bool bFloatOnly)
{
    LatencyProfile p;
    p.otherMs = 0.25;
    p.layers.push_back({"a", "Conv", 1.0, 0.4, 0.05, 0.07});
    p.layers.push_back({"b", "Conv", 2.0, bFloatOnly ? std::nullopt : std::optional(0.9), 0.11, 0.13});
    p.layers.push_back({"c", "Gemm", 0.5, 0.3, 0.02, 0.03});
    return p;
}

LayerLinks chainLinks()
{
    LayerLinks l;
    l.layers = {"a", "b", "c"};
    l.producers = {{}, {0}, {1}};
    l.consumers = {{1}, {2}, {}};
    l.floatIn = {1, 0, 0};  // a reads the graph input
    l.floatOut = {0, 0, 1}; // c writes the graph output
    return l;
}

ModelSizeTable chainSizes()
{
    ModelSizeTable t;
    for (const char* name : {"a", "b", "c"}) {
        LayerShape s;
        s.layer = name;
        s.weightShape = {8, 4, 1, 1};
        s.elements = 32;
        t.layers.push_back(s);
    }
    return t;
}

SensitivityResult chainSensitivity()
{
    SensitivityResult r;
    double base = 10;
    for (const char* name : {"a", "b", "c"}) {
        LayerSensitivity l;
        l.layer = name;
        l.byBits[4].sqnrDb = base;
        l.byBits[8].sqnrDb = base + 24;
        base += 5;
        r.layers.push_back(l);
    }
    return r;
}

} // namespace

class TestLatencyFront : public QObject {
    Q_OBJECT

private slots:
    void boundariesByHand()
    {
        const LatencyProfile p = chainProfile(false);
        const LayerLinks l = chainLinks();
        using K = PrecisionBoundary::Kind;
        auto kinds = [&](const std::set<std::string>& int8) {
            std::vector<std::pair<std::size_t, K>> out;
            for (const auto& b : precisionBoundaries(p, l, int8))
                out.emplace_back(b.layer, b.kind);
            return out;
        };
        QVERIFY(kinds({}).empty());
        // a alone: enters from the graph input, leaves to float b.
        QCOMPARE(kinds({"a"}), (std::vector<std::pair<std::size_t, K>> {{0, K::Quantize}, {0, K::Dequantize}}));
        // a and b: one entry at a, one exit at b.
        QCOMPARE(kinds({"a", "b"}), (std::vector<std::pair<std::size_t, K>> {{0, K::Quantize}, {1, K::Dequantize}}));
        // all: a enters, c leaves to the graph output.
        QCOMPARE(
            kinds({"a", "b", "c"}), (std::vector<std::pair<std::size_t, K>> {{0, K::Quantize}, {2, K::Dequantize}}));
        // a and c around a float b: four crossings with their measured costs.
        const auto b = precisionBoundaries(p, l, {"a", "c"});
        QCOMPARE(b.size(), std::size_t(4));
        QCOMPARE(b[0].ms + b[1].ms + b[2].ms + b[3].ms, 0.05 + 0.07 + 0.02 + 0.03);
        QCOMPARE(predictLatencyMs(p, l, {"a", "c"}), 0.25 + 0.4 + 2.0 + 0.3 + 0.05 + 0.07 + 0.02 + 0.03);
        // A layer without an INT8 kernel runs in float: no crossings of its own.
        QVERIFY(precisionBoundaries(chainProfile(true), l, {"b"}).empty());
        QVERIFY_THROWS_EXCEPTION(Error, precisionBoundaries(p, l, {"zz"}));
    }

    void optionsCarryMeasuredNanoseconds()
    {
        const ModelSizeTable sizes = chainSizes();
        const QuantConfig base;
        const auto layers = latencyLayerOptions(mixedLayerOptions(sizes, chainSensitivity(), {4, 8}, base, false),
            sizes, chainProfile(true), chainLinks(), base, {{"a", 0.01}});
        QCOMPARE(layers.size(), std::size_t(3));
        // a: 4 and 8 bits at its INT8 time, plus its input's noise; a float option at FP32 time.
        QCOMPARE(layers[0].options.size(), std::size_t(3));
        for (int k = 0; k < 2; ++k) {
            QCOMPARE(layers[0].options[std::size_t(k)].cost, int64_t(400000));
            QVERIFY(layers[0].options[std::size_t(k)].int8);
        }
        QCOMPARE(layers[0].options[1].noise, std::pow(10.0, -3.4) + 0.01);
        QCOMPARE(layers[0].options[2].bits, kFloatBits);
        QCOMPARE(layers[0].options[2].cost, int64_t(1000000));
        QCOMPARE(layers[0].options[2].noise, 0.0);
        QCOMPARE(layers[0].enterCost, int64_t(50000));
        QCOMPARE(layers[0].exitCost, int64_t(70000));
        QVERIFY(!layers[0].linkedToPrevious && layers[1].linkedToPrevious);
        // b has no INT8 kernel: float only.
        QCOMPARE(layers[1].options.size(), std::size_t(1));
        QCOMPARE(layers[1].options[0].bits, kFloatBits);
        QVERIFY_THROWS_EXCEPTION(Error,
            latencyLayerOptions(mixedLayerOptions(sizes, chainSensitivity(), {4}, base, false), sizes,
                LatencyProfile {}, chainLinks(), base, {}));
    }

    // The front against every assignment of {4, 8, float} per layer priced by predictLatencyMs.
    void frontIsTheBruteForceParetoSet()
    {
        const ModelSizeTable sizes = chainSizes();
        const SensitivityResult sens = chainSensitivity();
        const LatencyProfile p = chainProfile(false);
        const LayerLinks links = chainLinks();
        const std::map<std::string, double> noise = {{"a", 1e-4}, {"b", 2e-4}, {"c", 5e-5}};
        MixedConstraints c;
        c.allowedBits = {4, 8};
        c.maxBits = kFloatBits;
        const auto front = latencyFront(sizes, sens, {4, 8}, QuantConfig {}, p, links, noise, c);

        struct Candidate {
            double ms, noise;
            std::map<std::string, int> bits;
        };
        std::vector<Candidate> all;
        const int choices[] = {4, 8, kFloatBits};
        for (int x : choices)
            for (int y : choices)
                for (int z : choices) {
                    Candidate k;
                    k.bits = {{"a", x}, {"b", y}, {"c", z}};
                    std::set<std::string> int8;
                    k.noise = 0;
                    for (const auto& [layer, bits] : k.bits) {
                        if (bits >= 16)
                            continue;
                        int8.insert(layer);
                        for (const auto& l : sens.layers)
                            if (l.layer == layer)
                                k.noise += std::pow(10.0, -l.byBits.at(bits).sqnrDb / 10) + noise.at(layer);
                    }
                    k.ms = predictLatencyMs(p, links, int8);
                    all.push_back(k);
                }
        // Pareto: nothing else is at most as slow and strictly less noisy (or equal noise and faster).
        std::set<std::map<std::string, int>> pareto;
        for (const auto& k : all) {
            bool dominated = false;
            for (const auto& o : all)
                dominated = dominated || (o.ms <= k.ms + 1e-12 && o.noise < k.noise - 1e-15) ||
                    (o.ms < k.ms - 1e-12 && std::abs(o.noise - k.noise) <= 1e-15);
            if (!dominated)
                pareto.insert(k.bits);
        }
        std::set<std::map<std::string, int>> got;
        for (const auto& f : front) {
            got.insert(f.bits);
            // On a chain the DP's cost is the graph's prediction (in whole ns).
            QVERIFY(std::abs(chainLatencyMs(p, f) - predictLatencyMs(p, links, int8Layers(f))) < 1e-6);
        }
        QVERIFY(pareto.size() >= 4); // a real trade-off, not one point
        QCOMPARE(got, pareto);
        QCOMPARE(int8Layers(front.back()), std::set<std::string> {}); // no noise: all float
    }

    void pointsMapBackToConfigs()
    {
        FrontPoint f;
        f.bits = {{"a", 4}, {"b", kFloatBits}, {"c", 8}};
        QCOMPARE(int8Layers(f), (std::set<std::string> {"a", "c"}));
        const QuantConfig cfg = configForPoint(QuantConfig {}, f);
        QCOMPARE(cfg.forLayer("a")->weight.bits, 4);
        QVERIFY(!cfg.forLayer("b"));
        QCOMPARE(cfg.forLayer("c")->weight.bits, 8);
        QCOMPARE(int8Layers(cfg, {"a", "b", "c"}), (std::set<std::string> {"a", "c"}));
        QuantConfig wide = cfg;
        wide.layers["c"].activation.bits = 16;
        QCOMPARE(int8Layers(wide, {"a", "b", "c"}), std::set<std::string> {"a"});
        const LatencyProfile p = chainProfile(false);
        QCOMPARE(latencyBudgetCost(p, 1.25), int64_t(1000000));
        QCOMPARE(chainLatencyMs(p, FrontPoint {.cost = 1000000}), 1.25);
    }
};

QTEST_GUILESS_MAIN(TestLatencyFront)
#include "test_latency_front.moc"
