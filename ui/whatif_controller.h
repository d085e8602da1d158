// The GUI's side of the live what-if: owns the core WhatIfSession of the open model
// (built by a job on the calibration data), starts what-if evaluations as jobs (a new
// one replaces a running one), keeps the per-tensor ranges the user chose to keep, and
// hands results to the GUI thread. The session is touched only by jobs.
#pragma once

#include "analysis/whatif.h"

#include <QObject>
#include <QString>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace qs::ui {

class JobRunner;
class ModelDocument;

// What the GUI may read of the session's layers (copied when the session is built).
struct WhatIfLayerInfo {
    std::string input, weight;  // tensor names in the quantized graph
    bool weightAsStored = true; // false: the quantized weight is BN-folded, not the model's own
    std::optional<ClipRange> activationRange; // of the current configuration
};

class WhatIfController : public QObject {
    Q_OBJECT
public:
    WhatIfController(ModelDocument* doc, JobRunner* jobs, std::function<QString()> dataSpec, QObject* parent = nullptr);

    // Samples and batch of the what-if evaluation set (the first evalLimit of the data).
    void setOptions(const QuantizeOptions& options);
    const QuantizeOptions& options() const { return options_; }
    // The configuration what-ifs start from: the defaults plus the kept ranges.
    const QuantConfig& config() const { return options_.config; }
    bool hasSession() const { return session_ != nullptr; }
    std::shared_ptr<WhatIfSession> session() const { return session_; }
    const WhatIfLayerInfo* layerInfo(const std::string& layer) const;

    // Start jobs and return their ids. evaluate() builds the session first if needed.
    int prepare();
    int evaluate(const WhatIfChange& change);
    // Keeps the ranges of `change` as per-tensor overrides (QuantConfig::ranges) and
    // makes them the base of later what-ifs. No configuration document exists in this
    // build, so the kept ranges are a list here (no undo).
    int keep(const WhatIfChange& change);
    const std::optional<WhatIfResult>& lastResult() const { return last_; }
    bool isBusy() const;

signals:
    void sessionReady();
    void resultReady();
    void failed(const QString& message);
    void configChanged();

private:
    using Apply = std::function<void(WhatIfSession&, const CancelToken&)>;
    int start(const QString& kind, const QString& title, const Apply& apply, const std::function<void()>& onDone);
    void reset();

    ModelDocument* doc_;
    JobRunner* jobs_;
    std::function<QString()> dataSpec_;
    QuantizeOptions options_;
    std::shared_ptr<WhatIfSession> session_;
    std::map<std::string, WhatIfLayerInfo> layers_;
    std::optional<WhatIfResult> last_;
    int generation_ = 0;
};

} // namespace qs::ui
