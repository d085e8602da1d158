// A studio window for GUI tests: fresh settings under the test's name, shown offscreen,
// with the bundled demo model open (and its size table counted); for the tests that
// drive the whole studio also a fresh experiment store and error reports recorded
// instead of shown. QS_SCREENSHOT_DIR=<dir> lets tests save PNGs.
#pragma once

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/main_window.h"
#include "ui/widgets/error_reporter.h"

#include <QCoreApplication>
#include <QSettings>
#include <QSignalSpy>
#include <QStringList>
#include <QTest>

#include <memory>

namespace qs::test {

inline const QString demoModelPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
inline const QString demoImagesPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz");

// The shared state alone, for a panel test (the panel takes it): fresh settings under
// the test's name, the demo model open and its size table counted; nullptr when the
// model did not open within a minute.
inline std::unique_ptr<ui::Studio> openDemoStudio(const QString& testName)
{
    QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
    QCoreApplication::setApplicationName(testName);
    QSettings().clear();
    auto studio = std::make_unique<ui::Studio>();
    QSignalSpy opened(studio.get(), &ui::Studio::modelOpened);
    studio->openModel(demoModelPath);
    if (!opened.wait(60000))
        return nullptr;
    // The size table and the weight statistics follow the model (jobs of their own).
    auto ready = [&studio] { return studio->config()->sizes() && studio->document()->model()->weightsReady(); };
    for (int i = 0; i < 300 && !ready(); ++i)
        QTest::qWait(100);
    return ready() ? std::move(studio) : nullptr;
}

// Shows a panel built alone at a dock's size; false when it did not show.
inline bool showPanel(QWidget* panel, QSize size = QSize(620, 900))
{
    panel->resize(size);
    panel->show();
    return QTest::qWaitForWindowExposed(panel);
}

// nullptr when the window did not show or the model did not open within a minute.
inline std::unique_ptr<ui::MainWindow> openDemoWindow(const QString& testName)
{
    QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
    QCoreApplication::setApplicationName(testName);
    QSettings().clear();
    auto window = std::make_unique<ui::MainWindow>();
    window->resize(1500, 950);
    window->show();
    if (!QTest::qWaitForWindowExposed(window.get()))
        return nullptr;
    QSignalSpy opened(&window->studio(), &ui::Studio::modelOpened);
    window->studio().openModel(demoModelPath);
    if (!opened.wait(60000))
        return nullptr;
    auto ready = [&window] {
        return window->studio().config()->sizes() && window->studio().document()->model()->weightsReady();
    };
    for (int i = 0; i < 300 && !ready(); ++i)
        QTest::qWait(100);
    return ready() ? std::move(window) : nullptr;
}

class RecordingReporter : public ui::ErrorReporter {
public:
    void report(QWidget*, const QString& title, const QString& message) override
    {
        messages << title + QStringLiteral(": ") + message;
    }
    QStringList messages;
};

// openDemoWindow() with `dbPath` as its database (created) and a RecordingReporter
// (`errors`, owned by the window); nullptr when something did not open in time.
inline std::unique_ptr<ui::MainWindow> openStudio(const QString& testName, const QString& dbPath, RecordingReporter*& errors)
{
    auto window = openDemoWindow(testName);
    if (!window)
        return nullptr;
    errors = new RecordingReporter;
    window->studio().setErrorReporter(errors);
    QSignalSpy storeOpened(&window->studio(), &ui::Studio::storeOpened);
    window->studio().openStore(dbPath);
    if (!storeOpened.wait(20000))
        return nullptr;
    return window;
}

// Saves `w` as <QS_SCREENSHOT_DIR>/<name> once its layouts have settled; true when not asked for.
inline bool screenshot(QWidget* w, const QString& name)
{
    const QString dir = qEnvironmentVariable("QS_SCREENSHOT_DIR");
    if (dir.isEmpty())
        return true;
    QTest::qWait(50);
    return w->grab().save(dir + QLatin1Char('/') + name);
}

} // namespace qs::test
