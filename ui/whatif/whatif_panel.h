// The inspector's "What-if" panel: clipping ranges dragged on the weight and input
// activation histograms (the quantization error at the layer's bits follows the drag,
// from the histogram), a what-if job on release whose result (layer SQNR, output
// SQNR/KL, top-1 change) shows here, bit spin boxes for a what-if of the layer's bits,
// and "Keep range" to make a dragged range a per-tensor override. A row below tries an
// attention operand's bits and granularity: measured (a full re-run) beside predicted
// (from the sensitivity sweep's operand curves).
#pragma once

#include "analysis/whatif.h"
#include "quant/attention.h"

#include <QFrame>

#include <optional>
#include <vector>
#include <string>
#include <utility>

class QComboBox;
class QLabel;
class QPushButton;
class QSpinBox;

namespace qs::ui {

class InspectorPanel;
class ModelDocument;
class RangeEditor;
class WhatIfController;

class WhatIfPanel : public QFrame {
    Q_OBJECT
public:
    enum class Target { Weight, Activation };

    WhatIfPanel(ModelDocument* doc, WhatIfController* whatIf, InspectorPanel* inspector);

    RangeEditor* weightEditor() const { return weightEditor_; }
    RangeEditor* activationEditor() const { return activationEditor_; }
    QLabel* errorLabel() const { return error_; }
    QLabel* resultLabel() const { return result_; }
    QLabel* keptLabel() const { return kept_; }
    QSpinBox* weightBits() const { return wbits_; }
    QSpinBox* activationBits() const { return abits_; }
    QPushButton* keepButton() const { return keep_; }
    // The attention operand row: the point, its bits ("float" or 8..2) and granularity.
    QComboBox* operandPoint() const { return operand_; }
    QComboBox* operandBits() const { return obits_; }
    QComboBox* operandGranularity() const { return ogran_; }
    QLabel* operandResultLabel() const { return operandResult_; }
    // The what-if the last release or spin box started, and its job (-1: none).
    const std::optional<WhatIfChange>& lastChange() const { return change_; }
    int lastJob() const { return job_; }
    // The error the label shows for the edited tensor (from its histogram).
    std::optional<TensorQuantError> currentError() const { return errorNow_; }

private:
    void layerShown();
    void rangeMoved(Target target, double lo, double hi);
    void rangeReleased(Target target, double lo, double hi);
    void bitsEdited();
    void showResult();
    void showKept();
    void listOperands();
    void operandEdited();
    void showOperandResult();
    // Starts the what-if; `status` (default: the layer's result label) says it runs.
    void start(const WhatIfChange& change, QLabel* status = nullptr);
    OperandSpec operandSpecOf(const AttentionPoint& p) const;
    std::string layerName() const;
    const Histogram* histogram(Target target) const;
    std::string tensorName(Target target) const;
    QuantSpec spec(Target target) const;

    ModelDocument* doc_;
    WhatIfController* whatIf_;
    InspectorPanel* inspector_;
    RangeEditor* weightEditor_;
    RangeEditor* activationEditor_;
    QLabel* error_;
    QLabel* result_;
    QLabel* kept_;
    QSpinBox* wbits_;
    QSpinBox* abits_;
    QPushButton* keep_;
    QComboBox* operand_;
    QComboBox* obits_;
    QComboBox* ogran_;
    QLabel* operandResult_;
    QWidget* operandRow_;
    std::vector<AttentionPoint> operands_;
    static QString idleText();
    std::optional<WhatIfChange> change_;
    std::optional<TensorQuantError> errorNow_;
    // Per target: the layer and base range the lines were last placed from.
    std::optional<std::pair<std::string, std::pair<double, double>>> placed_[2];
    int job_ = -1;
};

} // namespace qs::ui
