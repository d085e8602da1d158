// The model as a layered graph: zoom with the wheel, pan by dragging, click to select
// a layer everywhere; layers coloured by a chosen metric with a legend.
#pragma once

#include "ui/document/layer_metric.h"

#include <QGraphicsView>

#include <vector>

class QGraphicsItem;

namespace qs::ui {

class EdgeItem;
class GraphLegend;
class LayerSelection;
class ModelDocument;
class NodeItem;

class GraphView : public QGraphicsView {
    Q_OBJECT
public:
    GraphView(ModelDocument* doc, LayerSelection* selection, QWidget* parent = nullptr);

    // An edge drawn as a mark (e.g. a precision boundary): highlighted, with an optional
    // label at its middle and a tooltip. Marks outlive rebuilds of the scene.
    struct EdgeMark {
        int from = -1, to = -1; // layout boxes
        QString label, tooltip;
    };
    void setEdgeMarks(std::vector<EdgeMark> marks, const QString& legendNote);
    const std::vector<EdgeMark>& edgeMarks() const { return marks_; }
    EdgeItem* edgeItem(int from, int to) const;
    GraphLegend* legend() const { return legend_; }

    void setColorMetric(LayerMetric m);
    LayerMetric colorMetric() const { return metric_; }
    NodeItem* itemForNode(int node) const;
    const std::vector<NodeItem*>& nodeItems() const { return nodes_; }
    double zoom() const { return transform().m11(); }

    static constexpr double readableZoom = 0.8;

public slots:
    void fitGraph();
    void showInitial();
    void zoomIn() { zoomBy(1.25); }
    void zoomOut() { zoomBy(0.8); }
    void zoomBy(double factor);

signals:
    void zoomChanged(double zoom);

protected:
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void drawBackground(QPainter* painter, const QRectF& rect) override;

private:
    void rebuild();
    void recolor();
    void showCurrent(int node, bool scroll);
    void placeLegend();
    void applyMarks();

    ModelDocument* doc_;
    LayerSelection* selection_;
    QGraphicsScene* scene_;
    GraphLegend* legend_;
    std::vector<NodeItem*> nodes_;   // by box index
    std::vector<EdgeItem*> edges_;
    std::vector<EdgeMark> marks_;
    std::vector<QGraphicsItem*> markLabels_;
    LayerMetric metric_ = LayerMetric::WeightKurtosis;
    QPoint pressPos_;
    bool fitted_ = false;
};

} // namespace qs::ui
