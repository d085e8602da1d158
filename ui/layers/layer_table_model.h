// One row per quantizable layer of the open model: the table a quantization
// engineer reads first. Display text, raw values for sorting, explanations as tooltips.
#pragma once

#include "quant/attention.h"
#include "ui/widgets/color_scale.h"

#include <QAbstractTableModel>

#include <vector>

namespace qs::ui {

class ModelDocument;
class QuantConfigDocument;

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Index, Name, Op, WeightShape, OutputShape, Params, SizeShare, Kurtosis, Outliers, ChannelRange,
        InputKurtosis, Sensitivity, Bits,
        WeightBits, ActBits, Granularity, Calibrator, // the configuration being edited (QuantConfigDocument)
        ColumnCount
    };
    enum Role {
        SortRole = Qt::UserRole,        // raw value: double, or QString for text columns
        LayerRowRole = Qt::UserRole + 1, // row in ModelData::layers
        BarRole = Qt::UserRole + 2,      // 0..1 for columns drawn with an inline bar
        OperandRole = Qt::UserRole + 3,  // attention operand rows: the point's name (LayerRowRole is -1)
    };

    explicit LayerTableModel(ModelDocument* doc, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    // Edits one row through the configuration document (one undo step).
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

    // The configuration columns show and edit this document; without one they stay empty.
    void setConfigDocument(QuantConfigDocument* config);
    QuantConfigDocument* configDocument() const { return config_; }
    static bool isConfigColumn(int column) { return column >= WeightBits && column <= Calibrator; }
    // The configuration field a configuration column shows (WeightBits for any other column).
    static int fieldOfColumn(int column);

    // Columns that only fill after later analyses, hidden by users who do not need them.
    static bool isLaterColumn(int column) { return column == Sensitivity || column == Bits; }

    // Attention operands (quant/attention.h) follow the layers, one row each: their A bits,
    // granularity and calibrator edit QuantConfig::attention.points.
    int operandCount() const { return int(operands_.size()); }
    const AttentionPoint* operandAt(int row) const;

private:
    QVariant display(int row, int column) const;
    QVariant operandData(const AttentionPoint& p, int column, int role) const;
    bool setOperand(const AttentionPoint& p, int column, const QVariant& value);
    QVariant sortValue(int row, int column) const;
    void updateScales();

    ModelDocument* doc_;
    QuantConfigDocument* config_ = nullptr;
    double maxShare_ = 0;
    std::vector<ColorScale> scales_; // per LayerMetric, for conditional formatting
    std::vector<AttentionPoint> operands_;
};

} // namespace qs::ui
