#include "ui/runs/runs_controller.h"

#include "ui/compare/compare_panel.h"
#include "ui/document/app_paths.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/export/export_dialog.h"
#include "ui/jobs/job_runner.h"
#include "ui/runs/runs_panel.h"
#include "ui/runs/runs_table_model.h"
#include "ui/widgets/error_reporter.h"

#include "data/dataset.h"
#include "record/quantize_run.h"
#include "util/error.h"

#include <QAction>
#include <QDockWidget>
#include <QFileInfo>
#include <QPointer>
#include <QTabWidget>
#include <QThread>

namespace qs::ui {

RunsController::RunsController(Studio& studio, QWidget* window) : QObject(window), studio_(studio), window_(window)
{
    browser_ = new RunsPanel(studio.jobs(), window);

    compareTabs_ = new QTabWidget(window);
    compareTabs_->setObjectName(QStringLiteral("compareTabs"));
    compareTabs_->setTabsClosable(true);
    compareTabs_->setDocumentMode(true);
    connect(compareTabs_, &QTabWidget::tabCloseRequested, this, [this](int i) {
        QWidget* w = compareTabs_->widget(i);
        compareTabs_->removeTab(i);
        w->deleteLater();
        if (compareTabs_->count() == 0 && showCompare_)
            showCompare_(false);
    });

    quantizeAction_ = new QAction(tr("&Quantize\u2026"), this);
    quantizeAction_->setObjectName(QStringLiteral("quantizeAction"));
    quantizeAction_->setIconText(tr("Quantize"));
    quantizeAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Q));
    quantizeAction_->setToolTip(tr("Quantize the open model with the current bit configuration, evaluate "
                                   "it against FP32 and record the run (quantstudio-cli quantize --db)"));
    connect(quantizeAction_, &QAction::triggered, this, &RunsController::openQuantizeDialog);
    exportAction_ = new QAction(tr("&Export Run\u2026"), this);
    exportAction_->setObjectName(QStringLiteral("exportRunAction"));
    connect(exportAction_, &QAction::triggered, this, [this] { showExport(); });

    auto enable = [this] {
        quantizeAction_->setEnabled(studio_.document()->model() && !studio_.jobs()->isBusy(QStringLiteral("quantize")));
    };
    connect(studio.document(), &ModelDocument::modelChanged, this, enable);
    connect(studio.jobs(), &JobRunner::jobStarted, this, enable);
    connect(studio.jobs(), &JobRunner::jobFinished, this, enable);
    enable();

    connect(&studio, &Studio::storeOpened, browser_, &RunsPanel::setStorePath);
    connect(browser_, &RunsPanel::compareRequested, this, &RunsController::compare);
    connect(browser_, &RunsPanel::exportRequested, this, [this](qint64 id) { showExport(id); });
}

void RunsController::setViews(QDockWidget* runs, std::function<void(bool)> showCompare)
{
    runsDock_ = runs;
    showCompare_ = std::move(showCompare);
}

QuantizeRequest RunsController::defaultRequest() const
{
    QuantizeRequest r = last_;
    if (!haveLast_) {
        // Evaluation data is chosen, never taken from calibration unasked: the data chosen
        // last for this model's evaluation, else none (the dialog asks).
        r.calibData = studio_.calibrationDataSpec();
        r.evalData = QString();
        r.preprocess = studio_.dataPreprocess();
        for (const AlgorithmUse& a : studio_.config()->config().algorithms)
            r.algorithms << QString::fromStdString(a.name);
    }
    r.inputShapes = studio_.inputShapes(); // those of the open model
    return r;
}

void RunsController::openQuantizeDialog()
{
    const auto model = studio_.document()->model();
    auto* dialog = new QuantizeDialog(defaultRequest(), window_, model ? model->graph : nullptr);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { quantize(dialog->request()); });
    dialog->open();
}

int RunsController::quantize(const QuantizeRequest& request)
{
    const auto model = studio_.document()->model();
    if (!model)
        return -1;
    if (request.evalData.trimmed().isEmpty()) { // never the calibration data unasked
        studio_.errors()->report(window_, tr("Quantize"),
            tr("No evaluation data: choose held-out data, or state that the calibration data is evaluated on."));
        return -1;
    }
    last_ = request;
    haveLast_ = true;
    studio_.setInputShapes(request.inputShapes);
    QuantizeOptions opts;
    opts.config = studio_.config()->config();
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

    const QString storePath = studio_.storePath().isEmpty() ? QString::fromStdString(defaultStorePath()) : studio_.storePath();
    // A held-out part counts its limit from where it starts (as the CLI's --eval-from).
    const int64_t evalFrom = std::max(0, request.evalFrom);
    DataOptions evalOpts = studio_.dataOptionsFor(
        request.evalData, request.preprocess, opts.evalLimit >= 0 ? evalFrom + opts.evalLimit : -1);
    DataOptions calOpts = studio_.dataOptionsFor(request.calibData, request.preprocess, opts.calibLimit);
    if (request.calibData != request.evalData)
        calOpts.labelsPath.reset();
    std::vector<std::string> tags;
    for (const QString& t : request.tags)
        tags.push_back(t.toStdString());
    const std::string note = request.note.toStdString();
    const std::string modelPath = model->path.toStdString();
    RunsController* me = this; // outlives the job: the runner (created first) waits for its workers
    return studio_.jobs()->start(QStringLiteral("quantize"), QStringLiteral("Quantizing %1").arg(model->displayName()),
        [me, model, opts, storePath, evalOpts, evalFrom, calOpts, tags, note, modelPath](
            Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            if (modelPath.empty())
                fail("the model was built in memory; open it from a file to record quantization runs");
            progress.report(0, "loading data");
            const Dataset eval = evaluationPart(loadDataset(evalOpts, *model->graph), evalFrom);
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
    studio_.openStore(storePath);
    if (runsDock_) {
        runsDock_->show();
        runsDock_->raise();
    }
}

int RunsController::compare(const QList<qint64>& runIds)
{
    const QString store = studio_.storePath();
    if (runIds.size() < 2 || store.isEmpty())
        return -1;
    // Older first: a comparison reads as before -> after.
    std::vector<int64_t> ids(runIds.begin(), runIds.end());
    std::sort(ids.begin(), ids.end());
    const LayoutStyle style = studio_.layoutStyle();
    QPointer<RunsController> self(this);
    return studio_.jobs()->start(QStringLiteral("compare"), QStringLiteral("Comparing %1 runs").arg(ids.size()),
        [self, store, ids, style](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            std::shared_ptr<const ComparisonData> data = loadComparison(store, ids, style, progress, cancel);
            return [self, data] {
                if (!self)
                    return;
                auto* view = new ComparePanel(data, self->compareTabs_);
                self->compareTabs_->addTab(view, view->title());
                self->compareTabs_->setCurrentWidget(view);
                if (self->showCompare_)
                    self->showCompare_(true);
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
    if (studio_.storePath().isEmpty())
        return nullptr;
    if (runId <= 0) {
        const auto ids = browser_->selectedRunIds();
        runId = ids.isEmpty() ? 0 : ids.front();
    }
    if (export_)
        export_->close();
    export_ = new ExportDialog(studio_.jobs(), studio_.storePath(), browser_->model()->runs(), runId, window_);
    export_->setAttribute(Qt::WA_DeleteOnClose);
    connect(export_, &ExportDialog::exported, browser_, &RunsPanel::refresh);
    export_->show();
    return export_;
}

} // namespace qs::ui
