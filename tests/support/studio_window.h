// A studio window for GUI tests: fresh settings under the test's name, shown offscreen,
// with the bundled demo model open (and its size table counted).
#pragma once

#include "ui/main_window.h"
#include "ui/quant_config_document.h"

#include <QCoreApplication>
#include <QSettings>
#include <QSignalSpy>
#include <QTest>

#include <memory>

namespace qs::test {

inline const QString demoModelPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
inline const QString demoImagesPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz");

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
    QSignalSpy opened(window.get(), &ui::MainWindow::modelOpened);
    window->openModel(demoModelPath);
    if (!opened.wait(60000))
        return nullptr;
    for (int i = 0; i < 300 && !window->configDocument()->sizes(); ++i)
        QTest::qWait(100);
    return window->configDocument()->sizes() ? std::move(window) : nullptr;
}

} // namespace qs::test
