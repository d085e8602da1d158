#include "ui/main_window.h"

#include "ui/calibration/calibration_feature.h"
#include "ui/settings/settings_feature.h"
#include "ui/calibration/data_dialog.h"
#include "ui/config/config_feature.h"
#include "ui/document/app_paths.h"
#include "ui/document/model_document.h"
#include "ui/document/project.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/jobs/job_status_widget.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/pareto/pareto_feature.h"
#include "ui/runs/runs_feature.h"
#include "ui/samples/samples_feature.h"
#include "ui/sensitivity/sensitivity_feature.h"
#include "ui/train/train_feature.h"
#include "ui/whatif/whatif_feature.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/elided_label.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"

#include "data/input_binding.h"
#include "store/store.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableWidget>
#include <QToolBar>
#include <QVBoxLayout>

namespace qs::ui {
namespace {

constexpr int stateVersion = 1;
constexpr int maxRecent = 8;

bool isModelFile(const QString& path)
{
    return path.endsWith(QStringLiteral(".onnx"), Qt::CaseInsensitive) || ProjectController::isProjectFile(path);
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

    // The first child: destroyed first, its job runner waits for the workers before
    // the panels their results go to are destroyed.
    studio_ = new Studio(this);
    Studio& studio = *studio_;

    table_ = new LayerTablePanel(studio, this);
    graph_ = new GraphPanel(studio, this);
    graph_->view()->setAcceptDrops(false); // drops of .onnx files go to the window
    inspector_ = new InspectorPanel(studio, this);
    views_ = new QTabWidget(this);
    views_->setObjectName(QStringLiteral("mainViews"));
    views_->setDocumentMode(true);
    views_->addTab(graph_, tr("Graph"));
    setCentralWidget(views_);

    jobStatus_ = new JobStatusWidget(studio.jobs(), this);
    summary_ = new ElidedLabel(this, Qt::ElideRight);
    summary_->setObjectName(QStringLiteral("modelSummary"));
    summary_->setProperty("role", "muted");
    storeLabel_ = new QLabel(this);
    storeLabel_->setObjectName(QStringLiteral("storeLabel"));
    storeLabel_->setProperty("role", "muted");
    storeLabel_->setText(tr("No database"));
    storeLabel_->setToolTip(tr("No experiment database is open \u2014 File \u203A Open or Create Database"));
    statusBar()->addWidget(summary_, 1);
    statusBar()->addPermanentWidget(storeLabel_);
    statusBar()->addPermanentWidget(jobStatus_);
    statusBar()->setSizeGripEnabled(true);

    project_ = new ProjectController(studio, this);
    connect(project_, &ProjectController::autosaveFound, this, &MainWindow::offerAutosave);
    connect(project_, &ProjectController::opened, this, [this] { updateTitle(); });
    connect(project_, &ProjectController::failed, this,
        [this](const QString& message) { studio_->errors()->report(this, tr("Opening the project"), message); });
    connect(project_, &ProjectController::saved, this, [this] { updateTitle(); });
    connect(studio.config(), &QuantConfigDocument::configChanged, this,
        [this] { setWindowModified(project_->isModified()); });
    connect(&studio, &Studio::dataPathChanged, this, [this] { setWindowModified(project_->isModified()); });
    createActions();
    createDocks();
    createMenus();
    // Each feature adds its docks, actions and menu entries; the order is the order
    // of their tabs and menu entries.
    ConfigFeature::install(*this, studio);
    RunsFeature::install(*this, studio);
    TrainFeature::install(*this, studio);
    SensitivityFeature::install(*this, studio);
    ParetoFeature::install(*this, studio);
    WhatIfFeature::install(*this, studio);
    SamplesFeature::install(*this, studio);
    CalibrationFeature::install(*this, studio);
    SettingsFeature::install(*this, studio);

    connect(&studio, &Studio::modelOpened, this, &MainWindow::addRecent);
    connect(&studio, &Studio::storeOpened, this, &MainWindow::showStore);
    connect(&studio, &Studio::storeCounted, this, &MainWindow::showStore);
    connect(&studio, &Studio::dataPathChanged, this, &MainWindow::updateSummary);
    connect(&studio, &Studio::dataNotice, this, [this](const QString& message) {
        statusBar()->showMessage(message, 20000);
    });
    connect(studio.document(), &ModelDocument::modelChanged, this, [this] {
        updateTitle();
        updateSummary();
        updateActions();
    });
    connect(studio.document(), &ModelDocument::activationsChanged, this, &MainWindow::updateSummary);
    connect(studio.jobs(), &JobRunner::jobStarted, this, &MainWindow::updateActions);
    connect(studio.jobs(), &JobRunner::jobFinished, this, &MainWindow::updateActions);
    connect(studio.jobs(), &JobRunner::jobFinished, this,
        [this](int, const QString& title, JobOutcome outcome, const QString& message) {
            if (outcome == JobOutcome::Failed)
                studio_->errors()->report(this, title, message);
        });

    // 1600x1000, or the screen's free area when that is smaller (a 1366x768 laptop).
    QSize start(1600, 1000);
    if (const QScreen* s = screen())
        start = start.boundedTo(s->availableGeometry().size());
    resize(start);
    // The inspector and the layer table take their share of that window, not fixed pixels.
    resizeDocks({inspectorDock_}, {std::min(610, start.width() * 2 / 5)}, Qt::Horizontal);
    resizeDocks({tableDock_}, {std::min(340, start.height() * 2 / 5)}, Qt::Vertical);
    defaultState_ = saveState(stateVersion);
    restoreSettings();
    updateTitle();
    updateSummary();
    updateActions();
}

MainWindow::~MainWindow()
{
    studio_->jobs()->cancelAll();
}

QDockWidget* MainWindow::addDock(
    QWidget* content, const QString& title, const QString& objectName, Qt::DockWidgetArea area, QDockWidget* tabifyWith)
{
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(objectName);
    // In a scroll area: a panel taller or wider than a small screen's share scrolls
    // instead of widening the window past the screen.
    auto* scroll = new QScrollArea(dock);
    scroll->setObjectName(objectName + QStringLiteral("Scroll"));
    scroll->setWidget(content);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    dock->setWidget(scroll);
    dock->setFeatures(
        QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable | QDockWidget::DockWidgetClosable);
    addDockWidget(area, dock);
    if (tabifyWith)
        tabifyDockWidget(tabifyWith, dock);
    return dock;
}

void MainWindow::addViewEntry(QDockWidget* dock)
{
    // Feature docks list between the layer table and the inspector.
    viewMenu_->insertAction(inspectorDock_->toggleViewAction(), dock->toggleViewAction());
}

void MainWindow::addMainView(QWidget* view, const QString& title)
{
    const int i = views_->addTab(view, title);
    views_->setTabVisible(i, false);
}

void MainWindow::showMainView(QWidget* view, bool show)
{
    const int i = views_->indexOf(view);
    if (i < 0)
        return;
    views_->setTabVisible(i, show);
    if (show)
        views_->setCurrentIndex(i);
}

void MainWindow::addAnalyzeAction(QAction* action)
{
    analyzeMenu_->insertAction(cancelAction_, action);
}

void MainWindow::addFileActions(const QList<QAction*>& actions)
{
    for (QAction* a : actions)
        fileMenu_->insertAction(quitAction_, a);
    fileMenu_->insertSeparator(quitAction_);
}

void MainWindow::createActions()
{
    openAction_ = new QAction(icon(IconId::Open), tr("&Open Model\u2026"), this);
    openAction_->setShortcut(QKeySequence::Open);
    openAction_->setToolTip(tr("Open an ONNX model (Ctrl+O); you can also drop .onnx files on the window"));
    connect(openAction_, &QAction::triggered, this, &MainWindow::chooseModel);

    demoAction_ = new QAction(icon(IconId::Demo), tr("Open &Demo Model"), this);
    demoAction_->setToolTip(tr("The bundled Fashion-MNIST CNN with 1,000 calibration images"));
    connect(demoAction_, &QAction::triggered, this, [this] { openFile(demoModelPath()); });

    dataAction_ = new QAction(icon(IconId::Data), tr("Calibration &Data\u2026"), this);
    dataAction_->setToolTip(tr("Choose the data calibration, quantization and analysis run on: a folder of images "
                                  "with its preprocessing, an image list, IDX or NPY, or random inputs"));
    connect(dataAction_, &QAction::triggered, this, &MainWindow::chooseData);

    storeAction_ = new QAction(icon(IconId::Data), tr("Open or Create Data&base\u2026"), this);
    storeAction_->setObjectName(QStringLiteral("storeAction"));
    storeAction_->setToolTip(tr("The SQLite experiment store runs are recorded in; remembered for the next start"));
    connect(storeAction_, &QAction::triggered, this, &MainWindow::chooseStore);

    // One name everywhere (toolbar, menu, inspector): calibration is what the field calls it.
    calibrateAction_ = new QAction(icon(IconId::Calibrate), tr("&Calibrate"), this);
    calibrateAction_->setObjectName(QStringLiteral("calibrateAction"));
    calibrateAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_R));
    calibrateAction_->setToolTip(tr("Run the model over the calibration data and record every "
                                    "layer's activation statistics (Ctrl+R)"));
    connect(calibrateAction_, &QAction::triggered, studio_, &Studio::runCalibration);

    cancelAction_ = new QAction(icon(IconId::Cancel), tr("Cancel &Job"), this);
    cancelAction_->setShortcut(QKeySequence(Qt::Key_Escape));
    cancelAction_->setShortcutContext(Qt::WindowShortcut);
    connect(cancelAction_, &QAction::triggered, this, [this] {
        const QList<int> running = studio_->jobs()->runningIds();
        if (!running.isEmpty())
            studio_->jobs()->cancel(running.back());
    });

    saveProjectAction_ = new QAction(tr("&Save Project"), this);
    saveProjectAction_->setObjectName(QStringLiteral("saveProjectAction"));
    saveProjectAction_->setShortcut(QKeySequence::Save);
    saveProjectAction_->setToolTip(tr("The model, its data and the bit configuration with kept ranges, as a .qsproj file"));
    connect(saveProjectAction_, &QAction::triggered, this, [this] { saveProject(false); });
    saveProjectAsAction_ = new QAction(tr("Save Project &As\u2026"), this);
    saveProjectAsAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
    connect(saveProjectAsAction_, &QAction::triggered, this, [this] { saveProject(true); });

    quitAction_ = new QAction(tr("&Quit"), this);
    quitAction_->setShortcut(QKeySequence::Quit);
    connect(quitAction_, &QAction::triggered, this, &QWidget::close);
}

void MainWindow::createDocks()
{
    tableDock_ = addDock(table_, tr("Layers"), QStringLiteral("layersDock"), Qt::BottomDockWidgetArea);
    inspectorDock_ = addDock(inspector_, tr("Inspector"), QStringLiteral("inspectorDock"), Qt::RightDockWidgetArea);
    resizeDocks({inspectorDock_}, {610}, Qt::Horizontal);
    resizeDocks({tableDock_}, {340}, Qt::Vertical);

    toolBar_ = addToolBar(tr("Main"));
    toolBar_->setObjectName(QStringLiteral("mainToolBar"));
    toolBar_->setMovable(false);
    toolBar_->setIconSize(QSize(20, 20));
    toolBar_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    toolBar_->addAction(openAction_);
    toolBar_->addAction(demoAction_);
    toolBar_->addSeparator();
    toolBar_->addAction(dataAction_);
    toolBar_->addAction(calibrateAction_);
}

void MainWindow::createMenus()
{
    fileMenu_ = menuBar()->addMenu(tr("&File"));
    fileMenu_->addAction(openAction_);
    recentMenu_ = fileMenu_->addMenu(tr("Open &Recent"));
    fileMenu_->addAction(demoAction_);
    fileMenu_->addAction(saveProjectAction_);
    fileMenu_->addAction(saveProjectAsAction_);
    fileMenu_->addSeparator();
    fileMenu_->addAction(dataAction_);
    fileMenu_->addAction(storeAction_);
    fileMenu_->addSeparator();
    fileMenu_->addAction(quitAction_);
    rebuildRecentMenu();

    editMenu_ = menuBar()->addMenu(tr("&Edit"));
    QAction* copyTable = editMenu_->addAction(icon(IconId::Copy), tr("&Copy Layer Table"));
    copyTable->setObjectName(QStringLiteral("copyTableAction"));
    copyTable->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    copyTable->setToolTip(tr("The rows shown, as tab-separated text for a spreadsheet"));
    connect(copyTable, &QAction::triggered, table_, &LayerTablePanel::copyToClipboard);

    viewMenu_ = menuBar()->addMenu(tr("&View"));
    QAction* find = viewMenu_->addAction(icon(IconId::Search), tr("&Find Layer"));
    find->setShortcut(QKeySequence::Find);
    connect(find, &QAction::triggered, this, [this] {
        tableDock_->show();
        table_->nameFilter()->setFocus();
        table_->nameFilter()->selectAll();
    });
    viewMenu_->addSeparator();
    QAction* zoomIn = viewMenu_->addAction(icon(IconId::ZoomIn), tr("Zoom &In"));
    zoomIn->setShortcuts({QKeySequence::ZoomIn, QKeySequence(Qt::CTRL | Qt::Key_Equal)});
    connect(zoomIn, &QAction::triggered, graph_->view(), &GraphView::zoomIn);
    QAction* zoomOut = viewMenu_->addAction(icon(IconId::ZoomOut), tr("Zoom &Out"));
    zoomOut->setShortcut(QKeySequence::ZoomOut);
    connect(zoomOut, &QAction::triggered, graph_->view(), &GraphView::zoomOut);
    QAction* fit = viewMenu_->addAction(icon(IconId::Fit), tr("&Fit Graph"));
    fit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_0));
    connect(fit, &QAction::triggered, graph_->view(), &GraphView::fitGraph);
    viewMenu_->addSeparator();
    viewMenu_->addAction(tableDock_->toggleViewAction());
    viewMenu_->addAction(inspectorDock_->toggleViewAction());
    QAction* full = viewMenu_->addAction(tr("F&ull Screen"));
    full->setShortcut(QKeySequence::FullScreen);
    full->setCheckable(true);
    connect(full, &QAction::toggled, this, [this](bool on) { on ? showFullScreen() : showNormal(); });
    QAction* reset = viewMenu_->addAction(tr("&Reset Layout"));
    connect(reset, &QAction::triggered, this, [this] {
        restoreState(defaultState_, stateVersion);
        tableDock_->show();
        inspectorDock_->show();
    });

    analyzeMenu_ = menuBar()->addMenu(tr("&Analyze"));
    analyzeMenu_->addAction(calibrateAction_);
    analyzeMenu_->addAction(cancelAction_);

    helpMenu_ = menuBar()->addMenu(tr("&Help"));
    QAction* keys = helpMenu_->addAction(tr("&Keyboard Shortcuts"));
    keys->setObjectName(QStringLiteral("shortcutsAction"));
    connect(keys, &QAction::triggered, this, &MainWindow::showShortcuts);
    helpMenu_->addSeparator();
    connect(helpMenu_->addAction(tr("&About QuantStudio")), &QAction::triggered, this, [this] {
        QMessageBox::about(this, tr("About QuantStudio"),
            tr("<b>QuantStudio %1</b><p>A studio for neural-network quantization "
               "experiments: inspect a model, measure what quantization costs each "
               "layer, choose bits, export.</p><p>The same workflow runs headless in "
               "<tt>quantstudio-cli</tt> (<tt>quantstudio-cli --help</tt>).</p>")
                .arg(QCoreApplication::applicationVersion()));
    });
}

QMenu* MainWindow::addMenu(const QString& title)
{
    auto* menu = new QMenu(title, menuBar());
    menuBar()->insertMenu(helpMenu_->menuAction(), menu);
    return menu;
}

// Every action of the window that has a key, read from the menus themselves, so the
// list cannot drift from what the keys do.
void MainWindow::showShortcuts()
{
    auto* dialog = new QDialog(this);
    dialog->setObjectName(QStringLiteral("shortcutsDialog"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->setWindowTitle(tr("Keyboard Shortcuts"));
    auto* table = new QTableWidget(dialog);
    table->setColumnCount(3);
    table->setHorizontalHeaderLabels({tr("Menu"), tr("Command"), tr("Keys")});
    table->verticalHeader()->hide();
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    QList<QAction*> seen;
    for (QAction* top : menuBar()->actions()) {
        QMenu* menu = top->menu();
        if (!menu)
            continue;
        QList<QAction*> pending = menu->actions();
        while (!pending.isEmpty()) {
            QAction* a = pending.takeFirst();
            if (a->menu())
                pending += a->menu()->actions();
            if (a->shortcuts().isEmpty() || seen.contains(a))
                continue;
            seen << a;
            QStringList keys;
            for (const QKeySequence& k : a->shortcuts())
                keys << k.toString(QKeySequence::NativeText);
            const int row = table->rowCount();
            table->insertRow(row);
            table->setItem(row, 0, new QTableWidgetItem(QString(top->text()).remove(u'&')));
            table->setItem(row, 1, new QTableWidgetItem(QString(a->text()).remove(u'&').remove(QChar(0x2026))));
            table->setItem(row, 2, new QTableWidgetItem(keys.join(QStringLiteral(", "))));
        }
    }
    table->resizeColumnsToContents();
    table->horizontalHeader()->setStretchLastSection(true);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, dialog);
    connect(buttons, &QDialogButtonBox::rejected, dialog, &QDialog::close);
    auto* layout = new QVBoxLayout(dialog);
    layout->addWidget(table);
    layout->addWidget(buttons);
    dialog->resize(560, 520);
    dialog->show();
}

void MainWindow::chooseModel()
{
    QSettings settings;
    const QString dir = settings.value(QStringLiteral("files/lastDir"), QDir::homePath()).toString();
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open model or project"), dir,
            tr("ONNX models and QuantStudio projects (*.onnx *.qsproj);;All files (*)"));
    if (path.isEmpty())
        return;
    settings.setValue(QStringLiteral("files/lastDir"), QFileInfo(path).absolutePath());
    openFile(path);
}

void MainWindow::openFile(const QString& path)
{
    if (!maybeSave())
        return;
    if (!ProjectController::isProjectFile(path)) {
        studio_->openModel(path);
        return;
    }
    if (!project_->open(path))
        studio_->errors()->report(this, tr("Opening the project"), project_->lastError());
}

bool MainWindow::saveProject(bool choosePath)
{
    QString path = project_->path();
    if (choosePath || path.isEmpty()) {
        const auto& m = studio_->document()->model();
        const QString suggested = !path.isEmpty() ? path
                                  : m && !m->path.isEmpty()
                                      ? QFileInfo(m->path).absolutePath() + u'/' + QFileInfo(m->path).completeBaseName() +
                                            QStringLiteral(".qsproj")
                                      : QString();
        path = QFileDialog::getSaveFileName(this, tr("Save project"), suggested, tr("QuantStudio projects (*.qsproj)"));
        if (path.isEmpty())
            return false;
        if (!ProjectController::isProjectFile(path))
            path += QStringLiteral(".qsproj");
    }
    if (!project_->save(path)) {
        studio_->errors()->report(this, tr("Saving the project"), project_->lastError());
        return false;
    }
    statusBar()->showMessage(tr("Saved %1").arg(QDir::toNativeSeparators(path)), 4000);
    return true;
}

// Before the open work is replaced or the window closes: true to go on.
bool MainWindow::maybeSave()
{
    if (!project_->isModified())
        return true;
    QMessageBox box(QMessageBox::Warning, tr("Unsaved changes"),
        tr("The bit configuration, kept ranges or data choice of %1 have changes that are not saved.")
            .arg(studio_->document()->model()->displayName()),
        QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, this);
    box.setObjectName(QStringLiteral("unsavedChangesBox"));
    box.setInformativeText(tr("Save them in a project file?"));
    box.setDefaultButton(QMessageBox::Save);
    switch (box.exec()) {
    case QMessageBox::Save: return saveProject(false);
    case QMessageBox::Discard: project_->discardAutosave(); return true;
    default: return false;
    }
}

CalibrationDataDialog* MainWindow::chooseData()
{
    auto* dialog = new CalibrationDataDialog(*studio_, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->open();
    dialog->refresh();
    return dialog;
}

void MainWindow::chooseStore()
{
    const QString current = studio_->storePath();
    const QString start = current.isEmpty() ? QString::fromStdString(defaultStorePath()) : current;
    // A save dialog, so that a new name creates a database; an existing one is opened, not replaced.
    const QString path = QFileDialog::getSaveFileName(this, tr("Open or create database"), start,
        tr("QuantStudio databases (*.db);;All files (*)"), nullptr, QFileDialog::DontConfirmOverwrite);
    if (!path.isEmpty())
        studio_->openStore(path);
}

void MainWindow::showStore()
{
    const StoreSummary& s = studio_->store();
    storeLabel_->setText(QStringLiteral("%1 \u00B7 %2 %3")
                             .arg(QFileInfo(s.path).fileName())
                             .arg(s.runs)
                             .arg(s.runs == 1 ? tr("run") : tr("runs")));
    storeLabel_->setToolTip(tr("Experiment database %1\n%2 runs of %3 models, schema v%4")
                                .arg(QDir::toNativeSeparators(s.path))
                                .arg(s.runs)
                                .arg(s.models)
                                .arg(s.schemaVersion));
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
        connect(a, &QAction::triggered, this, [this, path] { openFile(path); });
    }
    if (recent.isEmpty())
        recentMenu_->addAction(tr("No recent models"))->setEnabled(false);
    recentMenu_->addSeparator();
    QAction* clear = recentMenu_->addAction(tr("Clear Recent"));
    clear->setEnabled(!recent.isEmpty());
    connect(clear, &QAction::triggered, this, [this] {
        QSettings().remove(QStringLiteral("files/recent"));
        rebuildRecentMenu();
    });
}

void MainWindow::updateTitle()
{
    const auto& m = studio_->document()->model();
    // "[*]" shows the unsaved-changes mark; the project's name once there is one.
    const QString project = QFileInfo(project_->path()).completeBaseName();
    setWindowTitle(!m                  ? tr("QuantStudio[*]")
                   : project.isEmpty() ? tr("%1[*] \u2014 QuantStudio").arg(m->displayName())
                                       : tr("%1[*] (%2) \u2014 QuantStudio").arg(project, m->displayName()));
    setWindowModified(project_->isModified());
    if (m && !m->path.isEmpty())
        setWindowFilePath(m->path);
}

void MainWindow::updateSummary()
{
    const ModelDocument* doc = studio_->document();
    const auto& m = doc->model();
    if (!m) {
        summary_->setFullText(tr("No model open \u2014 File \u203A Open (Ctrl+O), or drop an .onnx file here"));
        return;
    }
    const Graph& g = *m->graph;
    QString text = tr("%1 \u00B7 opset %2 \u00B7 %3 \u00B7 %4 \u00B7 %5 parameters")
                       .arg(m->displayName())
                       .arg(g.opset(""))
                       .arg(countOf(int64_t(g.nodes.size()), tr("operator"), tr("operators")),
                           countOf(int64_t(m->layers.size()), tr("layer"), tr("layers")))
                       .arg(formatCompact(double(m->totalParams)));
    if (g.fileBytes > 0)
        text += QStringLiteral(" \u00B7 %1").arg(formatBytes(g.fileBytes));
    // An input whose dimensions the model leaves open: as it states them, then as the data bound them.
    if (!g.inputs.empty() && hasOpenDimensions(g.inputs.front(), 0)) {
        const auto& a = doc->activations();
        text +=
            tr(" \u00B7 input %1 %2")
                .arg(QString::fromStdString(g.inputs.front().name),
                    a && !a->inputShape.isEmpty() ? a->inputShape : QString::fromStdString(g.inputs.front().text()));
    }
    if (const auto& a = doc->activations())
        text += tr(" \u00B7 calibrated on %1").arg(a->dataLabel);
    else
        text += tr(" \u00B7 calibration data: %1").arg(studio_->calibrationDataLabel());
    if (!g.warnings.empty())
        text += tr(" \u00B7 %1 import warnings").arg(g.warnings.size());
    if (!m->unsupportedNodes.empty())
        text += tr(" \u00B7 \u26A0 not runnable here: %1 (%2 %3)")
                    .arg(m->unsupportedOps().join(QStringLiteral(", ")))
                    .arg(m->unsupportedNodes.size())
                    .arg(m->unsupportedNodes.size() == 1 ? tr("node") : tr("nodes"));
    summary_->setFullText(text);
    QString tip = text.toHtmlEscaped() + QStringLiteral("<br/>");
    for (const auto& w : g.warnings)
        tip += QString::fromStdString(w).toHtmlEscaped() + QStringLiteral("<br/>");
    summary_->setToolTip(tip);
}

void MainWindow::updateActions()
{
    calibrateAction_->setEnabled(studio_->document()->model() && !studio_->jobs()->isBusy(QStringLiteral("calibrate")));
    cancelAction_->setEnabled(studio_->jobs()->isBusy());
}

void MainWindow::restoreSettings()
{
    QSettings settings;
    restoreGeometry(settings.value(QStringLiteral("window/geometry")).toByteArray());
    restoreState(settings.value(QStringLiteral("window/state")).toByteArray(), stateVersion);
    table_->restoreHeaderState(settings.value(QStringLiteral("table/header")).toByteArray());
    const int metric = settings.value(QStringLiteral("graph/colorBy"), -1).toInt();
    if (metric >= 0 && metric < graph_->colorCombo()->count())
        graph_->colorCombo()->setCurrentIndex(metric);
    graph_->setDirection(settings.value(QStringLiteral("graph/direction")).toString() == QStringLiteral("TB")
            ? GraphDirection::TopToBottom
            : GraphDirection::LeftToRight);
    studio_->setGraphDirection(graph_->direction());
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

// Work from a session that ended without saving (a crash, a kill): offered, not forced,
// in a box that does not block the window.
void MainWindow::offerAutosave(const QDateTime& when)
{
    auto* box = new QMessageBox(QMessageBox::Question, tr("Restore unsaved work?"),
        tr("Unsaved changes to %1 from %2 were kept when the studio last closed without saving.")
            .arg(studio_->document()->model()->displayName(), QLocale().toString(when, QLocale::ShortFormat)),
        QMessageBox::NoButton, this);
    box->setObjectName(QStringLiteral("restoreAutosaveBox"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    QPushButton* restore = box->addButton(tr("Restore"), QMessageBox::AcceptRole);
    box->addButton(tr("Discard"), QMessageBox::DestructiveRole);
    connect(box, &QMessageBox::buttonClicked, this, [this, restore](QAbstractButton* clicked) {
        if (clicked == restore) {
            if (!project_->restoreAutosave())
                studio_->errors()->report(this, tr("Restoring unsaved work"), project_->lastError());
        } else {
            project_->discardAutosave();
        }
    });
    box->open();
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (!maybeSave()) {
        event->ignore();
        return;
    }
    project_->discardAutosave();
    saveSettings();
    studio_->jobs()->cancelAll();
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
            openFile(url.toLocalFile());
            event->acceptProposedAction();
            return;
        }
}

} // namespace qs::ui
