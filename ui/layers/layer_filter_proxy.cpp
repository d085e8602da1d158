#include "ui/layers/layer_filter_proxy.h"

#include "ui/layers/layer_table_model.h"

namespace qs::ui {

LayerFilterProxy::LayerFilterProxy(QObject* parent) : QSortFilterProxyModel(parent)
{
    setSortRole(LayerTableModel::SortRole);
    setDynamicSortFilter(true);
}

void LayerFilterProxy::setNameFilter(const QString& text)
{
    nameText_ = text.trimmed();
    if (nameText_.contains(QLatin1Char('*')) || nameText_.contains(QLatin1Char('?')))
        name_ = QRegularExpression(QRegularExpression::wildcardToRegularExpression(
                                       nameText_, QRegularExpression::UnanchoredWildcardConversion),
                                   QRegularExpression::CaseInsensitiveOption);
    else
        name_ = QRegularExpression(QRegularExpression::escape(nameText_), QRegularExpression::CaseInsensitiveOption);
    invalidateRowsFilter();
}

void LayerFilterProxy::setOpFilter(const QString& op)
{
    op_ = op;
    invalidateRowsFilter();
}

bool LayerFilterProxy::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const
{
    const QAbstractItemModel* m = sourceModel();
    if (!op_.isEmpty() && m->index(sourceRow, LayerTableModel::Op, sourceParent).data(LayerTableModel::SortRole).toString() != op_)
        return false;
    if (nameText_.isEmpty())
        return true;
    const QString name = m->index(sourceRow, LayerTableModel::Name, sourceParent).data(LayerTableModel::SortRole).toString();
    return name_.match(name).hasMatch();
}

bool LayerFilterProxy::lessThan(const QModelIndex& left, const QModelIndex& right) const
{
    const QVariant a = left.data(sortRole()), b = right.data(sortRole());
    // Unknown values ("—") sort below every known one.
    if (!a.isValid() || !b.isValid())
        return !a.isValid() && b.isValid();
    if (a.typeId() == QMetaType::QString || b.typeId() == QMetaType::QString)
        return QString::localeAwareCompare(a.toString(), b.toString()) < 0;
    return a.toDouble() < b.toDouble();
}

} // namespace qs::ui
