// Sorting by raw values and filtering by layer name and op type for the layer table.
#pragma once

#include <QRegularExpression>
#include <QSortFilterProxyModel>

namespace qs::ui {

class LayerFilterProxy : public QSortFilterProxyModel {
    Q_OBJECT
public:
    explicit LayerFilterProxy(QObject* parent = nullptr);

    // Case-insensitive substring of the full node name; * and ? act as wildcards.
    void setNameFilter(const QString& text);
    // Exact op type, or empty for every op.
    void setOpFilter(const QString& op);
    QString nameFilter() const { return nameText_; }
    QString opFilter() const { return op_; }

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;
    bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;

private:
    QString nameText_, op_;
    QRegularExpression name_;
};

} // namespace qs::ui
