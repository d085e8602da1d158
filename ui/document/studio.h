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

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace qs {
class Graph;
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
    QString dataPath() const { return dataPath_; }
    void setDataPath(const QString& path);
    QString calibrationDataSpec() const; // the chosen data, else the data beside the model, else random:64
    QString calibrationDataLabel() const;
    // Input name -> the full shape ("1x3x48x320") to run an input with open dimensions at,
    // as the Quantize dialog last gave them (the CLI's --input-shape); cleared by a new model.
    QMap<QString, QString> inputShapes() const { return inputShapes_; }
    void setInputShapes(const QMap<QString, QString>& shapes) { inputShapes_ = shapes; }
    // inputShapes() for DataOptions::inputShapes: those of inputs `model` has.
    std::map<std::string, Shape> dataInputShapes(const Graph& model) const;

    // The graph's layout direction; a change lays the open model out again.
    GraphDirection graphDirection() const { return direction_; }
    void setGraphDirection(GraphDirection direction);
    LayoutStyle layoutStyle() const;

signals:
    void modelOpened(const QString& path); // empty for a graph built in memory
    void calibrationFinished(bool ok);
    void storeOpened(const QString& path);
    void storedResultsLoaded(); // the open model's runs in the open database reached the document
    void storeCounted();        // store() has new counts (after a run was recorded)
    void dataPathChanged();

private:
    void relayout();
    void countSizes();

    ModelDocument* doc_;
    JobRunner* jobs_;
    ErrorReporter* errors_;
    QuantConfigDocument* config_;
    LayerSelection* selection_;
    StoreSummary store_;
    QString dataPath_;
    QMap<QString, QString> inputShapes_;
    GraphDirection direction_ = GraphDirection::LeftToRight;
    int calibrationJob_ = -1;
};

} // namespace qs::ui
