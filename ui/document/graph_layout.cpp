#include "ui/document/graph_layout.h"

#include "util/error.h"

#include <QFontMetricsF>
#include <QTransform>

#include <graphviz/gvc.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
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

// A layer's path name in at most maxChars: its last segments whole, the leading ones
// given up for "…/" ("…/self_attn/q_proj"), the last segment elided in its
// middle only when it alone is too long. The tooltip has the whole name.
QString elideLayerPath(const QString& s, int maxChars)
{
    if (s.size() <= maxChars)
        return s;
    const QStringList parts = s.split(QLatin1Char('/'));
    QString kept = parts.back();
    if (kept.size() + 2 > maxChars)
        return elideMiddle(kept, maxChars);
    for (int i = int(parts.size()) - 2; i >= 0; --i) {
        if (parts[i].size() + 1 + kept.size() + 2 > maxChars)
            break;
        kept = parts[i] + QLatin1Char('/') + kept;
    }
    return QString(QChar(0x2026)) + QLatin1Char('/') + kept;
}

QPointF toScene(pointf p, double height) { return {p.x, height - p.y}; }

bool isConstant(const Node& n) { return n.opType == "Constant" && n.domain.empty(); }

// Blocks named by an exporter: every directory of a node's name ("/model/layers.3/mlp/MatMul"
// has model, layers.3, mlp) that ends in a number makes a family ("model/layers.#") and an
// instance ("model/layers.3"). A family of at least two instances of at least four operators
// each qualifies; a node joins the shallowest qualifying instance along its name.
std::vector<GraphBlock> blocksByName(const Graph& g)
{
    struct Candidate {
        std::string family, instance;
    };
    std::vector<std::vector<Candidate>> candidates(g.nodes.size());
    std::map<std::string, std::map<std::string, int>> families; // family -> instance -> operators
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
        const Node& n = g.nodes[i];
        if (isConstant(n))
            continue;
        std::string name = n.name;
        std::vector<std::string> parts;
        std::size_t pos = 0;
        while (pos <= name.size()) {
            const std::size_t slash = std::min(name.find('/', pos), name.size());
            if (slash > pos)
                parts.push_back(name.substr(pos, slash - pos));
            pos = slash + 1;
        }
        std::string prefix;
        for (std::size_t d = 0; d + 1 < parts.size(); ++d) { // the last part names the operator
            const std::string& part = parts[d];
            std::size_t digits = part.size();
            while (digits > 0 && std::isdigit(static_cast<unsigned char>(part[digits - 1])))
                --digits;
            if (digits < part.size()) {
                Candidate c {prefix + part.substr(0, digits) + "#", prefix + part};
                ++families[c.family][c.instance];
                candidates[i].push_back(std::move(c));
            }
            prefix += part + "/";
        }
    }
    auto qualifies = [&](const std::string& family) {
        const auto& instances = families.at(family);
        if (instances.size() < 2)
            return false;
        return std::all_of(instances.begin(), instances.end(), [](const auto& kv) { return kv.second >= 4; });
    };
    std::map<std::string, int> blockOf;
    std::vector<GraphBlock> blocks;
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
        for (const Candidate& c : candidates[i]) {
            if (!qualifies(c.family))
                continue;
            auto [it, added] = blockOf.emplace(c.instance, int(blocks.size()));
            if (added)
                blocks.push_back({QString::fromStdString(c.instance), {}, 0});
            blocks[std::size_t(it->second)].nodes.push_back(int(i));
            break;
        }
    return blocks;
}

// Graphs without such names: the longest tandem repeat of op types along graph order (at
// least three periods of at least four operators), then the same left and right of it.
std::vector<GraphBlock> blocksBySequence(const Graph& g)
{
    std::vector<int> order, ops;
    std::map<std::string, int> opIds;
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
        if (!isConstant(g.nodes[i])) {
            order.push_back(int(i));
            ops.push_back(opIds.emplace(g.nodes[i].opType, int(opIds.size())).first->second);
        }
    std::vector<GraphBlock> blocks;
    std::function<void(int, int)> search = [&](int lo, int hi) {
        int bestCover = 0, bestK = 0, bestStart = 0, bestReps = 0;
        for (int k = 4; 3 * k <= hi - lo; ++k) {
            int run = 0;
            for (int i = lo; i + k < hi; ++i) {
                run = ops[std::size_t(i)] == ops[std::size_t(i + k)] ? run + 1 : 0;
                const int reps = (run + k) / k;
                if (reps >= 3 && reps * k > bestCover) {
                    bestCover = reps * k;
                    bestK = k;
                    bestStart = i - run + 1;
                    bestReps = reps;
                }
            }
        }
        if (bestCover == 0)
            return;
        search(lo, bestStart);
        for (int r = 0; r < bestReps; ++r) {
            GraphBlock b;
            b.name = QStringLiteral("block %1 of %2").arg(r + 1).arg(bestReps);
            for (int j = 0; j < bestK; ++j)
                b.nodes.push_back(order[std::size_t(bestStart + r * bestK + j)]);
            blocks.push_back(std::move(b));
        }
        search(bestStart + bestReps * bestK, hi);
    };
    search(0, int(order.size()));
    return blocks;
}

} // namespace

std::vector<GraphBlock> detectBlocks(const Graph& graph)
{
    std::vector<GraphBlock> blocks = blocksByName(graph);
    if (blocks.empty())
        blocks = blocksBySequence(graph);
    for (auto& b : blocks)
        for (int n : b.nodes)
            b.layers += graph.layerKind(graph.nodes[std::size_t(n)]) != LayerKind::None ? 1 : 0;
    std::sort(blocks.begin(), blocks.end(), [](const GraphBlock& a, const GraphBlock& b) { return a.nodes.front() < b.nodes.front(); });
    return blocks;
}

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

QString shapeLabel(const ValueInfo& v)
{
    if (!v.dims)
        return QStringLiteral("?");
    QStringList parts;
    for (const Dim& d : *v.dims) {
        QString param = QString::fromStdString(d.param);
        if (param.size() > 10 && param.indexOf(QLatin1Char('.')) > 0) // "p2o.DynamicDimension.0": drop the namespace
            param = param.mid(param.indexOf(QLatin1Char('.')) + 1);
        parts << (d.value >= 0 ? QString::number(d.value) : param.isEmpty() ? QStringLiteral("?") : elideMiddle(param, 10));
    }
    return QLatin1Char('[') + parts.join(QLatin1Char(',')) + QLatin1Char(']');
}

namespace {

// Cuts a long flow into segments at gaps between ranks (where fewest edges cross) and
// stacks them like lines of text: rows top to bottom (left to right flow) or columns left
// to right (top to bottom flow), each as thick as what it holds, so many that the whole is
// closest to 16:10. Edges between segments leave past the end of their row, run back
// through the gap before the next row and enter their box from its side.
void wrapFlow(GraphLayout& out, double rowLimit)
{
    constexpr double aspect = 1.6, gap = 70, margin = 24;
    const bool lr = out.direction == GraphDirection::LeftToRight;
    auto flowLo = [lr](const QRectF& r) { return lr ? r.left() : r.top(); };
    auto flowHi = [lr](const QRectF& r) { return lr ? r.right() : r.bottom(); };
    auto crossLo = [lr](const QRectF& r) { return lr ? r.top() : r.left(); };
    auto crossHi = [lr](const QRectF& r) { return lr ? r.bottom() : r.right(); };
    auto flowOf = [lr](const QPointF& p) { return lr ? p.x() : p.y(); };
    auto crossOf = [lr](const QPointF& p) { return lr ? p.y() : p.x(); };
    auto point = [lr](double f, double c) { return lr ? QPointF(f, c) : QPointF(c, f); };
    const double start = flowLo(out.bounds), length = lr ? out.bounds.width() : out.bounds.height();
    const double limit = rowLimit > 0 ? rowLimit : 1e300;
    if (length <= std::min(wrapLongerThan, limit) || out.boxes.empty())
        return;

    // What is drawn, by its extent along the flow: boxes and the frames of expanded blocks.
    std::vector<QRectF> shapes;
    for (const auto& b : out.boxes)
        shapes.push_back(b.rect);
    for (const QRectF& f : out.blockFrame)
        if (!f.isEmpty())
            shapes.push_back(f);
    // Candidate cuts: the middles of the gaps along the flow that nothing covers.
    std::vector<std::pair<double, double>> spans;
    for (const QRectF& r : shapes)
        spans.emplace_back(flowLo(r) - 1, flowHi(r) + 1);
    std::sort(spans.begin(), spans.end());
    std::vector<double> candidates;
    double reach = spans.front().second;
    for (std::size_t i = 1; i < spans.size(); ++i) {
        if (spans[i].first > reach)
            candidates.push_back((reach + spans[i].first) / 2);
        reach = std::max(reach, spans[i].second);
    }
    if (candidates.empty())
        return;
    std::vector<int> crossing(candidates.size() + 1, 0); // edges over each candidate, by a difference array
    for (const auto& e : out.edges) {
        double a = flowOf(out.boxes[std::size_t(e.from)].rect.center()), b = flowOf(out.boxes[std::size_t(e.to)].rect.center());
        if (a > b)
            std::swap(a, b);
        const auto lo = std::upper_bound(candidates.begin(), candidates.end(), a) - candidates.begin();
        const auto hi = std::lower_bound(candidates.begin(), candidates.end(), b) - candidates.begin();
        if (lo < hi) {
            ++crossing[std::size_t(lo)];
            --crossing[std::size_t(hi)];
        }
    }
    for (std::size_t i = 1; i < crossing.size(); ++i)
        crossing[i] += crossing[i - 1];

    // Cuts for rows of at most `width` along the flow, filled like lines of text: in the
    // last quarter of the room the gap with fewest crossing edges (the farthest of equals),
    // else the farthest gap that fits, else the nearest beyond (a row longer than `width`).
    auto cutsFor = [&](double width) {
        std::vector<double> cuts;
        double rowStart = start;
        std::size_t c = 0;
        while (start + length - rowStart > width) {
            while (c < candidates.size() && candidates[c] <= rowStart + 1)
                ++c;
            if (c == candidates.size())
                break;
            int best = -1;
            for (std::size_t k = c; k < candidates.size() && candidates[k] - rowStart <= width; ++k)
                if (candidates[k] - rowStart >= 0.75 * width &&
                    (best < 0 || crossing[k] <= crossing[std::size_t(best)]))
                    best = int(k);
            if (best < 0)
                for (std::size_t k = c; k < candidates.size() && candidates[k] - rowStart <= width; ++k)
                    best = int(k);
            if (best < 0)
                best = int(c);
            cuts.push_back(candidates[std::size_t(best)]);
            rowStart = cuts.back();
        }
        return cuts;
    };
    struct Plan {
        std::vector<double> cuts;
        std::vector<double> lo, hi; // cross extent of each segment
        double longest = 0, thickness = 0;
    };
    auto planFor = [&](std::vector<double> cuts) {
        Plan p;
        p.cuts = std::move(cuts);
        const std::size_t n = p.cuts.size() + 1;
        p.lo.assign(n, 1e300);
        p.hi.assign(n, -1e300);
        for (const QRectF& r : shapes) {
            const auto s = std::size_t(std::upper_bound(p.cuts.begin(), p.cuts.end(), flowOf(r.center())) - p.cuts.begin());
            p.lo[s] = std::min(p.lo[s], crossLo(r));
            p.hi[s] = std::max(p.hi[s], crossHi(r));
        }
        for (std::size_t s = 0; s < n; ++s) {
            const double from = s == 0 ? start : p.cuts[s - 1], to = s + 1 < n ? p.cuts[s] : start + length;
            p.longest = std::max(p.longest, to - from);
            if (p.hi[s] < p.lo[s])
                p.lo[s] = p.hi[s] = 0; // nothing in it
            p.thickness += p.hi[s] - p.lo[s] + (s ? gap : 0);
        }
        return p;
    };
    auto misfit = [&](const Plan& p) { // how far from 16:10, as a ratio either way
        const double w = lr ? p.longest : p.thickness, h = lr ? p.thickness : p.longest;
        const double r = w / std::max(h, 1.0) / aspect;
        return r >= 1 ? r : 1 / r;
    };
    // Closest to 16:10 among the plans whose rows the view shows whole (else the one with
    // the shortest longest row).
    auto better = [&](const Plan& p, const Plan& than) {
        const bool fits = p.longest <= limit, thanFits = than.longest <= limit;
        if (fits != thanFits)
            return fits;
        return fits ? misfit(p) < misfit(than) : p.longest < than.longest;
    };
    Plan best = planFor({});
    const int most = std::max(64, int(std::ceil(length / std::min(limit, length))) + 1);
    for (int wanted = 2; wanted <= most && wanted <= int(candidates.size()) + 1; ++wanted) {
        Plan p = planFor(cutsFor(std::min(length / wanted, limit)));
        if (better(p, best))
            best = std::move(p);
    }
    if (best.cuts.empty())
        return;

    const int segments = int(best.cuts.size()) + 1;
    std::vector<double> segStart {start}, rowStart; // along the flow; across it, after stacking
    segStart.insert(segStart.end(), best.cuts.begin(), best.cuts.end());
    double cursor = crossLo(out.bounds);
    for (int s = 0; s < segments; ++s) {
        rowStart.push_back(cursor);
        cursor += best.hi[std::size_t(s)] - best.lo[std::size_t(s)] + gap;
    }
    auto segmentOf = [&](double f) { return int(std::upper_bound(best.cuts.begin(), best.cuts.end(), f) - best.cuts.begin()); };
    auto shift = [&](int s) {
        return point(start - segStart[std::size_t(s)], rowStart[std::size_t(s)] - best.lo[std::size_t(s)]);
    };

    std::vector<int> boxSegment(out.boxes.size());
    for (std::size_t i = 0; i < out.boxes.size(); ++i) {
        QRectF& r = out.boxes[i].rect;
        boxSegment[i] = segmentOf(flowOf(r.center()));
        r.translate(shift(boxSegment[i]));
    }
    for (QRectF& f : out.blockFrame)
        if (!f.isEmpty())
            f.translate(shift(segmentOf(flowOf(f.center()))));
    int lane = 0;
    for (auto& e : out.edges) {
        const int sf = boxSegment[std::size_t(e.from)], st = boxSegment[std::size_t(e.to)];
        if (sf == st) {
            e.path.translate(shift(sf));
            e.arrowBase += shift(sf);
            e.arrowTip += shift(sf);
            continue;
        }
        const QPointF from = e.path.elementCount() > 0 ? QPointF(e.path.elementAt(0)) + shift(sf)
                                                       : out.boxes[std::size_t(e.from)].rect.center();
        e.arrowBase += shift(st);
        e.arrowTip += shift(st);
        const double offset = 5.0 * (lane++ % 6);
        const double endF = start + best.longest + margin + offset, beginF = start - margin - offset;
        const double band = rowStart[std::size_t(st)] - gap / 2 + offset;
        QPainterPath p(from);
        p.lineTo(point(endF, crossOf(from)));
        p.lineTo(point(endF, band));
        p.lineTo(point(beginF, band));
        p.lineTo(point(beginF, crossOf(e.arrowBase)));
        p.lineTo(e.arrowBase);
        e.path = p;
    }
    QRectF bounds;
    for (const auto& b : out.boxes)
        bounds = bounds.united(b.rect);
    for (const auto& e : out.edges)
        bounds = bounds.united(e.path.boundingRect());
    for (const QRectF& f : out.blockFrame)
        if (!f.isEmpty())
            bounds = bounds.united(f);
    out.bounds = bounds;
    out.rows = segments;
}

QString opSummary(const Graph& g, const std::vector<int>& nodes)
{
    std::map<std::string, int> counts;
    for (int n : nodes)
        ++counts[g.nodes[std::size_t(n)].opType];
    std::vector<std::pair<int, std::string>> sorted;
    for (const auto& [op, c] : counts)
        sorted.emplace_back(-c, op);
    std::sort(sorted.begin(), sorted.end());
    QStringList parts;
    for (std::size_t i = 0; i < sorted.size() && i < 3; ++i)
        parts << QStringLiteral("%1\u00D7%2").arg(QString::fromStdString(sorted[i].second)).arg(-sorted[i].first);
    return parts.join(QLatin1Char(' ')) + (sorted.size() > 3 ? QStringLiteral(" \u2026") : QString());
}

} // namespace

GraphLayout layoutGraph(const Graph& graph, const LayoutStyle& style)
{
    GraphLayout out;
    out.direction = style.direction;
    out.style = style;
    out.nodeBox.assign(graph.nodes.size(), -1);
    out.blocks = detectBlocks(graph);
    out.blockBox.assign(out.blocks.size(), -1);
    out.blockFrame.assign(out.blocks.size(), QRectF());

    // Which blocks are drawn as one box.
    std::set<int> collapsed;
    if (style.collapsed)
        collapsed = *style.collapsed;
    else {
        int drawn = int(graph.inputs.size() + graph.outputs.size());
        for (const auto& n : graph.nodes)
            drawn += isConstant(n) ? 0 : 1;
        if (drawn > autoCollapseAbove)
            for (int b = 0; b < int(out.blocks.size()); ++b)
                collapsed.insert(b);
    }
    std::erase_if(collapsed, [&](int b) { return b < 0 || b >= int(out.blocks.size()); });
    out.style.collapsed = collapsed;
    std::vector<int> blockOfNode(graph.nodes.size(), -1);
    for (std::size_t b = 0; b < out.blocks.size(); ++b)
        for (int n : out.blocks[b].nodes)
            blockOfNode[std::size_t(n)] = int(b);

    // Boxes: graph inputs, operators and collapsed blocks (Constant nodes are folded away
    // like initializers), outputs.
    std::map<std::string, int> inputBox;
    for (const auto& in : graph.inputs) {
        GraphLayout::Box b;
        b.kind = GraphLayout::BoxKind::Input;
        b.title = QString::fromStdString(in.name);
        b.lines << shapeLabel(in);
        inputBox[in.name] = int(out.boxes.size());
        out.boxes.push_back(std::move(b));
    }
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const Node& n = graph.nodes[i];
        if (isConstant(n)) {
            ++out.hiddenConstants;
            continue;
        }
        const int block = blockOfNode[i];
        if (block >= 0 && collapsed.count(block)) {
            int& box = out.blockBox[std::size_t(block)];
            if (box < 0) {
                const GraphBlock& gb = out.blocks[std::size_t(block)];
                GraphLayout::Box b;
                b.kind = GraphLayout::BoxKind::Block;
                b.block = block;
                b.title = gb.name.section(QLatin1Char('/'), -1);
                b.lines << QStringLiteral("%1 operators \u00B7 %2 layers").arg(gb.nodes.size()).arg(gb.layers)
                        << opSummary(graph, gb.nodes);
                const Node& last = graph.nodes[std::size_t(gb.nodes.back())];
                if (!last.outputs.empty())
                    if (const ValueInfo* v = graph.info(last.outputs.front()))
                        b.lines << shapeLabel(*v);
                box = int(out.boxes.size());
                out.boxes.push_back(std::move(b));
            }
            out.nodeBox[i] = box;
            continue;
        }
        GraphLayout::Box b;
        b.node = int(i);
        b.title = QString::fromStdString(n.opType);
        if (graph.layerKind(n) != LayerKind::None) {
            b.lines << elideLayerPath(shortLayerName(n.name, n.opType), 26);
            if (const Tensor* w = graph.constant(graph.weightOf(n)))
                b.lines << QStringLiteral("W ") + dimsText(w->shape);
        }
        if (!n.outputs.empty())
            if (const ValueInfo* v = graph.info(n.outputs.front()))
                b.lines << shapeLabel(*v);
        out.nodeBox[i] = int(out.boxes.size());
        out.boxes.push_back(std::move(b));
    }
    std::vector<std::pair<int, int>> links;
    std::set<std::pair<int, int>> seen;
    auto link = [&](int from, int to) {
        if (from >= 0 && to >= 0 && from != to && seen.insert({from, to}).second)
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
        b.lines << shapeLabel(o);
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
        const bool block = b.kind == GraphLayout::BoxKind::Block;
        double w = title.horizontalAdvance(b.title) + (block ? 28 : 0); // room for the expand toggle
        for (const auto& l : b.lines)
            w = std::max(w, text.horizontalAdvance(l));
        const double h = title.height() + double(b.lines.size()) * text.height() + (block ? 18 : 12);
        b.rect = QRectF(0, 0, std::max(w + (block ? 28 : 20), 72.0), h);
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
    agattr(g, AGRAPH, cstr("label"), cstr(""));
    agattr(g, AGRAPH, cstr("fontsize"), cstr("14"));
    agattr(g, AGRAPH, cstr("margin"), cstr("10"));

    std::vector<Agnode_t*> gvNodes(out.boxes.size());
    for (std::size_t i = 0; i < out.boxes.size(); ++i) {
        const std::string name = "b" + std::to_string(i);
        gvNodes[i] = agnode(g, cstr(name.c_str()), 1);
        const std::string w = std::to_string(out.boxes[i].rect.width() / 72.0);
        const std::string h = std::to_string(out.boxes[i].rect.height() / 72.0);
        agsafeset(gvNodes[i], cstr("width"), cstr(w.c_str()), cstr("1"));
        agsafeset(gvNodes[i], cstr("height"), cstr(h.c_str()), cstr("0.5"));
    }
    // Expanded blocks are clusters: dot keeps them together and gives their frame; the label
    // reserves the room for the block's name and its collapse toggle.
    std::vector<Agraph_t*> clusters(out.blocks.size(), nullptr);
    for (std::size_t b = 0; b < out.blocks.size(); ++b) {
        if (collapsed.count(int(b)))
            continue;
        const std::string name = "cluster_" + std::to_string(b);
        clusters[b] = agsubg(g, cstr(name.c_str()), 1);
        const std::string label = out.blocks[b].name.section(QLatin1Char('/'), -1).toStdString() + "    ";
        agsafeset(clusters[b], cstr("label"), cstr(label.c_str()), cstr(""));
        for (int n : out.blocks[b].nodes)
            if (const int box = out.nodeBox[std::size_t(n)]; box >= 0)
                agsubnode(clusters[b], gvNodes[std::size_t(box)], 1);
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
    for (std::size_t b = 0; b < clusters.size(); ++b)
        if (clusters[b]) {
            const boxf cb = GD_bb(clusters[b]);
            out.blockFrame[b] = QRectF(toScene(cb.LL, height), toScene(cb.UR, height)).normalized();
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
    if (style.wrap)
        wrapFlow(out, style.rowLimit);
    return out;
}

} // namespace qs::ui
