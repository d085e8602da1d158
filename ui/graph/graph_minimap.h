// The overview in a corner of the graph view: every box as a coloured speck, the view's
// visible part as a rectangle; a click or a drag moves the view there.
#pragma once

#include <QImage>
#include <QWidget>

namespace qs::ui {

class GraphView;

class GraphMinimap : public QWidget {
    Q_OBJECT
public:
    explicit GraphMinimap(GraphView* view);

    // The boxes or their colours changed: the picture is drawn again on the next paint.
    void invalidate();
    // Where a scene rectangle is drawn in this widget, and back.
    QRectF toMap(const QRectF& scene) const;
    QPointF toScene(const QPointF& map) const;
    // Fits the widget to the scene's aspect within `maxSize`.
    void fitTo(const QSize& maxSize);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;

private:
    void renderPicture();
    QRectF content() const; // where the scene is drawn, inside the frame

    GraphView* view_;
    QImage picture_;
    bool stale_ = true;
};

} // namespace qs::ui
