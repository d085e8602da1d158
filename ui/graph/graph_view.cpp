#include "ui/graph/graph_view.h"

#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_legend.h"
#include "ui/widgets/format.h"
#include "ui/widgets/theme.h"

#include <QMouseEvent>
#include <QScrollBar>
#include <QWheelEvent>

#include <cmath>

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
    setFrameShape(QFrame::NoFrame);
    setBackgroundBrush(theme::canvas);
    scene_->setItemIndexMethod(QGraphicsScene::BspTreeIndex);
    legend_ = new GraphLegend(this);

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        fitted_ = false;
        rebuild();
    });
    connect(doc_, &ModelDocument::layoutChanged, this, [this] {
        fitted_ = false;
        rebuild();
    });
    connect(doc_, &ModelDocument::activationsChanged, this, &GraphView::recolor);
    connect(doc_, &ModelDocument::storedChanged, this, &GraphView::recolor);
    connect(selection_, &LayerSelection::currentChanged, this, [this](int node) { showCurrent(node, true); });
    rebuild();
}

void GraphView::rebuild()
{
    scene_->clear();
    nodes_.clear();
    edges_.clear();
    markLabels_.clear();
    const auto& layout = doc_->layout();
    const auto& model = doc_->model();
    if (!layout || !model) {
        legend_->hide();
        return;
    }
    const Graph& g = *model->graph;
    nodes_.reserve(layout->boxes.size());
    for (std::size_t i = 0; i < layout->boxes.size(); ++i) {
        const auto& box = layout->boxes[i];
        const bool isLayer = box.node >= 0 && model->layerOfNode.count(box.node);
        auto* item = new NodeItem(box, int(i), isLayer);
        if (box.node >= 0) {
            QString tip = nodeTooltip(g, box.node);
            if (model->isUnsupported(box.node)) {
                item->setUnsupported(true);
                tip += QStringLiteral("<br/><span style='color:#dc2626'>The runtime has no kernel for this operator: "
                                      "calibration and quantization cannot run this model.</span>");
            }
            item->setToolTip(tip);
        } else
            item->setToolTip(QStringLiteral("graph %1 <b>%2</b> <tt>%3</tt>")
                                 .arg(box.kind == GraphLayout::BoxKind::Input ? QStringLiteral("input")
                                                                               : QStringLiteral("output"),
                                      box.title.toHtmlEscaped(), box.lines.value(0)));
        scene_->addItem(item);
        nodes_.push_back(item);
    }
    for (const auto& e : layout->edges) {
        auto* item = new EdgeItem(e);
        scene_->addItem(item);
        edges_.push_back(item);
    }
    const QRectF bounds = layout->bounds.adjusted(-40, -40, 40, 40);
    scene_->setSceneRect(bounds);
    markLabels_.clear(); // scene_->clear() deleted them
    applyMarks();
    recolor();
    legend_->show();
    placeLegend();
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
    placeLegend();
}

void GraphView::setEdgeMarks(std::vector<EdgeMark> marks, const QString& legendNote)
{
    marks_ = std::move(marks);
    legend_->setNote(legendNote);
    applyMarks();
    placeLegend();
}

EdgeItem* GraphView::edgeItem(int from, int to) const
{
    for (EdgeItem* e : edges_)
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
}

NodeItem* GraphView::itemForNode(int node) const
{
    const auto& layout = doc_->layout();
    if (!layout)
        return nullptr;
    const int box = layout->boxOfNode(node);
    return box >= 0 && box < int(nodes_.size()) ? nodes_[std::size_t(box)] : nullptr;
}

void GraphView::showCurrent(int node, bool scroll)
{
    NodeItem* current = itemForNode(node);
    for (NodeItem* item : nodes_)
        item->setCurrent(item == current);
    const int box = current ? current->boxIndex() : -1;
    for (EdgeItem* e : edges_)
        e->setHighlighted(box >= 0 && (e->from() == box || e->to() == box));
    if (current && scroll) {
        const QRectF visible = mapToScene(viewport()->rect()).boundingRect();
        if (!visible.contains(current->sceneBoundingRect()))
            centerOn(current);
    }
    if (current && !fitted_ && isVisible())
        showInitial(); // the first selection after opening decides where the view starts
}

void GraphView::fitGraph()
{
    if (scene_->items().isEmpty())
        return;
    fitInView(scene_->sceneRect(), Qt::KeepAspectRatio);
    // Small graphs are not blown up beyond a comfortable reading size.
    if (zoom() > 1.3)
        zoomBy(1.3 / zoom());
    fitted_ = true;
    emit zoomChanged(zoom());
}

void GraphView::showInitial()
{
    if (scene_->items().isEmpty())
        return;
    fitGraph();
    // A graph too big to read whole opens readable at the current layer (or its
    // beginning), as a document viewer would; Fit (Ctrl+0) gives the overview.
    if (zoom() < readableZoom) {
        resetTransform();
        scale(readableZoom, readableZoom);
        if (NodeItem* item = itemForNode(selection_->currentNode()))
            centerOn(item);
        else {
            const QRectF view = mapToScene(viewport()->rect()).boundingRect();
            centerOn(scene_->sceneRect().topLeft() + QPointF(view.width() / 2, view.height() / 2));
        }
        emit zoomChanged(zoom());
    }
}

void GraphView::zoomBy(double factor)
{
    const double z = zoom();
    const double target = std::clamp(z * factor, 0.03, 4.0);
    scale(target / z, target / z);
    emit zoomChanged(zoom());
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
    for (QGraphicsItem* item : items(event->pos()))
        if (item->type() == NodeItem::Type) {
            auto* n = static_cast<NodeItem*>(item);
            if (n->node() >= 0)
                selection_->selectNode(n->node());
            return;
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

void GraphView::resizeEvent(QResizeEvent* event)
{
    QGraphicsView::resizeEvent(event);
    placeLegend();
    if (!fitted_ && isVisible())
        showInitial();
}

void GraphView::placeLegend()
{
    legend_->resize(legend_->sizeHint());
    legend_->move(12, height() - legend_->height() - 12);
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
