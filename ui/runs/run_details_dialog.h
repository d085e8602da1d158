// One run in full, opened by double-clicking it in the runs list: what ran (kind, state,
// model and its hash, data, machine, when and for how long, the error of a failed run),
// every metric beside its FP32 baseline with the sample it was measured on and the 95 %
// interval of accuracies, and the whole configuration as stored.
#pragma once

#include "store/records.h"

#include <QDialog>

class QPlainTextEdit;
class QTableWidget;

namespace qs::ui {

class RunDetailsDialog : public QDialog {
    Q_OBJECT
public:
    explicit RunDetailsDialog(const RunRecord& run, QWidget* parent = nullptr);

    QTableWidget* metricsTable() const { return metrics_; }
    QPlainTextEdit* configText() const { return config_; }

private:
    QTableWidget* metrics_;
    QPlainTextEdit* config_;
};

} // namespace qs::ui
