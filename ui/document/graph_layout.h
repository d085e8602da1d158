// Layered layout of a Graph by Graphviz's dot: boxes for operators, for collapsed repeated
// blocks (transformer layers, ResNet stages) and for the graph's inputs and outputs, spline
// edges; a long flow is wrapped into rows (columns top to bottom) like lines of text so that
// Fit stays legible. Computed in a worker, drawn by GraphView.
#pragma once

#include "graph/graph.h"

#include <QFont>
#include <QPainterPath>
#include <QRectF>
#include <QString>
#include <QStringList>

#include <optional>
#include <set>
#include <vector>

namespace qs::ui {

enum class GraphDirection { LeftToRight, TopToBottom };

// A repeated block of the graph: one instance of a family of operators that share a name
// prefix with a running number ("/model/layers.3/...", "/layer2/...") or, for graphs
// without such names, one period of a repeated sequence of op types.
struct GraphBlock {
    QString name;           // "model/layers.3", or "block 3 of 8" for a repeated op sequence
    std::vector<int> nodes; // Graph::nodes indexes in graph order, Constant nodes excluded
    int layers = 0;         // quantizable layers among them
};

// Blocks of `graph`, in graph order; a node belongs to at most one. Names win over op
// sequences: the sequences are searched only when no name family qualifies.
std::vector<GraphBlock> detectBlocks(const Graph& graph);

struct LayoutStyle {
    GraphDirection direction = GraphDirection::LeftToRight;
    QFont titleFont;  // op type
    QFont textFont;   // name and shapes
    // Indexes into detectBlocks() drawn as one box. nullopt: every block when the graph
    // has more than autoCollapseAbove boxes, none otherwise.
    std::optional<std::set<int>> collapsed;
    // Wrap a flow longer than wrapLongerThan points into rows (columns when top to bottom)
    // so that the whole is about 16:10.
    bool wrap = true;
    // The longest row (column) along the flow, in points, that the view shows whole: its
    // canvas beside the overview column at the lowest Fit zoom. Rows are cut to fit it
    // (and a flow longer than it wraps); 0: no limit.
    double rowLimit = 0;
};

constexpr int autoCollapseAbove = 150;
constexpr double wrapLongerThan = 3000;

struct GraphLayout {
    enum class BoxKind { Operator, Input, Output, Block };
    struct Box {
        BoxKind kind = BoxKind::Operator;
        int node = -1;        // index into Graph::nodes (Operator boxes)
        int block = -1;       // index into blocks (Block boxes)
        QString title;        // op type, the input/output name or the block's name
        QStringList lines;    // short name, weight shape, output shape
        QRectF rect;          // scene coordinates (points)
    };
    struct Edge {
        int from = -1, to = -1;  // indexes into boxes
        QPainterPath path;       // from the tail box to the arrow's base
        QPointF arrowBase, arrowTip;
    };
    GraphDirection direction = GraphDirection::LeftToRight;
    std::vector<Box> boxes;
    std::vector<Edge> edges;
    QRectF bounds;
    std::vector<int> nodeBox;  // Graph::nodes index -> boxes index (its block's when collapsed), -1 when not drawn
    int hiddenConstants = 0;   // Constant nodes folded into their consumers
    std::vector<GraphBlock> blocks;
    std::vector<int> blockBox; // blocks index -> its box when collapsed, -1 when expanded
    std::vector<QRectF> blockFrame; // blocks index -> the frame around it when expanded, else empty
    int rows = 1;              // flow segments after wrapping
    LayoutStyle style;         // what it was laid out with (the collapsed set resolved)

    int boxOfNode(int node) const
    {
        return node >= 0 && node < int(nodeBox.size()) ? nodeBox[std::size_t(node)] : -1;
    }
    bool isCollapsed(int block) const
    {
        return block >= 0 && block < int(blockBox.size()) && blockBox[std::size_t(block)] >= 0;
    }
};

// "/res1/conv1/Conv" -> "res1/conv1": the path part of an exporter's node name.
QString shortLayerName(const std::string& nodeName, const std::string& opType);

// "[p2o.DynamicDimension.0,3,48,320]" -> "[Dyna…ion.0,3,48,320]": a value's shape with
// long symbolic dimension names elided so that a box stays narrow.
QString shapeLabel(const ValueInfo& v);

// Throws qs::Error when Graphviz cannot lay out the graph (e.g. its dot plugin is missing).
GraphLayout layoutGraph(const Graph& graph, const LayoutStyle& style);

} // namespace qs::ui
