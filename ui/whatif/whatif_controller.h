// The GUI's side of the live what-if: owns the core WhatIfSession of the open model
// (built by a job on the calibration data), starts what-if evaluations as jobs (a new
// one replaces a running one), keeps the per-tensor ranges the user chose to keep, and
// hands results to the GUI thread. The session is touched only by jobs.
#pragma once

#include "analysis/whatif.h"
#include "ui/inspector/inspector_panel.h"

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
class QuantConfigDocument;
class Studio;

// What the GUI may read of the session's layers (copied when the session is built).
struct WhatIfLayerInfo {
    std::string input, weight;  // tensor names in the quantized graph
    bool weightAsStored = true; // false: the quantized weight is BN-folded, not the model's own
    // When not as stored: the histogram and statistics of the folded weight that is quantized.
    std::shared_ptr<const WeightView> folded;
    std::optional<ClipRange> activationRange; // of the current configuration
};

class WhatIfController : public QObject {
    Q_OBJECT
public:
    // What-ifs start from `config`'s configuration (the bit-width editor's) and keep
    // ranges through its undo stack; without one they keep a list of their own.
    explicit WhatIfController(Studio& studio, QObject* parent = nullptr);

    // Samples and batch of the what-if evaluation set (the first evalLimit of the data).
    void setOptions(const QuantizeOptions& options);
    const QuantizeOptions& options() const { return options_; }
    // The configuration what-ifs start from (the configuration document's, kept ranges included).
    const QuantConfig& config() const;
    bool hasSession() const { return session_ != nullptr; }
    std::shared_ptr<WhatIfSession> session() const { return session_; }
    const WhatIfLayerInfo* layerInfo(const std::string& layer) const;
    // The configuration document what-ifs start from (its sensitivity predicts them); may be null.
    QuantConfigDocument* configDocument() const { return configDoc_; }

    // Start jobs and return their ids. evaluate() builds the session first if needed.
    int prepare();
    int evaluate(const WhatIfChange& change);
    // Keeps the ranges of `change` as per-tensor overrides (QuantConfig::ranges): one undo
    // step of the configuration document, which later what-ifs start from.
    int keep(const WhatIfChange& change);
    const std::optional<WhatIfResult>& lastResult() const { return last_; }
    bool isBusy() const;

signals:
    void sessionReady();   // a new session (first use, or after a model or options change)
    void sessionUpdated(); // any job finished with the session (its layers and ranges are current)
    void resultReady();
    void failed(const QString& message);
    void configChanged();

private:
    using Apply = std::function<void(WhatIfSession&, const CancelToken&)>;
    int start(const QString& kind, const QString& title, const Apply& apply, const std::function<void()>& onDone);
    void reset();

    Studio& studio_;
    ModelDocument* doc_;
    JobRunner* jobs_;
    QuantConfigDocument* configDoc_;
    QuantizeOptions options_;
    std::shared_ptr<WhatIfSession> session_;
    std::map<std::string, WhatIfLayerInfo> layers_;
    std::optional<WhatIfResult> last_;
    int generation_ = 0;
};

} // namespace qs::ui
