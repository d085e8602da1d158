// A run quantized with --mean/--std: the normalization is part of the run's recorded
// configuration and of its dataset's identity, and every replay of the run (export,
// parity --run) feeds the data as the run did. The exported QDQ model, run in ONNX
// Runtime on the normalized images, gives our simulated quantized logits.
#include "export/replay.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "store/store.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"
#include "support/ort_runner.h"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace {

const QString kDemo = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const QString kMean = "0.2860", kStd = "0.3530"; // Fashion-MNIST's

using qs::test::argmaxRows;
using qs::test::cli;

} // namespace

class TestNormalizedRun : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString model_; // the demo model without its normalization metadata: only --mean/--std normalize

    int64_t quantize(const QStringList& extra)
    {
        auto r = cli(QStringList {"quantize", model_, "--data", kData, "--calib-limit", "64", "--eval-limit", "100",
                         "--db", dir_.filePath("runs.db"), "--json"} +
            extra);
        if (r.exitCode != 0)
            qFatal("quantize failed: %s", r.err.constData());
        return QJsonDocument::fromJson(r.out).object()["run_id"].toInteger();
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        qs::Graph g = qs::importOnnx(kDemo.toStdString());
        QVERIFY(g.metadata.erase("quantstudio.mean") && g.metadata.erase("quantstudio.std"));
        model_ = dir_.filePath("plain_cnn.onnx");
        std::ofstream(model_.toStdString(), std::ios::binary) << qs::exportOnnxBytes(g);
    }

    void exportAndParityReplayTheNormalization()
    {
        const QString db = dir_.filePath("runs.db");
        const int64_t id = quantize({"--mean", kMean, "--std", kStd});
        const QString run = QString::number(id);

        // Recorded: in the config, and in the dataset's identity (not the raw file's).
        {
            const qs::Store store = qs::Store::open(db.toStdString(), {.mode = qs::OpenMode::ReadOnly});
            const qs::RunRecord rec = store.run(id);
            QCOMPARE(rec.config["calibration"]["mean"].get<std::vector<float>>(), std::vector<float> {0.286f});
            QCOMPARE(rec.config["calibration"]["std"].get<std::vector<float>>(), std::vector<float> {0.353f});
            QCOMPARE(rec.config["evaluation"]["mean"].get<std::vector<float>>(), std::vector<float> {0.286f});
            const int64_t plain = quantize({});
            QVERIFY(store.run(plain).datasetId != rec.datasetId);
        }

        const QString out = dir_.filePath("normalized.onnx");
        auto e = cli({"export", run, "--format", "qdq", "--out", out, "--db", db, "--json"});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        QCOMPARE(QJsonDocument::fromJson(e.out).object()["checked_layers"].toInt(), 8);

        // Parity replays the run and compares: exit 0, or 3 when a layer drifts (without
        // VNNI, int16 saturation of u8 x s8 pairs moves a few values by tens of steps;
        // test_parity's withoutVnni) - a verdict, not a refusal (exit 1).
        auto p = cli({"parity", out, "--run", run, "--db", db, "--data", kData, "--limit", "64", "--json"});
        QVERIFY2(p.exitCode == 0 || p.exitCode == 3, p.err.constData());
        const QJsonObject pj = QJsonDocument::fromJson(p.out).object();
        QVERIFY2(pj["output_sqnr_db"].toDouble() > 30, p.out.left(300).constData());
        QVERIFY(pj["top1_agreement"].toDouble() >= 0.95);
        QCOMPARE(pj["samples"].toInt(), 64);
        // The run decides the preprocessing: a different one is refused, naming the option.
        auto bad = cli({"parity", out, "--run", run, "--db", db, "--data", kData, "--mean", "0", "--limit", "8"});
        QCOMPARE(bad.exitCode, 1);
        QVERIFY2(bad.err.contains("--mean"), bad.err.constData());

        // ONNX Runtime on the normalized images (QDQ as written) against our simulated
        // quantized execution of the replayed run.
        const qs::Store store = qs::Store::open(db.toStdString(), {.mode = qs::OpenMode::ReadOnly});
        qs::Progress progress;
        qs::CancelToken cancel;
        qs::RunReplay replay = qs::replayRun(store, id, progress, cancel);
        qs::DataOptions o;
        o.spec = kData.toStdString();
        o.mean = std::vector<float> {0.286f};
        o.std = std::vector<float> {0.353f};
        o.limit = 200;
        const qs::Dataset eval = qs::loadDataset(o, replay.source);
        const std::vector<float> ours =
            replay.session->compile(true, eval.first().shape)->run({eval.first()}).front().toFloat();
        const std::vector<float> ort = qs::test::ortLogits(out, eval, "disabled", dir_.path());
        QCOMPARE(ort.size(), ours.size());
        const auto a = argmaxRows(ours, eval.count()), b = argmaxRows(ort, eval.count());
        int agree = 0, hits = 0;
        double sumDiff = 0, maxLogit = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            agree += a[i] == b[i];
            hits += b[i] == (*eval.labels)[i];
        }
        for (std::size_t i = 0; i < ours.size(); ++i) {
            sumDiff += std::abs(ours[i] - ort[i]);
            maxLogit = std::max(maxLogit, double(std::abs(ours[i])));
        }
        qInfo("ORT vs ours on 200 normalized images: agreement %d/200, ORT top-1 %.3f, mean |diff| %.3g (max |logit| "
              "%.3g)",
            agree, hits / 200.0, sumDiff / double(ours.size()), maxLogit);
        QVERIFY(agree >= 198);
        QVERIFY(hits >= 140); // the normalized data classifies (the model is ~85% accurate)
        QVERIFY(sumDiff / double(ours.size()) <= 1e-3 * maxLogit);
    }
};

QTEST_GUILESS_MAIN(TestNormalizedRun)
#include "test_normalized_run.moc"
