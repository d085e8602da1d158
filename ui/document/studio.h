// The state every feature of the studio shares, as Tiled's DocumentManager: the open
// model and its bit configuration, the selected layer, the job runner, the experiment
// store and the calibration data, with the long operations on them run as jobs.
//
//   Studio studio;                               // what a panel test builds
//   SensitivityPanel panel(studio);              // every panel takes it, nothing else
//   QSignalSpy opened(&studio, &Studio::modelOpened);
//   studio.openModel(path);                      // a job; modelOpened on the GUI thread
//   studio.runCalibration();                     // then calibrationFinished(true)
#pragma once

#include "ui/document/graph_layout.h"

#include "graph/tensor.h"

#include <QMap>
#include <QObject>
#include <QString>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace qs {
class Graph;
struct DataOptions;
}

namespace qs::ui {

class ErrorReporter;
class JobRunner;
class LayerSelection;
class ModelDocument;
class QuantConfigDocument;

// What the open experiment store holds, counted when it was opened.
struct StoreSummary {
    QString path; // absolute; empty: no store open
    int64_t runs = 0;
    int64_t models = 0;
    int schemaVersion = 0;
};

class Studio : public QObject {
    Q_OBJECT
public:
    explicit Studio(QObject* parent = nullptr);
    ~Studio() override; // cancels every job and waits for its worker

    ModelDocument* document() const { return doc_; }
    QuantConfigDocument* config() const { return config_; }
    LayerSelection* selection() const { return selection_; }
    JobRunner* jobs() const { return jobs_; }
    ErrorReporter* errors() const { return errors_; }
    void setErrorReporter(ErrorReporter* reporter); // takes ownership

    // Each starts a job and returns its id (-1 when nothing was started).
    int openModel(const QString& path);
    int openGraph(std::shared_ptr<Graph> graph); // a model built in memory (benchmarks, tests)
    int runCalibration();
    // Opens (creating if missing) the experiment store at `path`; on success it becomes
    // the remembered database. A failure leaves the previous one in place.
    int openStore(const QString& path);
    // The open model's runs in the open store, into the document (storedResultsLoaded).
    void loadStoredResults();
    // The bundled demo on first start, else the last model opened.
    void openStartupModel();
    // The database used last, else the default store if one exists; none otherwise.
    void openStartupStore();

    QString storePath() const { return store_.path; }
    const StoreSummary& store() const { return store_; }

    // The calibration data chosen by the user (remembered); empty: the data beside the model.
    // A data spec: an IDX/NPY path, "images:DIR", "imagelist:FILE" or "random:N".
    QString dataPath() const { return dataPath_; }
    void setDataPath(const QString& path); // no preprocessing
    // Images need their pipeline (data/preprocess.h text, e.g. "torchvision"); ignored otherwise.
    void setData(const QString& spec, const QString& preprocess);
    QString dataPreprocess() const { return dataPreprocess_; } // "" unless dataPath() is images
    QString calibrationDataSpec() const; // the chosen data, else the data beside the model, else random:64
    QString calibrationDataLabel() const;
    // What every job of the studio loads the calibration (and evaluation) data with: the
    // spec, its preprocessing, `limit` and the input shapes given for the open model.
    DataOptions calibrationDataOptions(int64_t limit = -1) const;
    // The same for another spec (the Quantize dialog's evaluation data): `preprocess`
    // applies when it is images.
    DataOptions dataOptionsFor(const QString& spec, const QString& preprocess, int64_t limit) const;
    // Input name -> the full shape ("1x3x48x320") to run an input with open dimensions at,
    // as the Quantize dialog last gave them (the CLI's --input-shape); cleared by a new model.
    QMap<QString, QString> inputShapes() const { return inputShapes_; }
    void setInputShapes(const QMap<QString, QString>& shapes) { inputShapes_ = shapes; }
    // inputShapes() for DataOptions::inputShapes: those of inputs `model` has.
    std::map<std::string, Shape> dataInputShapes(const Graph& model) const;

    // The graph's layout direction; a change lays the open model out again.
    GraphDirection graphDirection() const { return direction_; }
    void setGraphDirection(GraphDirection direction);
    // The longest row the graph view shows whole (LayoutStyle::rowLimit), from its size.
    void setGraphRowLimit(double points) { rowLimit_ = points; }
    LayoutStyle layoutStyle() const;

    // The analyses' cache budget (util/memory_budget.h) in bytes as saved in the settings
    // (memory/cacheBudget); 0: the default (QS_CACHE_BUDGET, else a quarter of RAM).
    qint64 savedCacheBudget() const;
    // Saves it and makes it the process's budget (what-if sessions and sample data loaded
    // from now on keep to it).
    void setCacheBudget(qint64 bytes);

signals:
    void cacheBudgetChanged();
    void modelOpened(const QString& path); // empty for a graph built in memory
    void calibrationFinished(bool ok);
    void storeOpened(const QString& path);
    void storedResultsLoaded(); // the open model's runs in the open database reached the document
    void storeCounted();        // store() has new counts (after a run was recorded)
    void dataPathChanged();
    // Said once, for the status bar: what opening a model did to the chosen data (kept
    // because it fits the new model's inputs, or dropped because it does not, and why).
    void dataNotice(const QString& message);

private:
    void relayout();
    // After a model opened: drop the chosen data when its first sample failed to load for
    // the model (`problem`), and say what happened either way (dataNotice).
    void recheckData(const QString& modelPath, const QString& spec, const QString& problem);
    void countSizes();
    void computeWeights();

    ModelDocument* doc_;
    JobRunner* jobs_;
    ErrorReporter* errors_;
    QuantConfigDocument* config_;
    LayerSelection* selection_;
    StoreSummary store_;
    QString dataPath_, dataPreprocess_;
    QString dataModel_; // the model the chosen data was last checked against
    QMap<QString, QString> inputShapes_;
    GraphDirection direction_ = GraphDirection::LeftToRight;
    int calibrationJob_ = -1;
    double rowLimit_ = 0;
    // The layer row the weight statistics job should take next (-1: in order).
    std::shared_ptr<std::atomic<int>> wantedWeights_;
};

} // namespace qs::ui
