// The model as a layered graph: zoom with the wheel, pan by dragging, click to select a
// layer everywhere; layers coloured by a chosen metric with a legend under the canvas.
// Big graphs: repeated blocks drawn collapsed (click to expand), labels by level of
// detail, a minimap, search, and the view follows the selected layer.
#pragma once

#include "ui/document/graph_layout.h"
#include "ui/document/layer_metric.h"

#include <QGraphicsView>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

class QGraphicsItem;

namespace qs::ui {

class BlockFrameItem;
class EdgeItem;
class GraphLegend;
class GraphMinimap;
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
    // Short labels above layer boxes (a comparison's bits and deltas), by node, with
    // optional tooltips, drawn while the node has its own box; they outlive rebuilds of
    // the scene.
    void setNodeBadges(std::map<int, QString> badges, std::map<int, QString> tooltips = {});
    QString nodeBadge(int node) const; // as drawn; "" when none is
    GraphLegend* legend() const { return legend_; }
    GraphMinimap* minimap() const { return minimap_; }

    void setColorMetric(LayerMetric m);
    LayerMetric colorMetric() const { return metric_; }
    // The box that shows the node: its own, or its collapsed block's.
    NodeItem* itemForNode(int node) const;
    const std::vector<NodeItem*>& nodeItems() const { return nodes_; }
    const std::vector<BlockFrameItem*>& blockFrames() const { return frames_; }
    double zoom() const { return transform().m11(); }
    QRectF visibleSceneRect() const;

    // Blocks: expanding or collapsing lays the graph out again in a worker; the view keeps
    // its place. `relayoutPending()` while that runs.
    void setBlockCollapsed(int block, bool collapsed);
    void setAllBlocksCollapsed(bool collapsed);
    bool relayoutPending() const { return relayoutTicket_ != deliveredTicket_; }

    // Search by node name or op type (case-insensitive substring): selects the next match
    // after the current one (or the previous), expands its block and centres it. Returns
    // the match's position (0-based), -1 when nothing matches.
    int findNode(const QString& text, bool backward = false);
    int matchCount() const { return int(matches_.size()); }

    // The minimap: a column right of the canvas (never over a box) while part of the
    // graph is out of view, when enabled.
    void setMinimapEnabled(bool on);
    bool minimapEnabled() const { return minimapEnabled_; }

    // Zooms at or above which a box's title is drawn legibly at its own font size:
    // Fit never goes below minFitZoom; following the selection zooms a tiny view in to readableZoom.
    static constexpr double minFitZoom = 0.55;
    static constexpr double readableZoom = 0.8;

public slots:
    void fitGraph();
    void showInitial();
    void zoomIn() { zoomBy(1.25); }
    void zoomOut() { zoomBy(0.8); }
    void zoomBy(double factor);

    // The longest row (column when top to bottom) along the flow, in points, that the
    // canvas shows whole beside the overview column at minFitZoom (LayoutStyle::rowLimit).
    double rowLimit() const;

signals:
    void zoomChanged(double zoom);
    void rowLimitChanged(double points);
    void searchChanged(int match, int count);

protected:
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void scrollContentsBy(int dx, int dy) override;
    bool viewportEvent(QEvent* event) override;
    void drawBackground(QPainter* painter, const QRectF& rect) override;

private:
    void rebuild();
    void recolor();
    void showCurrent(int node, bool scroll);
    void follow(QGraphicsItem* item, bool centre);
    void placeOverlays();
    // The canvas as if the minimap's column were not there, in this widget's coordinates.
    QRect canvasRect() const;
    static constexpr int minimapPad = 8;
    void applyMarks();
    void relayout(std::set<int> collapsed, int focusNode, int focusBlock);
    std::set<int> collapsedBlocks() const; // as last asked for, pending or laid out

    ModelDocument* doc_;
    LayerSelection* selection_;
    QGraphicsScene* scene_;
    GraphLegend* legend_;
    GraphMinimap* minimap_;
    std::vector<NodeItem*> nodes_;   // by box index
    std::vector<EdgeItem*> edges_;
    std::vector<std::vector<EdgeItem*>> boxEdges_; // by box index: the edges that touch it
    std::vector<BlockFrameItem*> frames_;
    std::vector<EdgeMark> marks_;
    std::vector<QGraphicsItem*> markLabels_; // edge-mark labels and node badges
    std::map<int, QString> badges_, badgeTips_;
    LayerMetric metric_ = LayerMetric::WeightKurtosis;
    NodeItem* current_ = nullptr;
    QPoint pressPos_;
    bool fitted_ = false;
    bool minimapEnabled_ = true;
    bool keepPlace_ = false; // the layout being delivered is a relayout of blocks
    // Relayouts for blocks: the newest request wins; after it lands the view shows the
    // focus (a node, else a block's box or frame) at the zoom it had.
    int relayoutTicket_ = 0, deliveredTicket_ = 0;
    int focusNode_ = -1, focusBlock_ = -1;
    std::optional<std::set<int>> pendingCollapsed_;
    int autoExpanded_ = -1; // the block expanded only to show the selection
    bool centreFocus_ = false; // a search result: centred even when in view
    bool opening_ = false;     // the studio's own first selection after a model opens expands nothing
    QString searchText_;
    std::vector<int> matches_;
    int match_ = -1;
};

} // namespace qs::ui
