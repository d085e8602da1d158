#include "ui/document/graph_layout.h"

#include "util/error.h"

#include <QFontMetricsF>

#include <graphviz/gvc.h>

#include <algorithm>
#include <mutex>
#include <set>

namespace qs::ui {
namespace {

// Graphviz keeps global state: one layout at a time.
std::mutex graphvizMutex;

char* cstr(const char* s) { return const_cast<char*>(s); }

QString dimsText(const Shape& s)
{
    QStringList parts;
    for (int64_t d : s)
        parts << (d < 0 ? QStringLiteral("?") : QString::number(d));
    return parts.join(QChar(0x00D7)); // multiplication sign
}

QString elideMiddle(const QString& s, int maxChars)
{
    if (s.size() <= maxChars)
        return s;
    const int keep = (maxChars - 1) / 2;
    return s.left(keep) + QChar(0x2026) + s.right(maxChars - 1 - keep);
}

QPointF toScene(pointf p, double height) { return {p.x, height - p.y}; }

} // namespace

QString shortLayerName(const std::string& nodeName, const std::string& opType)
{
    QString s = QString::fromStdString(nodeName);
    const QString suffix = QLatin1Char('/') + QString::fromStdString(opType);
    if (s.endsWith(suffix))
        s.chop(suffix.size());
    while (s.startsWith(QLatin1Char('/')))
        s.remove(0, 1);
    return s.isEmpty() ? QString::fromStdString(nodeName) : s;
}

GraphLayout layoutGraph(const Graph& graph, const LayoutStyle& style)
{
    GraphLayout out;
    out.direction = style.direction;
    out.nodeBox.assign(graph.nodes.size(), -1);

    // Boxes: graph inputs, operators (Constant nodes are folded away like initializers), outputs.
    std::map<std::string, int> inputBox;
    for (const auto& in : graph.inputs) {
        GraphLayout::Box b;
        b.kind = GraphLayout::BoxKind::Input;
        b.title = QString::fromStdString(in.name);
        b.lines << QString::fromStdString(in.text());
        inputBox[in.name] = int(out.boxes.size());
        out.boxes.push_back(std::move(b));
    }
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const Node& n = graph.nodes[i];
        if (n.opType == "Constant" && n.domain.empty()) {
            ++out.hiddenConstants;
            continue;
        }
        GraphLayout::Box b;
        b.node = int(i);
        b.title = QString::fromStdString(n.opType);
        if (graph.layerKind(n) != LayerKind::None) {
            b.lines << elideMiddle(shortLayerName(n.name, n.opType), 26);
            if (const Tensor* w = graph.constant(graph.weightOf(n)))
                b.lines << QStringLiteral("W ") + dimsText(w->shape);
        }
        if (!n.outputs.empty())
            if (const ValueInfo* v = graph.info(n.outputs.front()))
                b.lines << QString::fromStdString(v->text());
        out.nodeBox[i] = int(out.boxes.size());
        out.boxes.push_back(std::move(b));
    }
    std::vector<std::pair<int, int>> links;
    std::set<std::pair<int, int>> seen;
    auto link = [&](int from, int to) {
        if (from >= 0 && to >= 0 && seen.insert({from, to}).second)
            links.emplace_back(from, to);
    };
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const int to = out.nodeBox[i];
        if (to < 0)
            continue;
        for (const auto& v : graph.nodes[i].inputs) {
            if (v.empty())
                continue;
            const int p = graph.producerOf(v);
            if (p >= 0)
                link(out.nodeBox[std::size_t(p)], to);
            else if (auto it = inputBox.find(v); it != inputBox.end())
                link(it->second, to);
        }
    }
    for (const auto& o : graph.outputs) {
        GraphLayout::Box b;
        b.kind = GraphLayout::BoxKind::Output;
        b.title = QString::fromStdString(o.name);
        b.lines << QString::fromStdString(o.text());
        const int box = int(out.boxes.size());
        out.boxes.push_back(std::move(b));
        const int p = graph.producerOf(o.name);
        if (p >= 0)
            link(out.nodeBox[std::size_t(p)], box);
        else if (auto it = inputBox.find(o.name); it != inputBox.end())
            link(it->second, box);
    }

    // Box sizes from the text they carry, in points (the scene unit; dot works in inches).
    const QFontMetricsF title(style.titleFont), text(style.textFont);
    for (auto& b : out.boxes) {
        double w = title.horizontalAdvance(b.title);
        for (const auto& l : b.lines)
            w = std::max(w, text.horizontalAdvance(l));
        const double h = title.height() + double(b.lines.size()) * text.height() + 12;
        b.rect = QRectF(0, 0, std::max(w + 20, 72.0), h);
    }

    std::lock_guard lock(graphvizMutex);
    GVC_t* gvc = gvContext();
    Agraph_t* g = agopen(cstr("model"), Agdirected, nullptr);
    const bool big = out.boxes.size() > 400;
    agsafeset(g, cstr("rankdir"), cstr(style.direction == GraphDirection::LeftToRight ? "LR" : "TB"), cstr(""));
    agsafeset(g, cstr("nodesep"), cstr("0.22"), cstr(""));
    agsafeset(g, cstr("ranksep"), cstr("0.32"), cstr(""));
    agsafeset(g, cstr("splines"), cstr("spline"), cstr(""));
    if (big) { // bound crossing minimization and network simplex on large graphs
        agsafeset(g, cstr("mclimit"), cstr("0.3"), cstr(""));
        agsafeset(g, cstr("nslimit"), cstr("2"), cstr(""));
        agsafeset(g, cstr("nslimit1"), cstr("2"), cstr(""));
    }
    agattr(g, AGNODE, cstr("shape"), cstr("box"));
    agattr(g, AGNODE, cstr("fixedsize"), cstr("true"));
    agattr(g, AGNODE, cstr("label"), cstr(""));
    agattr(g, AGNODE, cstr("width"), cstr("1"));
    agattr(g, AGNODE, cstr("height"), cstr("0.5"));
    agattr(g, AGEDGE, cstr("arrowsize"), cstr("0.6"));

    std::vector<Agnode_t*> gvNodes(out.boxes.size());
    for (std::size_t i = 0; i < out.boxes.size(); ++i) {
        const std::string name = "b" + std::to_string(i);
        gvNodes[i] = agnode(g, cstr(name.c_str()), 1);
        const std::string w = std::to_string(out.boxes[i].rect.width() / 72.0);
        const std::string h = std::to_string(out.boxes[i].rect.height() / 72.0);
        agsafeset(gvNodes[i], cstr("width"), cstr(w.c_str()), cstr("1"));
        agsafeset(gvNodes[i], cstr("height"), cstr(h.c_str()), cstr("0.5"));
    }
    std::vector<Agedge_t*> gvEdges;
    gvEdges.reserve(links.size());
    for (auto [from, to] : links)
        gvEdges.push_back(agedge(g, gvNodes[std::size_t(from)], gvNodes[std::size_t(to)], nullptr, 1));

    if (gvLayout(gvc, g, "dot") != 0) {
        agclose(g);
        gvFreeContext(gvc);
        fail(graph.sourcePath, ": Graphviz could not lay out the graph (is the dot layout plugin installed?)");
    }
    const boxf bb = GD_bb(g);
    const double height = bb.UR.y;
    for (std::size_t i = 0; i < out.boxes.size(); ++i) {
        const QPointF c = toScene(ND_coord(gvNodes[i]), height);
        QRectF& r = out.boxes[i].rect;
        r.moveCenter(c);
    }
    for (std::size_t k = 0; k < links.size(); ++k) {
        GraphLayout::Edge e;
        e.from = links[k].first;
        e.to = links[k].second;
        const splines* spl = ED_spl(gvEdges[k]);
        if (spl && spl->size > 0) {
            const bezier& bz = spl->list[0];
            if (bz.size > 0) {
                e.path.moveTo(toScene(bz.list[0], height));
                for (int j = 1; j + 2 < bz.size; j += 3)
                    e.path.cubicTo(toScene(bz.list[j], height), toScene(bz.list[j + 1], height),
                                   toScene(bz.list[j + 2], height));
                e.arrowBase = toScene(bz.list[bz.size - 1], height);
                e.arrowTip = bz.eflag ? toScene(bz.ep, height) : e.arrowBase;
            }
        }
        if (e.path.isEmpty()) { // straight line between box centres as a fallback
            e.path.moveTo(out.boxes[std::size_t(e.from)].rect.center());
            e.path.lineTo(out.boxes[std::size_t(e.to)].rect.center());
            e.arrowBase = e.arrowTip = out.boxes[std::size_t(e.to)].rect.center();
        }
        out.edges.push_back(std::move(e));
    }
    out.bounds = QRectF(bb.LL.x, 0, bb.UR.x - bb.LL.x, bb.UR.y - bb.LL.y);
    gvFreeLayout(gvc, g);
    agclose(g);
    gvFreeContext(gvc);
    return out;
}

} // namespace qs::ui
