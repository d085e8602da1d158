// The studio's first screen: layer table, graph and inspector around one open model,
// with the job area in the status bar. Owns the document and the job runner.
#pragma once

#include "ui/graph/graph_layout.h"

#include <QMainWindow>

#include <memory>

class QAction;
class QDockWidget;
class QLabel;
class QMenu;

namespace qs {
class Graph;
}

namespace qs::ui {

class ErrorReporter;
class GraphPanel;
class JobRunner;
class JobStatusWidget;
class InspectorPanel;
class LayerSelection;
class LayerTablePanel;
class ModelDocument;
class QuantConfigDocument;
class RunsController;
class SamplesPanel;
class SensitivityPanel;
class SensitivityAgreementPanel;
class CalibDiagDialog;
class ParetoPanel;
class PrecisionBoundaryOverlay;
class WhatIfController;
class WhatIfPanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    ModelDocument* document() const { return doc_; }
    JobRunner* jobs() const { return jobs_; }
    LayerTablePanel* layerPanel() const { return table_; }
    GraphPanel* graphPanel() const { return graph_; }
    InspectorPanel* inspector() const { return inspector_; }
    LayerSelection* selection() const { return selection_; }
    JobStatusWidget* jobStatus() const { return jobStatus_; }
    ErrorReporter* errorReporter() const { return errors_; }
    void setErrorReporter(ErrorReporter* reporter); // takes ownership
    QAction* calibrateAction() const { return calibrateAction_; }
    QuantConfigDocument* configDocument() const { return config_; }
    RunsController* runs() const { return runs_; } // quantize, runs panel, compare, export
    SensitivityPanel* sensitivityPanel() const { return sensitivity_; }
    QDockWidget* sensitivityDock() const { return sensitivityDock_; }
    ParetoPanel* paretoPanel() const { return pareto_; }
    QDockWidget* paretoDock() const { return paretoDock_; }
    WhatIfController* whatIf() const { return whatIf_; }
    WhatIfPanel* whatIfPanel() const { return whatIfPanel_; }
    SamplesPanel* samplesPanel() const { return samples_; }
    QDockWidget* samplesDock() const { return samplesDock_; }
    SensitivityAgreementPanel* agreementPanel() const { return agreement_; } // the sensitivity dock's Compare Metrics tab
    CalibDiagDialog* calibDiagDialog() const { return calibDiag_; }
    PrecisionBoundaryOverlay* boundaryOverlay() const { return boundaries_; }
    QAction* boundaryAction() const { return boundaryAction_; }

    // Each starts a job and returns its id (-1 when nothing was started).
    int openModel(const QString& path);
    int openGraph(std::shared_ptr<Graph> graph); // a model built in memory (benchmarks, tests)
    int runCalibration();
    QString calibrationDataLabel() const;
    QString calibrationDataSpec() const; // the chosen data, else the data beside the model, else random:64
    // Opens (creating if missing) the experiment store at `path`; on success it becomes
    // the remembered database. A failure leaves the previous one in place.
    int openStore(const QString& path);
    QString storePath() const { return storePath_; }
    QLabel* storeLabel() const { return storeLabel_; }

    // The bundled demo on first start, else the last model opened.
    void openStartupModel();
    // The database used last, else the default store if one exists; none otherwise.
    void openStartupStore();

signals:
    void modelOpened(const QString& path);
    void calibrationFinished(bool ok);
    void storeOpened(const QString& path);
    void storedResultsLoaded(); // the open model's runs in the open database reached the document

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createActions();
    void createMenus();
    void createDocks();
    void createQuantEditor(); // the bit-width configuration, its editor, undo and files
    void createRunsController(); // Quantize, the runs panel, Compare and Export
    void createSensitivityDock();
    void createParetoDock();
    void connectOutlierProfiling(); // the inspector's outlier panel runs on the calibration data
    void createWhatIf();
    void createSamplesDock(); // the samples behind the numbers; "Show divergent samples" on a layer row
    void createSensitivityAgreement(); // Compare Metrics: a tab beside the sweep in the sensitivity dock
    void createCalibDiagnostics();     // Analyze > Calibration Diagnostics
    void createPrecisionInterop(); // File > Import/Export Precision (ORT, TensorRT, rules, AIMET)
    void createLatencyViews(); // the Pareto panel's latency profile: its data, and boundaries on the graph
    void restoreSettings();
    void saveSettings();
    void addRecent(const QString& path);
    void rebuildRecentMenu();
    void chooseModel();
    void chooseData();
    void chooseStore();
    void loadStoredResults();
    void relayout(GraphDirection direction);
    void updateTitle();
    void updateSummary();
    void updateActions();
    LayoutStyle layoutStyle(GraphDirection direction) const;

    ModelDocument* doc_;
    JobRunner* jobs_;
    ErrorReporter* errors_;
    LayerTablePanel* table_;
    GraphPanel* graph_;
    InspectorPanel* inspector_;
    LayerSelection* selection_;
    JobStatusWidget* jobStatus_;
    QLabel* summary_;
    QLabel* storeLabel_;
    QDockWidget* tableDock_;
    QDockWidget* inspectorDock_;
    QuantConfigDocument* config_ = nullptr;
    RunsController* runs_ = nullptr;
    SensitivityPanel* sensitivity_ = nullptr;
    QDockWidget* sensitivityDock_ = nullptr;
    ParetoPanel* pareto_ = nullptr;
    QDockWidget* paretoDock_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QAction* openAction_ = nullptr;
    QAction* demoAction_ = nullptr;
    QAction* dataAction_ = nullptr;
    QAction* storeAction_ = nullptr;
    QAction* calibrateAction_ = nullptr;
    QAction* cancelAction_ = nullptr;
    QAction* quitAction_ = nullptr;
    QString dataPath_; // chosen calibration data; empty: the data beside the model
    QString storePath_; // the open experiment store; empty: none
    QByteArray defaultState_;
    WhatIfController* whatIf_ = nullptr;
    WhatIfPanel* whatIfPanel_ = nullptr;
    SamplesPanel* samples_ = nullptr;
    QDockWidget* samplesDock_ = nullptr;
    SensitivityAgreementPanel* agreement_ = nullptr;
    CalibDiagDialog* calibDiag_ = nullptr;
    PrecisionBoundaryOverlay* boundaries_ = nullptr;
    QAction* boundaryAction_ = nullptr;
};

} // namespace qs::ui
