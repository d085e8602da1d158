// What a Quantize action runs with, besides the current QuantConfig: the algorithms
// (from the registry), the calibration and evaluation data and their sample limits,
// tags and a note for the run. The CLI twin is `quantstudio-cli quantize --db`.
#pragma once

#include <QDialog>
#include <QStringList>

#include <memory>

class QCheckBox;
class QLineEdit;
class QListWidget;
class QSpinBox;
class QTableWidget;

namespace qs {
class Graph;
}

namespace qs::ui {

struct QuantizeRequest {
    QStringList algorithms; // registry names, applied in registry order within each stage
    QString calibData;      // dataset spec (IDX/NPY path or random:N)
    QString evalData;       // dataset spec; labels beside an IDX file give top-1
    int calibLimit = 256;
    int evalLimit = 1000;   // 0: all samples
    int batch = 32;
    bool int8 = false;
    QStringList tags;
    QString note;
};

class QuantizeDialog : public QDialog {
    Q_OBJECT
public:
    // With `graph`, a table shows which array feeds each of its inputs.
    explicit QuantizeDialog(
        const QuantizeRequest& initial, QWidget* parent = nullptr, std::shared_ptr<const Graph> graph = nullptr);

    QuantizeRequest request() const;
    QListWidget* algorithmList() const { return algorithms_; }
    QSpinBox* calibLimit() const { return calibLimit_; }
    QSpinBox* evalLimit() const { return evalLimit_; }
    QLineEdit* calibData() const { return calibData_; }
    QTableWidget* inputTable() const { return inputs_; }

private:
    QListWidget* algorithms_;
    QLineEdit *calibData_, *evalData_, *tags_, *note_;
    QSpinBox *calibLimit_, *evalLimit_, *batch_;
    QCheckBox* int8_;
    QTableWidget* inputs_ = nullptr;
    std::shared_ptr<const Graph> graph_;

    void showInputs();
};

} // namespace qs::ui
