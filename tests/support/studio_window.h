// Shared by the GUI tests that drive the whole studio: a main window on the demo
// model with a fresh experiment store, shown offscreen, recording error reports
// instead of showing dialogs. QS_SCREENSHOT_DIR=<dir> lets them save PNGs.
#pragma once

#include "ui/error_reporter.h"
#include "ui/main_window.h"

#include <QCoreApplication>
#include <QSettings>
#include <QSignalSpy>
#include <QStringList>
#include <QTest>

#include <memory>

namespace qs::test {

inline QString demoModelFile()
{
    return QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
}

class RecordingReporter : public ui::ErrorReporter {
public:
    void report(QWidget*, const QString& title, const QString& message) override
    {
        messages << title + QStringLiteral(": ") + message;
    }
    QStringList messages;
};

// The window with the demo model open and `dbPath` as its database (created), or
// null when either did not open in time. Settings of `appName` start empty.
inline std::unique_ptr<ui::MainWindow> openStudio(const QString& appName, const QString& dbPath, RecordingReporter*& errors)
{
    QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
    QCoreApplication::setApplicationName(appName);
    QSettings().clear();
    auto window = std::make_unique<ui::MainWindow>();
    errors = new RecordingReporter;
    window->setErrorReporter(errors);
    window->resize(1600, 1000);
    window->show();
    if (!QTest::qWaitForWindowExposed(window.get()))
        return nullptr;
    QSignalSpy opened(window.get(), &ui::MainWindow::modelOpened);
    window->openModel(demoModelFile());
    if (!opened.wait(60000))
        return nullptr;
    QSignalSpy storeOpened(window.get(), &ui::MainWindow::storeOpened);
    window->openStore(dbPath);
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
