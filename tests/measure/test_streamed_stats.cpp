// Statistics that never hold a whole tensor at once, against naive loops over all the
// values: ActivationObserver fed batch by batch against the concatenated batches, and
// the two-pass weight statistics (weightStats, summarizeLayers on OpenMP threads)
// against the textbook two-pass moments and per-channel ranges.
#include "graph/graph.h"
#include "measure/layers.h"
#include "measure/observer.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <limits>
#include <random>

using namespace qs;

namespace {

// The textbook definitions over every finite value: mean, then central moments.
struct Naive {
    int64_t count = 0, nonFinite = 0, outliers = 0;
    double min = 0, max = 0, mean = 0, std = 0, kurtosis = 0;
};

Naive naive(const std::vector<float>& v)
{
    Naive r;
    double sum = 0;
    bool any = false;
    for (float x : v) {
        if (!std::isfinite(x)) {
            ++r.nonFinite;
            continue;
        }
        r.min = any ? std::min<double>(r.min, x) : x;
        r.max = any ? std::max<double>(r.max, x) : x;
        any = true;
        sum += x;
        ++r.count;
    }
    r.mean = sum / double(r.count);
    double m2 = 0, m4 = 0;
    for (float x : v)
        if (std::isfinite(x)) {
            m2 += (x - r.mean) * (x - r.mean);
            m4 += std::pow(x - r.mean, 4);
        }
    m2 /= double(r.count);
    m4 /= double(r.count);
    r.std = std::sqrt(m2);
    r.kurtosis = m4 / (m2 * m2);
    for (float x : v)
        if (std::isfinite(x) && std::abs(x - r.mean) > 6 * r.std)
            ++r.outliers;
    return r;
}

// Values drawn around `offset` with heavy tails and, when asked, NaN and Inf sprinkled in.
std::vector<float> sample(int64_t n, double offset, double scale, bool nonFinite, unsigned seed)
{
    std::mt19937 rng(seed);
    std::student_t_distribution<double> t(3.0);
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v)
        x = float(offset + scale * t(rng));
    if (nonFinite)
        for (std::size_t i = 7; i < v.size(); i += 97)
            v[i] = i % 2 ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
    return v;
}

bool near(double a, double b, double rel)
{
    return std::abs(a - b) <= rel * std::max({std::abs(a), std::abs(b), 1e-30});
}

} // namespace

class TestStreamedStats : public QObject {
    Q_OBJECT

private slots:
    void observerOverBatchesMatchesTheConcatenation_data()
    {
        QTest::addColumn<int>("batches");
        QTest::addColumn<double>("offset");
        QTest::addColumn<bool>("nonFinite");
        QTest::newRow("one batch") << 1 << 0.0 << false;
        QTest::newRow("seven batches") << 7 << 0.0 << false;
        QTest::newRow("seven batches far from zero") << 7 << 250.0 << false;
        QTest::newRow("five batches with NaN and Inf") << 5 << -3.0 << true;
    }
    void observerOverBatchesMatchesTheConcatenation()
    {
        QFETCH(int, batches);
        QFETCH(double, offset);
        QFETCH(bool, nonFinite);
        const int64_t n = 2, c = 3, hw = 50; // each batch [2, 3, 50]
        ActivationObserver observer(64);
        std::vector<float> all;
        std::vector<float> chMin(std::size_t(c), INFINITY), chMax(std::size_t(c), -INFINITY);
        for (int b = 0; b < batches; ++b) {
            // Each batch wider than the last: the histogram's range has to grow.
            Tensor t(DType::Float, {n, c, hw});
            const std::vector<float> v = sample(n * c * hw, offset, 1.0 + b, nonFinite, 11u + unsigned(b));
            std::copy(v.begin(), v.end(), t.data<float>().begin());
            observer.observe(t);
            all.insert(all.end(), v.begin(), v.end());
            for (int64_t i = 0; i < int64_t(v.size()); ++i)
                if (std::isfinite(v[std::size_t(i)])) {
                    const auto k = std::size_t((i / hw) % c);
                    chMin[k] = std::min(chMin[k], v[std::size_t(i)]);
                    chMax[k] = std::max(chMax[k], v[std::size_t(i)]);
                }
        }
        const Naive ref = naive(all);
        const TensorStats s = observer.stats();
        QCOMPARE(s.count, ref.count);
        QCOMPARE(s.nonFinite, ref.nonFinite);
        QCOMPARE(s.min, ref.min);
        QCOMPARE(s.max, ref.max);
        QVERIFY2(near(s.mean, ref.mean, 1e-9), qPrintable(QString::number(s.mean - ref.mean)));
        QVERIFY2(near(s.std, ref.std, 1e-9), qPrintable(QString::number(s.std - ref.std)));
        QVERIFY2(near(s.kurtosis, ref.kurtosis, 1e-7), qPrintable(QString::number(s.kurtosis - ref.kurtosis)));
        // Every finite value is in exactly one bin, and each bin holds what the naive count says.
        const Histogram& h = observer.calibration().histogram;
        QCOMPARE(int64_t(h.total()), ref.count);
        QCOMPARE(h.below + h.above, uint64_t(0));
        std::vector<uint64_t> bins(h.counts.size(), 0);
        for (float x : all)
            if (std::isfinite(x))
                ++bins[std::size_t(std::clamp(int((x - h.lo) / (h.hi - h.lo) * double(h.bins())), 0, h.bins() - 1))];
        QCOMPARE(h.counts, bins);
        QCOMPARE(observer.channelMin(), chMin);
        QCOMPARE(observer.channelMax(), chMax);
        QCOMPARE(int(observer.calibration().batchRanges.size()), batches);
    }

    void weightStatsMatchTheTwoPassDefinitions_data()
    {
        QTest::addColumn<int>("axis");
        QTest::addColumn<double>("offset");
        QTest::addColumn<bool>("nonFinite");
        QTest::newRow("rows, centred") << 0 << 0.0 << false;
        QTest::newRow("columns, centred") << 1 << 0.0 << false;
        QTest::newRow("middle axis, offset 1e3") << 1 << 1e3 << false;
        QTest::newRow("last axis with NaN and Inf") << 2 << 0.5 << true;
    }
    void weightStatsMatchTheTwoPassDefinitions()
    {
        QFETCH(int, axis);
        QFETCH(double, offset);
        QFETCH(bool, nonFinite);
        // Sorted and longer than the pilot's 4096 values: the pilot mean is far off, and
        // the moments come from the exact mean.
        const bool sorted = offset == 1e3;
        const Shape shape {6, 5, sorted ? 400 : 40};
        std::vector<float> v = sample(numelOf(shape), offset, 0.02, nonFinite, 5);
        if (sorted)
            std::sort(v.begin(), v.end());
        const Naive ref = naive(v);
        const TensorStats s = weightStats(v, shape, axis);
        QCOMPARE(s.count, ref.count);
        QCOMPARE(s.nonFinite, ref.nonFinite);
        QCOMPARE(s.min, ref.min);
        QCOMPARE(s.max, ref.max);
        QVERIFY2(near(s.mean, ref.mean, 1e-12), qPrintable(QString::number(s.mean - ref.mean)));
        QVERIFY2(near(s.std, ref.std, 1e-9), qPrintable(QString::number(s.std - ref.std)));
        QVERIFY2(near(s.kurtosis, ref.kurtosis, 1e-7), qPrintable(QString::number(s.kurtosis - ref.kurtosis)));
        QCOMPARE(s.outlierFraction, double(ref.outliers) / double(ref.count));
        // Channel ranges by index arithmetic, independent of the [outer, channel, inner] walk.
        int64_t stride = 1;
        for (std::size_t d = std::size_t(axis) + 1; d < shape.size(); ++d)
            stride *= shape[d];
        const int64_t channels = shape[std::size_t(axis)];
        std::vector<double> ranges;
        for (int64_t ch = 0; ch < channels; ++ch) {
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t i = 0; i < int64_t(v.size()); ++i)
                if ((i / stride) % channels == ch && std::isfinite(v[std::size_t(i)])) {
                    lo = std::min<double>(lo, v[std::size_t(i)]);
                    hi = std::max<double>(hi, v[std::size_t(i)]);
                }
            ranges.push_back(hi - lo);
        }
        std::sort(ranges.begin(), ranges.end());
        const double median = ranges.size() % 2 ? ranges[ranges.size() / 2]
                                                : 0.5 * (ranges[ranges.size() / 2 - 1] + ranges[ranges.size() / 2]);
        QVERIFY(near(s.channelRangeRatio, ranges.back() / median, 1e-12));
    }

    void noFiniteValueGivesZeros()
    {
        const std::vector<float> v(8, std::numeric_limits<float>::quiet_NaN());
        const TensorStats s = weightStats(v, {2, 4}, 0);
        QCOMPARE(s.count, int64_t(0));
        QCOMPARE(s.nonFinite, int64_t(8));
        QCOMPARE(s.min, 0.0);
        QCOMPARE(s.max, 0.0);
        QCOMPARE(s.channelRangeRatio, 1.0);
    }

    void aShapeThatDoesNotHoldTheValuesFails()
    {
        const std::vector<float> v(6, 1.f);
        QVERIFY_THROWS_EXCEPTION(Error, weightStats(v, {2, 4}, 0));
        QVERIFY_THROWS_EXCEPTION(Error, weightStats(v, {2, 3}, 2));
    }

    void summariesOnThreadsEqualOneLayerAtATime()
    {
        // A chain of MatMuls of different sizes: the threads take them largest first.
        Graph g;
        g.inputs.push_back({"x", DType::Float, std::vector<Dim> {{1, {}}, {8, {}}}});
        std::string prev = "x";
        for (int i = 0; i < 9; ++i) {
            const std::string w = "w" + std::to_string(i), y = "y" + std::to_string(i);
            Tensor t(DType::Float, {8, 8});
            const std::vector<float> v = sample(64, 0.1 * i, 1.0 + i, false, unsigned(i));
            std::copy(v.begin(), v.end(), t.data<float>().begin());
            g.initializers.emplace(w, std::move(t));
            Node n;
            n.name = "mm" + std::to_string(i);
            n.opType = "MatMul";
            n.inputs = {prev, w};
            n.outputs = {y};
            g.nodes.push_back(n);
            prev = y;
        }
        g.outputs.push_back({prev, DType::Float, std::vector<Dim> {{1, {}}, {8, {}}}});
        g.index();
        const std::vector<LayerSummary> rows = summarizeLayers(g), bare = summarizeLayers(g, false);
        QCOMPARE(int(rows.size()), 9);
        QCOMPARE(int(bare.size()), 9);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            QCOMPARE(bare[i].name, rows[i].name);
            QCOMPARE(bare[i].stats.count, int64_t(0)); // left for later
            const TensorStats one = layerWeightStats(g, bare[i]);
            const Naive ref = naive(g.initializers.at(rows[i].weight).toFloat());
            QCOMPARE(rows[i].stats.count, ref.count);
            QCOMPARE(rows[i].stats.mean, one.mean);
            QCOMPARE(rows[i].stats.kurtosis, one.kurtosis);
            QVERIFY(near(rows[i].stats.kurtosis, ref.kurtosis, 1e-7));
        }
    }
};

QTEST_MAIN(TestStreamedStats)
#include "test_streamed_stats.moc"
