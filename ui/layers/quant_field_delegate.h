// Editors for the configuration columns of the layer table (bits, granularity,
// calibrator). An edit of a row that is part of a multi-row selection applies to every
// selected row, as one undo step of the QuantConfigDocument.
#pragma once

#include <QStyledItemDelegate>

class QAbstractItemView;

namespace qs::ui {

class QuantConfigDocument;

class QuantFieldDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    QuantFieldDelegate(QuantConfigDocument* config, QAbstractItemView* view, QObject* parent = nullptr);

    QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    void setEditorData(QWidget* editor, const QModelIndex& index) const override;
    void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override;

    // The layer rows an edit of `index` applies to: the selected rows when `index` is one of them.
    QList<int> targetRows(const QModelIndex& index) const;
    // The choices offered for a column (editable combos accept others, e.g. "group:48").
    static QStringList choices(int column);

signals:
    void editRefused(const QString& message);

private:
    QuantConfigDocument* config_;
    QAbstractItemView* view_;
};

} // namespace qs::ui
