#include "ui/train/qat_controller.h"

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/train/qat_panel.h"

#include "record/qat_record.h"
#include "store/store.h"
#include "train/qat.h"
#include "util/error.h"

#include <QAction>
#include <QFileInfo>
#include <QThread>

#include <filesystem>

namespace qs::ui {

QatController::QatController(Studio& studio, QatPanel* panel, QWidget* window)
    : QObject(window), studio_(studio), panel_(panel), window_(window)
{
    trainAction_ = new QAction(tr("&Train (QAT)\u2026"), this);
    trainAction_->setObjectName(QStringLiteral("trainQatAction"));
    trainAction_->setIconText(tr("Train"));
    trainAction_->setToolTip(tr("Quantization-aware training of the open model at the current bit configuration "
                                "against its FP32 self; checkpoints are recorded as runs (quantstudio-cli qat --db)"));
    connect(trainAction_, &QAction::triggered, this, &QatController::openDialog);
    auto enable = [this] {
        trainAction_->setEnabled(studio_.document()->model() && !studio_.jobs()->isBusy(QStringLiteral("qat")));
    };
    enable();
    connect(studio.document(), &ModelDocument::modelChanged, this, enable);
    connect(studio.jobs(), &JobRunner::jobStarted, this, enable);
    connect(studio.jobs(), &JobRunner::jobFinished, this, enable);
    connect(panel_, &QatPanel::cancelRequested, this, &QatController::cancel);
    connect(studio.jobs(), &JobRunner::jobProgress, this, [this](int id, double fraction, const QString&, double eta) {
        if (id == job_)
            panel_->setProgress(fraction, eta);
    });
    connect(studio.jobs(), &JobRunner::jobFinished, this,
        [this](int id, const QString&, JobOutcome outcome, const QString& message, double seconds) {
            if (id != job_)
                return;
            panel_->finish(outcome == JobOutcome::Done ? tr("finished in %1 s").arg(seconds, 0, 'f', 1)
                    : outcome == JobOutcome::Cancelled ? tr("cancelled; checkpoints so far are runs")
                                                       : tr("failed: %1").arg(message));
            emit finished(id);
        });
}

QatRequest QatController::defaultRequest() const
{
    QatRequest r = last_;
    if (!haveLast_) {
        r.trainData = r.evalData = studio_.calibrationDataSpec();
        r.preprocess = studio_.dataPreprocess();
    }
    return r;
}

void QatController::openDialog()
{
    const QuantConfig config = studio_.config()->config();
    QString bits = QString::fromStdString(config.toJson().value("default", nlohmann::json::object()).dump());
    if (!config.algorithms.empty())
        bits += tr(" (its algorithms are not applied in training)");
    auto* dialog = new QatDialog(defaultRequest(), bits, window_);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] { train(dialog->request()); });
    dialog->open();
}

void QatController::cancel()
{
    if (job_ >= 0)
        studio_.jobs()->cancel(job_);
}

int QatController::train(const QatRequest& request)
{
    const auto model = studio_.document()->model();
    if (!model)
        return -1;
    last_ = request;
    haveLast_ = true;
    train::QatOptions o;
    o.config = studio_.config()->config();
    o.config.algorithms.clear();
    o.steps = request.steps;
    o.batch = request.batch;
    o.lr = request.lr;
    o.scaleLr = request.scaleLr;
    o.warmupSteps = std::min<int64_t>(o.warmupSteps, o.steps / 10);
    o.blockwise = request.blockwise;
    o.evalEvery = request.evalEvery;
    o.evalLimit = request.evalLimit;
    o.checkpointEvery = request.checkpointEvery;
    o.threads = std::max(1, QThread::idealThreadCount() - 1); // one core for the GUI thread

    const QString storePath =
        studio_.storePath().isEmpty() ? QString::fromStdString(defaultStorePath()) : studio_.storePath();
    const DataOptions trainOpts = studio_.dataOptionsFor(request.trainData, request.preprocess, -1);
    const bool split = request.evalData == request.trainData; // hold out the last samples
    const DataOptions evalOpts = studio_.dataOptionsFor(request.evalData, request.preprocess, request.evalLimit);
    const std::string modelPath = model->path.toStdString();
    panel_->begin(tr("QAT of %1, %2 steps%3")
                      .arg(model->displayName())
                      .arg(request.steps)
                      .arg(request.blockwise ? tr(", block by block") : QString()),
        request.steps);
    QatController* me = this; // outlives the job: the runner (created first) waits for its workers
    QatPanel* panel = panel_;
    job_ = studio_.jobs()->start(QStringLiteral("qat"), QStringLiteral("Training %1").arg(model->displayName()),
        [me, panel, model, o, storePath, trainOpts, evalOpts, split, modelPath](
            Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            if (modelPath.empty())
                fail("the model was built in memory; open it from a file to train it");
            progress.report(0, "loading data");
            Dataset train = loadDataset(trainOpts, *model->graph);
            Dataset heldOut;
            if (split) {
                const int64_t n = std::min<int64_t>(o.evalLimit, train.count() / 2);
                heldOut = train.slice(train.count() - n, n);
                train = train.slice(0, train.count() - n);
            } else {
                heldOut = loadDataset(evalOpts, *model->graph);
            }
            cancel.check();
            Store store = Store::open(storePath.toStdString());
            train::QatResult live; // the curves so far, for the checkpoints' metrics
            QatRecordInput rec;
            rec.teacherPath = modelPath;
            rec.options = o;
            rec.progress = &live;
            rec.evalLimit = o.evalLimit;
            const std::filesystem::path outDir = std::filesystem::path(store.path()).parent_path() / "qat";
            const std::string stem = std::filesystem::path(modelPath).stem().string();
            train::QatCallbacks cb;
            cb.onStep = [&](const train::QatStep& s) {
                live.steps.push_back(s);
                QMetaObject::invokeMethod(
                    panel, [panel, s] { panel->addStep(s); }, Qt::QueuedConnection);
            };
            cb.onEval = [&](const train::QatEval& e) {
                live.evals.push_back(e);
                if (live.evals.size() == 1)
                    live.initialScales = e.scales;
                QMetaObject::invokeMethod(
                    panel, [panel, e] { panel->addEval(e); }, Qt::QueuedConnection);
            };
            cb.onCheckpoint = [&](const train::QatCheckpoint& c) {
                rec.modelPath = (outDir / str(stem, ".qat-step", c.step, ".onnx")).string();
                Progress none;
                const qint64 id = recordQatCheckpoint(&store, c, rec, train, heldOut, none, cancel).runId;
                const qint64 step = c.step;
                QMetaObject::invokeMethod(
                    me, [me, id, step, storePath] { me->checkpointDone(id, step, storePath); }, Qt::QueuedConnection);
            };
            train::trainQat(*model->graph, *model->graph, train, heldOut, o, cb, progress, cancel);
            return [] {};
        });
    emit started(job_);
    return job_;
}

void QatController::checkpointDone(qint64 runId, qint64 step, const QString& storePath)
{
    panel_->addCheckpoint(step, runId);
    // Re-opening refreshes the runs list, the status bar's count and the layer table's stored bits.
    studio_.openStore(storePath);
    emit checkpointStored(runId, step);
}

} // namespace qs::ui
