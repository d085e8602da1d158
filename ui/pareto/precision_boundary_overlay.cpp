#include "ui/pareto/precision_boundary_overlay.h"

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/graph/graph_view.h"

#include "analysis/latency_front.h"
#include "graph/graph.h"
#include "measure/activations.h"
#include "util/error.h"

namespace qs::ui {
namespace {

std::vector<std::pair<int, int>> edgesWhere(const GraphLayout& layout, int from, int to)
{
    std::vector<std::pair<int, int>> out;
    for (const auto& e : layout.edges)
        if ((from < 0 || e.from == from) && (to < 0 || e.to == to))
            out.emplace_back(e.from, e.to);
    return out;
}

// The box a value comes from: its producer's, or the graph input's of that name.
int sourceBox(const Graph& g, const GraphLayout& layout, const std::string& value)
{
    const int p = g.producerOf(value);
    if (p >= 0)
        return layout.boxOfNode(p);
    for (std::size_t i = 0; i < layout.boxes.size(); ++i)
        if (layout.boxes[i].kind == GraphLayout::BoxKind::Input &&
            layout.boxes[i].title == QString::fromStdString(value))
            return int(i);
    return -1;
}

// The last node of a layer's kernel: BatchNorm is folded into it, a Relu fused as a post-op.
int kernelEnd(const Graph& g, int node)
{
    for (;;) {
        const auto& consumers = g.consumersOf(g.nodes[std::size_t(node)].outputs.front());
        if (consumers.size() != 1)
            return node;
        const Node& next = g.nodes[std::size_t(consumers.front())];
        if (!next.domain.empty() || (next.opType != "BatchNormalization" && next.opType != "Relu"))
            return node;
        node = consumers.front();
    }
}

} // namespace

QString msText(double ms)
{
    return QString::number(ms, 'g', 3); // crossings of small tensors take well under a microsecond
}

std::vector<BoundaryMark> boundaryMarks(const Graph& graph, const GraphLayout& layout, const LatencyProfile& profile,
    const LayerLinks& links, const std::set<std::string>& int8)
{
    std::vector<BoundaryMark> out;
    for (const PrecisionBoundary& b : precisionBoundaries(profile, links, int8)) {
        BoundaryMark m;
        m.layer = links.layers[b.layer];
        m.kind = b.kind;
        m.ms = b.ms;
        const int node = graph.findNode(m.layer);
        if (node < 0)
            fail("graph: layer ", quoted(m.layer), " of the latency profile is not a node of the model");
        if (b.kind == PrecisionBoundary::Kind::Quantize) {
            const int to = layout.boxOfNode(node);
            const int from = sourceBox(graph, layout, layerInputOf(graph, graph.nodes[std::size_t(node)]));
            m.edges = edgesWhere(layout, from, to);
            if (m.edges.empty()) // the input's box is hidden (a folded constant): every edge in
                m.edges = edgesWhere(layout, -1, to);
        } else {
            m.edges = edgesWhere(layout, layout.boxOfNode(kernelEnd(graph, node)), -1);
        }
        out.push_back(std::move(m));
    }
    return out;
}

PrecisionBoundaryOverlay::PrecisionBoundaryOverlay(
    GraphView* view, ModelDocument* doc, QuantConfigDocument* config, QObject* parent)
    : QObject(parent), view_(view), doc_(doc), config_(config)
{
    connect(config_, &QuantConfigDocument::configChanged, this, &PrecisionBoundaryOverlay::update);
    connect(doc_, &ModelDocument::layoutChanged, this, &PrecisionBoundaryOverlay::update);
    connect(doc_, &ModelDocument::modelChanged, this, [this] { setProfile(nullptr, nullptr); });
}

void PrecisionBoundaryOverlay::setProfile(
    std::shared_ptr<const LatencyProfile> profile, std::shared_ptr<const LayerLinks> links)
{
    profile_ = std::move(profile);
    links_ = std::move(links);
    update();
}

void PrecisionBoundaryOverlay::setEnabled(bool on)
{
    enabled_ = on;
    update();
}

double PrecisionBoundaryOverlay::totalMs() const
{
    double ms = 0;
    for (const auto& m : marks_)
        ms += m.ms;
    return ms;
}

void PrecisionBoundaryOverlay::update()
{
    marks_.clear();
    const auto& model = doc_->model();
    const auto& layout = doc_->layout();
    if (enabled_ && profile_ && links_ && model && layout) {
        try {
            marks_ = boundaryMarks(
                *model->graph, *layout, *profile_, *links_, int8Layers(config_->config(), config_->layerNames()));
        } catch (const Error&) {
            marks_.clear(); // a profile of another model's layers: nothing to mark
        }
    }
    std::vector<GraphView::EdgeMark> edges;
    for (const BoundaryMark& m : marks_) {
        const bool q = m.kind == PrecisionBoundary::Kind::Quantize;
        const QString layer = QString::fromStdString(m.layer);
        for (std::size_t i = 0; i < m.edges.size(); ++i) {
            GraphView::EdgeMark e;
            e.from = m.edges[i].first;
            e.to = m.edges[i].second;
            // One crossing may sit on several edges (an output read twice): its cost is labelled once.
            e.label = i == 0
                ? QStringLiteral("%1 %2 ms").arg(q ? QStringLiteral("Q") : QStringLiteral("DQ"), msText(m.ms))
                : QString();
            e.tooltip = QStringLiteral("<b>%1</b> %2 of <b>%3</b>: %4 ms measured")
                            .arg(q ? QStringLiteral("Quantize") : QStringLiteral("Dequantize"),
                                q ? QStringLiteral("float \u2192 INT8 at the input")
                                  : QStringLiteral("INT8 \u2192 float at the output"),
                                layer.toHtmlEscaped())
                            .arg(msText(m.ms));
            edges.push_back(e);
        }
    }
    QString note;
    if (enabled_ && profile_ && links_)
        note = QStringLiteral("Boundary cost %1 ms (%2 crossings)").arg(msText(totalMs())).arg(marks_.size());
    view_->setEdgeMarks(std::move(edges), note);
    emit marksChanged();
}

} // namespace qs::ui
