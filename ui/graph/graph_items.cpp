#include "ui/graph/graph_items.h"

#include "ui/widgets/color_scale.h"
#include "ui/widgets/theme.h"

#include <QGraphicsSceneHoverEvent>
#include <QLineF>
#include <QPainter>
#include <QStyleOptionGraphicsItem>

#include <cmath>

namespace qs::ui {
namespace {

// Precision boundaries: a magenta no layer colour scale uses.
const QColor boundaryColor(0xc0, 0x26, 0xd3);

} // namespace

QColor edgeMarkColor()
{
    return boundaryColor;
}

NodeItem::NodeItem(const GraphLayout::Box& box, int boxIndex, bool isLayer)
    : box_(box), index_(boxIndex), isLayer_(isLayer)
{
    setPos(box_.rect.topLeft());
    box_.rect.moveTopLeft(QPointF(0, 0));
    setAcceptHoverEvents(true);
    setCursor(Qt::PointingHandCursor);
    setZValue(1);
}

QRectF NodeItem::boundingRect() const
{
    return box_.rect.adjusted(-5, -5, 5, 5);
}

QPainterPath NodeItem::shape() const
{
    QPainterPath p;
    p.addRoundedRect(box_.rect, 6, 6);
    return p;
}

void NodeItem::setFill(const QColor& fill)
{
    if (fill_ == fill)
        return;
    fill_ = fill;
    update();
}

void NodeItem::setCurrent(bool current)
{
    if (current_ == current)
        return;
    current_ = current;
    setZValue(current ? 3 : 1);
    update();
}

void NodeItem::hoverEnterEvent(QGraphicsSceneHoverEvent*)
{
    hover_ = true;
    update();
}

void NodeItem::hoverLeaveEvent(QGraphicsSceneHoverEvent*)
{
    hover_ = false;
    update();
}

void NodeItem::paint(QPainter* p, const QStyleOptionGraphicsItem* option, QWidget*)
{
    const QRectF r = box_.rect;
    const bool io = box_.kind != GraphLayout::BoxKind::Operator;
    const double radius = io ? r.height() / 2 : 6;

    QColor fill, border, title, text;
    if (io) {
        fill = theme::ioFill;
        border = theme::ioFill.darker(130);
        title = text = QColor(Qt::white);
    } else if (isLayer_) {
        fill = fill_.isValid() ? fill_ : QColor(Qt::white);
        border = fill_.isValid() ? fill_.darker(150) : theme::layerBorder;
        title = ColorScale::textColorOn(fill);
        text = title == QColor(Qt::white) ? QColor(255, 255, 255, 215) : theme::mutedText;
    } else {
        fill = theme::opFill;
        border = theme::opBorder;
        title = theme::text;
        text = theme::mutedText;
    }

    if (current_) {
        p->setPen(Qt::NoPen);
        QColor glow = theme::accent;
        glow.setAlpha(60);
        p->setBrush(glow);
        p->drawRoundedRect(r.adjusted(-5, -5, 5, 5), radius + 4, radius + 4);
    }
    p->setPen(QPen(current_ ? theme::accent : (hover_ ? theme::accent.lighter(140) : border),
                   current_ ? 2.2 : (isLayer_ ? 1.4 : 1.0)));
    p->setBrush(fill);
    p->drawRoundedRect(r, radius, radius);
    if (unsupported_) {
        p->setPen(QPen(QColor(0xdc, 0x26, 0x26), 2.0, Qt::DashLine));
        p->setBrush(Qt::NoBrush);
        p->drawRoundedRect(r.adjusted(-2.5, -2.5, 2.5, 2.5), radius + 2, radius + 2);
    }
    if (isLayer_ && !fill_.isValid()) {
        // No value for this layer yet: a dashed inner outline says "unmeasured".
        p->setPen(QPen(theme::layerBorder, 1, Qt::DashLine));
        p->setBrush(Qt::NoBrush);
        p->drawRoundedRect(r.adjusted(2.5, 2.5, -2.5, -2.5), radius - 2, radius - 2);
    }

    // Text disappears when zoomed far out: unreadable there, and costly on big graphs.
    const qreal lod = option->levelOfDetailFromTransform(p->worldTransform());
    if (lod < 0.4)
        return;
    // Fonts and metrics once per process: paint() runs for every box on every frame.
    static const QFont titleFont = theme::graphTitleFont();
    static const QFont textFont = theme::graphTextFont();
    static const double th = QFontMetricsF(titleFont).height(), lh = QFontMetricsF(textFont).height();
    double y = r.top() + 6;
    p->setFont(titleFont);
    p->setPen(title);
    p->drawText(QRectF(r.left() + 4, y, r.width() - 8, th), Qt::AlignCenter, box_.title);
    y += th;
    p->setFont(textFont);
    p->setPen(text);
    for (const QString& l : box_.lines) {
        p->drawText(QRectF(r.left() + 4, y, r.width() - 8, lh), Qt::AlignCenter, l);
        y += lh;
    }
}

EdgeItem::EdgeItem(const GraphLayout::Edge& edge) : edge_(edge)
{
    const QLineF shaft(edge_.arrowBase, edge_.arrowTip);
    if (shaft.length() > 0.1) {
        const QLineF unit = shaft.unitVector();
        const QPointF d = (unit.p2() - unit.p1());
        const QPointF n(-d.y(), d.x());
        const double w = 3.6;
        arrow_ << edge_.arrowTip << edge_.arrowBase + n * w << edge_.arrowBase - n * w;
    }
    bounds_ = edge_.path.boundingRect().united(arrow_.boundingRect()).adjusted(-3, -3, 3, 3);
    setZValue(0);
}

QRectF EdgeItem::boundingRect() const
{
    return bounds_;
}

void EdgeItem::setHighlighted(bool on)
{
    if (highlighted_ == on)
        return;
    highlighted_ = on;
    setZValue(on ? 2 : 0);
    update();
}

void EdgeItem::setMark(bool on, const QString& tooltip)
{
    setToolTip(tooltip);
    if (marked_ == on)
        return;
    marked_ = on;
    setZValue(on ? 2 : highlighted_ ? 2 : 0);
    update();
}

void EdgeItem::paint(QPainter* p, const QStyleOptionGraphicsItem*, QWidget*)
{
    const QColor c = highlighted_ ? theme::accent : marked_ ? boundaryColor : theme::edge;
    if (marked_) { // a wide translucent band under the line: visible when zoomed out
        QColor band = boundaryColor;
        band.setAlpha(70);
        p->setPen(QPen(band, 7, Qt::SolidLine, Qt::RoundCap));
        p->drawPath(edge_.path);
    }
    p->setPen(QPen(c, highlighted_ || marked_ ? 1.8 : 1.1));
    p->setBrush(Qt::NoBrush);
    p->drawPath(edge_.path);
    if (!arrow_.isEmpty()) {
        p->setPen(Qt::NoPen);
        p->setBrush(c);
        p->drawPolygon(arrow_);
    }
}

QPointF EdgeItem::labelCenter(const QSizeF& size) const
{
    const double angle = edge_.path.angleAtPercent(0.5); // degrees, counter-clockwise
    const bool horizontal = std::abs(std::sin(angle * M_PI / 180.0)) < 0.7;
    const QPointF mid = midpoint();
    return horizontal ? mid - QPointF(0, size.height() / 2 + 3) : mid + QPointF(size.width() / 2 + 4, 0);
}

EdgeLabelItem::EdgeLabelItem(const QString& text) : text_(text)
{
    static const QFont font = theme::graphTextFont();
    const QFontMetricsF fm(font);
    const QSizeF size(fm.horizontalAdvance(text_) + 10, fm.height() + 4);
    rect_ = QRectF(QPointF(-size.width() / 2, -size.height() / 2), size);
    setZValue(4);
}

QRectF EdgeLabelItem::boundingRect() const
{
    return rect_.adjusted(-1, -1, 1, 1);
}

void EdgeLabelItem::paint(QPainter* p, const QStyleOptionGraphicsItem*, QWidget*)
{
    static const QFont font = theme::graphTextFont();
    p->setPen(QPen(boundaryColor, 1));
    p->setBrush(QColor(255, 250, 240));
    p->drawRoundedRect(rect_, 4, 4);
    p->setFont(font);
    p->setPen(boundaryColor.darker(140));
    p->drawText(rect_, Qt::AlignCenter, text_);
}

} // namespace qs::ui
