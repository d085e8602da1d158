// The Pareto feature in the window, installed by one call: the Pareto dock and its View
// entry, and the precision boundaries its latency profile draws on the graph (View >
// Precision Boundaries on the Graph).
#pragma once

#include <QObject>

class QAction;
class QDockWidget;

namespace qs::ui {

class MainWindow;
class ParetoPanel;
class PrecisionBoundaryOverlay;
class Studio;

class ParetoFeature : public QObject {
    Q_OBJECT
public:
    static ParetoFeature* install(MainWindow& window, Studio& studio);

    ParetoPanel* panel() const { return panel_; }
    QDockWidget* dock() const { return dock_; }
    PrecisionBoundaryOverlay* boundaries() const { return boundaries_; }
    QAction* boundaryAction() const { return boundaryAction_; }

private:
    using QObject::QObject;

    ParetoPanel* panel_ = nullptr;
    QDockWidget* dock_ = nullptr;
    PrecisionBoundaryOverlay* boundaries_ = nullptr;
    QAction* boundaryAction_ = nullptr;
};

} // namespace qs::ui
