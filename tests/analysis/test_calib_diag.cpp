// Calibration diagnostics on the demo CNN: min-max ranges at every size and the
// recommended size against a naive prefix recomputation; the KS statistic against
// its definition; and the shift warning: silent for the demo slice split in two,
// raised for inverted or brightened images (NPY files the test writes).
#include "analysis/calib_diag.h"
#include "data/idx.h"
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "support/cli_runner.h"
#include "util/error.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>

using namespace qs;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const char* kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

// Images [from, to) of the demo slice, each pixel mapped by `f`, as a uint8 NPY.
QString writeSlice(const QTemporaryDir& dir, const QString& name, int64_t from, int64_t to, int (*f)(int))
{
    const Tensor all = readIdx(kData);
    const int64_t per = all.numel() / all.shape[0];
    Tensor t(DType::UInt8, {to - from, all.shape[1], all.shape[2]});
    auto src = all.data<uint8_t>();
    auto dst = t.data<uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i)
        dst[std::size_t(i)] = uint8_t(std::clamp(f(src[std::size_t(from * per + i)]), 0, 255));
    const QString path = dir.filePath(name);
    writeNpy(t, path.toStdString());
    return path;
}

int same(int x) { return x; }
int inverted(int x) { return 255 - x; }
int brighter(int x) { return x + 80; }

Dataset load(const Graph& g, const QString& path)
{
    DataOptions o;
    o.spec = path.toStdString();
    return loadDataset(o, g);
}

double naiveKs(const std::vector<float>& a, const std::vector<float>& b)
{
    std::vector<float> all = a;
    all.insert(all.end(), b.begin(), b.end());
    double d = 0;
    for (float x : all) {
        double fa = 0, fb = 0;
        for (float v : a)
            fa += v <= x;
        for (float v : b)
            fb += v <= x;
        d = std::max(d, std::abs(fa / double(a.size()) - fb / double(b.size())));
    }
    return d;
}

} // namespace

class TestCalibDiag : public QObject {
    Q_OBJECT

    Graph graph_ = importOnnx(kModel);
    QTemporaryDir dir_;
    QString cal_, eval_, inv_, bright_;

private slots:
    void initTestCase()
    {
        cal_ = writeSlice(dir_, "cal.npy", 0, 500, same);
        eval_ = writeSlice(dir_, "eval.npy", 500, 1000, same);
        inv_ = writeSlice(dir_, "inverted.npy", 500, 1000, inverted);
        bright_ = writeSlice(dir_, "brighter.npy", 500, 1000, brighter);
    }

    void ksMatchesItsDefinition()
    {
        std::mt19937 rng(5);
        std::normal_distribution<float> n(0, 1);
        std::vector<float> a(300), b(200);
        for (float& v : a)
            v = std::round(n(rng) * 4) / 4; // ties within and across the samples
        for (float& v : b)
            v = std::round((n(rng) + 0.3f) * 4) / 4;
        QVERIFY(std::abs(ksStatistic(a, b) - naiveKs(a, b)) < 1e-12);
        QCOMPARE(ksStatistic(a, a), 0.0);
        QCOMPARE(ksStatistic({1, 2}, {3, 4}), 1.0);
    }

    // Min-max at n samples is the range of the layer input over the first n samples:
    // recomputed from one FP32 run per size with every layer input kept.
    void minmaxConvergenceMatchesPrefixRecomputation()
    {
        const Dataset cal = load(graph_, cal_);
        CalibDiagOptions o;
        o.threads = 1;
        Progress progress;
        const CalibDiagnostics d = diagnoseCalibration(graph_, cal, nullptr, o, progress, CancelToken());
        QCOMPARE(d.sizes, (std::vector<int64_t>{8, 16, 32, 64, 128, 256, 500}));
        QVERIFY(!d.shift);
        const CalibratorConvergence* mm = nullptr;
        for (const auto& c : d.calibrators)
            if (c.calibrator == "minmax")
                mm = &c;
        QVERIFY(mm);
        QCOMPARE(d.calibrators.size(), calibrators().size());

        QuantSession s(graph_, {});
        std::vector<std::vector<std::pair<float, float>>> ref(d.layers.size()); // [layer][size]
        for (int64_t n : d.sizes) {
            Shape shape = cal.first().shape;
            shape[0] = n;
            CompileOptions co = s.compileOptions(false, shape);
            co.keepValues.insert(d.values.begin(), d.values.end());
            auto plan = compilePlan(s.graph(), co);
            plan->run(cal.batch(0, n));
            for (std::size_t li = 0; li < d.layers.size(); ++li) {
                const Tensor v = plan->valueOf(d.values[li]);
                auto x = v.data<float>();
                ref[li].push_back({*std::min_element(x.begin(), x.end()), *std::max_element(x.begin(), x.end())});
            }
        }
        int64_t recommended = d.sizes.front();
        for (std::size_t li = 0; li < d.layers.size(); ++li) {
            const auto full = ref[li].back();
            int64_t from = d.sizes.front();
            for (std::size_t si = 0; si < d.sizes.size(); ++si) {
                const RangeAtSize& r = mm->ranges[li][si];
                QCOMPARE(r.samples, d.sizes[si]);
                QVERIFY2(std::abs(r.lo - ref[li][si].first) < 1e-5 && std::abs(r.hi - ref[li][si].second) < 1e-5,
                    d.layers[li].c_str());
                const double rel = std::max(std::abs(ref[li][si].first - full.first), std::abs(ref[li][si].second - full.second)) /
                                   (full.second - full.first);
                QVERIFY(std::abs(r.relChange - rel) < 1e-5);
                if (rel > o.tolerance)
                    from = d.sizes[std::min(si + 1, d.sizes.size() - 1)];
            }
            recommended = std::max(recommended, from);
        }
        QCOMPARE(mm->recommended, recommended);
        QVERIFY(d.recommended >= mm->recommended);
    }

    void shiftWarning_data()
    {
        QTest::addColumn<QString>("eval");
        QTest::addColumn<bool>("warned");
        QTest::newRow("other half of the slice") << "eval.npy" << false;
        QTest::newRow("inverted images") << "inverted.npy" << true;
        QTest::newRow("brighter images") << "brighter.npy" << true;
    }

    void shiftWarning()
    {
        QFETCH(QString, eval);
        QFETCH(bool, warned);
        const Dataset cal = load(graph_, cal_), ev = load(graph_, dir_.filePath(eval));
        CalibDiagOptions o;
        o.threads = 1;
        o.sizes = {100};
        Progress progress;
        const CalibDiagnostics d = diagnoseCalibration(graph_, cal, &ev, o, progress, CancelToken());
        QVERIFY(d.shift);
        QCOMPARE(d.shift->warning, warned);
        QCOMPARE(d.shift->reasons.empty(), !warned);
        QCOMPARE(d.shift->channels.size(), std::size_t(1));
        // The channel moments, by hand.
        double m = 0;
        for (float v : ev.first().data<float>())
            m += v;
        m /= double(ev.first().numel());
        QVERIFY(std::abs(d.shift->channels[0].evalMean - m) < 1e-6);
        if (!warned)
            QVERIFY2(d.shift->ks < o.ksThreshold / 2, qPrintable(QString::number(d.shift->ks)));
        else
            QVERIFY2(d.shift->ks > o.ksThreshold, qPrintable(QString::number(d.shift->ks)));
        QVERIFY(d.shift->ksCalValues > 1000 && d.shift->ksEvalValues > 1000);
    }

    void cliReportsConvergenceAndShift()
    {
        auto r = qs::test::cli({"calib-diag", kModel, "--data", cal_, "--eval-data", eval_, "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["shift"].toObject()["warning"].toBool(), false);
        QVERIFY(j["recommended"].toInteger() >= 8 && j["recommended"].toInteger() <= 500);
        QCOMPARE(j["calibrators"].toArray().size(), qsizetype(calibrators().size()));
        r = qs::test::cli({"calib-diag", kModel, "--data", cal_, "--eval-data", inv_, "--threads", "1"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.out.contains("WARNING") && r.out.contains("recommended calibration size"), r.out.constData());
        r = qs::test::cli({"calib-diag", kModel, "--data", cal_, "--tolerance", "0"});
        QVERIFY(r.exitCode != 0 && r.err.contains("tolerance"));
    }
};

QTEST_GUILESS_MAIN(TestCalibDiag)
#include "test_calib_diag.moc"
