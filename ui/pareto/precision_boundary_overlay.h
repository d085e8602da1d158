// Where the configuration being edited crosses between INT8 and float, drawn on the graph
// view: with a latency profile, every edge where a quantize or a dequantize runs (by
// layerLinks' rules, as predictLatencyMs counts them), labelled with its measured cost,
// and their total in the legend. Follows every edit of the configuration.
#pragma once

#include "analysis/latency.h"
#include "store/records.h"
#include "ui/document/graph_layout.h"

#include <QObject>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace qs {
class Graph;
}

namespace qs::ui {

class GraphView;
class ModelDocument;
class QuantConfigDocument;

struct BoundaryMark {
    std::string layer; // the INT8 layer whose input or output crosses
    PrecisionBoundary::Kind kind = PrecisionBoundary::Kind::Quantize;
    double ms = 0;                          // measured cost of the crossing
    std::vector<std::pair<int, int>> edges; // (from box, to box) of the layout it sits on
};

// The crossings of `int8` placed on `layout`'s edges of `graph` (the model as drawn;
// `links` are of its BatchNorm-folded form, whose layers keep their names): a quantize
// on the edge bringing the layer its data input, a dequantize on the edges leaving the
// layer's kernel (after the BatchNorm and Relu fused into it).
std::vector<BoundaryMark> boundaryMarks(const Graph& graph, const GraphLayout& layout, const LatencyProfile& profile,
    const LayerLinks& links, const std::set<std::string>& int8);

// A cost in ms as the marks and the legend show it: three significant digits.
QString msText(double ms);

class PrecisionBoundaryOverlay : public QObject {
    Q_OBJECT
public:
    PrecisionBoundaryOverlay(
        GraphView* view, ModelDocument* doc, QuantConfigDocument* config, QObject* parent = nullptr);

    void setProfile(std::shared_ptr<const LatencyProfile> profile, std::shared_ptr<const LayerLinks> links);
    bool hasProfile() const { return profile_ != nullptr; }
    void setEnabled(bool on);
    bool isEnabled() const { return enabled_; }
    const std::vector<BoundaryMark>& marks() const { return marks_; }
    double totalMs() const; // the sum of the marks' costs

signals:
    void marksChanged();

private:
    void update();

    GraphView* view_;
    ModelDocument* doc_;
    QuantConfigDocument* config_;
    std::shared_ptr<const LatencyProfile> profile_;
    std::shared_ptr<const LayerLinks> links_;
    std::vector<BoundaryMark> marks_;
    bool enabled_ = true;
};

} // namespace qs::ui
