#include "ui/runs/runs_controller.h"

#include "ui/compare/compare_panel.h"
#include "ui/document/app_paths.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/export/export_dialog.h"
#include "ui/graph/graph_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/runs/runs_panel.h"
#include "ui/runs/runs_table_model.h"
#include "ui/widgets/theme.h"

#include "data/dataset.h"
#include "store/quantize_run.h"
#include "util/error.h"

#include <QAction>
#include <QDockWidget>
#include <QFileInfo>
#include <QMenuBar>
#include <QPointer>
#include <QTabWidget>
#include <QThread>
#include <QToolBar>

namespace qs::ui {

RunsController::RunsController(MainWindow* window) : QObject(window), window_(window)
{
    browser_ = new RunsPanel(window->jobs(), window);
    runsDock_ = new QDockWidget(QStringLiteral("Runs"), window);
    runsDock_->setObjectName(QStringLiteral("runsDock"));
    runsDock_->setWidget(browser_);
    window->addDockWidget(Qt::BottomDockWidgetArea, runsDock_);
    // A tab beside the layer table, not a second column: the window keeps its minimum width.
    QDockWidget* layers = window->findChild<QDockWidget*>(QStringLiteral("layersDock"));
    if (layers)
        window->tabifyDockWidget(layers, runsDock_);

    compareTabs_ = new QTabWidget(window);
    compareTabs_->setObjectName(QStringLiteral("compareTabs"));
    compareTabs_->setTabsClosable(true);
    compareTabs_->setDocumentMode(true);
    connect(compareTabs_, &QTabWidget::tabCloseRequested, this, [this](int i) {
        QWidget* w = compareTabs_->widget(i);
        compareTabs_->removeTab(i);
        w->deleteLater();
        if (compareTabs_->count() == 0)
            compareDock_->hide();
    });
    compareDock_ = new QDockWidget(QStringLiteral("Compare"), window);
    compareDock_->setObjectName(QStringLiteral("compareDock"));
    compareDock_->setWidget(compareTabs_);
    window->addDockWidget(Qt::BottomDockWidgetArea, compareDock_);
    window->tabifyDockWidget(runsDock_, compareDock_);
    compareDock_->hide();
    if (layers)
        layers->raise();

    quantizeAction_ = new QAction(QStringLiteral("&Quantize\u2026"), this);
    quantizeAction_->setObjectName(QStringLiteral("quantizeAction"));
    quantizeAction_->setIconText(QStringLiteral("Quantize"));
    quantizeAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Q));
    quantizeAction_->setToolTip(QStringLiteral("Quantize the open model with the current bit configuration, evaluate "
                                               "it against FP32 and record the run (quantstudio-cli quantize --db)"));
    connect(quantizeAction_, &QAction::triggered, this, &RunsController::openQuantizeDialog);
    auto* exportAction = new QAction(QStringLiteral("&Export Run\u2026"), this);
    exportAction->setObjectName(QStringLiteral("exportRunAction"));
    connect(exportAction, &QAction::triggered, this, [this] { showExport(); });
    QMenu* runs = window->menuBar()->addMenu(QStringLiteral("&Runs"));
    runs->addAction(quantizeAction_);
    runs->addAction(exportAction);
    runs->addSeparator();
    runs->addAction(runsDock_->toggleViewAction());
    runs->addAction(compareDock_->toggleViewAction());
    if (auto* bar = window->findChild<QToolBar*>(QStringLiteral("mainToolBar")))
        bar->addAction(quantizeAction_);

    auto enable = [this] { quantizeAction_->setEnabled(window_->document()->model() && !window_->jobs()->isBusy(QStringLiteral("quantize"))); };
    connect(window->document(), &ModelDocument::modelChanged, this, enable);
    connect(window->jobs(), &JobRunner::jobStarted, this, enable);
    connect(window->jobs(), &JobRunner::jobFinished, this, enable);
    enable();

    connect(window, &MainWindow::storeOpened, browser_, &RunsPanel::setStorePath);
    connect(browser_, &RunsPanel::compareRequested, this, &RunsController::compare);
    connect(browser_, &RunsPanel::exportRequested, this, [this](qint64 id) { showExport(id); });
}

QuantizeRequest RunsController::defaultRequest() const
{
    if (haveLast_)
        return last_;
    QuantizeRequest r;
    r.calibData = r.evalData = window_->calibrationDataSpec();
    for (const AlgorithmUse& a : window_->configDocument()->config().algorithms)
        r.algorithms << QString::fromStdString(a.name);
    return r;
}

void RunsController::openQuantizeDialog()
{
    auto* dialog = new QuantizeDialog(defaultRequest(), window_);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { quantize(dialog->request()); });
    dialog->open();
}

int RunsController::quantize(const QuantizeRequest& request)
{
    const auto model = window_->document()->model();
    if (!model)
        return -1;
    last_ = request;
    haveLast_ = true;
    QuantizeOptions opts;
    opts.config = window_->configDocument()->config();
    // The chosen algorithms, in registry order, keeping the parameters the configuration has for them.
    std::vector<AlgorithmUse> uses;
    for (const AlgorithmInfo& a : algorithms()) {
        if (!request.algorithms.contains(QString::fromStdString(a.name)))
            continue;
        AlgorithmUse use{a.name, nlohmann::json::object()};
        for (const AlgorithmUse& old : opts.config.algorithms)
            if (old.name == a.name)
                use.params = old.params;
        uses.push_back(use);
    }
    opts.config.algorithms = uses;
    opts.calibLimit = request.calibLimit;
    opts.evalLimit = request.evalLimit > 0 ? request.evalLimit : -1;
    opts.batch = request.batch;
    opts.int8 = request.int8;
    opts.threads = std::max(1, QThread::idealThreadCount() - 1); // one core for the GUI thread

    const QString storePath = window_->storePath().isEmpty() ? QString::fromStdString(defaultStorePath()) : window_->storePath();
    const std::string calibSpec = request.calibData.toStdString(), evalSpec = request.evalData.toStdString();
    std::vector<std::string> tags;
    for (const QString& t : request.tags)
        tags.push_back(t.toStdString());
    const std::string note = request.note.toStdString();
    const std::string modelPath = model->path.toStdString();
    RunsController* me = this; // outlives the job: the runner (created first) waits for its workers
    return window_->jobs()->start(QStringLiteral("quantize"), QStringLiteral("Quantizing %1").arg(model->displayName()),
        [me, model, opts, storePath, calibSpec, evalSpec, tags, note, modelPath](
            Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            if (modelPath.empty())
                fail("the model was built in memory; open it from a file to record quantization runs");
            progress.report(0, "loading data");
            DataOptions evalOpts;
            evalOpts.spec = evalSpec;
            evalOpts.limit = opts.evalLimit;
            const Dataset eval = loadDataset(evalOpts, *model->graph);
            DataOptions calOpts = evalOpts;
            calOpts.spec = calibSpec;
            calOpts.limit = opts.calibLimit;
            if (calibSpec != evalSpec)
                calOpts.labelsPath.reset();
            const Dataset calib = loadDataset(calOpts, *model->graph);
            cancel.check();
            Store store = Store::open(storePath.toStdString());
            Progress run = progress.sub(0.03, 1);
            try {
                const RecordedQuantization rec =
                    quantizeAndRecord(&store, *model->graph, modelPath, calib, eval, opts, run, cancel, tags, note);
                const qint64 id = rec.runId;
                return [me, id, storePath] { me->finishQuantize(id, storePath); };
            } catch (...) {
                // Cancelled or failed runs are stored too; no Deliver comes after a cancel.
                QMetaObject::invokeMethod(me, [me, storePath] { me->finishQuantize(0, storePath); }, Qt::QueuedConnection);
                throw;
            }
        });
}

void RunsController::finishQuantize(qint64 runId, const QString& storePath)
{
    if (runId > 0) {
        auto* conn = new QMetaObject::Connection;
        *conn = connect(browser_, &RunsPanel::refreshed, this, [this, runId, conn] {
            disconnect(*conn);
            delete conn;
            browser_->selectRuns({runId});
            emit runStored(runId);
        });
    }
    // Re-opening refreshes the status bar's count, the layer table's stored bits and the browser.
    window_->openStore(storePath);
    runsDock_->show();
    runsDock_->raise();
}

int RunsController::compare(const QList<qint64>& runIds)
{
    const QString store = window_->storePath();
    if (runIds.size() < 2 || store.isEmpty())
        return -1;
    // Older first: a comparison reads as before -> after.
    std::vector<int64_t> ids(runIds.begin(), runIds.end());
    std::sort(ids.begin(), ids.end());
    LayoutStyle style;
    style.direction = window_->graphPanel()->direction();
    style.titleFont = theme::graphTitleFont();
    style.textFont = theme::graphTextFont();
    QPointer<RunsController> self(this);
    return window_->jobs()->start(QStringLiteral("compare"), QStringLiteral("Comparing %1 runs").arg(ids.size()),
        [self, store, ids, style](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            std::shared_ptr<const ComparisonData> data = loadComparison(store, ids, style, progress, cancel);
            return [self, data] {
                if (!self)
                    return;
                auto* view = new ComparePanel(data, self->compareTabs_);
                self->compareTabs_->addTab(view, view->title());
                self->compareTabs_->setCurrentWidget(view);
                self->compareDock_->show();
                self->compareDock_->raise();
                emit self->comparisonShown(view);
            };
        });
}

ExportDialog* RunsController::exportDialog() const
{
    return export_.data();
}

ExportDialog* RunsController::showExport(qint64 runId)
{
    if (window_->storePath().isEmpty())
        return nullptr;
    if (runId <= 0) {
        const auto ids = browser_->selectedRunIds();
        runId = ids.isEmpty() ? 0 : ids.front();
    }
    if (export_)
        export_->close();
    export_ = new ExportDialog(window_->jobs(), window_->storePath(), browser_->model()->runs(), runId, window_);
    export_->setAttribute(Qt::WA_DeleteOnClose);
    connect(export_, &ExportDialog::exported, browser_, &RunsPanel::refresh);
    export_->show();
    return export_;
}

} // namespace qs::ui
