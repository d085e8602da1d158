// The studio's shared state and its long operations (open a model or a store,
// calibrate, read stored results), each a JobRunner job delivered on the GUI thread.
#include "ui/document/studio.h"

#include "util/memory_budget.h"

#include "ui/document/app_paths.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/jobs/job_runner.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/theme.h"

#include "analysis/activation_profile.h"
#include "analysis/bit_budget.h"
#include "data/dataset.h"
#include "data/image_dataset.h"
#include "data/input_binding.h"
#include "store/store.h"
#include "util/error.h"
#include "util/memory_budget.h"

#include <QCoreApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QPointer>
#include <QSettings>
#include <QStringList>
#include <QThread>

#include <algorithm>

namespace qs::ui {

Studio::Studio(QObject* parent) : QObject(parent)
{
    // The runner is the first child: destroyed first, it waits for its workers
    // before anything a job's result refers to goes away.
    doc_ = new ModelDocument(this);
    jobs_ = new JobRunner(this);
    errors_ = new ErrorReporter(this);
    config_ = new QuantConfigDocument(doc_, this);
    selection_ = new LayerSelection(doc_, this);

    const QSettings settings;
    dataPath_ = settings.value(QStringLiteral("data/path")).toString();
    dataPreprocess_ = settings.value(QStringLiteral("data/preprocess")).toString();
    dataModel_ = settings.value(QStringLiteral("data/model")).toString();
    if (!dataPath_.isEmpty() && !dataPath_.startsWith(QStringLiteral("random:")) &&
        !QFileInfo::exists(dataPath_.mid(dataPath_.indexOf(QLatin1Char(':')) + 1)) && !QFileInfo::exists(dataPath_))
        dataPath_.clear();
    if (!isImageDataSpec(dataPath_.toStdString()))
        dataPreprocess_.clear();
    setCacheBudgetBytes(settings.value(QStringLiteral("memory/cacheBudget"), 0).toLongLong());

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        // Work on the previous model is moot: stop it rather than let it finish unseen.
        jobs_->cancelKind(QStringLiteral("calibrate"));
        jobs_->cancelKind(QStringLiteral("layout"));
        jobs_->cancelKind(QStringLiteral("weights"));
        countSizes();
        computeWeights();
    });
    connect(selection_, &LayerSelection::currentChanged, this, [this](int, int layer) {
        if (wantedWeights_ && layer >= 0)
            wantedWeights_->store(layer);
    });
    connect(jobs_, &JobRunner::jobFinished, this, [this](int id, const QString&, JobOutcome outcome, const QString&) {
        if (id == calibrationJob_ && outcome != JobOutcome::Done)
            emit calibrationFinished(false);
    });
}

Studio::~Studio()
{
    jobs_->cancelAll();
}

void Studio::setErrorReporter(ErrorReporter* reporter)
{
    if (!reporter)
        return;
    reporter->setParent(this);
    if (errors_ != reporter)
        delete errors_;
    errors_ = reporter;
}

LayoutStyle Studio::layoutStyle() const
{
    LayoutStyle s;
    s.direction = direction_;
    s.titleFont = theme::graphTitleFont();
    s.textFont = theme::graphTextFont();
    s.rowLimit = rowLimit_;
    return s;
}

void Studio::setGraphDirection(GraphDirection direction)
{
    if (direction == direction_)
        return;
    direction_ = direction;
    relayout();
}

int Studio::openModel(const QString& path)
{
    const QString name = QFileInfo(path).fileName();
    const LayoutStyle style = layoutStyle();
    QPointer<Studio> self(this);
    const QString spec = dataPath_;
    DataOptions check = dataOptionsFor(dataPath_, dataPreprocess_, 1);
    check.inputShapes.clear(); // those given were for the previous model
    check.threads = 1;
    check.prefetchBatches = 0;
    return jobs_->start(QStringLiteral("model"), tr("Opening %1").arg(name),
        [self, path, style, spec, check](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            Progress load = progress.sub(0, 0.85);
            auto data = loadModelData(path, load, cancel, false); // weight statistics: computeWeights()
            progress.sub(0.85, 1).report(0, "laying out the graph");
            auto layout = std::make_shared<GraphLayout>(layoutGraph(*data->graph, style));
            cancel.check();
            // The chosen data was chosen for another model: its first sample must feed this one.
            QString dataProblem;
            if (!spec.isEmpty()) {
                try {
                    const Dataset d = loadDataset(check, *data->graph);
                    if (d.count() > 0)
                        d.batch(0, 1);
                } catch (const Cancelled&) {
                    throw;
                } catch (const std::exception& e) {
                    dataProblem = QString::fromUtf8(e.what());
                }
            }
            return [self, data, layout, path, spec, dataProblem] {
                if (!self)
                    return;
                self->inputShapes_.clear();
                self->doc_->setModel(data, layout);
                if (self->doc_->layerCount() > 0)
                    self->selection_->selectLayer(0);
                self->recheckData(path, spec, dataProblem);
                emit self->modelOpened(path);
                self->loadStoredResults();
            };
        });
}

void Studio::recheckData(const QString& modelPath, const QString& spec, const QString& problem)
{
    const QString model = QFileInfo(modelPath).fileName();
    if (spec.isEmpty() || spec != dataPath_) {
        // Nothing chosen (or chosen again meanwhile): the data beside the model or random inputs.
    } else if (!problem.isEmpty()) {
        const QString old = calibrationDataLabel();
        setData(QString(), QString());
        emit dataNotice(tr("Calibration data %1 does not fit %2 (%3); now using %4 — File › Calibration "
                           "Data chooses other data")
                            .arg(old, model, problem, calibrationDataLabel()));
    } else if (!dataModel_.isEmpty() && dataModel_ != modelPath) {
        emit dataNotice(tr("Calibration data %1 was chosen for another model; it fits the inputs of %2 and stays "
                           "selected — File › Calibration Data changes it")
                            .arg(calibrationDataLabel(), model));
    }
    dataModel_ = modelPath;
    QSettings().setValue(QStringLiteral("data/model"), dataModel_);
}

int Studio::openGraph(std::shared_ptr<Graph> graph)
{
    const LayoutStyle style = layoutStyle();
    QPointer<Studio> self(this);
    return jobs_->start(QStringLiteral("model"), tr("Opening %1").arg(QString::fromStdString(graph->name)),
        [self, graph, style](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            Progress build = progress.sub(0, 0.85);
            auto data = buildModelData(*graph, build, cancel);
            auto layout = std::make_shared<GraphLayout>(layoutGraph(*data->graph, style));
            return [self, data, layout] {
                if (!self)
                    return;
                self->inputShapes_.clear();
                self->doc_->setModel(data, layout);
                if (self->doc_->layerCount() > 0)
                    self->selection_->selectLayer(0);
                emit self->modelOpened(QString());
            };
        });
}

void Studio::relayout()
{
    const auto model = doc_->model();
    if (!model)
        return;
    const LayoutStyle style = layoutStyle();
    QPointer<Studio> self(this);
    const int generation = doc_->generation();
    jobs_->start(QStringLiteral("layout"), tr("Laying out the graph"),
        [self, model, style, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
            auto layout = std::make_shared<GraphLayout>(layoutGraph(*model->graph, style));
            return [self, layout, generation] {
                if (self && self->doc_->generation() == generation)
                    self->doc_->setLayout(layout);
            };
        });
}

void Studio::countSizes()
{
    // Sizes need the working graph (BatchNorm folded): a job per model.
    const auto model = doc_->model();
    if (!model)
        return;
    QPointer<Studio> self(this);
    const int generation = doc_->generation();
    jobs_->start(QStringLiteral("sizes"), tr("Counting stored sizes"),
        [self, model, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
            auto sizes = std::make_shared<const ModelSizeTable>(modelSizeTable(*model->graph));
            return [self, sizes, generation] {
                if (self && self->doc_->generation() == generation)
                    self->config_->setSizes(sizes);
            };
        });
}

void Studio::computeWeights()
{
    // Weight statistics of a model opened without them, a layer at a time off the GUI
    // thread: the selected layer first, the rest in order, delivered every 250 ms.
    const auto model = doc_->model();
    wantedWeights_.reset();
    if (!model || model->weightsReady())
        return;
    auto wanted = wantedWeights_ = std::make_shared<std::atomic<int>>(selection_->currentLayer());
    QPointer<Studio> self(this);
    const int generation = doc_->generation();
    auto deliver = [self, generation](std::vector<LayerWeights> rows) {
        return [self, generation, rows = std::move(rows)] {
            if (self && self->doc_->generation() == generation)
                self->doc_->setLayerWeights(rows);
        };
    };
    jobs_->start(QStringLiteral("weights"), tr("Weight statistics"),
        [model, wanted, deliver](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            const int n = int(model->layers.size());
            std::vector<char> done(std::size_t(n), 0);
            int64_t all = 0, doneParams = 0;
            for (const auto& l : model->layers)
                all += std::max<int64_t>(l.summary.params, 1);
            std::vector<LayerWeights> ready;
            QElapsedTimer sinceSent;
            sinceSent.start();
            int next = 0;
            for (int k = 0; k < n; ++k) {
                cancel.check();
                int row = wanted->exchange(-1);
                const bool asked = row >= 0 && row < n && !done[std::size_t(row)];
                if (!asked) {
                    while (done[std::size_t(next)])
                        ++next;
                    row = next;
                }
                ready.push_back(layerWeights(*model, row));
                done[std::size_t(row)] = 1;
                doneParams += std::max<int64_t>(model->layers[std::size_t(row)].summary.params, 1);
                progress.report(double(doneParams) / double(all), "weight histograms");
                if (k + 1 < n && (asked || sinceSent.elapsed() > 250)) {
                    QMetaObject::invokeMethod(qApp, deliver(std::move(ready)), Qt::QueuedConnection);
                    ready.clear();
                    sinceSent.restart();
                }
            }
            return deliver(std::move(ready));
        });
}

qint64 Studio::savedCacheBudget() const
{
    return std::max<qint64>(0, QSettings().value(QStringLiteral("memory/cacheBudget"), 0).toLongLong());
}

void Studio::setCacheBudget(qint64 bytes)
{
    bytes = std::max<qint64>(0, bytes);
    QSettings().setValue(QStringLiteral("memory/cacheBudget"), bytes);
    setCacheBudgetBytes(bytes);
    emit cacheBudgetChanged();
}

void Studio::setDataPath(const QString& path)
{
    setData(path, QString());
}

void Studio::setData(const QString& spec, const QString& preprocess)
{
    dataPath_ = spec;
    dataPreprocess_ = isImageDataSpec(spec.toStdString()) ? preprocess : QString();
    if (doc_->model() && !doc_->model()->path.isEmpty())
        dataModel_ = doc_->model()->path;
    QSettings settings;
    settings.setValue(QStringLiteral("data/path"), dataPath_);
    settings.setValue(QStringLiteral("data/preprocess"), dataPreprocess_);
    settings.setValue(QStringLiteral("data/model"), dataModel_);
    emit dataPathChanged();
}

DataOptions Studio::calibrationDataOptions(int64_t limit) const
{
    return dataOptionsFor(calibrationDataSpec(), dataPreprocess_, limit);
}

DataOptions Studio::dataOptionsFor(const QString& spec, const QString& preprocess, int64_t limit) const
{
    DataOptions o;
    o.spec = spec.toStdString();
    if (isImageDataSpec(o.spec))
        o.preprocess = preprocess.toStdString();
    o.limit = limit;
    if (doc_->model())
        o.inputShapes = dataInputShapes(*doc_->model()->graph);
    return o;
}

QString Studio::calibrationDataSpec() const
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

std::map<std::string, Shape> Studio::dataInputShapes(const Graph& model) const
{
    std::map<std::string, Shape> out;
    for (const ValueInfo& in : model.inputs)
        if (const auto it = inputShapes_.find(QString::fromStdString(in.name)); it != inputShapes_.end())
            out.insert(parseInputShape(in.name + "=" + it.value().toStdString()));
    return out;
}

QString Studio::calibrationDataLabel() const
{
    const QString spec = calibrationDataSpec();
    if (spec.startsWith(QStringLiteral("random:")))
        return tr("%1 random inputs").arg(spec.mid(7));
    if (isImageDataSpec(spec.toStdString())) {
        const QString path = spec.mid(spec.indexOf(QLatin1Char(':')) + 1);
        return tr("%1 (%2)").arg(QFileInfo(path).fileName(), dataPreprocess_.isEmpty() ? tr("no preprocessing") : dataPreprocess_);
    }
    return QFileInfo(spec).fileName();
}

int Studio::runCalibration()
{
    const auto model = doc_->model();
    if (!model)
        return -1;
    const DataOptions options = calibrationDataOptions();
    const QString label = calibrationDataLabel();
    const int generation = doc_->generation();
    QPointer<Studio> self(this);
    return calibrationJob_ = jobs_->start(QStringLiteral("calibrate"), tr("Calibrating on %1").arg(label),
               [self, model, options, label, generation](
                   Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
                   QElapsedTimer clock;
                   clock.start();
                   progress.report(0, "loading data");
                   DataOptions withCancel = options;
                   withCancel.cancel = cancel;
                   const Dataset data = loadDataset(withCancel, *model->graph);
                   cancel.check();
                   Progress run = progress.sub(0.05, 1);
                   auto result = std::make_shared<ActivationData>();
                   ProfileOptions profile;
                   // One core stays free for the GUI thread: the event loop stays smooth and
                   // Cancel is seen sooner on small machines (2 cores: 30 ms vs 60 ms stalls,
                   // 0.3 s vs 0.7 s to stop); on 8 cores it costs an eighth of the speed.
                   profile.threads = std::max(1, QThread::idealThreadCount() - 1);
                   result->profiles = profileActivations(*model->graph, data, profile, run, cancel);
                   result->dataLabel = tr("%1 (%2 samples)").arg(label).arg(data.count());
                   const DataInput& first = data.inputs.front();
                   if (const auto bound = data.boundShapes.find(first.name); bound != data.boundShapes.end()) {
                       QStringList dims;
                       for (std::size_t d = 0; d < bound->second.size(); ++d)
                           dims << (int(d) == first.batchAxis ? QStringLiteral("N")
                                                              : QString::number(bound->second[d]));
                       result->inputShape = QStringLiteral("[%1]").arg(dims.join(QLatin1Char(',')));
                   }
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

namespace {

// A Store is one SQLite connection per thread: this one only checks the file and counts
// what it holds; views that read runs open their own.
StoreSummary countStore(const QString& path)
{
    const Store store = Store::open(path.toStdString());
    StoreSummary summary;
    summary.path = path;
    summary.runs = int64_t(store.runs().size());
    summary.models = int64_t(store.models().size());
    summary.schemaVersion = store.schemaVersion();
    return summary;
}

} // namespace

int Studio::openStore(const QString& path)
{
    const QString abs = QFileInfo(path).absoluteFilePath();
    QPointer<Studio> self(this);
    return jobs_->start(QStringLiteral("store"), tr("Opening database %1").arg(QFileInfo(abs).fileName()),
        [self, abs](Progress& progress, const CancelToken&) -> JobRunner::Deliver {
            progress.report(0, "opening");
            const StoreSummary summary = countStore(abs);
            return [self, summary] {
                if (!self)
                    return;
                self->store_ = summary;
                QSettings().setValue(QStringLiteral("store/path"), summary.path);
                emit self->storeOpened(summary.path);
                self->loadStoredResults();
            };
        });
}

void Studio::loadStoredResults()
{
    const auto model = doc_->model();
    if (!model || model->path.isEmpty() || store_.path.isEmpty())
        return;
    const QString store = store_.path, path = model->path;
    const int64_t fileBytes = int64_t(model->graph->fileBytes);
    const int generation = doc_->generation();
    QPointer<Studio> self(this);
    jobs_->start(QStringLiteral("stored"), tr("Reading stored runs of %1").arg(model->displayName()),
        [self, store, path, fileBytes, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
            auto stored = ::qs::ui::loadStoredResults(store, path, fileBytes);
            // Recounted as well: this runs after every recorded sweep, so the status bar's
            // count follows the database.
            StoreSummary summary = countStore(store);
            return [self, stored, generation, summary] {
                if (!self || self->store_.path != stored->storePath)
                    return;
                self->store_ = summary;
                emit self->storeCounted();
                if (self->doc_->generation() != generation)
                    return;
                self->doc_->setStored(stored);
                emit self->storedResultsLoaded();
            };
        });
}

void Studio::openStartupStore()
{
    const QString last = QSettings().value(QStringLiteral("store/path")).toString();
    const QString fallback = QString::fromStdString(defaultStorePath());
    // The last database, else the default one the CLI also records in, created when
    // missing: runs and sweeps are recorded from the first start, as the README says.
    if (!last.isEmpty() && QFileInfo::exists(last))
        openStore(last);
    else
        openStore(fallback);
}

void Studio::openStartupModel()
{
    const QString last = QSettings().value(QStringLiteral("files/lastModel")).toString();
    if (!last.isEmpty() && QFileInfo::exists(last))
        openModel(last);
    else if (QFileInfo::exists(demoModelPath()))
        openModel(demoModelPath());
}

} // namespace qs::ui
