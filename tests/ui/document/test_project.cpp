// The project file and the work it keeps: a .qsproj round-trips the model, the data
// choice, the input shapes and the bit configuration with kept ranges; a bad file is
// refused with its path and field; closing or replacing edited work asks first (Save,
// Discard, Cancel each do what they say); autosave keeps edits a crash would lose and
// offers them when the model opens again.
#include "ui/document/model_document.h"
#include "ui/document/project.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/main_window.h"
#include "util/error.h"

#include <QFile>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
using Field = QuantConfigDocument::Field;

// Clicks `button` of the message box named `name` once it is shown (the box runs its own
// event loop); `seen` says whether it appeared.
void answerLater(const QString& name, QMessageBox::StandardButton button, bool* seen)
{
    *seen = false;
    QTimer::singleShot(50, [name, button, seen] {
        for (QWidget* w : QApplication::topLevelWidgets())
            if (auto* box = qobject_cast<QMessageBox*>(w); box && box->objectName() == name && box->isVisible()) {
                *seen = true;
                box->button(button)->click();
                return;
            }
    });
}

QString expectError(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

} // namespace

class TestProject : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::unique_ptr<MainWindow> window;

    bool openAndWait(const QString& path)
    {
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->openFile(path);
        return opened.wait(60000);
    }
    QuantConfigDocument* config() const { return window->studio().config(); }

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_project"));
        QSettings().clear();
        QStandardPaths::setTestModeEnabled(true); // autosaves in a test location
        window = std::make_unique<MainWindow>();
        window->project()->setAutosaveInterval(0);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        QVERIFY(openAndWait(demoPath));
    }

    void roundTripsEveryField()
    {
        ProjectState s;
        s.modelPath = demoPath;
        s.dataPath = QStringLiteral("images:/data/val");
        s.dataPreprocess = QStringLiteral("torchvision");
        s.inputShapes.insert(QStringLiteral("x"), QStringLiteral("1x3x48x320"));
        s.config.defaults.weight.bits = 6;
        LayerQuant lq = s.config.defaults;
        lq.weight.bits = 4;
        s.config.layers["stem/stem.0"] = lq;
        const QString path = dir.filePath(QStringLiteral("a.qsproj"));
        writeProjectFile(path, s);
        const ProjectState back = readProjectFile(path);
        QCOMPARE(back.modelPath, QFileInfo(demoPath).absoluteFilePath());
        QCOMPARE(back.dataPath, s.dataPath);
        QCOMPARE(back.dataPreprocess, s.dataPreprocess);
        QCOMPARE(back.inputShapes, s.inputShapes);
        QCOMPARE(back.config.layers.at("stem/stem.0").weight.bits, 4);
        QCOMPARE(back.config.defaults.weight.bits, 6);
        QVERIFY(back == s);
    }

    void badFilesNameFileAndField_data()
    {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<QString>("expected");
        const QByteArray model = "\"model\": \"" + demoPath.toUtf8() + "\"";
        QTest::newRow("not json") << QByteArray("{ nope") << QStringLiteral("not a JSON object");
        QTest::newRow("other format") << QByteArray(R"({"format": "x", "version": 1})")
                                      << QStringLiteral("field \"format\"");
        QTest::newRow("future version") << QByteArray(R"({"format": "quantstudio-project", "version": 9})")
                                        << QStringLiteral("field \"version\"");
        QTest::newRow("missing model")
            << QByteArray(R"({"format": "quantstudio-project", "version": 1, "model": "/nowhere/m.onnx", "config": {}})")
            << QStringLiteral("field \"model\": \"/nowhere/m.onnx\" does not exist");
        QTest::newRow("shape not text") << QByteArray(R"({"format": "quantstudio-project", "version": 1, )" + model +
                                                      R"(, "input_shapes": {"x": 3}, "config": {}})")
                                        << QStringLiteral("field \"input_shapes.x\"");
        QTest::newRow("shape not dims") << QByteArray(R"({"format": "quantstudio-project", "version": 1, )" + model +
                                                      R"(, "input_shapes": {"x": "1,3"}, "config": {}})")
                                        << QStringLiteral("field \"input_shapes.x\": --input-shape");
        QTest::newRow("bad config") << QByteArray(R"({"format": "quantstudio-project", "version": 1, )" + model +
                                                  R"(, "config": {"default": 7}})")
                                    << QStringLiteral("field \"config\"");
    }
    void badFilesNameFileAndField()
    {
        QFETCH(QByteArray, text);
        QFETCH(QString, expected);
        const QString path = dir.filePath(QStringLiteral("bad.qsproj"));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(text);
        f.close();
        const QString error = expectError([&] { readProjectFile(path); });
        QVERIFY2(error.contains(path) && error.contains(expected), qPrintable(error));
        // The studio refuses it the same way and keeps what is open.
        QVERIFY(!window->project()->open(path));
        QVERIFY(window->project()->lastError().contains(expected));
        QCOMPARE(window->studio().document()->model()->path, QFileInfo(demoPath).absoluteFilePath());
    }

    void savedProjectReopensTheSameState()
    {
        QVERIFY(!window->project()->isModified());
        QVERIFY(config()->setLayers({0, 2}, Field::WeightBits, 4));
        QVERIFY(config()->setLayers({1}, Field::Calibrator, QStringLiteral("percentile:99.9")));
        window->studio().setInputShapes({{QStringLiteral("input"), QStringLiteral("1x1x28x28")}});
        QVERIFY(window->project()->isModified());
        QVERIFY(window->isWindowModified());
        const ProjectState before = window->project()->current();
        const QString path = dir.filePath(QStringLiteral("demo.qsproj"));
        QVERIFY2(window->project()->save(path), qPrintable(window->project()->lastError()));
        QVERIFY(!window->project()->isModified());
        QVERIFY(window->windowTitle().startsWith(QStringLiteral("demo[*]")));

        // Reset to defaults by reopening the model, then open the project.
        QVERIFY(openAndWait(demoPath));
        QCOMPARE(config()->value(0, Field::WeightBits).toInt(), 8);
        QSignalSpy opened(window->project(), &ProjectController::opened);
        window->openFile(path);
        QVERIFY(opened.wait(60000));
        QVERIFY(window->project()->current() == before);
        QCOMPARE(config()->value(2, Field::WeightBits).toInt(), 4);
        QCOMPARE(config()->value(1, Field::Calibrator).toString(), QStringLiteral("percentile:99.9"));
        QVERIFY(!window->project()->isModified());
        QCOMPARE(config()->undoStack()->count(), 0);
    }

    // The activation statistics of a calibration are saved beside the project and come back
    // with it, equal to the last bit, with no calibration; under another key they do not.
    void statisticsSurviveSaveAndOpen()
    {
        Studio& studio = window->studio();
        QSignalSpy calibrated(&studio, &Studio::calibrationFinished);
        QVERIFY(studio.runCalibration() > 0);
        QVERIFY(calibrated.wait(120000));
        QCOMPARE(calibrated.front().front().toBool(), true);
        const std::shared_ptr<const ActivationData> before = studio.document()->activations();
        QVERIFY(before && !before->profiles.empty());

        const QString path = dir.filePath(QStringLiteral("stats.qsproj"));
        QSignalSpy saved(window->project(), &ProjectController::statisticsSaved);
        QVERIFY2(window->project()->save(path), qPrintable(window->project()->lastError()));
        QVERIFY(saved.wait(60000));
        QVERIFY2(saved.front().front().toBool(), qPrintable(saved.front().at(1).toString()));
        QVERIFY(QFileInfo::exists(dir.filePath(QStringLiteral("stats.qsstats"))));
        const ProjectState file = readProjectFile(path);
        QCOMPARE(file.statsFile, dir.filePath(QStringLiteral("stats.qsstats")));
        QCOMPARE(file.statsKey, window->project()->statisticsKey());

        // Opening the model alone has none; opening the project brings them back.
        QVERIFY(openAndWait(demoPath));
        QVERIFY(!studio.document()->activations());
        QSignalSpy restored(window->project(), &ProjectController::statisticsRestored);
        QSignalSpy calibratedAgain(&studio, &Studio::calibrationFinished);
        window->openFile(path);
        QVERIFY(restored.wait(60000));
        QVERIFY2(restored.front().front().toBool(), qPrintable(restored.front().at(1).toString()));
        QCOMPARE(calibratedAgain.count(), 0);
        const auto after = studio.document()->activations();
        QVERIFY(after);
        QCOMPARE(after->samples, before->samples);
        QCOMPARE(after->dataLabel, before->dataLabel);
        QCOMPARE(after->profiles.size(), before->profiles.size());
        auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
        for (std::size_t i = 0; i < before->profiles.size(); ++i) {
            const ActivationProfile& a = before->profiles[i];
            const ActivationProfile& b = after->profiles[i];
            QCOMPARE(b.layer, a.layer);
            QCOMPARE(b.role, a.role);
            QCOMPARE(b.value, a.value);
            QCOMPARE(b.stats.count, a.stats.count);
            for (auto [x, y] : {std::pair {a.stats.min, b.stats.min}, {a.stats.max, b.stats.max},
                     {a.stats.mean, b.stats.mean}, {a.stats.std, b.stats.std}, {a.stats.kurtosis, b.stats.kurtosis},
                     {a.stats.outlierFraction, b.stats.outlierFraction}, {a.calibration.min, b.calibration.min},
                     {a.calibration.max, b.calibration.max}, {a.calibration.histogram.lo, b.calibration.histogram.lo},
                     {a.calibration.histogram.hi, b.calibration.histogram.hi}})
                QVERIFY2(same(x, y),
                    qPrintable(QStringLiteral("%1 %2: %3 vs %4")
                                   .arg(QString::fromStdString(a.layer), QString::fromStdString(a.role))
                                   .arg(x, 0, 'g', 17)
                                   .arg(y, 0, 'g', 17)));
            QVERIFY(b.calibration.histogram.counts == a.calibration.histogram.counts);
            QCOMPARE(b.calibration.histogram.below, a.calibration.histogram.below);
            QCOMPARE(b.calibration.histogram.above, a.calibration.histogram.above);
            QVERIFY(b.calibration.batchRanges == a.calibration.batchRanges);
            QVERIFY(b.channelMin == a.channelMin && b.channelMax == a.channelMax);
            QCOMPARE(b.clipRanges.size(), a.clipRanges.size());
            for (const auto& [name, r] : a.clipRanges)
                QVERIFY(b.clipRanges.at(name).lo == r.lo && b.clipRanges.at(name).hi == r.hi);
        }

        // Statistics under another key (another model file, data or preprocessing) are refused.
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QByteArray text = f.readAll();
        f.close();
        text.replace(file.statsKey.toLatin1(), QByteArray("0000"));
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write(text);
        f.close();
        QVERIFY(openAndWait(demoPath));
        QSignalSpy refused(window->project(), &ProjectController::statisticsRestored);
        window->openFile(path);
        QVERIFY(refused.wait(60000));
        QCOMPARE(refused.front().front().toBool(), false);
        QVERIFY(!studio.document()->activations());
        const QString error = [&] {
            try {
                readActivationCache(dir.filePath(QStringLiteral("stats.qsstats")), QStringLiteral("0000"));
            } catch (const Error& e) {
                return QString::fromUtf8(e.what());
            }
            return QString();
        }();
        QVERIFY2(error.contains(QStringLiteral("stats.qsstats")) && error.contains(QStringLiteral("\"key\"")),
            qPrintable(error));
    }

    void projectNamingAnUnknownLayerIsRefused()
    {
        ProjectState s;
        s.modelPath = demoPath;
        LayerQuant lq;
        s.config.layers["no/such/layer"] = lq;
        const QString path = dir.filePath(QStringLiteral("unknown.qsproj"));
        writeProjectFile(path, s);
        QSignalSpy failed(window->project(), &ProjectController::failed);
        QVERIFY(window->project()->open(path));
        QVERIFY(failed.wait(60000));
        const QString message = failed.front().front().toString();
        QVERIFY2(message.contains(path) && message.contains(QStringLiteral("\"no/such/layer\"")), qPrintable(message));
        QVERIFY(config()->config().layers.empty());
    }

    void closingEditedWorkAsks()
    {
        QVERIFY(openAndWait(demoPath));
        QVERIFY(config()->setLayers({3}, Field::WeightBits, 5));
        bool seen = false;
        // Cancel: the window stays, the edit stays.
        answerLater(QStringLiteral("unsavedChangesBox"), QMessageBox::Cancel, &seen);
        QVERIFY(!window->close());
        QVERIFY(seen);
        QVERIFY(window->isVisible());
        QCOMPARE(config()->value(3, Field::WeightBits).toInt(), 5);
        // Replacing the model asks too; Cancel keeps it.
        answerLater(QStringLiteral("unsavedChangesBox"), QMessageBox::Cancel, &seen);
        window->openFile(demoPath);
        QVERIFY(seen);
        QCOMPARE(config()->value(3, Field::WeightBits).toInt(), 5);
        // Save, with a project path known: written, then the window closes.
        const QString path = dir.filePath(QStringLiteral("closing.qsproj"));
        QVERIFY(window->project()->save(path));
        QVERIFY(config()->setLayers({3}, Field::WeightBits, 3));
        answerLater(QStringLiteral("unsavedChangesBox"), QMessageBox::Save, &seen);
        QVERIFY(window->close());
        QVERIFY(seen);
        QCOMPARE(readProjectFile(path).config.layers.at(config()->layerNames()[3]).weight.bits, 3);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        // Unchanged work closes without a question.
        answerLater(QStringLiteral("unsavedChangesBox"), QMessageBox::Cancel, &seen);
        QVERIFY(window->close());
        QTest::qWait(100);
        QVERIFY(!seen);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
    }

    void autosaveIsOfferedAfterACrash()
    {
        QVERIFY(openAndWait(demoPath));
        QVERIFY(config()->setLayers({1}, Field::ActivationBits, 6));
        QVERIFY(window->project()->autosaveNow());
        const QString autosave = window->project()->autosavePath(demoPath);
        QVERIFY(QFileInfo::exists(autosave));
        QVERIFY(!window->project()->autosaveNow()); // nothing new to write

        // A second studio (the first one "crashed": no close) opening the model is offered it.
        MainWindow next;
        next.project()->setAutosaveInterval(0);
        QSignalSpy found(next.project(), &ProjectController::autosaveFound);
        QSignalSpy opened(&next.studio(), &Studio::modelOpened);
        next.openFile(demoPath);
        QVERIFY(opened.wait(60000));
        QCOMPARE(found.count(), 1);
        QMessageBox* box = next.findChild<QMessageBox*>(QStringLiteral("restoreAutosaveBox"));
        QVERIFY(box && box->isVisible());
        for (QAbstractButton* b : box->buttons())
            if (b->text() == QStringLiteral("Restore"))
                b->click();
        QCOMPARE(next.studio().config()->value(1, Field::ActivationBits).toInt(), 6);
        QVERIFY(next.project()->isModified()); // restored, not yet saved
        // Discarding (here: the first window's clean close after Discard) removes it.
        bool seen = false;
        answerLater(QStringLiteral("unsavedChangesBox"), QMessageBox::Discard, &seen);
        QVERIFY(window->close());
        QVERIFY(seen);
        QVERIFY(!QFileInfo::exists(autosave));
        next.studio().config()->undoStack()->clear();
        next.studio().config()->setConfig(QuantConfig{});
        window->show();
    }

    // Without a remembered database the studio opens (and creates) the default one the
    // CLI records in, so a sweep is recorded from the first start.
    void defaultDatabaseIsCreated()
    {
        QTemporaryDir home;
        const QByteArray saved = qgetenv("XDG_DATA_HOME");
        qputenv("XDG_DATA_HOME", home.path().toUtf8());
        QSettings().remove(QStringLiteral("store/path"));
        Studio studio;
        QSignalSpy opened(&studio, &Studio::storeOpened);
        studio.openStartupStore();
        const bool ok = opened.wait(30000);
        saved.isEmpty() ? qunsetenv("XDG_DATA_HOME") : qputenv("XDG_DATA_HOME", saved);
        QVERIFY(ok);
        const QString expected = home.filePath(QStringLiteral("QuantStudio/studio.db"));
        QCOMPARE(studio.storePath(), expected);
        QVERIFY(QFileInfo::exists(expected));
    }

    void cleanupTestCase()
    {
        config()->setConfig(QuantConfig{});
        window->project()->discardAutosave();
        window.reset();
        QSettings().clear();
    }
};

QTEST_MAIN(TestProject)
#include "test_project.moc"
