// The DP Pareto front against brute-force enumeration of every configuration.
#include "analysis/mixed_precision.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;

namespace {

std::vector<LayerOptions> randomProblem(uint32_t seed, int layers)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> elems(100, 5000);
    std::uniform_real_distribution<double> sens(0.1, 10.0);
    std::vector<LayerOptions> out;
    for (int l = 0; l < layers; ++l) {
        LayerOptions lo;
        lo.layer = "layer" + std::to_string(l);
        lo.elements = elems(rng);
        double s = sens(rng);
        for (int bits : {2, 4, 6, 8}) {
            BitOption o;
            o.bits = bits;
            o.cost = lo.elements * bits;
            o.sizeBits = o.cost + 32;
            o.noise = s * std::pow(4.0, -bits); // noise quarters per extra bit
            lo.options.push_back(o);
        }
        out.push_back(lo);
    }
    return out;
}

// Every configuration's (cost, noise), reduced to the Pareto set.
std::vector<std::pair<int64_t, double>> bruteForce(const std::vector<LayerOptions>& layers)
{
    std::vector<std::pair<int64_t, double>> all;
    std::vector<std::size_t> idx(layers.size(), 0);
    while (true) {
        int64_t c = 0;
        double n = 0;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            c += layers[l].options[idx[l]].cost;
            n += layers[l].options[idx[l]].noise;
        }
        all.push_back({c, n});
        std::size_t l = 0;
        while (l < layers.size() && ++idx[l] == layers[l].options.size())
            idx[l++] = 0;
        if (l == layers.size())
            break;
    }
    std::sort(all.begin(), all.end());
    std::vector<std::pair<int64_t, double>> front;
    for (const auto& p : all)
        if (front.empty() || p.second < front.back().second)
            front.push_back(p);
    return front;
}

// The latency axis: INT8 options (bits 4 and 8, one kernel time) and a float option
// per layer, with boundary costs between precisions along a chain.
std::vector<LayerOptions> latencyProblem(uint32_t seed, int layers)
{
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> ms(20, 400), cross(0, 150), coin(0, 1);
    std::uniform_real_distribution<double> sens(0.1, 10.0);
    std::vector<LayerOptions> out;
    for (int l = 0; l < layers; ++l) {
        LayerOptions lo;
        lo.layer = "layer" + std::to_string(l);
        lo.elements = 1000;
        const int64_t fp32 = ms(rng), int8 = ms(rng) / 3;
        const double s = sens(rng);
        for (int bits : {4, 8})
            lo.options.push_back({bits, int8, 1000 * bits, s * std::pow(4.0, -bits), true});
        lo.options.push_back({32, fp32, 32000, 0.0, false});
        lo.enterCost = cross(rng);
        lo.exitCost = cross(rng);
        lo.linkedToPrevious = l > 0 && coin(rng);
        out.push_back(lo);
    }
    return out;
}

// Boundary costs counted per layer, as a reader would state them: an INT8 layer pays
// to enter unless its linked predecessor is INT8, and to leave unless its linked
// successor is INT8.
int64_t naiveChainCost(const std::vector<LayerOptions>& layers, const std::vector<std::size_t>& pick)
{
    int64_t c = 0;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const BitOption& o = layers[l].options[pick[l]];
        c += o.cost;
        if (!o.int8)
            continue;
        const bool prevInt8 = l > 0 && layers[l].linkedToPrevious && layers[l - 1].options[pick[l - 1]].int8;
        const bool nextInt8 =
            l + 1 < layers.size() && layers[l + 1].linkedToPrevious && layers[l + 1].options[pick[l + 1]].int8;
        if (!prevInt8)
            c += layers[l].enterCost;
        if (!nextInt8)
            c += layers[l].exitCost;
    }
    return c;
}

} // namespace

class TestMixedPrecision : public QObject {
    Q_OBJECT

private slots:
    void matchesBruteForce_data()
    {
        QTest::addColumn<uint>("seed");
        QTest::addColumn<int>("layers");
        for (uint s = 1; s <= 6; ++s)
            QTest::newRow(qPrintable(QString("seed %1").arg(s))) << s << int(3 + s % 4);
    }

    void matchesBruteForce()
    {
        QFETCH(uint, seed);
        QFETCH(int, layers);
        auto problem = randomProblem(seed, layers);
        auto ref = bruteForce(problem);
        // With a resolution finer than the cost granularity, the DP is exact.
        auto front = paretoFront(problem, 1 << 16);
        QCOMPARE(front.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) {
            QCOMPARE(front[i].cost, ref[i].first);
            QVERIFY(std::abs(front[i].predictedNoise - ref[i].second) < 1e-12);
            int64_t cost = 0;
            for (const auto& l : problem)
                for (const auto& o : l.options)
                    if (o.bits == front[i].bits.at(l.layer))
                        cost += o.cost;
            QCOMPARE(cost, front[i].cost); // the configuration really has that cost
        }
        // Coarse resolution: every point is still a real configuration, and the best
        // within any budget is within one bucket per layer of the exact optimum.
        auto coarse = paretoFront(problem, 64);
        for (const auto& p : coarse) {
            auto exact = bestWithin(front, p.cost);
            QVERIFY(exact.has_value());
            QVERIFY(exact->predictedNoise <= p.predictedNoise + 1e-12);
        }
    }

    void latencyChainMatchesBruteForce_data()
    {
        QTest::addColumn<uint>("seed");
        QTest::addColumn<int>("layers");
        for (uint s = 1; s <= 6; ++s)
            QTest::newRow(qPrintable(QString("seed %1").arg(s))) << s << int(2 + s % 5);
    }

    void latencyChainMatchesBruteForce()
    {
        QFETCH(uint, seed);
        QFETCH(int, layers);
        auto problem = latencyProblem(seed, layers);
        std::vector<std::pair<int64_t, double>> all;
        std::vector<std::size_t> pick(problem.size(), 0);
        for (;;) {
            double n = 0;
            for (std::size_t l = 0; l < problem.size(); ++l)
                n += problem[l].options[pick[l]].noise;
            all.push_back({naiveChainCost(problem, pick), n});
            std::size_t l = 0;
            while (l < problem.size() && ++pick[l] == problem[l].options.size())
                pick[l++] = 0;
            if (l == problem.size())
                break;
        }
        std::sort(all.begin(), all.end());
        std::vector<std::pair<int64_t, double>> ref;
        for (const auto& p : all)
            if (ref.empty() || p.second < ref.back().second)
                ref.push_back(p);
        auto front = paretoFront(problem, 1 << 16);
        QCOMPARE(front.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) {
            QCOMPARE(front[i].cost, ref[i].first);
            QVERIFY(std::abs(front[i].predictedNoise - ref[i].second) < 1e-12);
            std::vector<std::size_t> chosen;
            for (const auto& l : problem)
                for (std::size_t k = 0; k < l.options.size(); ++k)
                    if (l.options[k].bits == front[i].bits.at(l.layer))
                        chosen.push_back(k);
            QCOMPARE(naiveChainCost(problem, chosen), front[i].cost); // the configuration really costs that
        }
    }

    void constraintsAndPins()
    {
        auto problem = randomProblem(9, 4);
        MixedConstraints c;
        c.allowedBits = {4, 6, 8};
        c.minBits = 4;
        c.pinned["layer0"] = 8;
        auto front = paretoFront(constrain(problem, c));
        QVERIFY(!front.empty());
        for (const auto& p : front) {
            QCOMPARE(p.bits.at("layer0"), 8);
            for (const auto& [layer, bits] : p.bits)
                QVERIFY(bits >= 4);
        }
        c.pinned["layer1"] = 3; // 3 bits was never measured
        QVERIFY_EXCEPTION_THROWN(constrain(problem, c), std::exception);
    }

    void budgetPicksLowestNoiseThatFits()
    {
        auto problem = randomProblem(3, 5);
        auto front = paretoFront(problem, 1 << 16);
        int64_t budget = (front.front().cost + front.back().cost) / 2;
        auto best = bestWithin(front, budget);
        QVERIFY(best && best->cost <= budget);
        for (const auto& p : bruteForce(problem))
            if (p.first <= budget)
                QVERIFY(best->predictedNoise <= p.second + 1e-12);
        QVERIFY(!bestWithin(front, front.front().cost - 1).has_value());
    }
};

QTEST_APPLESS_MAIN(TestMixedPrecision)
#include "test_mixed_precision.moc"
