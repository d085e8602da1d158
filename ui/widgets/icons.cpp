#include "ui/widgets/icons.h"

#include <QIconEngine>
#include <QPainter>
#include <QPainterPath>

namespace qs::ui {
namespace {

const QColor ink(0x33, 0x3b, 0x47);
const QColor accent(0x25, 0x63, 0xeb);

// Draws on a 24x24 design grid, scaled to the requested size.
void drawIcon(QPainter& p, IconId id, QIcon::Mode mode)
{
    QColor c = mode == QIcon::Disabled ? QColor(0xb4, 0xb9, 0xc1) : ink;
    QColor a = mode == QIcon::Disabled ? QColor(0xb4, 0xb9, 0xc1) : accent;
    QPen pen(c, 1.7, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin);
    p.setPen(pen);
    p.setBrush(Qt::NoBrush);
    switch (id) {
    case IconId::App: {
        // Bars of falling height on a rounded tile: a histogram quantized into levels.
        p.setPen(Qt::NoPen);
        QLinearGradient g(0, 0, 24, 24);
        g.setColorAt(0, QColor(0x3b, 0x82, 0xf6));
        g.setColorAt(1, QColor(0x1e, 0x3a, 0x8a));
        p.setBrush(g);
        p.drawRoundedRect(QRectF(1, 1, 22, 22), 5, 5);
        p.setBrush(QColor(255, 255, 255, 235));
        const double h[] = {5, 9, 14, 11, 6};
        for (int i = 0; i < 5; ++i)
            p.drawRect(QRectF(4.5 + i * 3.2, 19 - h[i], 2.4, h[i]));
        p.setBrush(QColor(0xfb, 0xbf, 0x24));
        p.drawRect(QRectF(4, 19.2, 16, 1.4));
        break;
    }
    case IconId::Open: {
        QPainterPath path;
        path.moveTo(3, 19);
        path.lineTo(3, 6);
        path.lineTo(9, 6);
        path.lineTo(11, 8);
        path.lineTo(19, 8);
        path.lineTo(19, 11);
        p.drawPath(path);
        QPainterPath front;
        front.moveTo(3, 19);
        front.lineTo(6.5, 11);
        front.lineTo(21.5, 11);
        front.lineTo(18, 19);
        front.closeSubpath();
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        p.drawPath(front);
        break;
    }
    case IconId::Demo: {
        p.setBrush(QColor(0xfe, 0xf3, 0xc7));
        QPainterPath star;
        star.moveTo(12, 3);
        star.quadTo(13, 11, 21, 12);
        star.quadTo(13, 13, 12, 21);
        star.quadTo(11, 13, 3, 12);
        star.quadTo(11, 11, 12, 3);
        p.drawPath(star);
        break;
    }
    case IconId::Calibrate: {
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        const double h[] = {4, 9, 14, 10, 5};
        for (int i = 0; i < 5; ++i)
            p.drawRect(QRectF(3 + i * 3.6, 20 - h[i], 3.6, h[i]));
        p.setPen(QPen(a, 2, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(QPointF(5, 3), QPointF(5, 21));
        p.drawLine(QPointF(19, 3), QPointF(19, 21));
        break;
    }
    case IconId::Cancel: {
        p.setBrush(mode == QIcon::Disabled ? QColor(0xee, 0xef, 0xf1) : QColor(0xfe, 0xe2, 0xe2));
        p.setPen(QPen(mode == QIcon::Disabled ? c : QColor(0xdc, 0x26, 0x26), 1.7));
        p.drawEllipse(QRectF(3, 3, 18, 18));
        p.drawLine(QPointF(9, 9), QPointF(15, 15));
        p.drawLine(QPointF(15, 9), QPointF(9, 15));
        break;
    }
    case IconId::Fit: {
        p.drawPolyline(QPolygonF({QPointF(3, 8), QPointF(3, 3), QPointF(8, 3)}));
        p.drawPolyline(QPolygonF({QPointF(16, 3), QPointF(21, 3), QPointF(21, 8)}));
        p.drawPolyline(QPolygonF({QPointF(21, 16), QPointF(21, 21), QPointF(16, 21)}));
        p.drawPolyline(QPolygonF({QPointF(8, 21), QPointF(3, 21), QPointF(3, 16)}));
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        p.drawRoundedRect(QRectF(7.5, 7.5, 9, 9), 1.5, 1.5);
        break;
    }
    case IconId::ZoomIn:
    case IconId::ZoomOut:
    case IconId::Search: {
        p.drawEllipse(QRectF(3.5, 3.5, 12, 12));
        p.setPen(QPen(c, 2.4, Qt::SolidLine, Qt::RoundCap));
        p.drawLine(QPointF(14, 14), QPointF(20.5, 20.5));
        p.setPen(pen);
        if (id != IconId::Search)
            p.drawLine(QPointF(6.5, 9.5), QPointF(12.5, 9.5));
        if (id == IconId::ZoomIn)
            p.drawLine(QPointF(9.5, 6.5), QPointF(9.5, 12.5));
        break;
    }
    case IconId::Save: {
        p.drawLine(QPointF(12, 3), QPointF(12, 15));
        p.drawPolyline(QPolygonF({QPointF(7, 10), QPointF(12, 15), QPointF(17, 10)}));
        p.drawPolyline(QPolygonF({QPointF(4, 15), QPointF(4, 20), QPointF(20, 20), QPointF(20, 15)}));
        break;
    }
    case IconId::Copy: {
        p.drawRoundedRect(QRectF(4, 4, 11, 13), 2, 2);
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        p.drawRoundedRect(QRectF(9, 8, 11, 13), 2, 2);
        break;
    }
    case IconId::LogScale: {
        QPainterPath curve;
        curve.moveTo(3, 20);
        curve.cubicTo(6, 6, 12, 4, 21, 4);
        p.drawLine(QPointF(3, 3), QPointF(3, 21));
        p.drawLine(QPointF(3, 21), QPointF(21, 21));
        p.setPen(QPen(a, 1.9, Qt::SolidLine, Qt::RoundCap));
        p.drawPath(curve);
        break;
    }
    case IconId::Sort: {
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        const double h[] = {15, 11, 8, 5, 3};
        for (int i = 0; i < 5; ++i)
            p.drawRect(QRectF(3 + i * 3.6, 20 - h[i], 3, h[i]));
        break;
    }
    case IconId::Direction: {
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        p.drawRoundedRect(QRectF(2.5, 8.5, 6, 7), 1.5, 1.5);
        p.drawRoundedRect(QRectF(15.5, 3.5, 6, 7), 1.5, 1.5);
        p.drawRoundedRect(QRectF(15.5, 13.5, 6, 7), 1.5, 1.5);
        p.setBrush(Qt::NoBrush);
        p.drawLine(QPointF(8.5, 11), QPointF(15.5, 7));
        p.drawLine(QPointF(8.5, 13), QPointF(15.5, 17));
        break;
    }
    case IconId::Data: {
        p.setBrush(QColor(0xdb, 0xea, 0xfe));
        p.drawEllipse(QRectF(4, 3, 16, 5));
        QPainterPath body;
        body.moveTo(4, 5.5);
        body.lineTo(4, 18.5);
        body.arcTo(QRectF(4, 16, 16, 5), 180, 180);
        body.lineTo(20, 5.5);
        p.drawPath(body);
        p.drawArc(QRectF(4, 9.5, 16, 5), 180 * 16, 180 * 16);
        break;
    }
    }
}

class PaintedIconEngine : public QIconEngine {
public:
    explicit PaintedIconEngine(IconId id) : id_(id) {}
    void paint(QPainter* p, const QRect& rect, QIcon::Mode mode, QIcon::State) override
    {
        p->save();
        p->setRenderHint(QPainter::Antialiasing);
        p->translate(rect.topLeft());
        p->scale(rect.width() / 24.0, rect.height() / 24.0);
        drawIcon(*p, id_, mode);
        p->restore();
    }
    QPixmap pixmap(const QSize& size, QIcon::Mode mode, QIcon::State state) override
    {
        return scaledPixmap(size, mode, state, 1.0);
    }
    QPixmap scaledPixmap(const QSize& size, QIcon::Mode mode, QIcon::State state, qreal scale) override
    {
        QPixmap pm(size * scale);
        pm.fill(Qt::transparent);
        pm.setDevicePixelRatio(scale);
        QPainter p(&pm);
        paint(&p, QRect(QPoint(0, 0), size), mode, state);
        return pm;
    }
    QIconEngine* clone() const override { return new PaintedIconEngine(id_); }

private:
    IconId id_;
};

} // namespace

QIcon icon(IconId id)
{
    return QIcon(new PaintedIconEngine(id));
}

} // namespace qs::ui
