// The runs feature in the window, installed by one call: the Runs dock (a tab beside
// the layer table), the Compare view (a main view beside the graph), the Runs menu and
// the Quantize button,
// around the RunsController that does the work.
#pragma once

#include <QObject>

class QAction;
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
    QAction* compareAction() const { return compareAction_; }

private:
    using QObject::QObject;

    RunsController* controller_ = nullptr;
    QDockWidget* runsDock_ = nullptr;
    QAction* compareAction_ = nullptr;
};

} // namespace qs::ui
