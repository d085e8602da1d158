// Layered layout of a Graph by Graphviz's dot: boxes for operators and for the
// graph's inputs and outputs, spline edges. Computed in a worker, drawn by GraphView.
#pragma once

#include "graph/graph.h"

#include <QFont>
#include <QPainterPath>
#include <QRectF>
#include <QString>
#include <QStringList>

#include <vector>

namespace qs::ui {

enum class GraphDirection { LeftToRight, TopToBottom };

struct LayoutStyle {
    GraphDirection direction = GraphDirection::LeftToRight;
    QFont titleFont;  // op type
    QFont textFont;   // name and shapes
};

struct GraphLayout {
    enum class BoxKind { Operator, Input, Output };
    struct Box {
        BoxKind kind = BoxKind::Operator;
        int node = -1;        // index into Graph::nodes (Operator boxes)
        QString title;        // op type, or the input/output name
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
    std::vector<int> nodeBox;  // Graph::nodes index -> boxes index, -1 when not drawn
    int hiddenConstants = 0;   // Constant nodes folded into their consumers

    int boxOfNode(int node) const
    {
        return node >= 0 && node < int(nodeBox.size()) ? nodeBox[std::size_t(node)] : -1;
    }
};

// "/res1/conv1/Conv" -> "res1/conv1": the path part of an exporter's node name.
QString shortLayerName(const std::string& nodeName, const std::string& opType);

// Throws qs::Error when Graphviz cannot lay out the graph (e.g. its dot plugin is missing).
GraphLayout layoutGraph(const Graph& graph, const LayoutStyle& style);

} // namespace qs::ui
