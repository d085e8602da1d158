#include "ui/main_window.h"

#include "ui/calibration/calib_diag_dialog.h"
#include "ui/document/app_paths.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/inspector/outlier_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/jobs/job_status_widget.h"
#include "ui/layers/config_footer.h"
#include "ui/layers/layer_filter_proxy.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/pareto/pareto_panel.h"
#include "ui/pareto/precision_boundary_overlay.h"
#include "ui/runs/runs_controller.h"
#include "ui/samples/samples_panel.h"
#include "ui/sensitivity/sensitivity_agreement_panel.h"
#include "ui/sensitivity/sensitivity_panel.h"
#include "ui/whatif/whatif_controller.h"
#include "ui/whatif/whatif_panel.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"
#include "ui/widgets/theme.h"

#include "analysis/bit_budget.h"
#include "analysis/sensitivity_record.h"
#include "data/dataset.h"
#include "store/store.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QThread>
#include <QToolBar>
#include <QUndoStack>

namespace qs::ui {
namespace {

constexpr int stateVersion = 1;
constexpr int maxRecent = 8;

bool isModelFile(const QString& path)
{
    return path.endsWith(QStringLiteral(".onnx"), Qt::CaseInsensitive);
}

} // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent)
{
    setObjectName(QStringLiteral("mainWindow"));
    setWindowIcon(icon(IconId::App));
    setAcceptDrops(true);
    setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);
    setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);
    setCorner(Qt::TopRightCorner, Qt::RightDockWidgetArea);

    doc_ = new ModelDocument(this);
    jobs_ = new JobRunner(this);
    errors_ = new ErrorReporter(this);

    table_ = new LayerTablePanel(doc_, this);
    selection_ = new LayerSelection(doc_, table_->proxy(), table_->view()->selectionModel(), this);
    connect(selection_, &LayerSelection::revealRequested, table_, &LayerTablePanel::clearFilters);
    graph_ = new GraphPanel(doc_, selection_, this);
    graph_->view()->setAcceptDrops(false); // drops of .onnx files go to the window
    inspector_ = new InspectorPanel(doc_, selection_, this);
    setCentralWidget(graph_);

    jobStatus_ = new JobStatusWidget(jobs_, this);
    summary_ = new QLabel(this);
    summary_->setObjectName(QStringLiteral("modelSummary"));
    summary_->setProperty("role", "muted");
    storeLabel_ = new QLabel(this);
    storeLabel_->setObjectName(QStringLiteral("storeLabel"));
    storeLabel_->setProperty("role", "muted");
    storeLabel_->setText(QStringLiteral("No database"));
    storeLabel_->setToolTip(QStringLiteral("No experiment database is open \u2014 File \u203A Open or Create Database"));
    statusBar()->addWidget(summary_, 1);
    statusBar()->addPermanentWidget(storeLabel_);
    statusBar()->addPermanentWidget(jobStatus_);
    statusBar()->setSizeGripEnabled(true);

    createActions();
    createDocks();
    createMenus();
    createQuantEditor();
    createRunsController();
    createSensitivityDock();
    createParetoDock();
    connectOutlierProfiling();
    createWhatIf();
    createSamplesDock();
    createSensitivityAgreement();
    createCalibDiagnostics();
    createLatencyViews();
    createPrecisionInterop();

    connect(inspector_, &InspectorPanel::calibrateRequested, this, &MainWindow::runCalibration);
    connect(graph_, &GraphPanel::directionChanged, this, &MainWindow::relayout);
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        // Work on the previous model is moot: stop it rather than let it finish unseen.
        jobs_->cancelKind(QStringLiteral("calibrate"));
        jobs_->cancelKind(QStringLiteral("layout"));
        updateTitle();
        updateSummary();
        updateActions();
    });
    connect(doc_, &ModelDocument::activationsChanged, this, &MainWindow::updateSummary);
    connect(jobs_, &JobRunner::jobStarted, this, &MainWindow::updateActions);
    connect(jobs_, &JobRunner::jobFinished, this, &MainWindow::updateActions);
    connect(jobs_, &JobRunner::jobFinished, this,
            [this](int, const QString& title, JobOutcome outcome, const QString& message) {
                if (outcome == JobOutcome::Failed)
                    errors_->report(this, title, message);
                if (title.startsWith(QStringLiteral("Calibrating")) && outcome != JobOutcome::Done)
                    emit calibrationFinished(false);
            });

    resize(1600, 1000);
    defaultState_ = saveState(stateVersion);
    restoreSettings();
    updateTitle();
    updateSummary();
    updateActions();
}

MainWindow::~MainWindow()
{
    jobs_->cancelAll();
}

void MainWindow::setErrorReporter(ErrorReporter* reporter)
{
    if (!reporter)
        return;
    reporter->setParent(this);
    if (errors_ != reporter)
        delete errors_;
    errors_ = reporter;
}

void MainWindow::createActions()
{
    openAction_ = new QAction(icon(IconId::Open), QStringLiteral("&Open Model\u2026"), this);
    openAction_->setShortcut(QKeySequence::Open);
    openAction_->setToolTip(QStringLiteral("Open an ONNX model (Ctrl+O); you can also drop .onnx files on the window"));
    connect(openAction_, &QAction::triggered, this, &MainWindow::chooseModel);

    demoAction_ = new QAction(icon(IconId::Demo), QStringLiteral("Open &Demo Model"), this);
    demoAction_->setToolTip(QStringLiteral("The bundled Fashion-MNIST CNN with 1,000 calibration images"));
    connect(demoAction_, &QAction::triggered, this, [this] { openModel(demoModelPath()); });

    dataAction_ = new QAction(icon(IconId::Data), QStringLiteral("Calibration &Data\u2026"), this);
    dataAction_->setToolTip(QStringLiteral("Choose the images (IDX) or arrays (NPY) calibration runs on"));
    connect(dataAction_, &QAction::triggered, this, &MainWindow::chooseData);

    storeAction_ = new QAction(icon(IconId::Data), QStringLiteral("Open or Create Data&base\u2026"), this);
    storeAction_->setObjectName(QStringLiteral("storeAction"));
    storeAction_->setToolTip(QStringLiteral("The SQLite experiment store runs are recorded in; remembered for the next start"));
    connect(storeAction_, &QAction::triggered, this, &MainWindow::chooseStore);

    calibrateAction_ = new QAction(icon(IconId::Calibrate), QStringLiteral("&Collect Activation Statistics"), this);
    calibrateAction_->setObjectName(QStringLiteral("calibrateAction"));
    calibrateAction_->setIconText(QStringLiteral("Calibrate"));
    calibrateAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
    connect(calibrateAction_, &QAction::triggered, this, &MainWindow::runCalibration);

    cancelAction_ = new QAction(icon(IconId::Cancel), QStringLiteral("Cancel &Job"), this);
    cancelAction_->setShortcut(QKeySequence(Qt::Key_Escape));
    cancelAction_->setShortcutContext(Qt::WindowShortcut);
    connect(cancelAction_, &QAction::triggered, jobs_, [this] {
        const QList<int> running = jobs_->runningIds();
        if (!running.isEmpty())
            jobs_->cancel(running.back());
    });

    quitAction_ = new QAction(QStringLiteral("&Quit"), this);
    quitAction_->setShortcut(QKeySequence::Quit);
    connect(quitAction_, &QAction::triggered, this, &QWidget::close);
}

void MainWindow::createWhatIf()
{
    whatIf_ = new WhatIfController(doc_, jobs_, [this] { return calibrationDataSpec(); }, config_, this);
    whatIfPanel_ = new WhatIfPanel(doc_, whatIf_, inspector_);
    inspector_->addPanel(whatIfPanel_);
}

void MainWindow::createSamplesDock()
{
    samples_ = new SamplesPanel(doc_, config_, selection_, jobs_, this);
    samples_->setDataSpec([this] { return calibrationDataSpec(); });
    samplesDock_ = new QDockWidget(QStringLiteral("Samples"), this);
    samplesDock_->setObjectName(QStringLiteral("samplesDock"));
    samplesDock_->setWidget(samples_);
    samplesDock_->setFeatures(tableDock_->features());
    addDockWidget(Qt::RightDockWidgetArea, samplesDock_);
    tabifyDockWidget(sensitivityDock_, samplesDock_);
    inspectorDock_->raise();
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&View"))
            a->menu()->insertAction(inspectorDock_->toggleViewAction(), samplesDock_->toggleViewAction());
    table_->addRowAction(QStringLiteral("Show divergent samples"), [this](int row) {
        samplesDock_->show();
        samplesDock_->raise();
        samples_->showDivergent(row);
    });
}

void MainWindow::createSensitivityAgreement()
{
    agreement_ = new SensitivityAgreementPanel(doc_, config_, selection_, jobs_, this);
    agreement_->setDataSpec([this] { return calibrationDataSpec(); });
    agreement_->setStorePath([this] { return storePath_; });
    // The sweep and the metric comparison share the dock as two tabs.
    auto* tabs = new QTabWidget(sensitivityDock_);
    tabs->setObjectName(QStringLiteral("sensitivityTabs"));
    tabs->setDocumentMode(true);
    tabs->addTab(sensitivity_, QStringLiteral("Sweep"));
    tabs->addTab(agreement_, QStringLiteral("Compare Metrics"));
    sensitivityDock_->setWidget(tabs);

    QAction* compare = new QAction(QStringLiteral("Compare Sensitivity &Metrics"), this);
    compare->setObjectName(QStringLiteral("compareMetricsAction"));
    compare->setToolTip(QStringLiteral("One-shot KL, local SQNR, Hessian and kurtosis per layer with 95% intervals, and "
                                       "how far they agree"));
    connect(compare, &QAction::triggered, this, [this, tabs] {
        sensitivityDock_->show();
        sensitivityDock_->raise();
        tabs->setCurrentWidget(agreement_);
        agreement_->start();
    });
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&Analyze"))
            a->menu()->insertAction(cancelAction_, compare);
}

void MainWindow::createCalibDiagnostics()
{
    calibDiag_ = new CalibDiagDialog(doc_, jobs_, this);
    calibDiag_->setDataSpec([this] { return calibrationDataSpec(); });
    QAction* diag = new QAction(QStringLiteral("Calibration &Diagnostics\u2026"), this);
    diag->setObjectName(QStringLiteral("calibDiagAction"));
    diag->setToolTip(QStringLiteral("How many calibration samples the ranges need, and whether the calibration data "
                                    "look like the evaluation data"));
    connect(diag, &QAction::triggered, this, [this] {
        calibDiag_->show();
        calibDiag_->raise();
        calibDiag_->activateWindow();
    });
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&Analyze"))
            a->menu()->insertAction(cancelAction_, diag);
}

void MainWindow::createDocks()
{
    tableDock_ = new QDockWidget(QStringLiteral("Layers"), this);
    tableDock_->setObjectName(QStringLiteral("layersDock"));
    tableDock_->setWidget(table_);
    tableDock_->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable |
                            QDockWidget::DockWidgetClosable);
    addDockWidget(Qt::BottomDockWidgetArea, tableDock_);

    inspectorDock_ = new QDockWidget(QStringLiteral("Inspector"), this);
    inspectorDock_->setObjectName(QStringLiteral("inspectorDock"));
    inspectorDock_->setWidget(inspector_);
    inspectorDock_->setFeatures(tableDock_->features());
    addDockWidget(Qt::RightDockWidgetArea, inspectorDock_);
    resizeDocks({inspectorDock_}, {610}, Qt::Horizontal);
    resizeDocks({tableDock_}, {340}, Qt::Vertical);

    auto* bar = addToolBar(QStringLiteral("Main"));
    bar->setObjectName(QStringLiteral("mainToolBar"));
    bar->setMovable(false);
    bar->setIconSize(QSize(20, 20));
    bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    bar->addAction(openAction_);
    bar->addAction(demoAction_);
    bar->addSeparator();
    bar->addAction(dataAction_);
    bar->addAction(calibrateAction_);
}

void MainWindow::createQuantEditor()
{
    config_ = new QuantConfigDocument(doc_, this);
    table_->setConfigDocument(config_);
    table_->addFooter(new ConfigFooter(config_, table_));
    // Sizes need the working graph (BatchNorm folded): a job per model.
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        const auto model = doc_->model();
        if (!model)
            return;
        QPointer<MainWindow> self(this);
        const int generation = doc_->generation();
        jobs_->start(QStringLiteral("sizes"), QStringLiteral("Counting stored sizes"),
                     [self, model, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                         auto sizes = std::make_shared<const ModelSizeTable>(modelSizeTable(*model->graph));
                         return [self, sizes, generation] {
                             if (self && self->doc_->generation() == generation)
                                 self->config_->setSizes(sizes);
                         };
                     });
    });

    QMenu* file = nullptr;
    QMenu* edit = nullptr;
    for (QAction* a : menuBar()->actions()) {
        if (a->menu() && a->text() == QStringLiteral("&File"))
            file = a->menu();
        if (a->menu() && a->text() == QStringLiteral("&Edit"))
            edit = a->menu();
    }
    QAction* undo = config_->undoStack()->createUndoAction(this, QStringLiteral("&Undo"));
    undo->setObjectName(QStringLiteral("undoAction"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = config_->undoStack()->createRedoAction(this, QStringLiteral("&Redo"));
    redo->setObjectName(QStringLiteral("redoAction"));
    redo->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence::Redo});
    QAction* first = edit->actions().value(0);
    edit->insertAction(first, undo);
    edit->insertAction(first, redo);
    QMenu* presets = new QMenu(QStringLiteral("Bit-width &Preset"), edit);
    using Preset = QuantConfigDocument::Preset;
    for (Preset p : {Preset::All8, Preset::W4A8, Preset::KeepEnds8})
        connect(presets->addAction(QuantConfigDocument::presetName(p)), &QAction::triggered, config_,
                [this, p] { config_->applyPreset(p); });
    edit->insertMenu(first, presets);
    edit->insertSeparator(first);

    auto* save = new QAction(QStringLiteral("&Save Bit Configuration…"), this);
    save->setObjectName(QStringLiteral("saveConfigAction"));
    save->setShortcut(QKeySequence::Save);
    save->setToolTip(QStringLiteral("The per-layer bits as JSON, for quantstudio-cli quantize --config"));
    connect(save, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Save bit configuration"),
                                                          QSettings().value(QStringLiteral("config/lastPath")).toString(),
                                                          QStringLiteral("Quantization configs (*.json)"));
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("config/lastPath"), path);
        if (!config_->save(path))
            errors_->report(this, QStringLiteral("Saving the configuration"), config_->lastError());
    });
    auto* load = new QAction(QStringLiteral("&Load Bit Configuration…"), this);
    load->setObjectName(QStringLiteral("loadConfigAction"));
    connect(load, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Load bit configuration"),
                                                          QSettings().value(QStringLiteral("config/lastPath")).toString(),
                                                          QStringLiteral("Quantization configs (*.json);;All files (*)"));
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("config/lastPath"), path);
        if (!config_->load(path))
            errors_->report(this, QStringLiteral("Loading the configuration"), config_->lastError());
    });
    file->insertAction(quitAction_, save);
    file->insertAction(quitAction_, load);
    file->insertSeparator(quitAction_);
}

void MainWindow::createPrecisionInterop()
{
    // One file-dialog filter per format; the chosen filter says how to read or write.
    struct Format {
        PrecisionFormat format;
        QString filter;
        bool exports;
    };
    const QList<Format> formats = {
        {PrecisionFormat::Ort, QStringLiteral("ONNX Runtime TensorQuantOverrides (*.json)"), true},
        {PrecisionFormat::Trt, QStringLiteral("TensorRT --layerPrecisions (*.txt)"), true},
        {PrecisionFormat::Rules, QStringLiteral("Regex rules, pattern=type lines (*.txt *.rules)"), true},
        {PrecisionFormat::Aimet, QStringLiteral("AIMET encodings 0.6.1 (*.encodings *.json)"), false},
        {PrecisionFormat::Aimet1, QStringLiteral("AIMET encodings 1.0.0 (*.encodings *.json)"), false},
    };
    auto filters = [formats](bool exporting) {
        QStringList out;
        for (const auto& f : formats)
            if (f.exports || !exporting)
                out << f.filter;
        return out.join(QStringLiteral(";;"));
    };
    auto formatOf = [formats](const QString& filter) {
        for (const auto& f : formats)
            if (f.filter == filter)
                return f.format;
        return PrecisionFormat::Ort;
    };
    auto reportNotes = [this](const QString& what, const QStringList& notes) {
        const QString text = notes.isEmpty() ? what
                                             : QStringLiteral("%1 (%2 notes: %3)")
                                                   .arg(what)
                                                   .arg(notes.size())
                                                   .arg(notes.join(QStringLiteral("; ")));
        statusBar()->showMessage(text, 10000);
    };
    auto* import = new QAction(QStringLiteral("&Import Precision…"), this);
    import->setObjectName(QStringLiteral("importPrecisionAction"));
    import->setToolTip(QStringLiteral("Per-layer precision from ONNX Runtime, TensorRT, AIMET or a rule list"));
    connect(import, &QAction::triggered, this, [this, filters, formatOf, reportNotes] {
        QString filter;
        const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Import precision"),
            QSettings().value(QStringLiteral("precision/lastPath")).toString(), filters(false), &filter);
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("precision/lastPath"), path);
        QStringList notes;
        if (!config_->importPrecision(path, formatOf(filter), &notes))
            errors_->report(this, QStringLiteral("Importing precision settings"), config_->lastError());
        else
            reportNotes(QStringLiteral("Imported %1").arg(path.section(QLatin1Char('/'), -1)), notes);
    });
    auto* exportAction = new QAction(QStringLiteral("E&xport Precision…"), this);
    exportAction->setObjectName(QStringLiteral("exportPrecisionAction"));
    exportAction->setToolTip(QStringLiteral("The per-layer precision as ONNX Runtime overrides, TensorRT flags or rules"));
    connect(exportAction, &QAction::triggered, this, [this, filters, formatOf, reportNotes] {
        QString filter;
        const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Export precision"),
            QSettings().value(QStringLiteral("precision/lastPath")).toString(), filters(true), &filter);
        if (path.isEmpty())
            return;
        QSettings().setValue(QStringLiteral("precision/lastPath"), path);
        QStringList notes;
        if (!config_->exportPrecision(path, formatOf(filter), &notes))
            errors_->report(this, QStringLiteral("Exporting precision settings"), config_->lastError());
        else
            reportNotes(QStringLiteral("Exported %1").arg(path.section(QLatin1Char('/'), -1)), notes);
    });
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&File")) {
            a->menu()->insertAction(quitAction_, import);
            a->menu()->insertAction(quitAction_, exportAction);
            a->menu()->insertSeparator(quitAction_);
        }
}

void MainWindow::createRunsController()
{
    runs_ = new RunsController(this);
}

void MainWindow::createSensitivityDock()
{
    sensitivity_ = new SensitivityPanel(doc_, config_, selection_, jobs_, this);
    sensitivity_->setDataSpec([this] { return calibrationDataSpec(); });
    sensitivity_->setStorePath([this] { return storePath_; });
    sensitivityDock_ = new QDockWidget(QStringLiteral("Sensitivity"), this);
    sensitivityDock_->setObjectName(QStringLiteral("sensitivityDock"));
    sensitivityDock_->setWidget(sensitivity_);
    sensitivityDock_->setFeatures(tableDock_->features());
    addDockWidget(Qt::RightDockWidgetArea, sensitivityDock_);
    tabifyDockWidget(inspectorDock_, sensitivityDock_);
    inspectorDock_->raise();

    QAction* sweep = new QAction(QStringLiteral("&Sensitivity Sweep"), this);
    sweep->setObjectName(QStringLiteral("sensitivityAction"));
    sweep->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
    sweep->setToolTip(QStringLiteral("Quantize each layer alone at each bit width and measure the loss (Ctrl+Shift+R)"));
    connect(sweep, &QAction::triggered, this, [this] {
        sensitivityDock_->show();
        sensitivityDock_->raise();
        sensitivity_->startSweep();
    });
    for (QAction* a : menuBar()->actions()) {
        if (a->menu() && a->text() == QStringLiteral("&Analyze"))
            a->menu()->insertAction(cancelAction_, sweep);
        if (a->menu() && a->text() == QStringLiteral("&View"))
            a->menu()->insertAction(inspectorDock_->toggleViewAction(), sensitivityDock_->toggleViewAction());
    }
    // A recorded sweep is the table's Sensitivity column now.
    connect(sensitivity_, &SensitivityPanel::sweepFinished, this, [this] { loadStoredResults(); });
    // The latest stored sweep of this model feeds the editor's prediction until a new one runs.
    connect(this, &MainWindow::storedResultsLoaded, this, [this] {
        const auto stored = doc_->stored();
        if (!stored || !stored->sensitivityRun || config_->sensitivity() || sensitivity_->isRunning())
            return;
        const QString store = stored->storePath;
        const int64_t run = stored->sensitivityRun;
        const int generation = doc_->generation();
        QPointer<MainWindow> self(this);
        jobs_->start(QStringLiteral("stored-sensitivity"), QStringLiteral("Reading sensitivity run #%1").arg(run),
                     [self, store, run, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                         StoreOptions options;
                         options.mode = OpenMode::ReadOnly;
                         auto result = std::make_shared<const SensitivityResult>(
                             loadSensitivityRun(Store::open(store.toStdString(), options), run));
                         return [self, result, generation] {
                             if (self && self->doc_->generation() == generation && !self->config_->sensitivity())
                                 self->config_->setSensitivity(result);
                         };
                     });
    });
}

void MainWindow::createParetoDock()
{
    pareto_ = new ParetoPanel(doc_, config_, jobs_, this);
    pareto_->setStorePath([this] { return storePath_; });
    paretoDock_ = new QDockWidget(QStringLiteral("Pareto"), this);
    paretoDock_->setObjectName(QStringLiteral("paretoDock"));
    paretoDock_->setWidget(pareto_);
    paretoDock_->setFeatures(tableDock_->features());
    addDockWidget(Qt::RightDockWidgetArea, paretoDock_);
    tabifyDockWidget(sensitivityDock_, paretoDock_);
    inspectorDock_->raise();
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&View"))
            a->menu()->insertAction(inspectorDock_->toggleViewAction(), paretoDock_->toggleViewAction());
    connect(this, &MainWindow::storedResultsLoaded, pareto_, &ParetoPanel::reloadMeasured);
}

void MainWindow::createLatencyViews()
{
    pareto_->setDataSpec([this] { return calibrationDataSpec(); });
    boundaries_ = new PrecisionBoundaryOverlay(graph_->view(), doc_, config_, this);
    connect(pareto_, &ParetoPanel::latencyProfileChanged, boundaries_,
            [this] { boundaries_->setProfile(pareto_->latencyProfile(), pareto_->latencyLinks()); });
    boundaryAction_ = new QAction(QStringLiteral("Precision &Boundaries on the Graph"), this);
    boundaryAction_->setObjectName(QStringLiteral("boundaryAction"));
    boundaryAction_->setCheckable(true);
    boundaryAction_->setChecked(boundaries_->isEnabled());
    boundaryAction_->setToolTip(QStringLiteral("Mark where the configuration quantizes into or dequantizes out of INT8, "
                                               "with each crossing's measured cost (needs the latency profile)"));
    connect(boundaryAction_, &QAction::toggled, boundaries_, &PrecisionBoundaryOverlay::setEnabled);
    connect(boundaryAction_, &QAction::triggered, this, [this](bool on) {
        if (on && !pareto_->latencyProfile() && !pareto_->isMeasuring())
            pareto_->requestProfile(); // the marks need it; the Pareto panel keeps it
    });
    for (QAction* a : menuBar()->actions())
        if (a->menu() && a->text() == QStringLiteral("&View")) {
            a->menu()->addSeparator();
            a->menu()->addAction(boundaryAction_);
        }
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(QStringLiteral("&File"));
    file->addAction(openAction_);
    recentMenu_ = file->addMenu(QStringLiteral("Open &Recent"));
    file->addAction(demoAction_);
    file->addSeparator();
    file->addAction(dataAction_);
    file->addAction(storeAction_);
    file->addSeparator();
    file->addAction(quitAction_);
    rebuildRecentMenu();

    QMenu* edit = menuBar()->addMenu(QStringLiteral("&Edit"));
    QAction* copyTable = edit->addAction(icon(IconId::Copy), QStringLiteral("&Copy Layer Table"));
    copyTable->setObjectName(QStringLiteral("copyTableAction"));
    copyTable->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    copyTable->setToolTip(QStringLiteral("The rows shown, as tab-separated text for a spreadsheet"));
    connect(copyTable, &QAction::triggered, table_, &LayerTablePanel::copyToClipboard);

    QMenu* view = menuBar()->addMenu(QStringLiteral("&View"));
    QAction* find = view->addAction(icon(IconId::Search), QStringLiteral("&Find Layer"));
    find->setShortcut(QKeySequence::Find);
    connect(find, &QAction::triggered, this, [this] {
        tableDock_->show();
        table_->nameFilter()->setFocus();
        table_->nameFilter()->selectAll();
    });
    view->addSeparator();
    QAction* zoomIn = view->addAction(icon(IconId::ZoomIn), QStringLiteral("Zoom &In"));
    zoomIn->setShortcuts({QKeySequence::ZoomIn, QKeySequence(Qt::CTRL | Qt::Key_Equal)});
    connect(zoomIn, &QAction::triggered, graph_->view(), &GraphView::zoomIn);
    QAction* zoomOut = view->addAction(icon(IconId::ZoomOut), QStringLiteral("Zoom &Out"));
    zoomOut->setShortcut(QKeySequence::ZoomOut);
    connect(zoomOut, &QAction::triggered, graph_->view(), &GraphView::zoomOut);
    QAction* fit = view->addAction(icon(IconId::Fit), QStringLiteral("&Fit Graph"));
    fit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
    connect(fit, &QAction::triggered, graph_->view(), &GraphView::fitGraph);
    view->addSeparator();
    view->addAction(tableDock_->toggleViewAction());
    view->addAction(inspectorDock_->toggleViewAction());
    QAction* full = view->addAction(QStringLiteral("F&ull Screen"));
    full->setShortcut(QKeySequence::FullScreen);
    full->setCheckable(true);
    connect(full, &QAction::toggled, this, [this](bool on) { on ? showFullScreen() : showNormal(); });
    QAction* reset = view->addAction(QStringLiteral("&Reset Layout"));
    connect(reset, &QAction::triggered, this, [this] {
        restoreState(defaultState_, stateVersion);
        tableDock_->show();
        inspectorDock_->show();
    });

    QMenu* analyze = menuBar()->addMenu(QStringLiteral("&Analyze"));
    analyze->addAction(calibrateAction_);
    analyze->addAction(cancelAction_);

    QMenu* help = menuBar()->addMenu(QStringLiteral("&Help"));
    connect(help->addAction(QStringLiteral("&About QuantStudio")), &QAction::triggered, this, [this] {
        QMessageBox::about(this, QStringLiteral("About QuantStudio"),
                           QStringLiteral("<b>QuantStudio %1</b><p>A studio for neural-network quantization "
                                          "experiments: inspect a model, measure what quantization costs each "
                                          "layer, choose bits, export.</p>")
                               .arg(QCoreApplication::applicationVersion()));
    });
}

LayoutStyle MainWindow::layoutStyle(GraphDirection direction) const
{
    LayoutStyle s;
    s.direction = direction;
    s.titleFont = theme::graphTitleFont();
    s.textFont = theme::graphTextFont();
    return s;
}

int MainWindow::openModel(const QString& path)
{
    const QString name = QFileInfo(path).fileName();
    const LayoutStyle style = layoutStyle(graph_->direction());
    QPointer<MainWindow> self(this);
    return jobs_->start(QStringLiteral("model"), QStringLiteral("Opening %1").arg(name),
                        [self, path, style](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
                            Progress load = progress.sub(0, 0.85);
                            auto data = loadModelData(path, load, cancel);
                            progress.sub(0.85, 1).report(0, "laying out the graph");
                            auto layout = std::make_shared<GraphLayout>(layoutGraph(*data->graph, style));
                            cancel.check();
                            return [self, data, layout, path] {
                                if (!self)
                                    return;
                                self->doc_->setModel(data, layout);
                                self->addRecent(path);
                                if (self->doc_->layerCount() > 0)
                                    self->selection_->selectLayer(0);
                                emit self->modelOpened(path);
                                self->loadStoredResults();
                            };
                        });
}

int MainWindow::openGraph(std::shared_ptr<Graph> graph)
{
    const LayoutStyle style = layoutStyle(graph_->direction());
    QPointer<MainWindow> self(this);
    return jobs_->start(QStringLiteral("model"), QStringLiteral("Opening %1").arg(QString::fromStdString(graph->name)),
                        [self, graph, style](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
                            Progress build = progress.sub(0, 0.85);
                            auto data = buildModelData(*graph, build, cancel);
                            auto layout = std::make_shared<GraphLayout>(layoutGraph(*data->graph, style));
                            return [self, data, layout] {
                                if (!self)
                                    return;
                                self->doc_->setModel(data, layout);
                                if (self->doc_->layerCount() > 0)
                                    self->selection_->selectLayer(0);
                                emit self->modelOpened(QString());
                            };
                        });
}

void MainWindow::relayout(GraphDirection direction)
{
    const auto model = doc_->model();
    if (!model)
        return;
    const LayoutStyle style = layoutStyle(direction);
    QPointer<MainWindow> self(this);
    const int generation = doc_->generation();
    jobs_->start(QStringLiteral("layout"), QStringLiteral("Laying out the graph"),
                 [self, model, style, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     auto layout = std::make_shared<GraphLayout>(layoutGraph(*model->graph, style));
                     return [self, layout, generation] {
                         if (self && self->doc_->generation() == generation)
                             self->doc_->setLayout(layout);
                     };
                 });
}

void MainWindow::connectOutlierProfiling()
{
    inspector_->outlierPanel()->setJobSource(jobs_, [this] { return calibrationDataSpec(); });
    connect(doc_, &ModelDocument::modelChanged, this, [this] { jobs_->cancelKind(QStringLiteral("outliers")); });
}

QString MainWindow::calibrationDataSpec() const
{
    if (!dataPath_.isEmpty())
        return dataPath_;
    if (doc_->model() && !doc_->model()->path.isEmpty()) {
        const QString beside = dataBesideModel(doc_->model()->path);
        if (!beside.isEmpty())
            return beside;
    }
    return QStringLiteral("random:64");
}

QString MainWindow::calibrationDataLabel() const
{
    const QString spec = calibrationDataSpec();
    if (spec.startsWith(QStringLiteral("random:")))
        return QStringLiteral("%1 random inputs").arg(spec.mid(7));
    return QFileInfo(spec).fileName();
}

int MainWindow::runCalibration()
{
    const auto model = doc_->model();
    if (!model)
        return -1;
    const std::string spec = calibrationDataSpec().toStdString();
    const QString label = calibrationDataLabel();
    const int generation = doc_->generation();
    QPointer<MainWindow> self(this);
    return jobs_->start(
        QStringLiteral("calibrate"), QStringLiteral("Calibrating on %1").arg(label),
        [self, model, spec, label, generation](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            QElapsedTimer clock;
            clock.start();
            progress.report(0, "loading data");
            DataOptions options;
            options.spec = spec;
            const Dataset data = loadDataset(options, *model->graph);
            cancel.check();
            Progress run = progress.sub(0.05, 1);
            auto result = std::make_shared<ActivationData>();
            ProfileOptions profile;
            // One core stays free for the GUI thread: the event loop stays smooth and
            // Cancel is seen sooner on small machines (2 cores: 30 ms vs 60 ms stalls,
            // 0.3 s vs 0.7 s to stop); on 8 cores it costs an eighth of the speed.
            profile.threads = std::max(1, QThread::idealThreadCount() - 1);
            result->profiles = profileActivations(*model->graph, data, profile, run, cancel);
            result->dataLabel = QStringLiteral("%1 (%2 samples)").arg(label).arg(data.count());
            result->samples = data.count();
            result->seconds = double(clock.nsecsElapsed()) * 1e-9;
            return [self, result, generation] {
                if (!self || self->doc_->generation() != generation)
                    return;
                self->doc_->setActivations(result);
                emit self->calibrationFinished(true);
            };
        });
}

void MainWindow::chooseModel()
{
    QSettings settings;
    const QString dir = settings.value(QStringLiteral("files/lastDir"), QDir::homePath()).toString();
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Open model"), dir,
                                                      QStringLiteral("ONNX models (*.onnx);;All files (*)"));
    if (path.isEmpty())
        return;
    settings.setValue(QStringLiteral("files/lastDir"), QFileInfo(path).absolutePath());
    openModel(path);
}

void MainWindow::chooseData()
{
    const QString start = dataPath_.isEmpty() ? QFileInfo(calibrationDataSpec()).absolutePath() : dataPath_;
    const QString path = QFileDialog::getOpenFileName(
        this, QStringLiteral("Calibration data"), start,
        QStringLiteral("Images and arrays (*idx3-ubyte *idx3-ubyte.gz *.npy);;All files (*)"));
    if (path.isEmpty())
        return;
    dataPath_ = path;
    QSettings().setValue(QStringLiteral("data/path"), dataPath_);
    updateSummary();
}

int MainWindow::openStore(const QString& path)
{
    const QString abs = QFileInfo(path).absoluteFilePath();
    QPointer<MainWindow> self(this);
    return jobs_->start(
        QStringLiteral("store"), QStringLiteral("Opening database %1").arg(QFileInfo(abs).fileName()),
        [self, abs](Progress& progress, const CancelToken&) -> JobRunner::Deliver {
            progress.report(0, "opening");
            // A Store is one SQLite connection per thread: this one only checks the file
            // and counts what it holds; views that read runs open their own.
            const Store store = Store::open(abs.toStdString());
            const auto runs = int64_t(store.runs().size());
            const auto models = int64_t(store.models().size());
            const int schema = store.schemaVersion();
            return [self, abs, runs, models, schema] {
                if (!self)
                    return;
                self->storePath_ = abs;
                QSettings().setValue(QStringLiteral("store/path"), abs);
                self->storeLabel_->setText(QStringLiteral("%1 \u00B7 %2 %3")
                                              .arg(QFileInfo(abs).fileName())
                                              .arg(runs)
                                              .arg(runs == 1 ? QStringLiteral("run") : QStringLiteral("runs")));
                self->storeLabel_->setToolTip(QStringLiteral("Experiment database %1\n%2 runs of %3 models, schema v%4")
                                                  .arg(QDir::toNativeSeparators(abs))
                                                  .arg(runs)
                                                  .arg(models)
                                                  .arg(schema));
                emit self->storeOpened(abs);
                self->loadStoredResults();
            };
        });
}

void MainWindow::loadStoredResults()
{
    const auto model = doc_->model();
    if (!model || model->path.isEmpty() || storePath_.isEmpty())
        return;
    const QString store = storePath_, path = model->path;
    const int generation = doc_->generation();
    QPointer<MainWindow> self(this);
    jobs_->start(QStringLiteral("stored"), QStringLiteral("Reading stored runs of %1").arg(model->displayName()),
                 [self, store, path, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     auto stored = ::qs::ui::loadStoredResults(store, path);
                     return [self, stored, generation] {
                         if (!self || self->doc_->generation() != generation || self->storePath_ != stored->storePath)
                             return;
                         self->doc_->setStored(stored);
                         emit self->storedResultsLoaded();
                     };
                 });
}

void MainWindow::chooseStore()
{
    const QString start = storePath_.isEmpty() ? QString::fromStdString(defaultStorePath()) : storePath_;
    // A save dialog, so that a new name creates a database; an existing one is opened, not replaced.
    const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Open or create database"), start,
                                                      QStringLiteral("QuantStudio databases (*.db);;All files (*)"),
                                                      nullptr, QFileDialog::DontConfirmOverwrite);
    if (!path.isEmpty())
        openStore(path);
}

void MainWindow::openStartupStore()
{
    const QString last = QSettings().value(QStringLiteral("store/path")).toString();
    const QString fallback = QString::fromStdString(defaultStorePath());
    if (!last.isEmpty() && QFileInfo::exists(last))
        openStore(last);
    else if (QFileInfo::exists(fallback))
        openStore(fallback);
}

void MainWindow::openStartupModel()
{
    QSettings settings;
    const QString last = settings.value(QStringLiteral("files/lastModel")).toString();
    if (!last.isEmpty() && QFileInfo::exists(last))
        openModel(last);
    else if (QFileInfo::exists(demoModelPath()))
        openModel(demoModelPath());
}

void MainWindow::addRecent(const QString& path)
{
    if (path.isEmpty())
        return;
    const QString abs = QFileInfo(path).absoluteFilePath();
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("files/recent")).toStringList();
    recent.removeAll(abs);
    recent.prepend(abs);
    while (recent.size() > maxRecent)
        recent.removeLast();
    settings.setValue(QStringLiteral("files/recent"), recent);
    settings.setValue(QStringLiteral("files/lastModel"), abs);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu()
{
    recentMenu_->clear();
    const QStringList recent = QSettings().value(QStringLiteral("files/recent")).toStringList();
    int n = 0;
    for (const QString& path : recent) {
        QAction* a = recentMenu_->addAction(QStringLiteral("&%1  %2").arg(++n).arg(QFileInfo(path).fileName()));
        a->setToolTip(path);
        a->setStatusTip(path);
        connect(a, &QAction::triggered, this, [this, path] { openModel(path); });
    }
    if (recent.isEmpty())
        recentMenu_->addAction(QStringLiteral("No recent models"))->setEnabled(false);
    recentMenu_->addSeparator();
    QAction* clear = recentMenu_->addAction(QStringLiteral("Clear Recent"));
    clear->setEnabled(!recent.isEmpty());
    connect(clear, &QAction::triggered, this, [this] {
        QSettings().remove(QStringLiteral("files/recent"));
        rebuildRecentMenu();
    });
}

void MainWindow::updateTitle()
{
    const auto& m = doc_->model();
    setWindowTitle(m ? QStringLiteral("%1 \u2014 QuantStudio").arg(m->displayName()) : QStringLiteral("QuantStudio"));
    if (m && !m->path.isEmpty())
        setWindowFilePath(m->path);
}

void MainWindow::updateSummary()
{
    const auto& m = doc_->model();
    if (!m) {
        summary_->setText(QStringLiteral("No model open \u2014 File \u203A Open (Ctrl+O), or drop an .onnx file here"));
        return;
    }
    const Graph& g = *m->graph;
    QString text = QStringLiteral("%1 \u00B7 opset %2 \u00B7 %3 \u00B7 %4 \u00B7 %5 parameters")
                       .arg(m->displayName())
                       .arg(g.opset(""))
                       .arg(countOf(int64_t(g.nodes.size()), QStringLiteral("operator"), QStringLiteral("operators")),
                            countOf(int64_t(m->layers.size()), QStringLiteral("layer"), QStringLiteral("layers")))
                       .arg(formatCompact(double(m->totalParams)));
    if (g.fileBytes > 0)
        text += QStringLiteral(" \u00B7 %1").arg(formatBytes(g.fileBytes));
    if (const auto& a = doc_->activations())
        text += QStringLiteral(" \u00B7 calibrated on %1").arg(a->dataLabel);
    else
        text += QStringLiteral(" \u00B7 calibration data: %1").arg(calibrationDataLabel());
    if (!g.warnings.empty())
        text += QStringLiteral(" \u00B7 %1 import warnings").arg(g.warnings.size());
    if (!m->unsupportedNodes.empty())
        text += QStringLiteral(" \u00B7 \u26A0 not runnable here: %1 (%2 %3)")
                    .arg(m->unsupportedOps().join(QStringLiteral(", ")))
                    .arg(m->unsupportedNodes.size())
                    .arg(m->unsupportedNodes.size() == 1 ? QStringLiteral("node") : QStringLiteral("nodes"));
    summary_->setText(text);
    QString tip;
    for (const auto& w : g.warnings)
        tip += QString::fromStdString(w).toHtmlEscaped() + QStringLiteral("<br/>");
    summary_->setToolTip(tip);
}

void MainWindow::updateActions()
{
    calibrateAction_->setEnabled(doc_->model() && !jobs_->isBusy(QStringLiteral("calibrate")));
    calibrateAction_->setToolTip(QStringLiteral("Run the model over the calibration data and record every "
                                                "layer's activation statistics (Ctrl+R)"));
    cancelAction_->setEnabled(jobs_->isBusy());
}

void MainWindow::restoreSettings()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray(), stateVersion);
    table_->restoreHeaderState(settings.value(QStringLiteral("table/header")).toByteArray());
    dataPath_ = settings.value(QStringLiteral("data/path")).toString();
    if (!dataPath_.isEmpty() && !QFileInfo::exists(dataPath_))
        dataPath_.clear();
    const int metric = settings.value(QStringLiteral("graph/colorBy"), -1).toInt();
    if (metric >= 0 && metric < graph_->colorCombo()->count())
        graph_->colorCombo()->setCurrentIndex(metric);
    graph_->setDirection(settings.value(QStringLiteral("graph/direction")).toString() == QStringLiteral("TB")
                             ? GraphDirection::TopToBottom
                             : GraphDirection::LeftToRight);
}

void MainWindow::saveSettings()
{
    QSettings settings;
    settings.setValue(QStringLiteral("window/geometry"), saveGeometry());
    settings.setValue(QStringLiteral("window/state"), saveState(stateVersion));
    settings.setValue(QStringLiteral("table/header"), table_->saveHeaderState());
    settings.setValue(QStringLiteral("graph/colorBy"), graph_->colorCombo()->currentIndex());
    settings.setValue(QStringLiteral("graph/direction"),
                      graph_->direction() == GraphDirection::TopToBottom ? QStringLiteral("TB") : QStringLiteral("LR"));
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    saveSettings();
    jobs_->cancelAll();
    event->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile() && isModelFile(url.toLocalFile())) {
            event->acceptProposedAction();
            return;
        }
}

void MainWindow::dropEvent(QDropEvent* event)
{
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile() && isModelFile(url.toLocalFile())) {
            openModel(url.toLocalFile());
            event->acceptProposedAction();
            return;
        }
}

} // namespace qs::ui
