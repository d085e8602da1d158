// Scene items of the graph view: one box per operator, collapsed block or graph
// input/output, a frame per expanded block, one spline edge per connection. They draw what
// GraphLayout computed at the level of detail the zoom allows; no layout here.
#pragma once

#include "ui/document/graph_layout.h"

#include <QGraphicsItem>

namespace qs::ui {

// The colour of marked edges (precision boundaries), for their key in the legend too.
QColor edgeMarkColor();

class NodeItem : public QGraphicsItem {
public:
    enum { Type = UserType + 1 };
    NodeItem(const GraphLayout::Box& box, int boxIndex, bool isLayer);

    int type() const override { return Type; }
    QRectF boundingRect() const override;
    QPainterPath shape() const override;
    void paint(QPainter* painter, const QStyleOptionGraphicsItem* option, QWidget* widget) override;

    int node() const { return box_.node; }
    int block() const { return box_.block; } // a collapsed block: its index, else -1
    int boxIndex() const { return index_; }
    bool isLayer() const { return isLayer_; }
    const GraphLayout::Box& box() const { return box_; }

    // Fill for a layer coloured by a metric; an invalid colour means "no value yet".
    void setFill(const QColor& fill);
    QColor fill() const { return fill_; }
    void setCurrent(bool current);
    // The runtime cannot run this operator: drawn with a red outline.
    void setUnsupported(bool unsupported) { unsupported_ = unsupported; }
    bool isUnsupported() const { return unsupported_; }
    bool isCurrent() const { return current_; }

protected:
    void hoverEnterEvent(QGraphicsSceneHoverEvent* event) override;
    void hoverLeaveEvent(QGraphicsSceneHoverEvent* event) override;

private:
    GraphLayout::Box box_;
    int index_;
    bool isLayer_;
    QColor fill_;
    bool current_ = false, hover_ = false, unsupported_ = false;
};

// The frame around an expanded block, behind its boxes; its header (name and a collapse
// toggle) is the only part that takes clicks.
class BlockFrameItem : public QGraphicsItem {
public:
    enum { Type = UserType + 4 };
    BlockFrameItem(int block, const QString& name, const QRectF& frame);

    int type() const override { return Type; }
    int block() const { return block_; }
    QRectF boundingRect() const override;
    QPainterPath shape() const override;
    void paint(QPainter* painter, const QStyleOptionGraphicsItem* option, QWidget* widget) override;

private:
    int block_;
    QString name_;
    QRectF frame_;
};

class EdgeItem : public QGraphicsItem {
public:
    enum { Type = UserType + 2 };
    explicit EdgeItem(const GraphLayout::Edge& edge);

    int type() const override { return Type; }
    QRectF boundingRect() const override;
    // The line and its arrow widened to a few points, stroked on the first hit test.
    QPainterPath shape() const override;
    void paint(QPainter* painter, const QStyleOptionGraphicsItem* option, QWidget* widget) override;

    int from() const { return edge_.from; }
    int to() const { return edge_.to; }
    void setHighlighted(bool on);
    // Marked: drawn thick in the boundary colour, with `tooltip`.
    void setMark(bool on, const QString& tooltip);
    bool isMarked() const { return marked_; }
    QPointF midpoint() const { return edge_.path.pointAtPercent(0.5); }
    // Where a label of `size` sits beside the edge's middle without hiding it: above a
    // horizontal edge, right of a vertical one.
    QPointF labelCenter(const QSizeF& size) const;

private:
    GraphLayout::Edge edge_;
    QPolygonF arrow_;
    QRectF bounds_;
    mutable QPainterPath shape_;
    bool highlighted_ = false, marked_ = false;
};

// A short label on an edge (a boundary's cost), centred on a scene point, above the boxes.
class EdgeLabelItem : public QGraphicsItem {
public:
    enum { Type = UserType + 3 };
    explicit EdgeLabelItem(const QString& text);
    void setCenter(const QPointF& center) { setPos(center); }
    QSizeF size() const { return rect_.size(); }

    int type() const override { return Type; }
    QRectF boundingRect() const override;
    void paint(QPainter* painter, const QStyleOptionGraphicsItem* option, QWidget* widget) override;
    QString text() const { return text_; }

private:
    QString text_;
    QRectF rect_;
};

} // namespace qs::ui
