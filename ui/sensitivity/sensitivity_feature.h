// The sensitivity feature in the window, installed by one call: a dock with the sweep
// and the metric comparison as two tabs, Analyze > Sensitivity Sweep and Compare
// Sensitivity Metrics, Run Sweep on Cluster (ClusterSweepDialog), and its View entry.
#pragma once

#include <QObject>

class QAction;
class QDockWidget;
class QTabWidget;

namespace qs::ui {

class ClusterSweepDialog;
class MainWindow;
class SensitivityAgreementPanel;
class SensitivityPanel;
class Studio;

class SensitivityFeature : public QObject {
    Q_OBJECT
public:
    static SensitivityFeature* install(MainWindow& window, Studio& studio);

    SensitivityPanel* panel() const { return panel_; }
    SensitivityAgreementPanel* agreement() const { return agreement_; } // the Compare Metrics tab
    QDockWidget* dock() const { return dock_; }
    QTabWidget* tabs() const { return tabs_; }
    ClusterSweepDialog* clusterDialog() const { return cluster_; } // made by Run Sweep on Cluster

private:
    using QObject::QObject;

    SensitivityPanel* panel_ = nullptr;
    SensitivityAgreementPanel* agreement_ = nullptr;
    QDockWidget* dock_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    ClusterSweepDialog* cluster_ = nullptr;
};

} // namespace qs::ui
