#include "ui/whatif/whatif_controller.h"

#include "analysis/weight_profile.h"
#include "data/dataset.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "util/error.h"

#include <QPointer>
#include <QThread>

#include <algorithm>

namespace qs::ui {

WhatIfController::WhatIfController(Studio& studio, QObject* parent)
    : QObject(parent), studio_(studio), doc_(studio.document()), jobs_(studio.jobs()), configDoc_(studio.config())
{
    // The demo's whole 1000-image slice in batches of 100; calibration on its first 256.
    options_.evalLimit = 1000;
    options_.calibLimit = 256;
    options_.batch = 100;
    // One core stays free for the GUI thread (as the calibration job does).
    options_.threads = std::max(1, QThread::idealThreadCount() - 1);
    connect(doc_, &ModelDocument::modelChanged, this, &WhatIfController::reset);
    if (configDoc_)
        connect(configDoc_, &QuantConfigDocument::configChanged, this, [this] {
            // An edit, an undo or a kept range: the session follows (in a job), and the
            // panel shows the new base at once.
            emit configChanged();
            if (session_)
                start(QStringLiteral("whatif"), QStringLiteral("Updating what-if"), {}, {});
        });
}

const QuantConfig& WhatIfController::config() const
{
    return configDoc_ ? configDoc_->config() : options_.config;
}

void WhatIfController::setOptions(const QuantizeOptions& options)
{
    options_ = options;
    reset();
}

void WhatIfController::reset()
{
    ++generation_;
    session_.reset();
    layers_.clear();
    last_.reset();
    jobs_->cancelKind(QStringLiteral("whatif"));
    emit configChanged();
}

const WhatIfLayerInfo* WhatIfController::layerInfo(const std::string& layer) const
{
    auto it = layers_.find(layer);
    return it == layers_.end() ? nullptr : &it->second;
}

bool WhatIfController::isBusy() const
{
    return jobs_->isBusy(QStringLiteral("whatif"));
}

int WhatIfController::start(const QString& kind, const QString& title, const Apply& apply,
                            const std::function<void()>& onDone)
{
    const auto model = doc_->model();
    if (!model)
        return -1;
    QuantizeOptions options = options_;
    const DataOptions dataOptions = studio_.calibrationDataOptions(std::max(options.evalLimit, options.calibLimit));
    options.config = config();
    const int generation = generation_;
    std::shared_ptr<WhatIfSession> session = session_;
    QPointer<WhatIfController> self(this);
    return jobs_->start(kind, title, [=](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
        std::shared_ptr<WhatIfSession> s = session;
        try {
            if (!s) {
                progress.report(0, "loading data");
                const Dataset data = loadDataset(dataOptions, *model->graph);
                Progress build = progress.sub(0.02, 0.9);
                s = std::make_shared<WhatIfSession>(*model->graph, data, data, options, build, cancel);
            } else {
                // The configuration may have changed since the session was built.
                Progress update = progress.sub(0, 0.9);
                s->setConfig(options.config, update, cancel);
            }
            if (apply)
                apply(*s, cancel);
            // A new session's folded weights are profiled once; later snapshots keep them.
            const WhatIfSession::Snapshot snap = s->snapshot(!session);
            std::map<std::string, WhatIfLayerInfo> info;
            for (const auto& l : snap.layers) {
                WhatIfLayerInfo& i = info[l.name];
                i.input = l.input;
                i.weight = l.weight;
                i.weightAsStored = snap.sourceWeights.count(l.weight) > 0;
                if (auto f = snap.foldedWeights.find(l.weight); f != snap.foldedWeights.end()) {
                    const std::vector<float> v = f->second.toFloat();
                    auto view = std::make_shared<WeightView>();
                    view->what = QStringLiteral("BN-folded");
                    view->histogram = makeHistogram(v, weightHistogramBins(int64_t(v.size())));
                    view->stats = computeStats(v);
                    if (!f->second.shape.empty()) {
                        view->channels = channelRanges(v, f->second.shape, l.outAxis);
                        view->stats.channelRangeRatio = rangeRatio(view->channels);
                    }
                    i.folded = std::move(view);
                }
                if (auto r = snap.activationRanges.find(l.input); r != snap.activationRanges.end())
                    i.activationRange = r->second;
            }
            QuantConfig config = snap.config;
            return [self, s, info, config, generation, onDone] {
                if (!self || self->generation_ != generation)
                    return;
                const bool fresh = self->session_ != s;
                self->session_ = s;
                std::map<std::string, WhatIfLayerInfo> next = info;
                if (!fresh)
                    for (auto& [name, i] : next)
                        if (auto old = self->layers_.find(name); old != self->layers_.end() && !i.folded)
                            i.folded = old->second.folded;
                self->layers_ = std::move(next);
                if (!self->configDoc_)
                    self->options_.config = config;
                if (fresh)
                    emit self->sessionReady();
                emit self->sessionUpdated();
                if (onDone)
                    onDone();
            };
        } catch (const Error& e) {
            const QString message = QString::fromUtf8(e.what());
            return [self, message, generation] {
                if (self && self->generation_ == generation)
                    emit self->failed(message);
            };
        }
    });
}

int WhatIfController::prepare()
{
    if (session_)
        return -1;
    return start(QStringLiteral("whatif"), QStringLiteral("Preparing what-if"), {}, {});
}

int WhatIfController::evaluate(const WhatIfChange& change)
{
    auto result = std::make_shared<WhatIfResult>();
    QPointer<WhatIfController> self(this);
    return start(
        QStringLiteral("whatif"), QStringLiteral("What-if: %1").arg(QString::fromStdString(change.layer)),
        [change, result](WhatIfSession& s, const CancelToken& cancel) { *result = s.evaluate(change, cancel); },
        [self, result] {
            self->last_ = *result;
            emit self->resultReady();
        });
}

int WhatIfController::keep(const WhatIfChange& change)
{
    if (configDoc_) {
        QuantConfig next = configDoc_->config();
        for (const auto& [name, r] : change.setRanges)
            next.ranges[name] = r;
        const QString tensor = change.setRanges.empty() ? QString() : QString::fromStdString(change.setRanges.begin()->first);
        configDoc_->setConfig(next, QStringLiteral("Keep range of %1").arg(tensor)); // the session follows
        return -1;
    }
    // Keeps are never replaced by a later job: each has a kind of its own, and the
    // session applies them in turn.
    static int serial = 0;
    QPointer<WhatIfController> self(this);
    return start(
        QStringLiteral("whatif-keep-%1").arg(++serial), QStringLiteral("Keeping the range"),
        [change](WhatIfSession& s, const CancelToken& cancel) {
            Progress p;
            s.apply(change, p, cancel);
        },
        [self] { emit self->configChanged(); });
}

} // namespace qs::ui
