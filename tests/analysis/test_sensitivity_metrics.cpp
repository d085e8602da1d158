// Multi-metric sensitivity against naive recomputation on the demo CNN: the one-shot
// KL from full re-runs with a naive softmax, the local SQNR from full plans, weight
// kurtosis from raw moments, Spearman from ranks, and the bootstrap intervals from
// resampling the naive per-batch sums with the documented generator.
#include "analysis/sensitivity_metrics.h"
#include "graph/onnx_import.h"
#include "quant/quantizer.h"
#include "quant/session.h"
#include "record/sensitivity_record.h"
#include "runtime/plan.h"
#include "store/store.h"
#include "support/cli_runner.h"
#include "support/naive_softmax.h"
#include "util/error.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace qs;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const char* kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
constexpr int64_t kLimit = 64, kBatch = 16;

using qs::test::naiveKl;

std::vector<double> ranks(const std::vector<double>& v)
{
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
        for (std::size_t j = 0; j < v.size(); ++j)
            r[i] += v[j] < v[i];
    return r;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b)
{
    const double n = double(a.size());
    const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / std::sqrt(saa * sbb);
}

bool close(double a, double b, double rel)
{
    return std::abs(a - b) <= rel * std::max({std::abs(a), std::abs(b), 1e-12});
}

} // namespace

class TestSensitivityMetrics : public QObject {
    Q_OBJECT

    Graph graph_ = importOnnx(kModel);
    Dataset data_;
    SensitivityAgreement result_;
    MetricsOptions options_;

    const MetricColumn& column(const std::string& name)
    {
        for (const auto& m : result_.metrics)
            if (m.name == name)
                return m;
        qFatal("no metric %s", name.c_str());
    }

private slots:
    void initTestCase()
    {
        DataOptions o;
        o.spec = kData;
        o.limit = kLimit;
        data_ = loadDataset(o, graph_);
        options_.limit = kLimit;
        options_.batch = kBatch;
        options_.threads = 1;
        options_.bootstrap = 50;
        options_.hutchinsonSamples = 2;
        Progress progress;
        result_ = measureSensitivityAgreement(graph_, data_, options_, progress, CancelToken());
        QCOMPARE(result_.metrics.size(), std::size_t(4));
        QCOMPARE(result_.batches, kLimit / kBatch);
        QCOMPARE(result_.layers.size(), std::size_t(8));
    }

    // One-shot KL and its interval: the whole model re-run per batch with the layer's
    // weight replaced, KL by a naive softmax, then the same resamples drawn by hand.
    void oneShotAndItsIntervalMatchFullReRuns()
    {
        QuantSession s(graph_, {});
        const MetricColumn& col = column("oneshot_kl");
        for (std::size_t li = 0; li < s.layers().size(); ++li) {
            const SessionLayer& l = s.layers()[li];
            const Tensor* w = s.graph().constant(l.weight);
            QuantSpec spec = l.spec.weight;
            spec.bits = options_.bits;
            Tensor q = Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
            Shape shape = data_.first().shape;
            shape[0] = kBatch;
            CompileOptions co = s.compileOptions(false, shape);
            auto fp = compilePlan(s.graph(), co);
            co.initializerOverrides[l.weight] = q;
            auto qp = compilePlan(s.graph(), co);
            std::vector<double> klSum;
            for (int64_t start = 0; start < kLimit; start += kBatch) {
                const Tensor x = data_.batch(start, kBatch).front();
                const Tensor a = fp->run({x}).front(), b = qp->run({x}).front();
                const int64_t k = a.numel() / kBatch;
                double sum = 0;
                for (int64_t i = 0; i < kBatch; ++i)
                    sum += naiveKl(a.data<float>().data() + i * k, b.data<float>().data() + i * k, k);
                klSum.push_back(sum);
            }
            const double kl = std::accumulate(klSum.begin(), klSum.end(), 0.0) / double(kLimit);
            QVERIFY2(close(col.value[li], kl, 1e-3), qPrintable(QString("%1: %2 vs %3").arg(l.name.c_str()).arg(col.value[li]).arg(kl)));

            std::mt19937_64 rng(options_.seed);
            std::uniform_int_distribution<int64_t> pick(0, int64_t(klSum.size()) - 1);
            std::vector<double> reps;
            for (int r = 0; r < options_.bootstrap; ++r) {
                double sum = 0;
                for (std::size_t b = 0; b < klSum.size(); ++b)
                    sum += klSum[std::size_t(pick(rng))];
                reps.push_back(sum / double(kLimit));
            }
            std::sort(reps.begin(), reps.end());
            auto q2 = [&](double p) {
                const double x = p * double(reps.size() - 1);
                const std::size_t i = std::size_t(x);
                return reps[i] + (x - double(i)) * (reps[std::min(i + 1, reps.size() - 1)] - reps[i]);
            };
            QVERIFY2(close(col.lo[li], q2(0.025), 1e-3) && close(col.hi[li], q2(0.975), 1e-3), l.name.c_str());
            QVERIFY(col.lo[li] <= col.value[li] * 1.0001 + 1e-12 && col.value[li] <= col.hi[li] * 1.0001 + 1e-12);
        }
    }

    // The local SQNR: the layer's output with its weight quantized vs FP32, from full plans.
    void localSqnrMatchesFullPlans()
    {
        QuantSession s(graph_, {});
        const MetricColumn& col = column("local_sqnr_db");
        QVERIFY(!col.higherIsMoreSensitive);
        for (std::size_t li = 0; li < s.layers().size(); ++li) {
            const SessionLayer& l = s.layers()[li];
            const std::string out = s.graph().nodes[std::size_t(s.graph().findNode(l.name))].outputs.front();
            const Tensor* w = s.graph().constant(l.weight);
            QuantSpec spec = l.spec.weight;
            spec.bits = options_.bits;
            Shape shape = data_.first().shape;
            shape[0] = kLimit;
            CompileOptions co = s.compileOptions(false, shape);
            co.keepValues.insert(out);
            auto fp = compilePlan(s.graph(), co);
            co.initializerOverrides[l.weight] =
                Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
            auto qp = compilePlan(s.graph(), co);
            const Tensor x = data_.batch(0, kLimit).front();
            fp->run({x});
            qp->run({x});
            const Tensor a = fp->valueOf(out), b = qp->valueOf(out);
            double sig = 0, err = 0;
            for (std::size_t i = 0; i < std::size_t(a.numel()); ++i) {
                sig += double(a.data<float>()[i]) * a.data<float>()[i];
                err += std::pow(double(a.data<float>()[i]) - b.data<float>()[i], 2);
            }
            const double ref = 10 * std::log10(sig / err);
            QVERIFY2(std::abs(col.value[li] - ref) < 0.01, qPrintable(QString("%1: %2 vs %3 dB").arg(l.name.c_str()).arg(col.value[li]).arg(ref)));
            QVERIFY(col.lo[li] <= col.hi[li]);
        }
    }

    void kurtosisFromRawMoments()
    {
        QuantSession s(graph_, {});
        const MetricColumn& col = column("weight_kurtosis");
        for (std::size_t li = 0; li < s.layers().size(); ++li) {
            const std::vector<float> w = s.graph().constant(s.layers()[li].weight)->toFloat();
            double m = 0;
            for (float v : w)
                m += v;
            m /= double(w.size());
            double m2 = 0, m4 = 0;
            for (float v : w) {
                m2 += std::pow(v - m, 2);
                m4 += std::pow(v - m, 4);
            }
            m2 /= double(w.size());
            m4 /= double(w.size());
            QVERIFY(close(col.value[li], m4 / (m2 * m2), 1e-6));
            QCOMPARE(col.lo[li], col.value[li]); // no data behind it: no interval
        }
    }

    void spearmanFromRanks()
    {
        const std::size_t m = result_.metrics.size();
        for (std::size_t i = 0; i < m; ++i) {
            QCOMPARE(result_.spearman[i][i], 1.0);
            for (std::size_t j = 0; j < m; ++j) {
                std::vector<double> a, b;
                for (std::size_t li = 0; li < result_.layers.size(); ++li) {
                    a.push_back(result_.metrics[i].score(li));
                    b.push_back(result_.metrics[j].score(li));
                }
                QVERIFY(std::abs(result_.spearman[i][j] - pearson(ranks(a), ranks(b))) < 1e-9);
                QCOMPARE(result_.spearman[i][j], result_.spearman[j][i]);
            }
        }
    }

    // The Hessian column equals the score measureSensitivity reports itself.
    void hessianColumnIsTheHawqScore()
    {
        SensitivityOptions so;
        so.bits = {options_.bits};
        so.method = SensitivityMethod::Hessian;
        so.limit = kLimit;
        so.batch = kBatch;
        so.threads = 1;
        so.hutchinsonSamples = options_.hutchinsonSamples;
        Progress progress;
        const SensitivityResult r = measureSensitivity(graph_, data_, so, progress, CancelToken());
        const MetricColumn& col = column("hessian_score");
        for (std::size_t li = 0; li < r.layers.size(); ++li)
            QVERIFY(close(col.value[li], *r.layers[li].hessianScore, 1e-9));
    }

    void badOptionsAreRefused()
    {
        MetricsOptions o = options_;
        o.metrics = {"oneshot", "nope"};
        Progress progress;
        QVERIFY_THROWS_EXCEPTION(Error, measureSensitivityAgreement(graph_, data_, o, progress, CancelToken()));
        o.metrics = {"kurtosis"};
        o.bits = 12;
        QVERIFY_THROWS_EXCEPTION(Error, measureSensitivityAgreement(graph_, data_, o, progress, CancelToken()));
    }

    void cliPrintsTableMatrixAndStoresTheRun()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("s.db");
        // A sweep first: the newer comparison must not be taken for it.
        auto sweep = qs::test::cli({"sensitivity", kModel, "--data", kData, "--bits", "4", "--limit", "32",
            "--threads", "1", "--db", db, "--json"});
        QVERIFY2(sweep.exitCode == 0, sweep.err.constData());
        const int64_t sweepId = QJsonDocument::fromJson(sweep.out).object()["run_id"].toInteger();
        auto r = qs::test::cli({"sensitivity", kModel, "--data", kData, "--metrics", "all", "--bootstrap", "20",
            "--limit", "64", "--batch", "16", "--hutchinson", "2", "--threads", "1", "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        const QJsonArray matrix = j["spearman"].toObject()["matrix"].toArray();
        QCOMPARE(matrix.size(), 4);
        QCOMPARE(matrix[0].toArray()[0].toDouble(), 1.0);
        const QJsonArray layers = j["layers"].toArray();
        QCOMPARE(layers.size(), 8);
        const QJsonObject first = layers[0].toObject()["metrics"].toObject()["oneshot_kl"].toObject();
        QVERIFY(first["ci95"].toArray()[0].toDouble() <= first["value"].toDouble());
        Store store = Store::open(db.toStdString(), {.mode = OpenMode::ReadOnly});
        const auto rows = store.layerResults(int64_t(j["run_id"].toInteger()));
        QCOMPARE(rows.size(), std::size_t(8));
        QVERIFY(rows[0].sensitivityDetail.contains("hessian_score"));
        const RunRecord comparison = store.run(int64_t(j["run_id"].toInteger()));
        QVERIFY(comparison.metrics.extra.contains("spearman"));
        QVERIFY(isMetricComparison(comparison));
        QVERIFY(!isMetricComparison(store.run(sweepId)));
        const auto latest = latestSensitivitySweep(store, comparison.modelHash);
        QVERIFY(latest && latest->id == sweepId);
        // Text form: the table and the matrix.
        r = qs::test::cli({"sensitivity", kModel, "--data", kData, "--metrics", "oneshot,kurtosis", "--bootstrap", "10",
            "--limit", "32", "--threads", "1"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("Spearman") && r.out.contains("weight_kurtosis"));
        r = qs::test::cli({"sensitivity", kModel, "--data", kData, "--bootstrap", "10"});
        QVERIFY(r.exitCode != 0 && r.err.contains("--metrics"));
    }
};

QTEST_GUILESS_MAIN(TestSensitivityMetrics)
#include "test_sensitivity_metrics.moc"
