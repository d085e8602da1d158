// Measured latency: per-kernel timings add up to the whole pass timed independently,
// every demo layer gets FP32 and INT8 numbers, the boundary model predicts what a
// hand count of the demo's topology says, the store caches a profile per machine,
// and the CLI prints the table and uses it as the mixed-precision cost axis.
#include "analysis/latency.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "record/latency_record.h"
#include "runtime/plan.h"
#include "store/store.h"
#include "support/cli_runner.h"
#include "util/error.h"
#include "util/hash.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <chrono>
#include <cmath>

using namespace qs;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const char* kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

const std::vector<std::string> kDemoLayers = {"/stem/stem.0/Conv", "/down1/down1.0/Conv", "/res1/conv1/Conv",
    "/res1/conv2/Conv", "/down2/down2.0/Conv", "/res2/conv1/Conv", "/res2/conv2/Conv", "/fc/Gemm"};

LatencyProfile syntheticProfile()
{
    LatencyProfile p;
    p.modelHash = "h";
    p.repeats = 1;
    p.otherMs = 0.5;
    double k = 1;
    for (const auto& name : kDemoLayers) {
        p.layers.push_back({name, "Conv", 10 * k, 2 * k, 0.25 * k, 0.125 * k});
        k += 1;
    }
    return p;
}

} // namespace

class TestLatency : public QObject {
    Q_OBJECT

private slots:
    // Per-kernel medians are a partition of the pass: their sum agrees with the same
    // plan's run() timed from outside (generous bounds for a shared machine).
    void kernelTimesAddUpToTheWholePass()
    {
        Graph g = importOnnx(kModel);
        DataOptions o;
        o.spec = kData;
        o.limit = 8;
        Dataset d = loadDataset(o, g);
        const Tensor x = d.batch(0, 8).front();
        CompileOptions co;
        co.threads = 1;
        co.inputShapes["input"] = x.shape;
        auto plan = compilePlan(g, co);
        double total = 0;
        auto kernels = plan->timeKernels({x}, 3, 21, &total);
        QCOMPARE(kernels.size(), plan->kernelSummary().size());
        double sum = 0;
        for (const auto& k : kernels) {
            QVERIFY2(k.ms >= 0, k.node.c_str());
            sum += k.ms;
        }
        // The fastest of the passes timed from outside: on a loaded machine a whole pass
        // is usually preempted, a single short kernel usually not, so medians of
        // kernels compare with the best pass, not with the median one.
        double best = INFINITY;
        for (int r = 0; r < 21; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            plan->run({x});
            best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        QVERIFY2(sum > 0.5 * best && sum < 3 * best, qPrintable(QString("kernels %1 ms, best run() %2 ms").arg(sum).arg(best)));
        QVERIFY2(total > 0.5 * best, qPrintable(QString("pass %1 ms, best run() %2 ms").arg(total).arg(best)));
        QVERIFY_THROWS_EXCEPTION(Error, plan->timeKernels({x}, 0, 0));
    }

    void demoTableHasEveryLayerInBothPrecisions()
    {
        Graph g = importOnnx(kModel);
        LatencyOptions o;
        o.threads = 1;
        o.batch = 4;
        o.warmup = 2;
        o.repeats = 9;
        Progress progress;
        LatencyProfile p = measureLatency(g, "demo", o, progress, CancelToken());
        QCOMPARE(p.batch, 4);
        QVERIFY(!p.isa.empty() && p.isa != "unknown");
        QVERIFY(p.fp32TotalMs > 0 && p.int8TotalMs > 0);
        QCOMPARE(p.layers.size(), kDemoLayers.size());
        double sum = p.otherMs;
        for (std::size_t i = 0; i < p.layers.size(); ++i) {
            const LayerLatency& l = p.layers[i];
            QCOMPARE(l.layer, kDemoLayers[i]);
            QVERIFY2(l.fp32Ms > 0, l.layer.c_str());
            QVERIFY2(l.int8Ms && *l.int8Ms > 0, l.layer.c_str());
            QVERIFY2(l.quantizeMs && *l.quantizeMs > 0, l.layer.c_str()); // an INT8 island quantizes its input
            QVERIFY(l.dequantizeMs && *l.dequantizeMs >= 0);
            sum += l.fp32Ms;
        }
        // The FP32 layers and other kernels are the FP32 pass, split up.
        QVERIFY2(sum > 0.5 * p.fp32TotalMs && sum < 2 * p.fp32TotalMs,
            qPrintable(QString("%1 vs %2").arg(sum).arg(p.fp32TotalMs)));
        // The flags come from /proc/cpuinfo: what oneDNN picked must be backed by them.
        auto has = [&](const char* f) { return std::count(p.cpuFlags.begin(), p.cpuFlags.end(), f) > 0; };
        if (p.isa.rfind("avx512_core", 0) == 0)
            QVERIFY(has("avx512f") && has("avx512bw"));
        if (p.isa.find("vnni") != std::string::npos)
            QVERIFY(has("avx512_vnni") || has("avx_vnni"));
        if (p.isa.find("amx") != std::string::npos)
            QVERIFY(has("amx_int8"));
    }

    // The demo's topology counted by hand: a chain stem -> down1 -> res1 (residual from
    // down1) -> down2 -> res2 (residual from down2) -> GlobalAveragePool -> fc.
    void linksFollowTheDemoTopology()
    {
        QuantSession s(importOnnx(kModel), {});
        const LayerLinks links = layerLinks(s.graph());
        QCOMPARE(links.layers, kDemoLayers);
        using Set = std::set<std::size_t>;
        QCOMPARE(links.producers[0], Set{});
        QVERIFY(links.floatIn[0]); // the graph input
        QCOMPARE(links.producers[1], Set{0});
        QCOMPARE(links.producers[3], Set{2});
        QCOMPARE(links.producers[4], (Set{1, 3})); // Relu(Add(res1.conv2, down1))
        QCOMPARE(links.producers[6], Set{5});
        QCOMPARE(links.producers[7], Set{}); // behind GlobalAveragePool and Flatten
        QVERIFY(links.floatIn[7]);
        QVERIFY(links.floatOut[6] && links.floatOut[7]);
        QCOMPARE(links.consumers[1], (Set{2, 4}));
        QVERIFY(!links.floatOut[1]);
    }

    void predictionCountsBoundariesByHand()
    {
        QuantSession s(importOnnx(kModel), {});
        const LayerLinks links = layerLinks(s.graph());
        const LatencyProfile p = syntheticProfile(); // layer i: fp32 10k, int8 2k, quantize k/4, dequantize k/8, k = i+1
        QCOMPARE(predictLatencyMs(p, links, {}), 0.5 + 10 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8));
        // stem, down1 INT8: stem enters (1/4), down1 leaves (to res1 float and down2 float: 2/8).
        QCOMPARE(predictLatencyMs(p, links, {kDemoLayers[0], kDemoLayers[1]}),
            0.5 + 2 * 1 + 0.25 + 2 * 2 + 0.25 + 10 * (3 + 4 + 5 + 6 + 7 + 8));
        // All INT8: only stem enters, res2.conv2 leaves (to the pool), fc enters and leaves.
        std::set<std::string> all(kDemoLayers.begin(), kDemoLayers.end());
        QCOMPARE(predictLatencyMs(p, links, all),
            0.5 + 2 * 36 + 0.25 * 1 + 0.125 * 7 + 0.25 * 8 + 0.125 * 8);
        QVERIFY_THROWS_EXCEPTION(Error, predictLatencyMs(p, links, {"nope"}));
    }

    void storeCachesPerMachineAndNewestWins()
    {
        QTemporaryDir dir;
        Store store = Store::open(dir.filePath("s.db").toStdString());
        LatencyProfile p = syntheticProfile();
        p.isa = "avx2";
        p.cpuFlags = {"avx2", "fma"};
        p.batch = 2;
        p.threads = 1;
        p.layers[3].int8Ms.reset();
        p.layers[3].quantizeMs.reset();
        p.layers[3].dequantizeMs.reset();
        QVERIFY(!store.latestLatencyProfile("h", 2, 1));
        const int64_t first = store.addLatencyProfile(p);
        auto back = store.latestLatencyProfile("h", 2, 1);
        QVERIFY(back);
        QCOMPARE(back->id, first);
        QCOMPARE(back->layers, p.layers);
        QCOMPARE(back->cpuFlags, p.cpuFlags);
        QCOMPARE(back->otherMs, p.otherMs);
        QVERIFY(back->machine && back->machine->cpu == currentMachine().cpu);
        QVERIFY(!store.latestLatencyProfile("h", 1, 1)); // another batch is another measurement
        p.otherMs = 0.75;
        const int64_t second = store.addLatencyProfile(p);
        QCOMPARE(store.latestLatencyProfile("h", 2, 1)->id, second);
        p.repeats = 0;
        QVERIFY_THROWS_EXCEPTION(Error, store.addLatencyProfile(p));

        // cachedLatency: measured once, then read back.
        Graph g = importOnnx(kModel);
        LatencyOptions o;
        o.threads = 1;
        o.repeats = 3;
        o.warmup = 1;
        Progress progress;
        bool cached = true;
        LatencyProfile m = cachedLatency(&store, g, "demo", o, false, cached, progress, CancelToken());
        QVERIFY(!cached && m.id > 0);
        LatencyProfile again = cachedLatency(&store, g, "demo", o, false, cached, progress, CancelToken());
        QVERIFY(cached);
        QCOMPARE(again.id, m.id);
        QCOMPARE(again.layers, m.layers);
    }

    void cliTableAndLatencyCostAxis()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("s.db");
        auto r = qs::test::cli({"latency", kModel, "--threads", "1", "--repeats", "5", "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["cached"].toBool(), false);
        QCOMPARE(j["layers"].toArray().size(), qsizetype(kDemoLayers.size()));
        QVERIFY(!j["isa"].toString().isEmpty());
        r = qs::test::cli({"latency", kModel, "--threads", "1", "--db", db, "--json"});
        QCOMPARE(QJsonDocument::fromJson(r.out).object()["cached"].toBool(), true);

        // The mixed search on the latency axis reads the cached table (batch 1).
        const double fp32 = j["fp32_total_ms"].toDouble();
        const QString budget = QString::number(j["predicted_fp32_ms"].toDouble() * 0.8);
        r = qs::test::cli({"mixed", kModel, "--data", kData, "--limit", "64", "--threads", "1", "--cost", "latency",
            "--budget-ms", budget, "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject m = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(m["cost"].toString(), QString("latency"));
        QCOMPARE(m["latency"].toObject()["cached"].toBool(), true);
        const QJsonObject chosen = m["chosen"].toObject();
        QVERIFY(chosen["latency_ms"].toObject()["chain_ms"].toDouble() <= budget.toDouble() + 1e-9);
        const auto floatLayers = chosen["config"].toObject()["exclude"].toArray().size();
        QVERIFY2(floatLayers < qsizetype(kDemoLayers.size()), "some layer must run in INT8 to beat 80% of FP32");
        QVERIFY(fp32 > 0);
        r = qs::test::cli({"mixed", kModel, "--data", kData, "--cost", "latency", "--budget-bits", "4"});
        QVERIFY(r.exitCode != 0 && r.err.contains("--budget-ms"));
    }
};

QTEST_GUILESS_MAIN(TestLatency)
#include "test_latency.moc"
