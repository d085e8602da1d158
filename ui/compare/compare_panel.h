// Runs side by side. Two runs: first both graphs side by side, coloured by bits, each
// layer labelled with its W/A bits and SQNR (run b with its delta), following each other
// (pan, zoom, selection), under the configuration differences in words (layer defaults
// resolved by core); then the settings and metric deltas, a per-layer table of bits,
// SQNR and sensitivity with deltas, a chosen layer's weight or activation histograms
// (FP32 vs each run's quantized values, as stored). More runs: a metrics table and a
// size-vs-accuracy scatter. The differences come from core (store/compare.h).
#pragma once

#include "jobs/progress.h"
#include "store/compare.h"
#include "ui/document/graph_layout.h"

#include <QWidget>

#include <map>
#include <memory>
#include <optional>
#include <vector>

class QComboBox;
class QCustomPlot;
class QLabel;
class QRadioButton;
class QStandardItemModel;
class QTabWidget;
class QTableView;

namespace qs::ui {

class GraphView;
class ModelDocument;
struct ModelData;

struct ComparisonData {
    std::vector<RunRecord> runs;          // as asked for
    std::optional<RunComparison> pair;    // exactly two runs
    std::map<int64_t, std::vector<LayerResult>> layers; // by run (two runs only)
    // Per run: layer -> sensitivity, the run's own or that of the latest finished
    // sensitivity run of its model (sensitivitySource names which run).
    std::map<int64_t, std::map<std::string, double>> sensitivity;
    std::map<int64_t, int64_t> sensitivitySource;
    // Two runs: each run's model, when its file is still there (for the graphs).
    std::map<int64_t, std::shared_ptr<const ModelData>> models;
    std::map<int64_t, std::shared_ptr<const GraphLayout>> layouts;
    std::map<int64_t, QString> modelProblems; // why a graph is missing
};

// Worker side: reads the store read-only (and the models' files for two runs).
std::shared_ptr<ComparisonData> loadComparison(const QString& storePath, const std::vector<int64_t>& runIds,
    const LayoutStyle& style, Progress& progress, const CancelToken& cancel);

class ComparePanel : public QWidget {
    Q_OBJECT
public:
    explicit ComparePanel(std::shared_ptr<const ComparisonData> data, QWidget* parent = nullptr);

    const ComparisonData& data() const { return *data_; }
    QString title() const;
    QTabWidget* tabs() const { return tabs_; }
    QStandardItemModel* configModel() const { return config_; }
    QStandardItemModel* metricsModel() const { return metrics_; }
    QStandardItemModel* layersModel() const { return layers_; }
    QComboBox* histogramLayer() const { return histLayer_; }
    QRadioButton* activationsButton() const { return showActs_; }
    QCustomPlot* histogramPlot() const { return histPlot_; }
    QCustomPlot* scatterPlot() const { return scatter_; }
    GraphView* graphView(int side) const { return side == 0 ? graphA_ : graphB_; }
    ModelDocument* graphDocument(int side) const { return side == 0 ? docA_ : docB_; }

    // Highlight colour of a differing configuration value or a changed layer.
    static QColor changedColor();
    // One configuration difference of `c` as a sentence: "Weight bits of res1/conv1: 8 → 4"
    // (layers named as everywhere else, shortLayerName).
    static QString differenceInWords(const ConfigDifference& d, const RunComparison& c);
    QLabel* differencesLabel() const { return differences_; }
    // The label drawn above a layer's box on one side ("W4/A8 · 31.2 dB (−6.1)").
    static QString nodeBadgeText(const LayerResult& own, const LayerResult* other, bool showDelta);

public slots:
    void showHistogram();

private:
    QWidget* buildSummary();
    QWidget* buildLayers();
    QWidget* buildHistograms();
    QWidget* buildSideBySide();
    void follow(int from); // the other side takes this side's zoom, place and selection
    QWidget* buildMany();
    GraphView* buildGraph(const RunRecord& run, ModelDocument*& doc, QWidget* parent);

    std::shared_ptr<const ComparisonData> data_;
    QTabWidget* tabs_;
    QStandardItemModel* config_ = nullptr;
    QStandardItemModel* metrics_ = nullptr;
    QStandardItemModel* layers_ = nullptr;
    QComboBox* histLayer_ = nullptr;
    QRadioButton* showActs_ = nullptr;
    QCustomPlot* histPlot_ = nullptr;
    QCustomPlot* scatter_ = nullptr;
    QLabel* differences_ = nullptr;
    GraphView *graphA_ = nullptr, *graphB_ = nullptr;
    bool following_ = false;
    ModelDocument *docA_ = nullptr, *docB_ = nullptr;
};

} // namespace qs::ui
