// The samples panel, offscreen on the demo CNN: its divergent list equals a direct
// divergentSamples() call, a thumbnail's pixels are the IDX file's own bytes (the
// normalization undone, nearest-neighbour upscaled), the flipped list equals
// flippedSamples(), the trace chart's bars equal traceSample() and a click on one
// selects its layer, text data is refused, and Cancel stops a run within a second.
// With QS_SAMPLES_SCREENSHOT_DIR=dir the panel is saved as dir/samples-divergent.png
// and dir/samples-trace.png.
#include "analysis/samples.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "graph/onnx_import.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/jobs/job_runner.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/main_window.h"
#include "ui/samples/sample_image.h"
#include "ui/samples/samples_feature.h"
#include "ui/samples/samples_panel.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QDockWidget>
#include <QElapsedTimer>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
const char* const demoImages = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const char* const demoText = QS_SOURCE_DIR "/resources/demo/byte_gpt_val.txt";
const char* const layerName = "/down1/down1.0/Conv";
constexpr int kLimit = 200;

} // namespace

class TestSamplesPanel : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    Graph graph;
    Dataset data; // the first kLimit demo images, as the panel loads them

    SamplesPanel* panel() const { return window->feature<SamplesFeature>()->panel(); }

    bool runAndWait(const char* what)
    {
        QSignalSpy shown(panel(), &SamplesPanel::listShown);
        if (panel()->run() < 0) {
            qWarning("%s: nothing started (%s)", what, qPrintable(panel()->statusLabel()->text()));
            return false;
        }
        return shown.wait(120000) && window->studio().jobs()->waitForIdle(30000);
    }

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_samples_panel"));
        QSettings().clear();
        window = std::make_unique<MainWindow>();
        window->resize(1600, 1000);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->studio().openModel(demoPath);
        QVERIFY(opened.wait(60000));
        QVERIFY(window->studio().jobs()->waitForIdle(60000));
        QCOMPARE(window->studio().calibrationDataSpec(), QString::fromLatin1(demoImages)); // the data beside the model
        window->feature<SamplesFeature>()->dock()->show();
        window->feature<SamplesFeature>()->dock()->raise();
        panel()->limitSpin()->setValue(kLimit);
        panel()->topSpin()->setValue(8);

        graph = importOnnx(demoPath.toStdString());
        DataOptions d;
        d.spec = demoImages;
        d.limit = kLimit;
        data = loadDataset(d, graph);
    }

    void divergentListEqualsCore()
    {
        const int row = window->studio().document()->model()->layerRow(layerName);
        QVERIFY(row >= 0);
        window->studio().selection()->selectLayer(row);
        QCOMPARE(panel()->layerName(), std::string(layerName));
        panel()->setMode(SamplesPanel::Mode::Divergent);
        QVERIFY(panel()->runButton()->isEnabled());
        QVERIFY(runAndWait("divergent"));

        Progress p;
        const SampleOptions o = panel()->options();
        QCOMPARE(o.limit, int64_t(kLimit));
        const auto want = divergentSamples(graph, data, layerName, 8, o, p, CancelToken());
        const auto& got = panel()->divergent();
        QCOMPARE(got.size(), want.size());
        QCOMPARE(panel()->grid()->count(), int(want.size()));
        for (std::size_t i = 0; i < want.size(); ++i) {
            QCOMPARE(got[i].index, want[i].index);
            QCOMPARE(got[i].kl, want[i].kl);
            QCOMPARE(got[i].fp32Class, want[i].fp32Class);
            QCOMPARE(got[i].quantClass, want[i].quantClass);
            QListWidgetItem* item = panel()->grid()->item(int(i));
            QCOMPARE(item->data(SamplesPanel::SampleIndexRole).toLongLong(), qlonglong(want[i].index));
            QCOMPARE(item->data(SamplesPanel::KlRole).toDouble(), want[i].kl);
            // Wrong ones are highlighted: the quantized class misses the label.
            QVERIFY(want[i].label.has_value());
            const bool wrong = want[i].quantClass != *want[i].label;
            QCOMPARE(item->data(SamplesPanel::WrongRole).toBool(), wrong);
            QCOMPARE(item->background().style() != Qt::NoBrush, wrong);
            QVERIFY(item->text().contains(QStringLiteral("KL ")));
            QVERIFY(item->text().contains(QStringLiteral("label %1").arg(panel()->className(*want[i].label))));
        }
        // Sorted by KL, largest first.
        for (std::size_t i = 1; i < got.size(); ++i)
            QVERIFY(got[i - 1].kl >= got[i].kl);
    }

    void thumbnailPixelsAreTheImage()
    {
        QVERIFY(panel()->grid()->count() > 0);
        // The raw IDX bytes: the dataset's normalization undone must give them back.
        const Tensor raw = readIdx(demoImages);
        QCOMPARE(raw.shape.size(), std::size_t(3));
        const int h = int(raw.shape[1]), w = int(raw.shape[2]);
        auto bytes = raw.data<uint8_t>();
        for (int k : {0, panel()->grid()->count() - 1}) {
            QListWidgetItem* item = panel()->grid()->item(k);
            const int64_t index = item->data(SamplesPanel::SampleIndexRole).toLongLong();
            const QImage img = item->icon().pixmap(panel()->grid()->iconSize()).toImage();
            const int scale = img.width() / w;
            QCOMPARE(scale, 3); // 28 px -> 84 px
            QCOMPARE(img.height(), h * scale);
            int nonzero = 0;
            for (auto [y, x] : std::initializer_list<std::pair<int, int>>{{0, 0}, {14, 14}, {10, 5}, {20, 17}, {7, 22}, {27, 27}, {13, 3}}) {
                const int want = bytes[std::size_t((index * h + y) * w + x)];
                nonzero += want > 0;
                for (auto [dy, dx] : std::initializer_list<std::pair<int, int>>{{0, 0}, {scale - 1, scale - 1}, {1, 0}}) { // its screen pixels
                    const QRgb px = img.pixel(x * scale + dx, y * scale + dy);
                    QVERIFY2(qRed(px) == want && qGreen(px) == want && qBlue(px) == want,
                             qPrintable(QStringLiteral("sample %1 (%2,%3): %4 vs %5").arg(index).arg(x).arg(y).arg(qRed(px)).arg(want)));
                }
            }
            QVERIFY(nonzero >= 2); // the positions are not all background
        }
    }

    void flippedListAndTraceEqualCore()
    {
        panel()->setMode(SamplesPanel::Mode::Flipped);
        panel()->bitsSpin()->setValue(3);
        QVERIFY(runAndWait("flipped"));
        Progress p;
        const SampleOptions o = panel()->options();
        const auto want = flippedSamples(graph, data, o, p, CancelToken());
        QVERIFY2(!want.empty(), "no sample flips at 3 bits: the trace below needs one");
        QCOMPARE(panel()->flipped().size(), want.size());
        QCOMPARE(panel()->grid()->count(), int(want.size()));
        for (int i = 0; i < panel()->grid()->count(); ++i) {
            const SampleDivergence& w = want[std::size_t(i)];
            QCOMPARE(panel()->flipped()[std::size_t(i)].index, w.index);
            QListWidgetItem* item = panel()->grid()->item(i);
            QCOMPARE(item->data(SamplesPanel::SampleIndexRole).toLongLong(), qlonglong(w.index));
            QCOMPARE(item->data(SamplesPanel::KlRole).toDouble(), w.kl);
            QVERIFY(item->data(SamplesPanel::WrongRole).toBool());
            // The caption names both classes (FP32 right, quantized wrong) by the model's class names.
            QVERIFY2(item->text().contains(panel()->className(w.fp32Class) + QStringLiteral(" \u2192 ") +
                                           panel()->className(w.quantClass)),
                     qPrintable(item->text()));
            QVERIFY(w.label && *w.label == w.fp32Class && w.quantClass != w.fp32Class);
        }

        // A click on the first thumbnail traces that sample.
        QListWidget* grid = panel()->grid();
        QSignalSpy traced(panel(), &SamplesPanel::traceShown);
        const QRect r = grid->visualItemRect(grid->item(0));
        QTest::mouseClick(grid->viewport(), Qt::LeftButton, {}, r.center());
        QVERIFY(traced.wait(120000));
        QVERIFY(window->studio().jobs()->waitForIdle(30000));
        const SampleTrace t = traceSample(graph, data, want.front().index, o, p, CancelToken());
        QVERIFY(panel()->shownTrace().has_value());
        QCOMPARE(panel()->shownTrace()->index, want.front().index);
        QCOMPARE(panel()->shownTrace()->quantClass, t.quantClass);
        QVERIFY(t.quantClass != *t.label && t.fp32Class == *t.label); // it is flipped
        QCPBars* bars = panel()->traceBars();
        QCOMPARE(bars->data()->size(), int(t.layers.size()));
        int worst = 0;
        for (int i = 0; i < int(t.layers.size()); ++i) {
            QCOMPARE(bars->data()->at(i)->key, double(i)); // graph order
            QCOMPARE(bars->data()->at(i)->value, SamplesPanel::drawnDb(t.layers[std::size_t(i)].sqnrDb));
            if (t.layers[std::size_t(i)].sqnrDb < t.layers[std::size_t(worst)].sqnrDb)
                worst = i;
        }
        QCOMPARE(panel()->worstBar()->data()->size(), 1);
        QCOMPARE(panel()->worstBar()->data()->at(0)->key, double(worst));
        // The caption learned the classes.
        QVERIFY(grid->item(0)->text().contains(QStringLiteral("\u2192")));

        // A click on a bar selects that layer everywhere.
        QCustomPlot* plot = panel()->tracePanel()->plot();
        plot->replot(QCustomPlot::rpImmediateRefresh);
        const int target = int(t.layers.size()) - 1 == worst ? 0 : int(t.layers.size()) - 1;
        const QPoint at(int(std::lround(plot->xAxis->coordToPixel(target))), plot->axisRect()->center().y());
        QCOMPARE(panel()->traceBarAt(at), target);
        QTest::mouseClick(plot, Qt::LeftButton, {}, at);
        QCOMPARE(window->studio().selection()->currentLayer(),
                 window->studio().document()->model()->layerRow(t.layers[std::size_t(target)].layer));
        // ... and outlines its bar.
        QCOMPARE(panel()->selectedBar()->data()->size(), 1);
        QCOMPARE(panel()->selectedBar()->data()->at(0)->key, double(target));
    }

    void textDataIsRefused()
    {
        window->studio().setDataPath(QStringLiteral("text:") + QString::fromLatin1(demoText));
        panel()->setMode(SamplesPanel::Mode::Flipped);
        QCOMPARE(panel()->run(), -1);
        QVERIFY(!panel()->disabledReason().isEmpty());
        QVERIFY(!panel()->runButton()->isEnabled());
        QVERIFY(panel()->statusLabel()->text().contains(QStringLiteral("text")));
        window->studio().setDataPath(QString()); // back to the data beside the model
    }

    void cancelStopsWithinASecond()
    {
        panel()->setMode(SamplesPanel::Mode::Divergent);
        panel()->limitSpin()->setValue(1000);
        panel()->quantizeCombo()->setCurrentIndex(panel()->quantizeCombo()->findData(int(SensitivityMode::Both)));
        QSignalSpy progress(window->studio().jobs(), &JobRunner::jobProgress);
        QSignalSpy ended(panel(), &SamplesPanel::jobEnded);
        QVERIFY(panel()->run() > 0);
        QVERIFY(panel()->cancelButton()->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(progress.count() >= 2, 60000); // running, past loading the data
        QVERIFY(panel()->progressBar()->isVisible());
        QElapsedTimer clock;
        clock.start();
        QTest::mouseClick(panel()->cancelButton(), Qt::LeftButton);
        QCOMPARE(ended.count(), 1);
        QCOMPARE(ended.first().first().value<JobOutcome>(), JobOutcome::Cancelled);
        QVERIFY(window->studio().jobs()->waitForWorkers(1000)); // the worker itself has stopped
        QVERIFY2(clock.elapsed() < 1000, qPrintable(QStringLiteral("%1 ms").arg(clock.elapsed())));
        QVERIFY(panel()->statusLabel()->text().contains(QStringLiteral("Cancelled")));
        QVERIFY(panel()->runButton()->isEnabled());
        QVERIFY(!panel()->progressBar()->isVisible());
        panel()->quantizeCombo()->setCurrentIndex(0);
    }

    void showDivergentSwitchesModeAndLayer()
    {
        // What the layer table's "Show divergent samples" row action calls.
        panel()->limitSpin()->setValue(kLimit);
        panel()->setMode(SamplesPanel::Mode::Flipped);
        const int row = window->studio().document()->model()->layerRow("/stem/stem.0/Conv");
        QSignalSpy shown(panel(), &SamplesPanel::listShown);
        QVERIFY(panel()->showDivergent(row) > 0);
        QCOMPARE(panel()->mode(), SamplesPanel::Mode::Divergent);
        QCOMPARE(window->studio().selection()->currentLayer(), row);
        QVERIFY(shown.wait(120000));
        QVERIFY(window->studio().jobs()->waitForIdle(30000));
        QCOMPARE(int(panel()->divergent().size()), int(panel()->top()));
    }

    void screenshots()
    {
        const QByteArray dir = qgetenv("QS_SAMPLES_SCREENSHOT_DIR");
        if (dir.isEmpty())
            QSKIP("set QS_SAMPLES_SCREENSHOT_DIR=dir to save the panel");
        auto* dock = window->feature<SamplesFeature>()->dock();
        panel()->limitSpin()->setValue(1000);
        panel()->bitsSpin()->setValue(3);
        panel()->topSpin()->setValue(20);
        window->studio().selection()->selectLayer(window->studio().document()->model()->layerRow(layerName));
        panel()->setMode(SamplesPanel::Mode::Divergent);
        QVERIFY(runAndWait("screenshot divergent"));
        QSignalSpy traced(panel(), &SamplesPanel::traceShown);
        QVERIFY(panel()->trace(panel()->divergent().front().index) > 0);
        QVERIFY(traced.wait(120000));
        QVERIFY(window->studio().jobs()->waitForIdle(30000));
        QTest::qWait(100);
        QVERIFY(window->grab().save(QString::fromLocal8Bit(dir) + "/samples-divergent.png"));

        panel()->setMode(SamplesPanel::Mode::Flipped);
        QVERIFY(runAndWait("screenshot flipped"));
        QVERIFY(!panel()->flipped().empty());
        QVERIFY(panel()->trace(panel()->flipped().front().index) > 0);
        QVERIFY(traced.wait(120000));
        QVERIFY(window->studio().jobs()->waitForIdle(30000));
        QTest::qWait(100);
        QVERIFY(dock->grab().save(QString::fromLocal8Bit(dir) + "/samples-trace.png"));
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        window->studio().jobs()->waitForWorkers(30000);
        window.reset();
        QSettings().clear();
    }
};

QTEST_MAIN(TestSamplesPanel)
#include "test_samples_panel.moc"
