// The training feature in the window, installed by one call: "Train (QAT)..." in the
// Runs menu (beside Quantize) and the toolbar, and the Training dock with the live view.
#pragma once

#include <QObject>

class QDockWidget;

namespace qs::ui {

class MainWindow;
class QatController;
class QatPanel;
class Studio;

class TrainFeature : public QObject {
    Q_OBJECT
public:
    static TrainFeature* install(MainWindow& window, Studio& studio);

    QatController* controller() const { return controller_; }
    QatPanel* panel() const { return panel_; }
    QDockWidget* dock() const { return dock_; }

private:
    using QObject::QObject;

    QatController* controller_ = nullptr;
    QatPanel* panel_ = nullptr;
    QDockWidget* dock_ = nullptr;
};

} // namespace qs::ui
