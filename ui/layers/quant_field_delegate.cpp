#include "ui/layers/quant_field_delegate.h"

#include "ui/document/quant_config_document.h"
#include "ui/layers/layer_table_model.h"

#include <QAbstractItemView>
#include <QComboBox>
#include <QItemSelectionModel>
#include <QLineEdit>

#include <algorithm>

namespace qs::ui {
namespace {

QuantConfigDocument::Field fieldOf(int column)
{
    return QuantConfigDocument::Field(LayerTableModel::fieldOfColumn(column));
}

bool isBits(int column)
{
    return column == LayerTableModel::WeightBits || column == LayerTableModel::ActBits;
}

} // namespace

QuantFieldDelegate::QuantFieldDelegate(QuantConfigDocument* config, QAbstractItemView* view, QObject* parent)
    : QStyledItemDelegate(parent), config_(config), view_(view)
{
}

QStringList QuantFieldDelegate::choices(int column)
{
    switch (column) {
    case LayerTableModel::WeightBits:
    case LayerTableModel::ActBits:
        return {QStringLiteral("2"), QStringLiteral("3"), QStringLiteral("4"), QStringLiteral("5"), QStringLiteral("6"),
                QStringLiteral("7"), QStringLiteral("8"), QStringLiteral("16"), QStringLiteral("32")};
    case LayerTableModel::Granularity:
        return {QStringLiteral("tensor"), QStringLiteral("channel"), QStringLiteral("group:32"), QStringLiteral("group:64"),
                QStringLiteral("group:128")};
    case LayerTableModel::Calibrator:
        return {QStringLiteral("minmax"), QStringLiteral("ema:0.9"), QStringLiteral("percentile:99.99"),
                QStringLiteral("percentile:99.9"), QStringLiteral("mse"), QStringLiteral("entropy")};
    default: return {};
    }
}

QWidget* QuantFieldDelegate::createEditor(QWidget* parent, const QStyleOptionViewItem& option,
                                          const QModelIndex& index) const
{
    if (!LayerTableModel::isConfigColumn(index.column()))
        return QStyledItemDelegate::createEditor(parent, option, index);
    auto* combo = new QComboBox(parent);
    combo->setObjectName(QStringLiteral("quantFieldEditor"));
    // An attention operand row: its own granularities.
    const bool operand = index.data(LayerTableModel::OperandRole).isValid();
    const QStringList offered = operand && index.column() == LayerTableModel::Granularity
        ? QStringList {QStringLiteral("tensor"), QStringLiteral("head"), QStringLiteral("token"),
              QStringLiteral("channel")}
        : choices(index.column());
    for (const QString& c : offered)
        combo->addItem(isBits(index.column()) && c.toInt() >= 16 ? QStringLiteral("FP%1 (float)").arg(c) : c, c);
    // Granularity and calibrator take values beyond the list ("group:48", "percentile:99.5").
    combo->setEditable(!isBits(index.column()));
    const int rows = int(targetRows(index).size());
    combo->setToolTip(operand ? QStringLiteral("Applies to this attention operand")
            : rows > 1        ? QStringLiteral("Applies to the %1 selected layers").arg(rows)
                              : QStringLiteral("Applies to this layer"));
    // A pick from the list commits at once; typed text commits on Enter or focus out.
    connect(combo, &QComboBox::activated, this, [this, combo] {
        auto* self = const_cast<QuantFieldDelegate*>(this);
        emit self->commitData(combo);
        emit self->closeEditor(combo);
    });
    return combo;
}

void QuantFieldDelegate::setEditorData(QWidget* editor, const QModelIndex& index) const
{
    auto* combo = qobject_cast<QComboBox*>(editor);
    if (!combo)
        return QStyledItemDelegate::setEditorData(editor, index);
    const QString value = index.data(Qt::EditRole).toString();
    const int i = combo->findData(value);
    if (i >= 0)
        combo->setCurrentIndex(i);
    else if (combo->isEditable())
        combo->setEditText(value);
}

void QuantFieldDelegate::setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const
{
    auto* combo = qobject_cast<QComboBox*>(editor);
    if (!combo || !LayerTableModel::isConfigColumn(index.column()))
        return QStyledItemDelegate::setModelData(editor, model, index);
    QString text = combo->currentText().trimmed();
    if (const int i = combo->findText(text); i >= 0)
        text = combo->itemData(i).toString();
    const QVariant value = isBits(index.column()) ? QVariant(text.section(QLatin1Char(' '), 0, 0).remove(QStringLiteral("FP")).toInt())
                                                  : QVariant(text);
    if (index.data(LayerTableModel::OperandRole).isValid()) { // an attention operand: edited by the model
        if (!model->setData(index, value))
            emit const_cast<QuantFieldDelegate*>(this)->editRefused(
                QStringLiteral("%1: %2 is not a valid setting for an attention operand")
                    .arg(index.data(LayerTableModel::OperandRole).toString(), text));
        return;
    }
    if (!config_->setLayers(targetRows(index), fieldOf(index.column()), value))
        emit const_cast<QuantFieldDelegate*>(this)->editRefused(config_->lastError());
}

QList<int> QuantFieldDelegate::targetRows(const QModelIndex& index) const
{
    const int own = index.data(LayerTableModel::LayerRowRole).toInt();
    QItemSelectionModel* sel = view_ ? view_->selectionModel() : nullptr;
    if (!sel || !sel->isRowSelected(index.row(), index.parent()))
        return {own};
    QList<int> rows;
    for (const QModelIndex& r : sel->selectedRows())
        if (const int row = r.data(LayerTableModel::LayerRowRole).toInt(); row >= 0) // not attention operands
            rows << row;
    std::sort(rows.begin(), rows.end());
    return rows;
}

} // namespace qs::ui
