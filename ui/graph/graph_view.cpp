#include "ui/graph/graph_view.h"

#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_legend.h"
#include "ui/graph/graph_minimap.h"
#include "ui/widgets/format.h"
#include "ui/widgets/theme.h"

#include <QFutureWatcher>
#include <QHelpEvent>
#include <QMouseEvent>
#include <QScrollBar>
#include <QTimer>
#include <QWheelEvent>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <utility>

namespace qs::ui {
namespace {

QString nodeTooltip(const Graph& g, int node)
{
    const Node& n = g.nodes[std::size_t(node)];
    QString tip = QStringLiteral("<b>%1</b> &nbsp;<span style='color:#6b7280'>%2</span>")
                      .arg(QString::fromStdString(n.opType), QString::fromStdString(n.name).toHtmlEscaped());
    auto values = [&](const std::vector<std::string>& names, const char* label) {
        for (const auto& v : names) {
            if (v.empty())
                continue;
            const ValueInfo* info = g.info(v);
            const Tensor* c = g.constant(v);
            const QString shape = c ? formatShape(c->shape) : info ? QString::fromStdString(info->text()) : QStringLiteral("?");
            tip += QStringLiteral("<br/>%1 %2 <tt>%3</tt>%4")
                       .arg(QLatin1String(label), QString::fromStdString(v).toHtmlEscaped(), shape,
                            c ? QStringLiteral(" (constant)") : QString());
        }
    };
    values(n.inputs, "in");
    values(n.outputs, "out");
    // Subgraphs (If branches, Loop bodies): their operators; their layers are in the layer table.
    for (const auto& [attr, a] : n.attrs)
        for (const auto& sub : a.graphs) {
            if (!sub)
                continue;
            QStringList ops;
            for (const auto& [op, count] : sub->opCounts())
                ops << QStringLiteral("%1×%2").arg(QString::fromStdString(op)).arg(count);
            tip += QStringLiteral("<br/><i>%1</i>: %2").arg(QString::fromStdString(attr), ops.join(QStringLiteral(", ")));
        }
    return tip;
}

using LayoutResult = std::shared_ptr<const GraphLayout>;

} // namespace

GraphView::GraphView(ModelDocument* doc, LayerSelection* selection, QWidget* parent)
    : QGraphicsView(parent), doc_(doc), selection_(selection), scene_(new QGraphicsScene(this))
{
    setObjectName(QStringLiteral("graphView"));
    setScene(scene_);
    setRenderHints(QPainter::Antialiasing | QPainter::TextAntialiasing);
    setDragMode(QGraphicsView::ScrollHandDrag);
    setTransformationAnchor(QGraphicsView::AnchorUnderMouse);
    setResizeAnchor(QGraphicsView::AnchorViewCenter);
    setViewportUpdateMode(QGraphicsView::FullViewportUpdate);
    // Every item sets the pen, brush and hints it paints with.
    setOptimizationFlags(QGraphicsView::DontSavePainterState);
    setFrameShape(QFrame::NoFrame);
    setBackgroundBrush(theme::canvas);
    // Painting asks the index for the visible items only: a frame costs what it shows.
    scene_->setItemIndexMethod(QGraphicsScene::BspTreeIndex);
    legend_ = new GraphLegend(this);
    minimap_ = new GraphMinimap(this);
    minimap_->hide();

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        fitted_ = false;
        autoExpanded_ = -1;
        pendingCollapsed_.reset();
        deliveredTicket_ = relayoutTicket_; // what is on its way is for the previous model
        matches_.clear();
        searchText_.clear();
        opening_ = true;
        QTimer::singleShot(0, this, [this] { opening_ = false; });
        rebuild();
    });
    connect(doc_, &ModelDocument::layoutChanged, this, [this] {
        if (!keepPlace_)
            fitted_ = false;
        rebuild();
    });
    connect(doc_, &ModelDocument::activationsChanged, this, &GraphView::recolor);
    connect(doc_, &ModelDocument::storedChanged, this, &GraphView::recolor);
    connect(doc_, &ModelDocument::weightsChanged, this, &GraphView::recolor);
    connect(selection_, &LayerSelection::currentChanged, this, [this](int node) { showCurrent(node, true); });
    rebuild();
}

void GraphView::rebuild()
{
    scene_->clear();
    nodes_.clear();
    edges_.clear();
    boxEdges_.clear();
    frames_.clear();
    markLabels_.clear(); // scene_->clear() deleted them
    current_ = nullptr;
    const bool keepPlace = std::exchange(keepPlace_, false);
    const auto& layout = doc_->layout();
    const auto& model = doc_->model();
    if (!layout || !model) {
        legend_->hide();
        minimap_->hide();
        return;
    }
    for (std::size_t b = 0; b < layout->blocks.size(); ++b)
        if (b < layout->blockFrame.size() && !layout->blockFrame[b].isEmpty()) {
            auto* frame = new BlockFrameItem(int(b), layout->blocks[b].name, layout->blockFrame[b]);
            scene_->addItem(frame);
            frames_.push_back(frame);
        }
    nodes_.reserve(layout->boxes.size());
    for (std::size_t i = 0; i < layout->boxes.size(); ++i) {
        const auto& box = layout->boxes[i];
        const bool isLayer = box.node >= 0 && model->layerOfNode.count(box.node);
        auto* item = new NodeItem(box, int(i), isLayer);
        item->setUnsupported(box.node >= 0 && model->isUnsupported(box.node)); // tooltips come on demand
        scene_->addItem(item);
        nodes_.push_back(item);
    }
    boxEdges_.resize(layout->boxes.size());
    for (const auto& e : layout->edges) {
        auto* item = new EdgeItem(e);
        scene_->addItem(item);
        edges_.push_back(item);
        boxEdges_[std::size_t(e.from)].push_back(item);
        boxEdges_[std::size_t(e.to)].push_back(item);
    }
    const QRectF bounds = layout->bounds.adjusted(-40, -40, 40, 40);
    scene_->setSceneRect(bounds);
    applyMarks();
    recolor();
    legend_->show();
    if (keepPlace) {
        showCurrent(selection_->currentNode(), false);
        QGraphicsItem* focus = itemForNode(focusNode_);
        if (!focus && focusBlock_ >= 0) {
            for (BlockFrameItem* f : frames_)
                if (f->block() == focusBlock_)
                    focus = f;
            if (const int box = layout->isCollapsed(focusBlock_) ? layout->blockBox[std::size_t(focusBlock_)] : -1; box >= 0)
                focus = nodes_[std::size_t(box)];
        }
        if (focus)
            follow(focus, std::exchange(centreFocus_, false));
        placeOverlays();
        return;
    }
    placeOverlays();
    showCurrent(selection_->currentNode(), false);
    if (isVisible())
        showInitial();
}

void GraphView::setColorMetric(LayerMetric m)
{
    metric_ = m;
    recolor();
}

void GraphView::recolor()
{
    if (!doc_->model())
        return;
    const ColorScale scale = metricScale(metric_, *doc_);
    bool any = false;
    for (NodeItem* item : nodes_) {
        if (!item->isLayer())
            continue;
        const int row = doc_->model()->layerOfNode.at(item->node());
        const auto v = metricValue(metric_, *doc_, row);
        item->setFill(v ? scale.color(*v) : QColor());
        any = any || v.has_value();
    }
    QString why;
    const bool fromStore = metric_ == LayerMetric::Sensitivity || metric_ == LayerMetric::Bits;
    if (!any && metric_ == LayerMetric::InputKurtosis)
        why = QStringLiteral("Run calibration (Ctrl+R) to measure");
    else if (!any && fromStore)
        why = doc_->stored() ? QStringLiteral("No such run of this model in the database")
                             : QStringLiteral("Open a database with runs of this model");
    else if (!any)
        why = QStringLiteral("Not measured yet for this model");
    QString title = metricName(metric_);
    if (const auto& s = doc_->stored(); any && metric_ == LayerMetric::Sensitivity && s->sensitivityIsSqnr)
        title += QStringLiteral(" \u00B7 SQNR dB at %1 bits").arg(s->sensitivityBits);
    legend_->setScale(title, scale, formatMetric(metric_, scale.lo()), formatMetric(metric_, scale.hi()), why);
    minimap_->invalidate();
    placeOverlays();
}

void GraphView::setEdgeMarks(std::vector<EdgeMark> marks, const QString& legendNote)
{
    marks_ = std::move(marks);
    legend_->setNote(legendNote);
    applyMarks();
    placeOverlays();
}

EdgeItem* GraphView::edgeItem(int from, int to) const
{
    if (from < 0 || from >= int(boxEdges_.size()))
        return nullptr;
    for (EdgeItem* e : boxEdges_[std::size_t(from)])
        if (e->from() == from && e->to() == to)
            return e;
    return nullptr;
}

void GraphView::applyMarks()
{
    for (QGraphicsItem* label : markLabels_) {
        scene_->removeItem(label);
        delete label;
    }
    markLabels_.clear();
    for (EdgeItem* e : edges_)
        e->setMark(false, QString());
    for (const EdgeMark& m : marks_) {
        EdgeItem* e = edgeItem(m.from, m.to);
        if (!e)
            continue;
        e->setMark(true, m.tooltip);
        if (!m.label.isEmpty()) {
            auto* label = new EdgeLabelItem(m.label);
            label->setCenter(e->labelCenter(label->size()));
            label->setToolTip(m.tooltip);
            scene_->addItem(label);
            markLabels_.push_back(label);
        }
    }
    for (const auto& [node, text] : badges_) {
        NodeItem* item = itemForNode(node);
        if (!item || item->node() != node || text.isEmpty())
            continue;
        auto* badge = new EdgeLabelItem(text);
        const QRectF box = item->sceneBoundingRect();
        badge->setCenter(QPointF(box.center().x(), box.top() - badge->size().height() / 2 - 1));
        badge->setData(0, node);
        if (auto tip = badgeTips_.find(node); tip != badgeTips_.end())
            badge->setToolTip(tip->second);
        scene_->addItem(badge);
        markLabels_.push_back(badge);
    }
}

void GraphView::setNodeBadges(std::map<int, QString> badges, std::map<int, QString> tooltips)
{
    badges_ = std::move(badges);
    badgeTips_ = std::move(tooltips);
    applyMarks();
}

QString GraphView::nodeBadge(int node) const
{
    for (QGraphicsItem* item : markLabels_)
        if (item->type() == EdgeLabelItem::Type && item->data(0).isValid() && item->data(0).toInt() == node)
            return static_cast<EdgeLabelItem*>(item)->text();
    return QString();
}

NodeItem* GraphView::itemForNode(int node) const
{
    const auto& layout = doc_->layout();
    if (!layout)
        return nullptr;
    const int box = layout->boxOfNode(node);
    return box >= 0 && box < int(nodes_.size()) ? nodes_[std::size_t(box)] : nullptr;
}

QRectF GraphView::visibleSceneRect() const
{
    return mapToScene(viewport()->rect()).boundingRect();
}

void GraphView::showCurrent(int node, bool scroll)
{
    NodeItem* item = itemForNode(node);
    if (item != current_) { // only the old and the new box and their edges change
        if (current_) {
            current_->setCurrent(false);
            for (EdgeItem* e : boxEdges_[std::size_t(current_->boxIndex())])
                e->setHighlighted(false);
        }
        current_ = item;
        if (current_) {
            current_->setCurrent(true);
            for (EdgeItem* e : boxEdges_[std::size_t(current_->boxIndex())])
                e->setHighlighted(true);
        }
    }
    const auto& layout = doc_->layout();
    if (opening_) // the overview stays as it opened
        return;
    if (scroll && item && item->block() >= 0 && layout) {
        // The node is inside a collapsed block: open it (and close the one opened for the
        // previous selection), then show the node once the new layout lands.
        std::set<int> collapsed = collapsedBlocks();
        collapsed.erase(item->block());
        if (autoExpanded_ >= 0 && autoExpanded_ != item->block())
            collapsed.insert(autoExpanded_);
        autoExpanded_ = item->block();
        follow(item, false);
        relayout(std::move(collapsed), node, item->block());
        return; // centreFocus_ waits for the new layout
    }
    if (scroll && item)
        follow(item, std::exchange(centreFocus_, false));
    if (item && !fitted_ && isVisible())
        showInitial(); // the first selection after opening decides where the view starts
}

void GraphView::follow(QGraphicsItem* item, bool centre)
{
    // Too small to read: zoom in to a reading size. Out of view (or asked to): centre it.
    if (zoom() < minFitZoom) {
        setTransform(QTransform::fromScale(readableZoom, readableZoom));
        centerOn(item);
        emit zoomChanged(zoom());
        placeOverlays();
        return;
    }
    const QRectF r = item->sceneBoundingRect();
    const QRectF visible = visibleSceneRect();
    if (centre || !visible.contains(r))
        centerOn(r.width() > visible.width() || r.height() > visible.height() ? r.topLeft() + QPointF(visible.width(), visible.height()) / 2.5
                                                                                : r.center());
}

void GraphView::setBlockCollapsed(int block, bool collapsed)
{
    const auto& layout = doc_->layout();
    if (!layout || block < 0 || block >= int(layout->blocks.size()))
        return;
    std::set<int> set = collapsedBlocks();
    if (collapsed)
        set.insert(block);
    else
        set.erase(block);
    if (block == autoExpanded_)
        autoExpanded_ = -1;
    relayout(std::move(set), -1, block);
}

void GraphView::setAllBlocksCollapsed(bool collapsed)
{
    const auto& layout = doc_->layout();
    if (!layout)
        return;
    std::set<int> set;
    if (collapsed)
        for (int b = 0; b < int(layout->blocks.size()); ++b)
            set.insert(b);
    autoExpanded_ = -1;
    relayout(std::move(set), selection_->currentNode(), -1);
}

std::set<int> GraphView::collapsedBlocks() const
{
    if (pendingCollapsed_)
        return *pendingCollapsed_;
    const auto& layout = doc_->layout();
    return layout && layout->style.collapsed ? *layout->style.collapsed : std::set<int>();
}

void GraphView::relayout(std::set<int> collapsed, int focusNode, int focusBlock)
{
    const auto model = doc_->model();
    const auto& layout = doc_->layout();
    if (!model || !layout)
        return;
    LayoutStyle style = layout->style;
    style.collapsed = std::move(collapsed);
    style.rowLimit = rowLimit();
    const int ticket = ++relayoutTicket_, generation = doc_->generation();
    pendingCollapsed_ = style.collapsed;
    focusNode_ = focusNode;
    focusBlock_ = focusBlock;
    auto* watcher = new QFutureWatcher<LayoutResult>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, ticket, generation] {
        watcher->deleteLater();
        if (ticket != relayoutTicket_)
            return; // a newer request is on its way
        deliveredTicket_ = ticket;
        pendingCollapsed_.reset();
        const LayoutResult result = watcher->result();
        if (!result || doc_->generation() != generation || !doc_->layout() || doc_->layout()->direction != result->direction)
            return; // another model, or laid out again in another direction meanwhile
        keepPlace_ = true;
        doc_->setLayout(result);
    });
    // Graphviz on a big graph takes seconds: never on the GUI thread.
    watcher->setFuture(QtConcurrent::run([graph = model->graph, style]() -> LayoutResult {
        try {
            return std::make_shared<const GraphLayout>(layoutGraph(*graph, style));
        } catch (const std::exception&) {
            return nullptr; // the layout the view has stays
        }
    }));
}

int GraphView::findNode(const QString& text, bool backward)
{
    const auto& model = doc_->model();
    const QString needle = text.trimmed();
    if (!model || needle.isEmpty()) {
        matches_.clear();
        searchText_.clear();
        match_ = -1;
        emit searchChanged(-1, 0);
        return -1;
    }
    if (needle != searchText_) {
        searchText_ = needle;
        matches_.clear();
        match_ = -1;
        const Graph& g = *model->graph;
        for (std::size_t i = 0; i < g.nodes.size(); ++i) {
            const Node& n = g.nodes[i];
            if (n.opType == "Constant")
                continue;
            if (QString::fromStdString(n.name).contains(needle, Qt::CaseInsensitive) ||
                QString::fromStdString(n.opType).contains(needle, Qt::CaseInsensitive))
                matches_.push_back(int(i));
        }
    }
    const int count = int(matches_.size());
    if (count == 0) {
        emit searchChanged(-1, 0);
        return -1;
    }
    if (match_ < 0) { // the first match after (before) the current node, around the end
        const int current = selection_->currentNode();
        if (!backward) {
            const auto it = std::upper_bound(matches_.begin(), matches_.end(), current);
            match_ = it == matches_.end() ? 0 : int(it - matches_.begin());
        } else {
            const auto it = std::lower_bound(matches_.begin(), matches_.end(), current);
            match_ = it == matches_.begin() ? count - 1 : int(it - matches_.begin()) - 1;
        }
    } else
        match_ = (match_ + (backward ? count - 1 : 1)) % count;
    const int node = matches_[std::size_t(match_)];
    centreFocus_ = true;
    if (selection_->currentNode() == node)
        showCurrent(node, true);
    else
        selection_->selectNode(node); // the view follows through currentChanged
    emit searchChanged(match_, count);
    return match_;
}

void GraphView::setMinimapEnabled(bool on)
{
    minimapEnabled_ = on;
    placeOverlays();
}

void GraphView::fitGraph()
{
    if (nodes_.empty())
        return;
    // The whole graph when that keeps its boxes legible (at most 130 %, small graphs are
    // not blown up); else the legible zoom, at the selection or the flow's start, and the
    // minimap for the rest.
    // Fitted on the whole canvas: the minimap's column comes back (placeOverlays) only if
    // the graph does not fit.
    fitted_ = true; // before the margins change: the resize they cause must not fit again
    if (viewportMargins().right() != 0)
        setViewportMargins(0, 0, 0, viewportMargins().bottom());
    const QRectF scene = sceneRect(), view = viewport()->rect();
    const double whole = std::min({view.width() / scene.width(), view.height() / scene.height(), 1.3});
    const double z = std::max(whole, minFitZoom);
    setTransform(QTransform::fromScale(z, z));
    if (whole >= minFitZoom)
        centerOn(scene.center());
    else if (current_)
        centerOn(current_);
    else
        centerOn(scene.topLeft() + QPointF(view.width(), view.height()) / (2 * z));
    fitted_ = true;
    emit zoomChanged(zoom());
    placeOverlays();
}

void GraphView::showInitial()
{
    fitGraph();
}

void GraphView::zoomBy(double factor)
{
    const double z = zoom();
    const double target = std::clamp(z * factor, 0.03, 4.0);
    scale(target / z, target / z);
    emit zoomChanged(zoom());
    placeOverlays();
}

void GraphView::wheelEvent(QWheelEvent* event)
{
    if (event->modifiers() & Qt::ShiftModifier) { // pan sideways
        horizontalScrollBar()->setValue(horizontalScrollBar()->value() - event->angleDelta().y());
        return;
    }
    const double steps = event->angleDelta().y() / 120.0;
    if (steps != 0)
        zoomBy(std::pow(1.2, steps));
    event->accept();
}

void GraphView::mousePressEvent(QMouseEvent* event)
{
    pressPos_ = event->pos();
    QGraphicsView::mousePressEvent(event);
}

void GraphView::mouseReleaseEvent(QMouseEvent* event)
{
    QGraphicsView::mouseReleaseEvent(event);
    if (event->button() != Qt::LeftButton || (event->pos() - pressPos_).manhattanLength() > 4)
        return; // a drag pans; only a click selects
    for (QGraphicsItem* item : items(event->pos())) {
        if (item->type() == NodeItem::Type) {
            auto* n = static_cast<NodeItem*>(item);
            if (n->block() >= 0)
                setBlockCollapsed(n->block(), false);
            else if (n->node() >= 0)
                selection_->selectNode(n->node());
            return;
        }
        if (item->type() == BlockFrameItem::Type) {
            setBlockCollapsed(static_cast<BlockFrameItem*>(item)->block(), true);
            return;
        }
    }
}

void GraphView::mouseDoubleClickEvent(QMouseEvent* event)
{
    for (QGraphicsItem* item : items(event->pos()))
        if (item->type() == NodeItem::Type) {
            centerOn(item);
            return;
        }
    fitGraph();
}

bool GraphView::viewportEvent(QEvent* event)
{
    if (event->type() == QEvent::ToolTip && doc_->model()) { // tooltips are written when asked for
        const QPoint pos = static_cast<QHelpEvent*>(event)->pos();
        for (QGraphicsItem* item : items(pos)) {
            if (item->type() != NodeItem::Type)
                continue;
            auto* n = static_cast<NodeItem*>(item);
            if (!n->toolTip().isEmpty())
                break;
            const Graph& g = *doc_->model()->graph;
            const auto& box = n->box();
            QString tip;
            if (box.kind == GraphLayout::BoxKind::Block) {
                const auto& b = doc_->layout()->blocks[std::size_t(box.block)];
                tip = QStringLiteral("<b>%1</b><br/>%2<br/>Click to expand the block")
                          .arg(b.name.toHtmlEscaped(), box.lines.join(QStringLiteral("<br/>")).toHtmlEscaped());
            } else if (box.node >= 0) {
                tip = nodeTooltip(g, box.node);
                if (n->isUnsupported())
                    tip += QStringLiteral("<br/><span style='color:#dc2626'>The runtime has no kernel for this operator: "
                                          "calibration and quantization cannot run this model.</span>");
            } else { // a graph input or output, with its shape unabridged
                const bool input = box.kind == GraphLayout::BoxKind::Input;
                QString shape = box.lines.value(0);
                for (const ValueInfo& v : input ? g.inputs : g.outputs)
                    if (QString::fromStdString(v.name) == box.title)
                        shape = QString::fromStdString(v.text());
                tip = QStringLiteral("graph %1 <b>%2</b> <tt>%3</tt>")
                          .arg(input ? QStringLiteral("input") : QStringLiteral("output"), box.title.toHtmlEscaped(),
                               shape.toHtmlEscaped());
            }
            n->setToolTip(tip);
            break;
        }
    }
    return QGraphicsView::viewportEvent(event);
}

double GraphView::rowLimit() const
{
    const QRect area = canvasRect();
    const bool lr = !doc_->layout() || doc_->layout()->direction == GraphDirection::LeftToRight;
    // The overview column as placeOverlays() makes it, and a margin on either side.
    const int column = std::min(220, area.width() / 5) + 2 * minimapPad;
    const double room = lr ? area.width() - column : area.height();
    return room > 200 ? (room - 48) / minFitZoom : 0;
}

void GraphView::resizeEvent(QResizeEvent* event)
{
    QGraphicsView::resizeEvent(event);
    emit rowLimitChanged(rowLimit());
    placeOverlays();
    if (!fitted_ && isVisible())
        showInitial();
}

void GraphView::scrollContentsBy(int dx, int dy)
{
    QGraphicsView::scrollContentsBy(dx, dy);
    if (minimap_->isVisible())
        minimap_->update();
}

QRect GraphView::canvasRect() const
{
    return viewport()->geometry().adjusted(0, 0, viewportMargins().right(), 0);
}

void GraphView::placeOverlays()
{
    // The legend is a strip under the canvas and the minimap a column beside it: neither
    // ever covers a box. The column is there only while part of the graph is out of view
    // (judged on the canvas without it, so showing it never decides it again).
    const int strip = nodes_.empty() ? 0 : legend_->sizeHint().height();
    const QRect area = canvasRect();
    bool show = false;
    if (!nodes_.empty()) {
        const QRectF all = mapToScene(QRect(0, 0, area.width(), area.height())).boundingRect();
        const QRectF bounds = doc_->layout() ? doc_->layout()->bounds : sceneRect();
        show = minimapEnabled_ && !all.adjusted(-2, -2, 2, 2).contains(bounds);
        minimap_->fitTo(QSize(std::min(220, area.width() / 5), std::min(180, std::max(40, area.height() - 16))));
    }
    const int column = show ? minimap_->width() + 2 * minimapPad : 0;
    if (viewportMargins() != QMargins(0, 0, column, strip))
        setViewportMargins(0, 0, column, strip);
    const QRect vp = viewport()->geometry();
    legend_->setGeometry(vp.left(), vp.bottom() + 1, vp.width() + column, strip);
    minimap_->move(vp.right() + 1 + minimapPad, vp.top() + minimapPad);
    minimap_->setVisible(show);
    if (show)
        minimap_->update();
}

void GraphView::drawBackground(QPainter* painter, const QRectF& rect)
{
    painter->fillRect(rect, theme::canvas);
    // A light dot grid gives a sense of scale and motion while panning.
    const double step = 24;
    if (zoom() < 0.35)
        return;
    painter->setPen(QPen(QColor(0xe3, 0xe6, 0xea), 1.5 / zoom()));
    const double x0 = std::floor(rect.left() / step) * step, y0 = std::floor(rect.top() / step) * step;
    QVector<QPointF> dots;
    for (double x = x0; x < rect.right(); x += step)
        for (double y = y0; y < rect.bottom(); y += step)
            dots.append(QPointF(x, y));
    painter->drawPoints(dots.data(), int(dots.size()));
}

} // namespace qs::ui
