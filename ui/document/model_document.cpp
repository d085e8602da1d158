#include "ui/document/model_document.h"

#include "graph/onnx_import.h"
#include "graph/subgraphs.h"
#include "record/sensitivity_record.h"
#include "runtime/plan.h"
#include "store/store.h"
#include "util/hash.h"

#include <QElapsedTimer>
#include <QFileInfo>

#include <algorithm>
#include <set>

namespace qs::ui {

QString ModelData::displayName() const
{
    if (!path.isEmpty())
        return QFileInfo(path).fileName();
    return graph && !graph->name.empty() ? QString::fromStdString(graph->name) : QStringLiteral("untitled");
}

int ModelData::layerRow(const std::string& name) const
{
    if (!graph)
        return -1;
    auto it = layerOfNode.find(graph->findNode(name));
    return it == layerOfNode.end() ? -1 : it->second;
}

QString StoredResults::sensitivityText() const
{
    if (!sensitivityRun)
        return {};
    return sensitivityIsSqnr
               ? QStringLiteral("Output SQNR (dB) with only this layer quantized to %1 bits, from sensitivity run #%2 "
                                "(%3); lower means more sensitive.")
                     .arg(sensitivityBits)
                     .arg(sensitivityRun)
                     .arg(sensitivityMethod)
               : QStringLiteral("Hessian sensitivity score from run #%1; higher means more sensitive.").arg(sensitivityRun);
}

QString StoredResults::bitsText() const
{
    if (!bitsRun)
        return {};
    return QStringLiteral("Weight / activation bits of %1 run #%2.").arg(bitsRunKind).arg(bitsRun);
}

namespace {

std::optional<RunRecord> latestRun(const Store& store, const std::string& modelHash, RunKind kind)
{
    RunFilter f;
    f.model = modelHash;
    f.kind = kind;
    f.state = RunState::Done;
    f.limit = 1;
    auto runs = store.runs(f);
    return runs.empty() ? std::nullopt : std::optional(runs.front());
}

} // namespace

std::shared_ptr<StoredResults> loadStoredResults(const QString& storePath, const QString& modelPath, int64_t fileBytes)
{
    auto out = std::make_shared<StoredResults>();
    out->storePath = storePath;
    StoreOptions options;
    options.mode = OpenMode::ReadOnly;
    const Store store = Store::open(storePath.toStdString(), options);
    // Models are rows by file hash; a row records the size with external data. Without a
    // row of this size nothing stored is of this model, and the file is not read at all.
    if (fileBytes > 0) {
        const std::vector<ModelRecord> models = store.models();
        if (std::none_of(models.begin(), models.end(),
                [fileBytes](const ModelRecord& m) { return m.sizeBytes == fileBytes || m.sizeBytes <= 0; }))
            return out;
    }
    const std::string hash = sha256FileCached(modelPath.toStdString());
    out->modelHash = hash;

    if (auto run = latestSensitivitySweep(store, hash)) {
        out->sensitivityRun = run->id;
        const std::string method = run->config.value("method", std::string("oneshot"));
        out->sensitivityMethod = QString::fromStdString(method);
        out->sensitivityIsSqnr = method != "hessian";
        // The headline is the SQNR at the lowest bit width tested (cmd_sensitivity).
        if (run->config.contains("bits") && run->config["bits"].is_array() && !run->config["bits"].empty()) {
            int lo = 32;
            for (const auto& b : run->config["bits"])
                if (b.is_number_integer())
                    lo = std::min(lo, b.get<int>());
            out->sensitivityBits = lo;
        }
        for (const LayerResult& l : store.layerResults(run->id))
            if (l.sensitivity)
                out->sensitivity[l.layer] = *l.sensitivity;
    }
    // Chosen bits: the newer of the latest quantization and mixed-precision runs.
    auto quant = latestRun(store, hash, RunKind::Quantization);
    auto mixed = latestRun(store, hash, RunKind::MixedPrecisionSearch);
    const std::optional<RunRecord>& pick = !mixed || (quant && quant->startedMs >= mixed->startedMs) ? quant : mixed;
    if (pick) {
        out->bitsRun = pick->id;
        out->bitsRunKind = QString::fromStdString(runKindName(pick->kind));
        for (const LayerResult& l : store.layerResults(pick->id))
            if (l.weightBits)
                out->bits[l.layer] = {*l.weightBits, l.actBits.value_or(32)};
    }
    return out;
}

bool ModelData::isUnsupported(int node) const
{
    return std::binary_search(unsupportedNodes.begin(), unsupportedNodes.end(), node);
}

QStringList ModelData::unsupportedOps() const
{
    QStringList ops;
    for (int n : unsupportedNodes)
        ops << QString::fromStdString(graph->nodes[std::size_t(n)].opType);
    ops.removeDuplicates();
    ops.sort();
    return ops;
}

const ActivationProfile* ActivationData::find(const std::string& layer, const std::string& role) const
{
    for (const auto& p : profiles)
        if (p.layer == layer && p.role == role)
            return &p;
    return nullptr;
}

bool ModelData::weightsReady() const
{
    return std::all_of(layers.begin(), layers.end(), [](const LayerData& l) { return l.weightsReady; });
}

LayerWeights layerWeights(const ModelData& model, int row)
{
    const Graph& graph = *model.graph;
    const LayerData& l = model.layers.at(std::size_t(row));
    const LayerSummary& s = l.summary;
    LayerWeights out;
    out.row = row;
    // A layer inside a subgraph (If branch, Loop body): its weight is a constant of that scope.
    const Graph* scope = &graph;
    std::vector<NestedNode> nested;
    if (!s.scope.empty()) {
        nested = nestedNodes(graph);
        for (const NestedNode& nn : nested)
            if (nn.path == s.scope && nn.node().name == s.name)
                scope = nn.scope.get();
    }
    out.stats = layerWeightStats(*scope, s);
    if (s.scope.empty() || graph.constant(s.weight))
        out.weights = profileWeight(graph, s);
    return out;
}

std::shared_ptr<ModelData> buildModelData(Graph graph, Progress& progress, const CancelToken& cancel, bool weightStats)
{
    QElapsedTimer clock;
    clock.start();
    auto data = std::make_shared<ModelData>();
    data->path = QString::fromStdString(graph.sourcePath);
    data->totalParams = graph.parameterCount();
    progress.report(0.3, "layers");
    std::vector<LayerSummary> summaries = summarizeLayers(graph, false);
    cancel.check();
    data->layers.reserve(summaries.size());
    for (auto& s : summaries) {
        LayerData row;
        // A layer inside a subgraph (If branch, Loop body) stands on the top-level node holding it.
        const bool nested = !s.scope.empty();
        row.node = graph.findNode(nested ? s.scope.substr(0, s.scope.find('/')) : s.name);
        if (row.node < 0)
            continue;
        row.sizeShare = data->totalParams > 0 ? double(s.params) / double(data->totalParams) : 0;
        const Node& node = graph.nodes[std::size_t(row.node)];
        const ValueInfo* out = node.outputs.empty() || nested ? nullptr : graph.info(node.outputs.front());
        row.outputText = out ? QString::fromStdString(out->text()) : QStringLiteral("?");
        row.summary = std::move(s);
        if (!nested)
            data->layerOfNode[row.node] = int(data->layers.size());
        data->layers.push_back(std::move(row));
    }
    // Known before anything runs, so the studio can say so up front (the compiler's rule:
    // the default domain and an operator it has kernels for).
    const std::vector<std::string> supportedList = supportedOperators();
    const std::set<std::string> supported(supportedList.begin(), supportedList.end());
    for (std::size_t i = 0; i < graph.nodes.size(); ++i) {
        const Node& n = graph.nodes[i];
        if (!(n.domain.empty() || n.domain == "ai.onnx") || !supported.count(n.opType))
            data->unsupportedNodes.push_back(int(i));
    }
    data->graph = std::make_shared<const Graph>(std::move(graph));
    if (weightStats) {
        // Histograms and channel ranges, the expensive part, in proportion to parameters.
        int64_t done = 0, all = 0;
        for (const auto& l : data->layers)
            all += std::max<int64_t>(l.summary.params, 1);
        for (int r = 0; r < int(data->layers.size()); ++r) {
            cancel.check();
            LayerWeights w = layerWeights(*data, r);
            LayerData& row = data->layers[std::size_t(r)];
            row.summary.stats = w.stats;
            row.weights = std::move(w.weights);
            row.weightsReady = true;
            done += std::max<int64_t>(row.summary.params, 1);
            progress.report(0.3 + 0.6 * double(done) / double(all), "weight histograms");
        }
    }
    data->loadSeconds = double(clock.nsecsElapsed()) * 1e-9;
    return data;
}

std::shared_ptr<ModelData> loadModelData(
    const QString& path, Progress& progress, const CancelToken& cancel, bool weightStats)
{
    progress.report(0, "reading " + QFileInfo(path).fileName().toStdString());
    Graph g = importOnnx(path.toStdString());
    cancel.check();
    auto data = buildModelData(std::move(g), progress, cancel, weightStats);
    data->path = path;
    return data;
}

ModelDocument::ModelDocument(QObject* parent) : QObject(parent) {}

const LayerData* ModelDocument::layer(int row) const
{
    if (!model_ || row < 0 || row >= int(model_->layers.size()))
        return nullptr;
    return &model_->layers[std::size_t(row)];
}

void ModelDocument::setModel(std::shared_ptr<const ModelData> model, std::shared_ptr<const GraphLayout> layout)
{
    ++generation_;
    model_ = std::move(model);
    layout_ = std::move(layout);
    activations_.reset();
    stored_.reset();
    emit modelChanged();
}

void ModelDocument::setStored(std::shared_ptr<const StoredResults> stored)
{
    stored_ = std::move(stored);
    emit storedChanged();
}

void ModelDocument::setLayout(std::shared_ptr<const GraphLayout> layout)
{
    layout_ = std::move(layout);
    emit layoutChanged();
}

void ModelDocument::setLayerWeights(const std::vector<LayerWeights>& weights)
{
    if (!model_ || weights.empty())
        return;
    // Readers on worker threads hold the old model: the rows change in a copy.
    auto next = std::make_shared<ModelData>(*model_);
    for (const LayerWeights& w : weights) {
        if (w.row < 0 || w.row >= int(next->layers.size()))
            continue;
        LayerData& row = next->layers[std::size_t(w.row)];
        row.summary.stats = w.stats;
        row.weights = w.weights;
        row.weightsReady = true;
    }
    model_ = std::move(next);
    emit weightsChanged();
}

void ModelDocument::setActivations(std::shared_ptr<const ActivationData> activations)
{
    activations_ = std::move(activations);
    emit activationsChanged();
}

} // namespace qs::ui
