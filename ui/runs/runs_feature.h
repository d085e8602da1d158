// The runs feature in the window, installed by one call: the Runs dock (a tab beside
// the layer table), the Compare dock behind it, the Runs menu and the Quantize button,
// around the RunsController that does the work.
#pragma once

#include <QObject>

class QDockWidget;

namespace qs::ui {

class MainWindow;
class RunsController;
class Studio;

class RunsFeature : public QObject {
    Q_OBJECT
public:
    static RunsFeature* install(MainWindow& window, Studio& studio);

    RunsController* controller() const { return controller_; }
    QDockWidget* runsDock() const { return runsDock_; }
    QDockWidget* compareDock() const { return compareDock_; }

private:
    using QObject::QObject;

    RunsController* controller_ = nullptr;
    QDockWidget* runsDock_ = nullptr;
    QDockWidget* compareDock_ = nullptr;
};

} // namespace qs::ui
