// quantizeAndRecord(): the one recorded quantization run the CLI and the studio share.
// The CLI's `quantize --db` and a direct call record the same run; per-layer
// histograms (FP32 and quantized on shared bins) are counted against the weights and
// the quantization grid; a cancelled run is recorded as cancelled.
#include "quant/demo_data.h"
#include "record/quantize_run.h"
#include "store/report.h"
#include "support/cli_runner.h"
#include "util/error.h"

#include <QTemporaryDir>
#include <QtTest>

#include <numeric>
#include <set>

using namespace qs;

namespace {

uint64_t total(const StoredHistogram& h)
{
    return std::accumulate(h.counts.begin(), h.counts.end(), uint64_t(0));
}

int occupied(const StoredHistogram& h)
{
    return int(std::count_if(h.counts.begin(), h.counts.end(), [](uint64_t c) { return c > 0; }));
}

QuantizeOptions demoOptions(int wbits, int abits)
{
    QuantizeOptions o;
    o.config.defaults.weight.bits = wbits;
    o.config.defaults.weight.granularity = Granularity::Tensor; // one grid per layer: its levels are countable
    o.config.defaults.activation.bits = abits;
    o.calibLimit = 64;
    o.evalLimit = 128;
    return o;
}

} // namespace

class TestQuantizeRun : public QObject {
    Q_OBJECT
private slots:
    void sameRunAsTheCli()
    {
        QTemporaryDir dir;
        const std::string db = dir.filePath("studio.db").toStdString();
        const auto r = test::cli({"quantize", test::kDemoModel, "--data", test::kDemoData, "--wbits", "4",
            "--granularity", "tensor", "--calib-limit", "64", "--eval-limit", "128", "--db",
            QString::fromStdString(db), "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());

        const Graph graph = importOnnx(test::kDemoModel);
        const Dataset eval = test::demoData(128), calib = test::demoData(64);
        Store store = Store::open(db);
        Progress progress;
        const RecordedQuantization rec = quantizeAndRecord(
            &store, graph, test::kDemoModel, calib, eval, demoOptions(4, 8), progress, CancelToken{}, {"gui"}, "twin");
        const auto runs = store.runs();
        QCOMPARE(runs.size(), std::size_t(2));
        const RunRecord& gui = store.run(rec.runId);
        const RunRecord& cliRun = runs.back(); // newest first
        QCOMPARE(cliRun.id, nlohmann::json::parse(r.out.constData())["run_id"].get<int64_t>());
        QCOMPARE(gui.state, RunState::Done);
        QCOMPARE(gui.modelId, cliRun.modelId);
        QCOMPARE(gui.datasetId, cliRun.datasetId);
        QCOMPARE(gui.config.dump(), cliRun.config.dump());
        QCOMPARE(gui.tags, std::vector<std::string>{"gui"});
        QCOMPARE(gui.note, std::string("twin"));
        QCOMPARE(gui.metrics.sizeBits, cliRun.metrics.sizeBits);
        QCOMPARE(gui.metrics.top1, cliRun.metrics.top1); // deterministic: same data, same grid
        const auto a = store.layerResults(gui.id), b = store.layerResults(cliRun.id);
        QCOMPARE(a.size(), b.size());
        QVERIFY(!a.empty());
        for (std::size_t i = 0; i < a.size(); ++i) {
            QCOMPARE(a[i].layer, b[i].layer);
            QCOMPARE(a[i].weightBits, std::optional<int>(4));
            QCOMPARE(a[i].sizeBits, b[i].sizeBits);
            QCOMPARE(a[i].weightHist, b[i].weightHist);
            QCOMPARE(a[i].actHist, b[i].actHist);
        }
    }

    void histogramsCountWeightsAndLevels_data()
    {
        QTest::addColumn<int>("wbits");
        QTest::addColumn<int>("abits");
        QTest::newRow("w4a4") << 4 << 4;
        QTest::newRow("w3a8") << 3 << 8;
    }

    void histogramsCountWeightsAndLevels()
    {
        QFETCH(int, wbits);
        QFETCH(int, abits);
        QTemporaryDir dir;
        Store store = Store::open(dir.filePath("h.db").toStdString());
        const Graph graph = importOnnx(test::kDemoModel);
        const Dataset data = test::demoData(64);
        Progress progress;
        const RecordedQuantization rec = quantizeAndRecord(
            &store, graph, test::kDemoModel, data, data, demoOptions(wbits, abits), progress, CancelToken{});
        const auto layers = store.layerResults(rec.runId);
        QVERIFY(!layers.empty());
        int withAct = 0;
        for (const LayerResult& l : layers) {
            QVERIFY2(l.weightHist, l.layer.c_str());
            const auto qw = histogramFromJson(l.extra.value("quantized_weight_hist", nlohmann::json()));
            QVERIFY2(qw, l.layer.c_str());
            QCOMPARE(qw->edges, l.weightHist->edges); // shared bins
            const int64_t params = l.extra["params"].get<int64_t>();
            QCOMPARE(total(*l.weightHist), uint64_t(params));
            QCOMPARE(total(*qw), uint64_t(params));
            // Per-tensor symmetric: at most 2^bits - 1 distinct values, so at most as many bins.
            QVERIFY2(occupied(*qw) <= (1 << wbits) - 1, l.layer.c_str());
            QVERIFY(occupied(*l.weightHist) > occupied(*qw));
            if (!l.actHist)
                continue;
            ++withAct;
            const auto qa = histogramFromJson(l.extra.value("quantized_act_hist", nlohmann::json()));
            QVERIFY(qa);
            QCOMPARE(qa->edges, l.actHist->edges);
            QCOMPARE(total(*qa), total(*l.actHist));
            QVERIFY2(occupied(*qa) <= 1 << abits, l.layer.c_str());
            // Quantized values stay within the clipping range, up to one bin of the stored grid
            // and one step (an affine grid's zero point is rounded, shifting it by < 1 step).
            QVERIFY(l.actClip);
            const double step = (l.actClip->hi - l.actClip->lo) / ((1 << abits) - 1);
            const double binW = double(l.actHist->edges[1] - l.actHist->edges[0]) + step;
            for (std::size_t i = 0; i < qa->counts.size(); ++i)
                if (qa->counts[i] > 0) {
                    QVERIFY(qa->edges[i + 1] >= l.actClip->lo - binW);
                    QVERIFY(qa->edges[i] <= l.actClip->hi + binW);
                }
        }
        QVERIFY(withAct > 0);
        // The CLI's `show --json` carries them, as every reader of the store does.
        const nlohmann::json j = layerToJson(layers.front());
        QVERIFY(j["weight_hist"].is_object());
    }

    void cancelledRunIsRecordedCancelled()
    {
        QTemporaryDir dir;
        Store store = Store::open(dir.filePath("c.db").toStdString());
        const Graph graph = importOnnx(test::kDemoModel);
        const Dataset data = test::demoData(32);
        CancelToken cancel;
        cancel.cancel();
        Progress progress;
        QVERIFY_THROWS_EXCEPTION(qs::Cancelled,
            quantizeAndRecord(&store, graph, test::kDemoModel, data, data, demoOptions(8, 8), progress, cancel));
        const auto runs = store.runs();
        QCOMPARE(runs.size(), std::size_t(1));
        QCOMPARE(runs.front().state, RunState::Cancelled);
        QCOMPARE(runs.front().kind, RunKind::Quantization);
        QCOMPARE(runs.front().config["calibration"]["samples"].get<int64_t>(), int64_t(32));
    }

    void withoutStoreRecordsNothing()
    {
        const Graph graph = importOnnx(test::kDemoModel);
        const Dataset data = test::demoData(32);
        Progress progress;
        const auto rec = quantizeAndRecord(nullptr, graph, test::kDemoModel, data, data, demoOptions(8, 8), progress, CancelToken{});
        QCOMPARE(rec.runId, int64_t(0));
        QVERIFY(!rec.result.layers.empty());
    }
};

QTEST_GUILESS_MAIN(TestQuantizeRun)
#include "test_quantize_run.moc"
