#include "ui/graph/graph_items.h"

#include "ui/widgets/color_scale.h"
#include "ui/widgets/theme.h"

#include <QGraphicsSceneHoverEvent>
#include <QLineF>
#include <QPainter>
#include <QPainterPathStroker>
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

namespace {

// Fonts and metrics once per process: paint() runs for every visible box on every frame.
struct GraphFonts {
    QFont title = theme::graphTitleFont(), text = theme::graphTextFont();
    double titleHeight = QFontMetricsF(title).height(), textHeight = QFontMetricsF(text).height();
};
const GraphFonts& fonts()
{
    static const GraphFonts f;
    return f;
}

// Text is drawn at its own size while that is legible on screen; zoomed further out it is
// drawn larger in the scene, at badgePx on screen, while it fits its box.
constexpr double legiblePx = 7.5, badgePx = 9.0;

// Draws `text` centred in `r` at badgePx screen pixels whatever the zoom `lod`; false when
// even that does not fit (the box is then too small on screen for any text).
bool drawBadge(QPainter* p, const QRectF& r, const QString& text, const QFont& font, double fontHeight, double lod)
{
    const double s = badgePx / (fontHeight * lod); // scene units per font unit
    if (fontHeight * s > r.height() * 0.9)
        return false;
    const QFontMetricsF fm(font);
    const double width = (r.width() - 6) / s;
    const QString shown = fm.elidedText(text, Qt::ElideRight, width);
    if (shown.size() < 2)
        return false;
    p->save();
    p->translate(r.center());
    p->scale(s, s);
    p->setFont(font);
    p->drawText(QRectF(-width / 2, -fontHeight / 2, width, fontHeight), Qt::AlignCenter, shown);
    p->restore();
    return true;
}

} // namespace

void NodeItem::paint(QPainter* p, const QStyleOptionGraphicsItem* option, QWidget*)
{
    const QRectF r = box_.rect;
    const bool io = box_.kind == GraphLayout::BoxKind::Input || box_.kind == GraphLayout::BoxKind::Output;
    const bool block = box_.kind == GraphLayout::BoxKind::Block;
    const double radius = io ? r.height() / 2 : 6;
    const qreal lod = option->levelOfDetailFromTransform(p->worldTransform());
    p->setRenderHint(QPainter::Antialiasing, lod > 0.3);
    p->setRenderHint(QPainter::TextAntialiasing, true);

    QColor fill, border, title, text;
    if (io) {
        fill = theme::ioFill;
        border = theme::ioFill.darker(130);
        title = text = QColor(Qt::white);
    } else if (block) {
        fill = QColor(0xe8, 0xee, 0xfb);
        border = theme::accent.lighter(150);
        title = theme::text;
        text = theme::mutedText;
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
    if (block) { // a stack of cards: the repeated operators behind
        p->setPen(QPen(border, 1.0));
        p->setBrush(fill.darker(104));
        p->drawRoundedRect(r.adjusted(6, -4, 4, -6), radius, radius);
    }
    p->setPen(QPen(current_ ? theme::accent : (hover_ ? theme::accent.lighter(140) : border),
                   current_ ? 2.2 : (isLayer_ || block ? 1.4 : 1.0)));
    p->setBrush(fill);
    p->drawRoundedRect(r, radius, radius);
    if (unsupported_) {
        p->setPen(QPen(QColor(0xdc, 0x26, 0x26), 2.0, Qt::DashLine));
        p->setBrush(Qt::NoBrush);
        p->drawRoundedRect(r.adjusted(-2.5, -2.5, 2.5, 2.5), radius + 2, radius + 2);
    }
    if (isLayer_ && !fill_.isValid() && lod > 0.3) {
        // No value for this layer yet: a dashed inner outline says "unmeasured".
        p->setPen(QPen(theme::layerBorder, 1, Qt::DashLine));
        p->setBrush(Qt::NoBrush);
        p->drawRoundedRect(r.adjusted(2.5, 2.5, -2.5, -2.5), radius - 2, radius - 2);
    }

    // Level of detail: every line while the small text is legible, then the title alone,
    // then the title as a badge of fixed screen size; nothing once the box is a speck.
    const GraphFonts& f = fonts();
    const double toggle = block ? 22 : 0; // the expand toggle's column
    if (block && lod * r.height() >= 10) {
        const QRectF t(r.right() - toggle, r.top() + 4, 16, 16);
        p->setPen(QPen(theme::accent, 1.2));
        p->setBrush(Qt::white);
        p->drawEllipse(t);
        p->drawLine(QPointF(t.left() + 4, t.center().y()), QPointF(t.right() - 4, t.center().y()));
        p->drawLine(QPointF(t.center().x(), t.top() + 4), QPointF(t.center().x(), t.bottom() - 4));
    }
    if (f.titleHeight * lod < legiblePx) {
        p->setPen(title);
        drawBadge(p, r.adjusted(0, 0, -toggle, 0), box_.title, f.title, f.titleHeight, lod);
        return;
    }
    const bool lines = f.textHeight * lod >= legiblePx;
    const double contentHeight = f.titleHeight + (lines ? double(box_.lines.size()) * f.textHeight : 0);
    double y = lines ? r.top() + (block ? 9 : 6) : r.center().y() - contentHeight / 2;
    p->setFont(f.title);
    p->setPen(title);
    p->drawText(QRectF(r.left() + 4, y, r.width() - 8 - toggle, f.titleHeight), Qt::AlignCenter, box_.title);
    if (!lines)
        return;
    y += f.titleHeight;
    p->setFont(f.text);
    p->setPen(text);
    for (const QString& l : box_.lines) {
        p->drawText(QRectF(r.left() + 4, y, r.width() - 8, f.textHeight), Qt::AlignCenter, l);
        y += f.textHeight;
    }
}

BlockFrameItem::BlockFrameItem(int block, const QString& name, const QRectF& frame)
    : block_(block), name_(name), frame_(frame)
{
    setZValue(-1);
    setCursor(Qt::PointingHandCursor);
    setToolTip(QStringLiteral("<b>%1</b><br/>Click the header to collapse the block").arg(name.toHtmlEscaped()));
}

QRectF BlockFrameItem::boundingRect() const
{
    return frame_.adjusted(-2, -2, 2, 2);
}

QPainterPath BlockFrameItem::shape() const
{
    QPainterPath p; // the header strip: clicks inside the frame reach its boxes
    p.addRect(QRectF(frame_.left(), frame_.top(), frame_.width(), std::min(22.0, frame_.height())));
    return p;
}

void BlockFrameItem::paint(QPainter* p, const QStyleOptionGraphicsItem* option, QWidget*)
{
    const qreal lod = option->levelOfDetailFromTransform(p->worldTransform());
    p->setRenderHint(QPainter::Antialiasing, lod > 0.3);
    QColor fill = theme::accent;
    fill.setAlpha(14);
    p->setPen(QPen(theme::accent.lighter(150), 1.2, Qt::DashLine));
    p->setBrush(fill);
    p->drawRoundedRect(frame_, 8, 8);
    const GraphFonts& f = fonts();
    const QRectF header(frame_.left() + 8, frame_.top() + 3, frame_.width() - 16, 18);
    p->setPen(theme::accent.darker(130));
    if (f.titleHeight * lod < legiblePx) {
        drawBadge(p, QRectF(frame_.left(), frame_.top(), frame_.width(), std::min(frame_.height(), 60.0)),
                  name_, f.title, f.titleHeight, lod);
        return;
    }
    p->setFont(f.title);
    p->drawText(header, Qt::AlignLeft | Qt::AlignVCenter, name_ + QStringLiteral("  −"));
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

QPainterPath EdgeItem::shape() const
{
    if (shape_.isEmpty()) {
        QPainterPathStroker stroker;
        stroker.setWidth(6);
        shape_ = stroker.createStroke(edge_.path);
        shape_.addPolygon(arrow_);
    }
    return shape_;
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

void EdgeItem::paint(QPainter* p, const QStyleOptionGraphicsItem* option, QWidget*)
{
    const qreal lod = option->levelOfDetailFromTransform(p->worldTransform());
    p->setRenderHint(QPainter::Antialiasing, lod > 0.3);
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
    p->setRenderHint(QPainter::Antialiasing, true);
    static const QFont font = theme::graphTextFont();
    p->setPen(QPen(boundaryColor, 1));
    p->setBrush(QColor(255, 250, 240));
    p->drawRoundedRect(rect_, 4, 4);
    p->setFont(font);
    p->setPen(boundaryColor.darker(140));
    p->drawText(rect_, Qt::AlignCenter, text_);
}

} // namespace qs::ui
