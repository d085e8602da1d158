// What a Quantize action runs with, besides the current QuantConfig: the algorithms
// (from the registry), the calibration and evaluation data and their sample limits,
// tags and a note for the run. The CLI twin is `quantstudio-cli quantize --db`.
#pragma once

#include "graph/tensor.h"

#include <QDialog>
#include <QMap>
#include <QStringList>

#include <optional>

#include <memory>

class QCheckBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace qs {
class Graph;
struct ValueInfo;
}

namespace qs::ui {

struct QuantizeRequest {
    QStringList algorithms; // registry names, applied in registry order within each stage
    QString calibData;      // dataset spec (IDX/NPY path or random:N)
    QString evalData;       // dataset spec; labels beside an IDX file give top-1; "": not chosen yet
    // images:DIR / imagelist:FILE data: the pipeline (data/preprocess.h), for both.
    QString preprocess;
    int calibLimit = 256;
    int evalLimit = 1000;   // 0: all samples
    // Evaluate on samples [evalFrom, ...) of evalData: with the calibration file, held out
    // from the first evalFrom samples calibration takes (the CLI's --eval-from).
    int evalFrom = 0;
    int batch = 32;
    bool int8 = false;
    QStringList tags;
    QString note;
    // Input name -> its full shape ("1x3x48x320", the batch ignored) for inputs whose model
    // shape leaves dimensions open: the CLI's --input-shape. Random data needs it; the
    // run records the shapes bound (config "input_shapes").
    QMap<QString, QString> inputShapes;
};

// The shape field of an input: its model dimensions, the batch (at `batchAxis`) as 1 and
// other open ones as "?": "1x3x48x?" for [N,3,48,W]; "" when even the rank is unknown.
QString shapeFieldTemplate(const ValueInfo& input, int batchAxis);
// The dimensions typed in a shape field ("1x3x48x320"), or nullopt while one is not a
// positive integer (a "?" left) or the rank differs from the model's.
std::optional<Shape> parseShapeField(const QString& text, const ValueInfo& input);

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
    QLineEdit* evalData() const { return evalData_; }
    // "Evaluate on the calibration data": stated, never assumed; the evaluation field follows
    // the calibration one while it is ticked.
    QCheckBox* evalOnCalibration() const { return evalOnCalib_; }
    // With it: skip the samples calibration takes (a held-out split of the same file).
    QCheckBox* heldOut() const { return heldOut_; }
    // Why Quantize is disabled ("" when it is not): no evaluation data chosen, or a shape
    // field random data cannot use.
    QString problem() const;
    QLineEdit* preprocess() const { return preprocess_; }
    QTableWidget* inputTable() const { return inputs_; }
    // A shape field random data cannot use ("" when none).
    QString shapeProblem() const { return shapeProblem_; }

    enum InputColumn { NameColumn, ModelShapeColumn, ShapeColumn, TypeColumn, ArrayColumn };

private:
    QListWidget* algorithms_;
    QLineEdit *calibData_, *evalData_, *preprocess_, *tags_, *note_;
    QSpinBox *calibLimit_, *evalLimit_, *batch_;
    QCheckBox* int8_;
    QCheckBox* evalOnCalib_;
    QCheckBox* heldOut_;
    QLabel* evalHint_;
    QTableWidget* inputs_ = nullptr;
    QLabel* shapeHint_ = nullptr;
    QPushButton* ok_ = nullptr;
    QString shapeProblem_;
    std::shared_ptr<const Graph> graph_;

    void fillInputs(const QMap<QString, QString>& shapes);
    void showInputs();
    void checkShapes();
    void updateEvaluation();
};

} // namespace qs::ui
