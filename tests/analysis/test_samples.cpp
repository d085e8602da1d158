// Samples behind the numbers, on the demo CNN: the most divergent samples of a layer
// against a whole-batch re-run with a naive softmax KL; the flipped samples and one
// sample's error trace against the quantized model run on one big batch and read
// row by row.
#include "analysis/samples.h"
#include "graph/onnx_import.h"
#include "quant/quantizer.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "support/cli_runner.h"
#include "support/naive_softmax.h"
#include "util/error.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace qs;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const char* kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
constexpr int64_t kLimit = 200;

using qs::test::naiveArgmax;
using qs::test::naiveKl;
using qs::test::naiveSqnr;

} // namespace

class TestSamples : public QObject {
    Q_OBJECT

    Graph graph_ = importOnnx(kModel);
    Dataset data_;
    SampleOptions options_;

private slots:
    void initTestCase()
    {
        DataOptions o;
        o.spec = kData;
        o.limit = kLimit;
        data_ = loadDataset(o, graph_);
        options_.threads = 1;
        options_.bits = 4;
    }

    void divergentSamplesMatchAWholeBatchReRun()
    {
        const std::string layer = "/stem/stem.0/Conv";
        Progress progress;
        const auto top = divergentSamples(graph_, data_, layer, 5, options_, progress, CancelToken());
        QCOMPARE(top.size(), std::size_t(5));

        QuantSession s(graph_, {});
        const SessionLayer& l = s.layers().front();
        QCOMPARE(l.name, layer);
        const Tensor* w = s.graph().constant(l.weight);
        QuantSpec spec = l.spec.weight;
        spec.bits = 4;
        CompileOptions co = s.compileOptions(false, data_.first().shape);
        auto fp = compilePlan(s.graph(), co);
        co.initializerOverrides[l.weight] =
            Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
        auto q = compilePlan(s.graph(), co);
        const Tensor x = data_.batch(0, kLimit).front();
        const Tensor a = fp->run({x}).front(), b = q->run({x}).front();
        const int64_t k = a.numel() / kLimit;
        std::vector<double> kl(kLimit);
        for (int64_t i = 0; i < kLimit; ++i)
            kl[std::size_t(i)] = naiveKl(a.data<float>().data() + i * k, b.data<float>().data() + i * k, k);
        std::vector<int64_t> order(kLimit);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return kl[std::size_t(i)] > kl[std::size_t(j)]; });
        for (std::size_t r = 0; r < top.size(); ++r) {
            QCOMPARE(top[r].index, order[r]);
            QVERIFY(std::abs(top[r].kl - kl[std::size_t(order[r])]) < 1e-4 * std::max(1.0, kl[std::size_t(order[r])]));
            QCOMPARE(top[r].fp32Class, naiveArgmax(a.data<float>().data() + order[r] * k, k));
            QCOMPARE(top[r].quantClass, naiveArgmax(b.data<float>().data() + order[r] * k, k));
            QCOMPARE(top[r].label, std::optional<int64_t>((*data_.labels)[std::size_t(order[r])]));
        }
        QVERIFY(top.front().kl >= top.back().kl);
        QVERIFY_THROWS_EXCEPTION(Error, divergentSamples(graph_, data_, "nope", 5, options_, progress, CancelToken()));
    }

    // The whole model at 4 bits, run once on all samples: the flipped ones, and the
    // first one's per-layer SQNR read from its row.
    void flippedSamplesAndTheirTrace()
    {
        Progress progress;
        const auto flipped = flippedSamples(graph_, data_, options_, progress, CancelToken());
        QVERIFY(!flipped.empty());

        QuantizeOptions qo;
        qo.config.defaults.weight.bits = 4;
        qo.calibLimit = options_.calibLimit;
        QuantSession s(graph_, qo);
        s.calibrate(data_, progress, CancelToken());
        s.quantizeWeights();
        std::vector<std::string> outs;
        for (const auto& l : s.layers())
            outs.push_back(s.graph().nodes[std::size_t(s.graph().findNode(l.name))].outputs.front());
        CompileOptions fo = s.compileOptions(false, data_.first().shape),
                       qq = s.compileOptions(true, data_.first().shape);
        fo.keepValues.insert(outs.begin(), outs.end());
        qq.keepValues.insert(outs.begin(), outs.end());
        auto fp = compilePlan(s.graph(), fo), q = compilePlan(s.graph(), qq);
        const Tensor x = data_.batch(0, kLimit).front();
        const Tensor a = fp->run({x}).front(), b = q->run({x}).front();
        const int64_t k = a.numel() / kLimit;
        std::vector<int64_t> ref;
        for (int64_t i = 0; i < kLimit; ++i) {
            const int64_t label = (*data_.labels)[std::size_t(i)];
            if (naiveArgmax(a.data<float>().data() + i * k, k) == label &&
                naiveArgmax(b.data<float>().data() + i * k, k) != label)
                ref.push_back(i);
        }
        QCOMPARE(flipped.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i) {
            const int64_t n = ref[i];
            QCOMPARE(flipped[i].index, n);
            QCOMPARE(flipped[i].label, std::optional<int64_t>((*data_.labels)[std::size_t(n)]));
            QCOMPARE(flipped[i].fp32Class, naiveArgmax(a.data<float>().data() + n * k, k));
            QCOMPARE(flipped[i].quantClass, naiveArgmax(b.data<float>().data() + n * k, k));
            QVERIFY(std::abs(flipped[i].kl - naiveKl(a.data<float>().data() + n * k, b.data<float>().data() + n * k, k)) <
                    1e-4);
        }

        const int64_t idx = flipped.front().index;
        const SampleTrace t = traceSample(graph_, data_, idx, options_, progress, CancelToken());
        QCOMPARE(t.index, idx);
        QVERIFY(t.quantClass != *t.label && t.fp32Class == *t.label);
        QVERIFY(std::abs(t.outputKl - naiveKl(a.data<float>().data() + idx * k, b.data<float>().data() + idx * k, k)) < 1e-4);
        QCOMPARE(t.layers.size(), outs.size());
        for (std::size_t li = 0; li < outs.size(); ++li) {
            const Tensor va = fp->valueOf(outs[li]), vb = q->valueOf(outs[li]);
            const int64_t per = va.numel() / kLimit;
            const double ref = naiveSqnr(va.data<float>().data() + idx * per, vb.data<float>().data() + idx * per, per);
            QVERIFY2(std::abs(t.layers[li].sqnrDb - ref) < 0.01,
                qPrintable(QString("%1: %2 vs %3 dB").arg(outs[li].c_str()).arg(t.layers[li].sqnrDb).arg(ref)));
        }
        QVERIFY_THROWS_EXCEPTION(Error, traceSample(graph_, data_, kLimit, options_, progress, CancelToken()));
    }

    // The demo model names Fashion-MNIST's classes in its metadata; without names (or
    // past them) a class is its index.
    void classNamesFromMetadata()
    {
        const auto names = classNames(graph_);
        QCOMPARE(names.size(), std::size_t(10));
        QCOMPARE(classLabel(names, 0), std::string("T-shirt/top"));
        QCOMPARE(classLabel(names, 9), std::string("Ankle boot"));
        QCOMPARE(classLabel(names, 10), std::string("10"));
        QCOMPARE(classLabel({}, 3), std::string("3"));
        Graph g = graph_;
        g.metadata["quantstudio.classes"] = " cat , ,dog";
        QCOMPARE(classNames(g), (std::vector<std::string>{"cat", "", "dog"}));
        QCOMPARE(classLabel(classNames(g), 1), std::string("1"));
    }

    void cli()
    {
        auto r = qs::test::cli({"samples", kModel, "--data", kData, "--limit", "200", "--layer", "/stem/stem.0/Conv",
            "--bits", "4", "--top", "3", "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonArray rows = QJsonDocument::fromJson(r.out).object()["samples"].toArray();
        QCOMPARE(rows.size(), 3);
        QVERIFY(rows[0].toObject()["kl"].toDouble() >= rows[2].toObject()["kl"].toDouble());
        r = qs::test::cli({"samples", kModel, "--data", kData, "--limit", "200", "--trace", "flipped", "--bits", "4",
            "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject t = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(t["layers"].toArray().size(), 8);
        QVERIFY(t["quant_class"].toInteger() != t["label"].toInteger());
        r = qs::test::cli({"samples", kModel, "--data", kData, "--trace", "3", "--threads", "1"});
        QVERIFY2(r.exitCode == 0 && r.out.contains("output SQNR dB"), r.err.constData());
        // Sample 3 of the slice is a Trouser (label 1): the text names classes by the model's metadata.
        QVERIFY2(r.out.contains("sample 3: label Trouser, FP32 says Trouser"), r.out.constData());
        r = qs::test::cli({"samples", kModel, "--data", kData, "--layer", "x", "--trace", "3"});
        QVERIFY(r.exitCode != 0 && r.err.contains("exactly one"));
        r = qs::test::cli({"samples", kModel, "--data", kData, "--layer", "nope"});
        QVERIFY(r.exitCode != 0 && r.err.contains("nope"));
    }
};

QTEST_GUILESS_MAIN(TestSamples)
#include "test_samples.moc"
