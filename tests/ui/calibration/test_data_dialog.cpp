// File › Calibration Data on a folder of PNGs the test writes (class subfolders) and a
// small conv model built here: the preview's per-channel statistics against a naive loop
// over the dataset core loads, preset switches, the label mapping, the normalization
// warnings (and the heuristic's cases), a new model re-checking the chosen data, and
// the studio quantizing from the folder: the exported QDQ model in ONNX Runtime on the
// folder's preprocessed batch gives the studio's simulated quantized output.
// QS_SCREENSHOT_DIR=<dir> saves PNGs of the dialog.
#include "data/dataset.h"
#include "export/replay.h"
#include "graph/onnx_import.h"
#include "record/export_run.h"
#include "runtime/plan.h"
#include "store/store.h"
#include "support/onnx_builder.h"
#include "support/ort_runner.h"
#include "support/studio_window.h"
#include "ui/calibration/data_dialog.h"
#include "ui/document/model_document.h"
#include "ui/export/export_dialog.h"
#include "ui/jobs/job_runner.h"
#include "ui/runs/quantize_dialog.h"
#include "ui/runs/runs_controller.h"
#include "ui/samples/sample_image.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

// Conv(3->4, 3x3) [-> BatchNormalization with these running statistics] -> Relu ->
// GlobalAveragePool -> Flatten -> Gemm(4->3): [N,3,side,side] -> [N,3]; with `convOnly`
// the Conv's output is the model's.
void saveImageModel(const QString& path, int64_t side, int64_t channels = 3, int64_t width = 0,
    const std::vector<float>& bnMean = {}, const std::vector<float>& bnVar = {}, bool convOnly = false)
{
    test::OnnxBuilder b;
    const int64_t w2 = width > 0 ? width : side;
    b.input("x", {-1, channels, side, w2});
    std::vector<float> w(std::size_t(4 * channels * 9)), fc(12);
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = float(int(i * 7 % 11) - 5) * 0.06f;
    for (std::size_t i = 0; i < fc.size(); ++i)
        fc[i] = float(int(i * 5 % 7) - 3) * 0.3f;
    b.initializer("w", {4, channels, 3, 3}, w);
    b.initializer("b", {4}, {0.1f, -0.2f, 0.3f, 0.05f});
    b.initializer("fc", {3, 4}, fc);
    b.initializer("fb", {3}, {0.01f, -0.02f, 0.03f});
    auto* conv = b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
    test::OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    if (convOnly) {
        b.output("c", {-1, 4, side, w2});
        b.save(path.toStdString());
        return;
    }
    if (!bnMean.empty()) {
        b.initializer("bn_scale", {4}, {1, 1, 1, 1});
        b.initializer("bn_bias", {4}, {0, 0, 0, 0});
        b.initializer("bn_mean", {4}, bnMean);
        b.initializer("bn_var", {4}, bnVar);
        b.node("BatchNormalization", {"c", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, {"n"}, "bn");
        b.node("Relu", {"n"}, {"r"}, "relu");
    } else {
        b.node("Relu", {"c"}, {"r"}, "relu");
    }
    b.node("GlobalAveragePool", {"r"}, {"p"}, "pool");
    b.node("Flatten", {"p"}, {"f"}, "flatten");
    auto* gemm = b.node("Gemm", {"f", "fc", "fb"}, {"y"}, "fc");
    test::OnnxBuilder::intAttr(gemm, "transB", 1);
    b.output("y", {-1, 3});
    b.save(path.toStdString());
}

// Two classes of three images each, sizes and content differing; PNG (lossless).
void writeImages(const QString& root)
{
    const QStringList classes = {QStringLiteral("cat"), QStringLiteral("dog")};
    for (int c = 0; c < classes.size(); ++c) {
        QDir(root).mkpath(classes[c]);
        for (int i = 0; i < 3; ++i) {
            QImage im(24 + 8 * i, 20 + 4 * c, QImage::Format_RGB888);
            for (int y = 0; y < im.height(); ++y)
                for (int x = 0; x < im.width(); ++x)
                    im.setPixel(x, y,
                        qRgb((x * 37 + y * 11 + 60 * c) % 256, (y * 23 + i * 40) % 256, ((x ^ y) * 17 + 90 * i) % 256));
            QVERIFY(im.save(QStringLiteral("%1/%2/%2_%3.png").arg(root, classes[c]).arg(i)));
        }
    }
}

} // namespace

class TestDataDialog : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString images_, model_;
    std::unique_ptr<Studio> studio_;

    bool openModel(const QString& path)
    {
        QSignalSpy opened(studio_.get(), &Studio::modelOpened);
        studio_->openModel(path);
        return opened.wait(30000);
    }

    static bool waitForPreview(CalibrationDataDialog& d)
    {
        QSignalSpy shown(&d, &CalibrationDataDialog::previewShown);
        d.refresh();
        return shown.wait(30000) || !shown.isEmpty();
    }

    static double statCell(const QTableWidget* t, int row, int col) { return t->item(row, col)->text().toDouble(); }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_data_dialog"));
        QSettings().clear();
        images_ = dir_.filePath(QStringLiteral("images"));
        writeImages(images_);
        model_ = dir_.filePath(QStringLiteral("net16.onnx"));
        saveImageModel(model_, 16);
        studio_ = std::make_unique<Studio>();
        QVERIFY(openModel(model_));
    }

    // Per-channel statistics against a naive loop over the dataset core loads with the
    // same pipeline; labels from the sorted class folders.
    void previewShowsStatisticsAndLabels()
    {
        CalibrationDataDialog d(*studio_);
        d.setSource(CalibrationDataDialog::Kind::ImageFolder, images_);
        d.setPreset(QStringLiteral("torchvision"));
        QVERIFY(waitForPreview(d));
        QVERIFY2(d.preview(), qPrintable(d.previewError()));
        const DataPreview& p = *d.preview();
        QCOMPARE(p.count, int64_t(6));
        QCOMPARE(p.sampled, int64_t(6));
        QCOMPARE(p.sampleShape, (Shape {3, 16, 16})); // the crop from the model's input
        QCOMPARE(d.thumbList()->count(), 6);
        QCOMPARE(d.thumbList()->item(0)->text(), QStringLiteral("cat"));
        QCOMPARE(d.thumbList()->item(5)->text(), QStringLiteral("dog"));

        QTableWidget* labels = d.labelTable();
        QCOMPARE(labels->rowCount(), 2);
        QCOMPARE(labels->item(0, 0)->text(), QStringLiteral("0"));
        QCOMPARE(labels->item(0, 1)->text(), QStringLiteral("cat"));
        QCOMPARE(labels->item(1, 1)->text(), QStringLiteral("dog"));
        QCOMPARE(labels->item(1, 2)->text(), QStringLiteral("3"));

        DataOptions o;
        o.spec = "images:" + images_.toStdString();
        o.preprocess = d.preprocessText().toStdString();
        const Dataset data = loadDataset(o, importOnnx(model_.toStdString()));
        QCOMPARE(*data.labels, (std::vector<int64_t> {0, 0, 0, 1, 1, 1}));
        const Tensor all = data.inputs.front().batch(0, data.count());
        const auto x = all.data<float>();
        QTableWidget* stats = d.statsTable();
        QCOMPARE(stats->rowCount(), 3);
        for (int c = 0; c < 3; ++c) {
            double sum = 0, sq = 0, lo = 1e9, hi = -1e9;
            int64_t n = 0;
            for (int64_t s = 0; s < 6; ++s)
                for (int64_t i = 0; i < 256; ++i) {
                    const double v = x[std::size_t((s * 3 + c) * 256 + i)];
                    sum += v;
                    sq += v * v;
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                    ++n;
                }
            const double mean = sum / double(n), sd = std::sqrt(sq / double(n) - mean * mean);
            QVERIFY(std::abs(p.channels[std::size_t(c)].mean - mean) < 1e-5);
            QVERIFY(std::abs(p.channels[std::size_t(c)].std - sd) < 1e-5);
            QCOMPARE(p.channels[std::size_t(c)].min, lo);
            QCOMPARE(p.channels[std::size_t(c)].max, hi);
            QVERIFY(std::abs(statCell(stats, c, 1) - mean) <= 0.0005);
            QVERIFY(std::abs(statCell(stats, c, 4) - hi) <= 0.0005);
        }
        QVERIFY2(d.warningLabel()->isHidden(), qPrintable(d.warningLabel()->text()));
        QVERIFY(p.expectation.normalized);
        test::screenshot(&d, QStringLiteral("data-dialog.png"));
    }

    // A preset switch re-runs the preview: yolo's letterbox to 0..1 and torchvision's
    // normalization give other statistics.
    void presetSwitchChangesStatistics()
    {
        CalibrationDataDialog d(*studio_);
        d.setSource(CalibrationDataDialog::Kind::ImageFolder, images_);
        d.setPreset(QStringLiteral("torchvision"));
        QVERIFY(waitForPreview(d) && d.preview());
        const std::vector<ChannelStats> before = d.preview()->channels;
        QVERIFY(before[0].min < 0);

        QSignalSpy shown(&d, &CalibrationDataDialog::previewShown);
        d.presetCombo()->setCurrentText(QStringLiteral("yolo")); // as the user picks it
        QVERIFY(shown.wait(30000));
        QVERIFY(d.preview());
        QCOMPARE(d.scaleEdit()->text(), QStringLiteral("1/255"));
        QVERIFY(d.meanEdit()->text().isEmpty());
        const std::vector<ChannelStats>& after = d.preview()->channels;
        for (std::size_t c = 0; c < 3; ++c) {
            QVERIFY(after[c].min >= 0 && after[c].max <= 1);
            QVERIFY(std::abs(after[c].mean - before[c].mean) > 0.05);
        }
        QCOMPARE(d.preprocessText(), QStringLiteral("yolo"));
        QVERIFY(d.preview()->pipeline.contains(QStringLiteral("letterbox=16x16")));
        QVERIFY(d.warningLabel()->isHidden()); // yolo's 0..1 is what such models take
    }

    // Unscaled pixels warn for any model; 0..1 data warns when the preset it came from normalizes.
    void warnsAboutUnnormalizedInput()
    {
        CalibrationDataDialog d(*studio_);
        d.setSource(CalibrationDataDialog::Kind::ImageFolder, images_);
        d.setPreset(QStringLiteral("torchvision"));
        QVERIFY(waitForPreview(d) && d.preview());
        QVERIFY(d.warningLabel()->isHidden());

        d.meanEdit()->clear();
        d.stdEdit()->clear();
        QCOMPARE(d.presetCombo()->currentText(), QStringLiteral("custom"));
        QVERIFY(waitForPreview(d) && d.preview());
        QVERIFY(!d.warningLabel()->isHidden());
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("0..1")), qPrintable(d.warningLabel()->text()));
        QVERIFY(d.warningLabel()->text().contains(QStringLiteral("torchvision preset")));

        d.scaleEdit()->setText(QStringLiteral("1"));
        QVERIFY(waitForPreview(d) && d.preview());
        QVERIFY(!d.warningLabel()->isHidden());
        QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("unscaled")), qPrintable(d.warningLabel()->text()));
        test::screenshot(&d, QStringLiteral("data-dialog-warning.png"));

        d.scaleEdit()->setText(QStringLiteral("1/0"));
        QVERIFY(d.pipelineProblem().contains(QStringLiteral("scale")));
        QVERIFY(d.preprocessText().isEmpty());
    }

    void heuristic_data()
    {
        QTest::addColumn<double>("mean");
        QTest::addColumn<double>("sd");
        QTest::addColumn<double>("lo");
        QTest::addColumn<double>("hi");
        QTest::addColumn<bool>("normalized");
        QTest::addColumn<QString>("warning"); // "" none
        QTest::newRow("0..255") << 120.0 << 60.0 << 0.0 << 255.0 << false << "unscaled";
        QTest::newRow("0..255, normalized model") << 120.0 << 60.0 << 0.0 << 255.0 << true << "unscaled";
        QTest::newRow("caffe mean subtraction") << 0.0 << 60.0 << -123.0 << 150.0 << false << "";
        QTest::newRow("0..1, no expectation") << 0.45 << 0.25 << 0.0 << 1.0 << false << "";
        QTest::newRow("0..1, normalized model") << 0.45 << 0.25 << 0.0 << 1.0 << true << "0..1";
        QTest::newRow("normalized") << 0.1 << 1.1 << -2.1 << 2.6 << true << "";
        QTest::newRow("std too small") << -0.2 << 0.05 << -0.4 << 0.1 << true << "std";
        QTest::newRow("mean off") << -2.5 << 0.5 << -4.0 << -1.0 << true << "mean";
    }

    void heuristic()
    {
        QFETCH(double, mean);
        QFETCH(double, sd);
        QFETCH(double, lo);
        QFETCH(double, hi);
        QFETCH(bool, normalized);
        QFETCH(QString, warning);
        const std::vector<ChannelStats> channels(3, ChannelStats {mean, sd, lo, hi});
        InputExpectation e;
        e.normalized = normalized;
        e.source = QStringLiteral("the test");
        const QStringList w = inputWarnings(channels, {"R", "G", "B"}, e);
        if (warning.isEmpty())
            QVERIFY2(w.isEmpty(), qPrintable(w.join('\n')));
        else
            QVERIFY2(!w.isEmpty() && w.front().contains(warning), qPrintable(w.join('\n')));
    }

    // The model's metadata overrides the preset: a model carrying quantstudio.mean/std
    // expects normalized input even from a preset that does not normalize.
    void expectationFromMetadata()
    {
        Graph g = importOnnx(model_.toStdString());
        QVERIFY(!expectedInput(&g, "yolo").normalized);
        QVERIFY(expectedInput(&g, "torchvision").normalized);
        QVERIFY(!expectedInput(&g, "").normalized);
        g.metadata["quantstudio.mean"] = "0.5,0.5,0.5";
        g.metadata["quantstudio.std"] = "0.5,0.5,0.5";
        QVERIFY(expectedInput(&g, "yolo").normalized);
        QVERIFY(expectedInput(&g, "").source.contains(QStringLiteral("metadata")));
    }

    // A dialog closed while its preview decodes cancels it; nothing reaches the dead dialog.
    void closingCancelsThePreview()
    {
        QSignalSpy finished(studio_->jobs(), &JobRunner::jobFinished);
        int job = -1;
        {
            CalibrationDataDialog d(*studio_);
            d.setSource(CalibrationDataDialog::Kind::ImageFolder, images_);
            job = d.refresh();
            QVERIFY(job > 0);
        }
        QTRY_VERIFY_WITH_TIMEOUT(!studio_->jobs()->isRunning(job), 10000);
        QVERIFY(studio_->jobs()->waitForWorkers(10000));
        QCOMPARE(finished.size(), 1);
        QCOMPARE(finished.front().at(2).value<JobOutcome>(), JobOutcome::Cancelled);
    }

    void errorsAreShownInTheDialog()
    {
        CalibrationDataDialog d(*studio_);
        d.setSource(CalibrationDataDialog::Kind::ImageFolder, dir_.filePath(QStringLiteral("missing")));
        QVERIFY(waitForPreview(d));
        QVERIFY(!d.preview());
        QVERIFY2(d.previewError().contains(QStringLiteral("no such folder")), qPrintable(d.previewError()));
    }

    // A model whose first Conv is followed by a BatchNormalization recorded the Conv's
    // output statistics in training: here those of torchvision-preprocessed images (the
    // Conv run by the runtime, statistics by a naive loop). The dialog compares: with the
    // same pipeline the fit is exact (16x16 outputs: every position is sampled), with 0..1
    // input it warns - with no preset or metadata to say what the model expects.
    void firstLayerStatisticsWarn()
    {
        const QString convOnly = dir_.filePath(QStringLiteral("conv16.onnx"));
        saveImageModel(convOnly, 16, 3, 0, {}, {}, true);
        const Graph g = importOnnx(convOnly.toStdString());
        DataOptions o;
        o.spec = "images:" + images_.toStdString();
        o.preprocess = "torchvision";
        const Dataset data = loadDataset(o, g);
        CompileOptions co;
        co.inputShapes = data.inputShapes(data.count());
        const Tensor y = compilePlan(g, co)->run(data.batch(0, data.count())).front();
        QCOMPARE(y.shape, (Shape {6, 4, 16, 16}));
        std::vector<float> mean(4), var(4);
        const auto v = y.data<float>();
        for (int c = 0; c < 4; ++c) {
            double sum = 0, sq = 0;
            for (int s = 0; s < 6; ++s)
                for (int i = 0; i < 256; ++i) {
                    const double x = v[std::size_t((s * 4 + c) * 256 + i)];
                    sum += x;
                    sq += x * x;
                }
            mean[std::size_t(c)] = float(sum / 1536);
            var[std::size_t(c)] = float(sq / 1536 - (sum / 1536) * (sum / 1536)) - 1e-5f; // BN adds epsilon
        }
        const QString withBn = dir_.filePath(QStringLiteral("bn16.onnx"));
        saveImageModel(withBn, 16, 3, 0, mean, var);
        QVERIFY(openModel(withBn));

        studio_->setData(QStringLiteral("images:") + images_, QStringLiteral("resize=18,crop=16,fit=model"));
        {
            CalibrationDataDialog d(*studio_);
            QCOMPARE(d.presetCombo()->currentText(), QStringLiteral("custom"));
            d.meanEdit()->setText(QStringLiteral("0.485, 0.456, 0.406"));
            d.stdEdit()->setText(QStringLiteral("0.229, 0.224, 0.225"));
            QVERIFY(waitForPreview(d) && d.preview());
            QVERIFY(d.preview()->firstLayer);
            const FirstLayerFit& fit = *d.preview()->firstLayer;
            QCOMPARE(fit.layer, QStringLiteral("conv"));
            QCOMPARE(fit.positions, int64_t(256));
            QVERIFY2(std::abs(fit.spreadRatio - 1) < 1e-3, qPrintable(QString::number(fit.spreadRatio)));
            QVERIFY2(fit.meanShift < 1e-3, qPrintable(QString::number(fit.meanShift)));
            QVERIFY2(d.warningLabel()->isHidden(), qPrintable(d.warningLabel()->text()));

            d.meanEdit()->clear();
            d.stdEdit()->clear();
            QVERIFY(waitForPreview(d) && d.preview() && d.preview()->firstLayer);
            QVERIFY(!d.preview()->expectation.normalized); // nothing else says what the model takes
            QVERIFY(d.preview()->firstLayer->spreadRatio < 1 / kFirstLayerSpreadLimit);
            QVERIFY(!d.warningLabel()->isHidden());
            QVERIFY2(d.warningLabel()->text().contains(QStringLiteral("first layer (conv)")),
                qPrintable(d.warningLabel()->text()));
        }
        studio_->setData(QString(), QString());
        QVERIFY(openModel(model_));
    }

    // Issue #23: a new model re-checks the chosen data and says what it did.
    void newModelRechecksTheData()
    {
        CalibrationDataDialog d(*studio_);
        d.setSource(CalibrationDataDialog::Kind::ImageFolder, images_);
        d.setPreset(QStringLiteral("torchvision"));
        QVERIFY(waitForPreview(d) && d.preview());
        d.accept();
        const QString spec = QStringLiteral("images:") + images_;
        QCOMPARE(studio_->dataPath(), spec);
        QCOMPARE(studio_->dataPreprocess(), d.preprocessText());

        QSignalSpy notice(studio_.get(), &Studio::dataNotice);
        const QString other = dir_.filePath(QStringLiteral("net24.onnx"));
        saveImageModel(other, 24);
        QVERIFY(openModel(other));
        QCOMPARE(notice.size(), 1);
        QVERIFY2(notice.front().front().toString().contains(QStringLiteral("stays selected")),
            qPrintable(notice.front().front().toString()));
        QCOMPARE(studio_->dataPath(), spec);

        notice.clear();
        const QString gray = dir_.filePath(QStringLiteral("gray.onnx"));
        saveImageModel(gray, 16, 1);
        QVERIFY(openModel(gray));
        QCOMPARE(notice.size(), 1);
        const QString said = notice.front().front().toString();
        QVERIFY2(said.contains(QStringLiteral("does not fit")) && said.contains(QStringLiteral("channels")),
            qPrintable(said));
        QVERIFY(studio_->dataPath().isEmpty());
        QVERIFY(studio_->dataPreprocess().isEmpty());
        QCOMPARE(studio_->calibrationDataSpec(), QStringLiteral("random:64"));

        QVERIFY(openModel(model_));
    }

    // Quantize in the studio from the folder; the run records the pipeline, the export
    // writes it to the metadata, and ONNX Runtime running the exported QDQ model (as
    // written, in float) on the folder's preprocessed batch gives the studio's simulated
    // quantized output: max |diff| <= 1e-4 of the largest logit, same top-1.
    void quantizeExportAndRunInOrt()
    {
        studio_->setData(QStringLiteral("images:") + images_, QStringLiteral("torchvision"));
        const QString db = dir_.filePath(QStringLiteral("runs.db"));
        QSignalSpy storeOpened(studio_.get(), &Studio::storeOpened);
        studio_->openStore(db);
        QVERIFY(storeOpened.wait(10000));

        QWidget host;
        RunsController runs(*studio_, &host);
        QuantizeRequest r = runs.defaultRequest();
        QCOMPARE(r.calibData, QStringLiteral("images:") + images_);
        QCOMPARE(r.preprocess, QStringLiteral("torchvision"));
        QuantizeDialog dialog(r, nullptr, studio_->document()->model()->graph);
        QCOMPARE(dialog.preprocess()->text(), QStringLiteral("torchvision"));
        QVERIFY(r.evalData.isEmpty()); // chosen, never the calibration data unasked
        dialog.evalOnCalibration()->setChecked(true);
        r = dialog.request();
        QSignalSpy stored(&runs, &RunsController::runStored);
        QVERIFY(runs.quantize(r) > 0);
        QVERIFY(stored.wait(60000));
        const qint64 id = stored.front().front().toLongLong();
        QVERIFY(id > 0);

        Store store = Store::open(db.toStdString());
        const RunRecord run = store.run(id);
        QCOMPARE(run.state, RunState::Done);
        const std::string resolved = run.config["calibration"]["preprocess"].get<std::string>();
        QVERIFY2(resolved.find("crop=16x16") != std::string::npos, resolved.c_str());
        QCOMPARE(run.config["evaluation"]["preprocess"].get<std::string>(), resolved);
        QCOMPARE(run.config["evaluation"]["samples"].get<int>(), 6);

        const QString out = dir_.filePath(QStringLiteral("net16.qdq.onnx"));
        Progress progress;
        CancelToken cancel;
        exportRun(store, id, ExportFormat::Qdq, out.toStdString(), progress, cancel);
        const Graph exported = importOnnx(out.toStdString());
        QCOMPARE(exported.metadata.at("quantstudio.preprocess"), resolved);

        RunReplay replay = replayRun(store, id, progress, cancel);
        const Dataset eval = loadDataset(studio_->calibrationDataOptions(), replay.source);
        QCOMPARE(eval.preprocess, resolved);
        const std::vector<float> ours =
            replay.session->compile(true, eval.first().shape)->run({eval.first()}).front().toFloat();
        const std::vector<float> ort = test::ortLogits(out, eval, QStringLiteral("disabled"), dir_.path());
        QCOMPARE(ort.size(), ours.size());
        QCOMPARE(test::argmaxRows(ort, 6), test::argmaxRows(ours, 6));
        double maxDiff = 0, maxLogit = 0;
        for (std::size_t i = 0; i < ours.size(); ++i) {
            maxDiff = std::max(maxDiff, double(std::abs(ours[i] - ort[i])));
            maxLogit = std::max(maxLogit, double(std::abs(ours[i])));
        }
        qInfo("ORT (QDQ as written) vs the studio's simulation on 6 images: max |diff| %.3g, max |logit| %.3g", maxDiff,
            maxLogit);
        QVERIFY(maxLogit > 0);
        QVERIFY(maxDiff <= 1e-4 * maxLogit);

        // The Export dialog's parity check replays the run on its preprocessed images.
        const ParityResult parity = parityOfExport(db, id, out, {}, progress, cancel);
        QCOMPARE(parity.samples, int64_t(6));
        QVERIFY2(parity.outputSqnrDb > 30, qPrintable(QString::number(parity.outputSqnrDb)));
    }

    // The Samples panel shows image samples with their pipeline undone (mean/std, scale,
    // BGR): an image preprocessed at its own size comes back as it was, within a level.
    void samplesPanelUndoesThePipeline()
    {
        const QString model = dir_.filePath(QStringLiteral("net20x24.onnx"));
        saveImageModel(model, 20, 3, 24);
        const QString list = dir_.filePath(QStringLiteral("one.txt"));
        QFile f(list);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("images/cat/cat_0.png,0\n");
        f.close();
        DataOptions o;
        o.spec = "imagelist:" + list.toStdString();
        o.preprocess = "resize=24x20,crop=none,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,bgr";
        const Dataset data = loadDataset(o, importOnnx(model.toStdString()));
        const QImage shown = ui::sampleImage(data, 0, 1);
        const QImage original(images_ + QStringLiteral("/cat/cat_0.png"));
        QCOMPARE(shown.size(), original.size());
        int worst = 0;
        for (int y = 0; y < shown.height(); ++y)
            for (int x = 0; x < shown.width(); ++x) {
                const QRgb a = shown.pixel(x, y), b = original.pixel(x, y);
                worst = std::max({worst, std::abs(qRed(a) - qRed(b)), std::abs(qGreen(a) - qGreen(b)),
                    std::abs(qBlue(a) - qBlue(b))});
            }
        QVERIFY2(worst <= 1, qPrintable(QString::number(worst)));
    }

    void cleanupTestCase() { studio_.reset(); }
};

QTEST_MAIN(TestDataDialog)
#include "test_data_dialog.moc"
