// Draws a cell's value over a proportional bar (the "share of size" column), so the
// biggest layers stand out without sorting.
#pragma once

#include <QColor>
#include <QStyledItemDelegate>

namespace qs::ui {

class BarDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    BarDelegate(int barRole, QColor color, QObject* parent = nullptr);
    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;

private:
    int role_;
    QColor color_;
};

} // namespace qs::ui
