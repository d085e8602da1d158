#include "ui/widgets/bar_delegate.h"

#include <QApplication>
#include <QPainter>

#include <algorithm>

namespace qs::ui {

BarDelegate::BarDelegate(int barRole, QColor color, QObject* parent)
    : QStyledItemDelegate(parent), role_(barRole), color_(color)
{
}

void BarDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const
{
    const QVariant v = index.data(role_);
    if (v.isValid()) {
        // Selection background first, then the bar, then the text on top.
        QStyleOptionViewItem bg = option;
        initStyleOption(&bg, index);
        bg.text.clear();
        const QStyle* style = option.widget ? option.widget->style() : QApplication::style();
        style->drawPrimitive(QStyle::PE_PanelItemViewItem, &bg, painter, option.widget);
        const double f = std::clamp(v.toDouble(), 0.0, 1.0);
        QRectF r = QRectF(option.rect).adjusted(4, 5, -4, -5);
        r.setWidth(std::max(1.0, r.width() * f));
        painter->save();
        painter->setRenderHint(QPainter::Antialiasing);
        painter->setPen(Qt::NoPen);
        QColor c = color_;
        if (option.state & QStyle::State_Selected)
            c.setAlpha(110);
        painter->setBrush(c);
        painter->drawRoundedRect(r, 2, 2);
        painter->restore();
        QStyleOptionViewItem fg = option;
        initStyleOption(&fg, index);
        fg.backgroundBrush = Qt::NoBrush;
        fg.state &= ~QStyle::State_HasFocus;
        painter->save();
        const QRect textRect = option.rect.adjusted(6, 0, -6, 0);
        painter->setPen(option.state & QStyle::State_Selected ? option.palette.highlightedText().color()
                                                              : option.palette.text().color());
        painter->drawText(textRect, int(fg.displayAlignment), fg.text);
        painter->restore();
        return;
    }
    QStyledItemDelegate::paint(painter, option, index);
}

} // namespace qs::ui
