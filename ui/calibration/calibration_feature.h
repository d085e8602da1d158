// The calibration feature in the window, installed by one call: Analyze > Calibration
// Diagnostics and its dialog. (Collecting activation statistics is the Studio's.)
#pragma once

#include <QObject>

class QAction;

namespace qs::ui {

class CalibDiagDialog;
class MainWindow;
class Studio;

class CalibrationFeature : public QObject {
    Q_OBJECT
public:
    static CalibrationFeature* install(MainWindow& window, Studio& studio);

    CalibDiagDialog* dialog() const { return dialog_; }

private:
    using QObject::QObject;

    CalibDiagDialog* dialog_ = nullptr;
};

} // namespace qs::ui
