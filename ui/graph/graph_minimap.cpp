#include "ui/graph/graph_minimap.h"

#include "ui/graph/graph_items.h"
#include "ui/graph/graph_view.h"
#include "ui/widgets/theme.h"

#include <QMouseEvent>
#include <QPainter>

namespace qs::ui {

GraphMinimap::GraphMinimap(GraphView* view) : QWidget(view), view_(view)
{
    setObjectName(QStringLiteral("graphMinimap"));
    setCursor(Qt::OpenHandCursor);
    setToolTip(QStringLiteral("Overview: click or drag to move the view"));
}

void GraphMinimap::invalidate()
{
    stale_ = true;
    update();
}

QRectF GraphMinimap::content() const
{
    return QRectF(rect()).adjusted(4, 4, -4, -4);
}

void GraphMinimap::fitTo(const QSize& maxSize)
{
    const QRectF scene = view_->sceneRect();
    if (scene.isEmpty())
        return;
    QSizeF s = scene.size();
    s.scale(QSizeF(maxSize) - QSizeF(8, 8), Qt::KeepAspectRatio);
    const QSize size(std::max(40, int(s.width()) + 8), std::max(30, int(s.height()) + 8));
    if (size != this->size()) {
        resize(size);
        stale_ = true;
    }
}

QRectF GraphMinimap::toMap(const QRectF& r) const
{
    const QRectF scene = view_->sceneRect(), c = content();
    if (scene.isEmpty())
        return {};
    const double sx = c.width() / scene.width(), sy = c.height() / scene.height();
    return QRectF(c.left() + (r.left() - scene.left()) * sx, c.top() + (r.top() - scene.top()) * sy, r.width() * sx,
        r.height() * sy);
}

QPointF GraphMinimap::toScene(const QPointF& p) const
{
    const QRectF scene = view_->sceneRect(), c = content();
    if (c.isEmpty())
        return scene.center();
    return {scene.left() + (p.x() - c.left()) * scene.width() / c.width(),
        scene.top() + (p.y() - c.top()) * scene.height() / c.height()};
}

void GraphMinimap::renderPicture()
{
    // Once per change of the boxes or their colours, never per frame.
    picture_ = QImage(size() * devicePixelRatioF(), QImage::Format_ARGB32_Premultiplied);
    picture_.setDevicePixelRatio(devicePixelRatioF());
    picture_.fill(Qt::transparent);
    QPainter p(&picture_);
    for (const BlockFrameItem* f : view_->blockFrames()) {
        QColor c = theme::accent;
        c.setAlpha(30);
        p.fillRect(toMap(f->sceneBoundingRect()), c);
    }
    for (const NodeItem* item : view_->nodeItems()) {
        QRectF r = toMap(item->sceneBoundingRect().adjusted(5, 5, -5, -5));
        if (r.width() < 1.5)
            r.setWidth(1.5);
        if (r.height() < 1.5)
            r.setHeight(1.5);
        QColor c = item->fill();
        if (!c.isValid())
            c = item->box().kind == GraphLayout::BoxKind::Block      ? theme::accent.lighter(140)
                : item->box().kind == GraphLayout::BoxKind::Operator ? QColor(0xb8, 0xbf, 0xc9)
                                                                     : theme::ioFill;
        p.fillRect(r, c);
    }
    stale_ = false;
}

void GraphMinimap::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    p.setPen(QPen(QColor(0xc9, 0xce, 0xd6)));
    p.setBrush(QColor(255, 255, 255, 235));
    p.drawRoundedRect(QRectF(rect()).adjusted(0.5, 0.5, -0.5, -0.5), 5, 5);
    if (stale_ || picture_.size() != size() * devicePixelRatioF())
        renderPicture();
    p.drawImage(QPointF(0, 0), picture_);
    const QRectF visible = toMap(view_->visibleSceneRect()).intersected(content().adjusted(-1, -1, 1, 1));
    QColor band = theme::accent;
    band.setAlpha(40);
    p.setPen(QPen(theme::accent, 1.5));
    p.setBrush(band);
    p.drawRect(visible);
}

void GraphMinimap::mousePressEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton)
        view_->centerOn(toScene(event->position()));
    event->accept();
}

void GraphMinimap::mouseMoveEvent(QMouseEvent* event)
{
    if (event->buttons() & Qt::LeftButton)
        view_->centerOn(toScene(event->position()));
    event->accept();
}

} // namespace qs::ui
