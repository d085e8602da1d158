// The studio's project file (.qsproj, JSON): what a user set up around a model (the
// model, the calibration data and its input shapes, the bit configuration with its kept
// clipping ranges), saved and reopened, autosaved while it has unsaved edits, and
// compared against its last saved state so nothing is lost without a question. The
// activation statistics of a calibration go in a file beside it (.qsstats), keyed by the
// model, the data and its preprocessing: reopened with the same ones, they are back
// without calibrating again.
//
//   ProjectController project(studio);
//   project.save(path);            // the file, and the baseline isModified() compares to
//   project.open(path);            // opens the model; the rest applies when it has opened
//   project.isModified();          // the studio's state differs from the last save/open
#pragma once

#include "quant/spec.h"

#include <QDateTime>
#include <QMap>
#include <QObject>
#include <QString>

#include <memory>

class QTimer;

namespace qs::ui {

class Studio;
struct ActivationData;

struct ProjectState {
    QString modelPath;                  // absolute
    QString dataPath;                   // the chosen calibration data; "" for the studio's default
    QString dataPreprocess;             // its image pipeline (data/preprocess.h text); "" otherwise
    QMap<QString, QString> inputShapes; // open input dimensions bound by the user
    QuantConfig config;                 // bits per layer, kept ranges included
    // The activation statistics file beside the project and the key they were collected
    // under (statisticsKey()); "" when none. Not an edit: operator== leaves them out.
    QString statsFile, statsKey;

    bool operator==(const ProjectState& other) const;
};

// Activation statistics as a file (JSON, exact: numbers round-trip) with the key they
// belong to. Reading throws qs::Error naming the file and field, and when `key` differs.
void writeActivationCache(const QString& path, const QString& key, const ActivationData& a);
std::shared_ptr<ActivationData> readActivationCache(const QString& path, const QString& key);

// Throw qs::Error naming the file, and the field where one is wrong. The model path is
// stored relative to the project's folder too, so a project moved with its model opens.
void writeProjectFile(const QString& path, const ProjectState& state);
ProjectState readProjectFile(const QString& path);

class ProjectController : public QObject {
    Q_OBJECT
public:
    explicit ProjectController(Studio& studio, QObject* parent = nullptr);

    static constexpr const char* suffix = "qsproj";
    static bool isProjectFile(const QString& path);

    QString path() const { return path_; } // the project file; "" before the first save
    ProjectState current() const;          // the studio's state now
    bool isModified() const;               // current() differs from the last open or save
    // What the open model's activation statistics are valid for: the model file, the
    // calibration data (spec, file) and its preprocessing and input shapes, hashed.
    QString statisticsKey() const;

    // Both return false with lastError() set, and change nothing then.
    bool save(const QString& path);
    bool open(const QString& path); // starts opening the model; opened() when all applied
    QString lastError() const { return error_; }

    // Autosave: every interval while modified, to autosavePath() of the open model. A
    // clean close removes it; after a crash, opening that model offers it (autosaveFound).
    QString autosavePath(const QString& modelPath) const;
    void setAutosaveInterval(int milliseconds);
    bool autosaveNow(); // false when there was nothing to write
    void discardAutosave();
    bool restoreAutosave(); // applies the open model's autosave as one undo step

signals:
    void opened(const QString& path);
    void saved(const QString& path);
    void autosaveFound(const QDateTime& when); // for the model just opened
    void failed(const QString& message);       // a project's state did not fit its model
    // The statistics beside a saved project: written (a job after save()), or read back
    // into the document on open (ok false with why: no file, other model or data).
    void statisticsSaved(bool ok, const QString& message);
    void statisticsRestored(bool ok, const QString& message);

private:
    void modelOpened(const QString& modelPath);
    void apply(const ProjectState& state, const QString& undoText);
    void restoreStatistics(const ProjectState& state);

    Studio& studio_;
    QTimer* timer_;
    QString path_;
    QString error_;
    ProjectState baseline_;
    ProjectState lastAutosave_;
    bool pending_ = false;
    ProjectState pendingState_;
    QString pendingPath_;
};

} // namespace qs::ui
