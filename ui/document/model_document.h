// The open model as the GUI sees it: the immutable graph, one row per quantizable
// layer with its weight statistics, histogram and channel ranges (computed by a job
// after the model is shown, the selected layer first), the graph layout, and the
// activation profile once a calibration pass has run.
#pragma once

#include "analysis/activation_profile.h"
#include "analysis/weight_profile.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "measure/layers.h"
#include "ui/document/graph_layout.h"

#include <QObject>
#include <QString>
#include <QStringList>

#include <map>
#include <memory>
#include <vector>

namespace qs::ui {

struct LayerData {
    LayerSummary summary;
    int node = -1;         // index into Graph::nodes
    double sizeShare = 0;  // parameters of this layer / all parameters of the model
    QString outputText;    // output shape with symbolic dims, "[N,16,28,28]"
    WeightProfile weights;
    bool weightsReady = false; // summary.stats and weights computed (else empty, a job is on it)
};

// One layer's weight statistics, computed off the GUI thread (layerWeights()).
struct LayerWeights {
    int row = -1;
    TensorStats stats;
    WeightProfile weights;
};

struct ModelData {
    std::shared_ptr<const Graph> graph;
    std::vector<LayerData> layers;       // graph order
    std::map<int, int> layerOfNode;      // node index -> layers row
    QString path;                        // empty for a model built in memory
    int64_t totalParams = 0;
    std::vector<int> unsupportedNodes;   // nodes the runtime has no kernel for (calibration will refuse)
    double loadSeconds = 0;

    bool weightsReady() const; // every row's
    QString displayName() const;
    int layerRow(const std::string& name) const; // -1 when not a quantizable layer
    bool isUnsupported(int node) const;
    QStringList unsupportedOps() const; // distinct op types, sorted
};

// What the open experiment database holds for the open model (matched by file
// hash): the latest finished sensitivity run and the latest run that chose bits.
struct StoredResults {
    QString storePath;
    std::string modelHash;      // the file's SHA-256; "" when the store has no model of its size (not hashed)
    int64_t sensitivityRun = 0; // 0: none
    QString sensitivityMethod;  // "oneshot", "local", "hessian"
    int sensitivityBits = 0;    // the bit width the headline SQNR is measured at
    bool sensitivityIsSqnr = true; // SQNR in dB (low = sensitive); else a Hessian score (high = sensitive)
    std::map<std::string, double> sensitivity; // layer name -> headline value
    int64_t bitsRun = 0;        // 0: none
    QString bitsRunKind;        // "quantization", "mixed-precision-search"
    std::map<std::string, std::pair<int, int>> bits; // layer name -> (weight bits, activation bits)

    QString sensitivityText() const; // what the Sensitivity numbers are, for tooltips
    QString bitsText() const;
};

struct ActivationData {
    std::vector<ActivationProfile> profiles;
    QString dataLabel;    // what the statistics were collected on
    QString inputShape;   // the first input as the data bound its open dimensions, "[N,3,48,320]"; else empty
    int64_t samples = 0;
    double seconds = 0;

    const ActivationProfile* find(const std::string& layer, const std::string& role) const;
};

// Worker side: everything below runs inside a JobRunner job, never on the GUI thread.
// Without `weightStats` the rows' weight statistics are left for layerWeights().
std::shared_ptr<ModelData> buildModelData(
    Graph graph, Progress& progress, const CancelToken& cancel, bool weightStats = true);
std::shared_ptr<ModelData> loadModelData(
    const QString& path, Progress& progress, const CancelToken& cancel, bool weightStats = true);
// Row `row`'s weight statistics, histogram and channel ranges.
LayerWeights layerWeights(const ModelData& model, int row);
// Reads the store read-only; throws an Error naming the file when it cannot. `fileBytes`
// (Graph::fileBytes, > 0) lets a store with no model of that size answer without
// hashing the file.
std::shared_ptr<StoredResults> loadStoredResults(const QString& storePath, const QString& modelPath,
    int64_t fileBytes = 0);

class ModelDocument : public QObject {
    Q_OBJECT
public:
    explicit ModelDocument(QObject* parent = nullptr);

    bool isEmpty() const { return !model_; }
    const std::shared_ptr<const ModelData>& model() const { return model_; }
    const std::shared_ptr<const GraphLayout>& layout() const { return layout_; }
    const std::shared_ptr<const ActivationData>& activations() const { return activations_; }
    const std::shared_ptr<const StoredResults>& stored() const { return stored_; }
    // Bumped by every setModel(); jobs compare it to drop results for a model that is gone.
    int generation() const { return generation_; }

    const LayerData* layer(int row) const;
    int layerCount() const { return model_ ? int(model_->layers.size()) : 0; }

    void setModel(std::shared_ptr<const ModelData> model, std::shared_ptr<const GraphLayout> layout);
    void setLayout(std::shared_ptr<const GraphLayout> layout);
    void setActivations(std::shared_ptr<const ActivationData> activations);
    void setStored(std::shared_ptr<const StoredResults> stored);
    // Fills these rows' weight statistics (a copy of the model with them; same generation).
    void setLayerWeights(const std::vector<LayerWeights>& weights);

signals:
    void modelChanged();
    void weightsChanged(); // some rows' weight statistics arrived
    void layoutChanged();
    void activationsChanged();
    void storedChanged();

private:
    std::shared_ptr<const ModelData> model_;
    std::shared_ptr<const GraphLayout> layout_;
    std::shared_ptr<const ActivationData> activations_;
    std::shared_ptr<const StoredResults> stored_;
    int generation_ = 0;
};

} // namespace qs::ui
