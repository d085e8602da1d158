#include "ui/document/project.h"

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"

#include "data/input_binding.h"
#include "util/error.h"
#include "util/json_number.h"

#include <nlohmann/json.hpp>

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QPointer>
#include <QSaveFile>
#include <QSettings>
#include <QStandardPaths>
#include <QTimer>
#include <QUndoStack>

#include <algorithm>

namespace qs::ui {

namespace {

constexpr int projectVersion = 1;
constexpr const char* projectFormat = "quantstudio-project";
constexpr const char* statsFormat = "quantstudio-activation-statistics";

std::string utf8(const QString& s)
{
    return s.toStdString();
}

// A string field of the project's JSON, or "" when absent; anything else fails naming it.
QString stringField(const nlohmann::json& j, const char* key, const QString& file)
{
    if (!j.contains(key))
        return {};
    if (!j[key].is_string())
        fail("project ", quoted(utf8(file)), ": field ", quoted(key), " must be a string");
    return QString::fromStdString(j[key].get<std::string>());
}

// Numbers of the statistics file: null for NaN and infinities (JSON has neither).
double numberOf(const nlohmann::json& j, const char* key, const QString& file, const std::string& where)
{
    if (!j.contains(key))
        fail("statistics ", quoted(utf8(file)), ": field ", quoted(where + key), " is missing");
    const nlohmann::json& v = j[key];
    if (v.is_null())
        return NAN;
    if (!v.is_number())
        fail("statistics ", quoted(utf8(file)), ": field ", quoted(where + key), " must be a number");
    return v.get<double>();
}

template<class T>
std::vector<T> arrayOf(const nlohmann::json& j, const char* key, const QString& file, const std::string& where)
{
    try {
        return j.at(key).get<std::vector<T>>();
    } catch (const nlohmann::json::exception&) {
        fail("statistics ", quoted(utf8(file)), ": field ", quoted(where + key), " must be an array of numbers");
    }
}

nlohmann::json histogramJson(const Histogram& h)
{
    return {{"lo", jsonNumber(h.lo)}, {"hi", jsonNumber(h.hi)}, {"counts", h.counts}, {"below", h.below},
        {"above", h.above}};
}

Histogram histogramOf(const nlohmann::json& j, const QString& file, const std::string& where)
{
    if (!j.is_object())
        fail("statistics ", quoted(utf8(file)), ": field ", quoted(where), " must be an object");
    Histogram h;
    h.lo = numberOf(j, "lo", file, where + ".");
    h.hi = numberOf(j, "hi", file, where + ".");
    h.counts = arrayOf<uint64_t>(j, "counts", file, where + ".");
    h.below = uint64_t(numberOf(j, "below", file, where + "."));
    h.above = uint64_t(numberOf(j, "above", file, where + "."));
    return h;
}

} // namespace

void writeActivationCache(const QString& path, const QString& key, const ActivationData& a)
{
    nlohmann::json j;
    j["format"] = statsFormat;
    j["version"] = 1;
    j["key"] = utf8(key);
    j["data_label"] = utf8(a.dataLabel);
    j["input_shape"] = utf8(a.inputShape);
    j["samples"] = a.samples;
    j["seconds"] = a.seconds;
    j["profiles"] = nlohmann::json::array();
    for (const ActivationProfile& p : a.profiles) {
        const TensorStats& s = p.stats;
        nlohmann::json clips = nlohmann::json::object();
        for (const auto& [name, r] : p.clipRanges)
            clips[name] = {jsonNumber(r.lo), jsonNumber(r.hi)};
        nlohmann::json batches = nlohmann::json::array();
        for (const auto& [lo, hi] : p.calibration.batchRanges)
            batches.push_back({jsonNumber(lo), jsonNumber(hi)});
        j["profiles"].push_back({{"layer", p.layer}, {"value", p.value}, {"role", p.role},
            {"stats",
                {{"count", s.count}, {"non_finite", s.nonFinite}, {"min", jsonNumber(s.min)},
                    {"max", jsonNumber(s.max)}, {"mean", jsonNumber(s.mean)}, {"std", jsonNumber(s.std)},
                    {"kurtosis", jsonNumber(s.kurtosis)}, {"outlier_fraction", jsonNumber(s.outlierFraction)},
                    {"channel_range_ratio", jsonNumber(s.channelRangeRatio)}}},
            {"calibration",
                {{"min", jsonNumber(p.calibration.min)}, {"max", jsonNumber(p.calibration.max)},
                    {"histogram", histogramJson(p.calibration.histogram)}, {"batch_ranges", batches}}},
            {"channel_min", p.channelMin}, {"channel_max", p.channelMax}, {"clip_ranges", clips}});
    }
    QSaveFile out(path);
    const std::string text = j.dump() + "\n";
    if (!out.open(QIODevice::WriteOnly) || out.write(text.data(), qint64(text.size())) != qint64(text.size()) ||
        !out.commit())
        fail("statistics ", quoted(utf8(path)), ": cannot write (", utf8(out.errorString()), ")");
}

std::shared_ptr<ActivationData> readActivationCache(const QString& path, const QString& key)
{
    QFile in(path);
    if (!in.open(QIODevice::ReadOnly))
        fail("statistics ", quoted(utf8(path)), ": cannot read (", utf8(in.errorString()), ")");
    const QByteArray bytes = in.readAll();
    const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("format") || j["format"] != statsFormat)
        fail("statistics ", quoted(utf8(path)), ": not a QuantStudio statistics file (field \"format\")");
    if (!j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>() != utf8(key))
        fail("statistics ", quoted(utf8(path)), ": field \"key\": collected on another model, data or preprocessing");
    auto a = std::make_shared<ActivationData>();
    a->dataLabel = QString::fromStdString(j.value("data_label", std::string()));
    a->inputShape = QString::fromStdString(j.value("input_shape", std::string()));
    a->samples = int64_t(numberOf(j, "samples", path, ""));
    a->seconds = numberOf(j, "seconds", path, "");
    if (!j.contains("profiles") || !j["profiles"].is_array())
        fail("statistics ", quoted(utf8(path)), ": field \"profiles\" must be an array");
    for (std::size_t i = 0; i < j["profiles"].size(); ++i) {
        const nlohmann::json& e = j["profiles"][i];
        const std::string where = "profiles[" + std::to_string(i) + "].";
        if (!e.is_object() || !e.contains("stats") || !e.contains("calibration") || !e["stats"].is_object() ||
            !e["calibration"].is_object())
            fail("statistics ", quoted(utf8(path)), ": field ", quoted(where), " needs stats and calibration");
        ActivationProfile p;
        p.layer = e.value("layer", std::string());
        p.value = e.value("value", std::string());
        p.role = e.value("role", std::string());
        const nlohmann::json& s = e["stats"];
        p.stats.count = int64_t(numberOf(s, "count", path, where + "stats."));
        p.stats.nonFinite = int64_t(numberOf(s, "non_finite", path, where + "stats."));
        p.stats.min = numberOf(s, "min", path, where + "stats.");
        p.stats.max = numberOf(s, "max", path, where + "stats.");
        p.stats.mean = numberOf(s, "mean", path, where + "stats.");
        p.stats.std = numberOf(s, "std", path, where + "stats.");
        p.stats.kurtosis = numberOf(s, "kurtosis", path, where + "stats.");
        p.stats.outlierFraction = numberOf(s, "outlier_fraction", path, where + "stats.");
        p.stats.channelRangeRatio = numberOf(s, "channel_range_ratio", path, where + "stats.");
        const nlohmann::json& c = e["calibration"];
        p.calibration.min = numberOf(c, "min", path, where + "calibration.");
        p.calibration.max = numberOf(c, "max", path, where + "calibration.");
        p.calibration.histogram =
            histogramOf(c.value("histogram", nlohmann::json()), path, where + "calibration.histogram");
        if (c.contains("batch_ranges") && c["batch_ranges"].is_array())
            for (const auto& r : c["batch_ranges"])
                if (r.is_array() && r.size() == 2)
                    p.calibration.batchRanges.emplace_back(
                        r[0].is_number() ? r[0].get<float>() : NAN, r[1].is_number() ? r[1].get<float>() : NAN);
        p.channelMin = arrayOf<float>(e, "channel_min", path, where);
        p.channelMax = arrayOf<float>(e, "channel_max", path, where);
        if (e.contains("clip_ranges") && e["clip_ranges"].is_object())
            for (const auto& [name, r] : e["clip_ranges"].items())
                if (r.is_array() && r.size() == 2)
                    p.clipRanges[name] = ClipRange {
                        r[0].is_number() ? r[0].get<float>() : NAN, r[1].is_number() ? r[1].get<float>() : NAN};
        a->profiles.push_back(std::move(p));
    }
    return a;
}

bool ProjectState::operator==(const ProjectState& other) const
{
    return modelPath == other.modelPath && dataPath == other.dataPath && dataPreprocess == other.dataPreprocess &&
           inputShapes == other.inputShapes &&
           config.toJson() == other.config.toJson();
}

void writeProjectFile(const QString& path, const ProjectState& state)
{
    nlohmann::json j;
    j["format"] = projectFormat;
    j["version"] = projectVersion;
    j["model"] = utf8(state.modelPath);
    j["model_relative"] = utf8(QFileInfo(path).absoluteDir().relativeFilePath(state.modelPath));
    if (!state.dataPath.isEmpty())
        j["data"] = utf8(state.dataPath);
    if (!state.dataPreprocess.isEmpty())
        j["preprocess"] = utf8(state.dataPreprocess);
    j["input_shapes"] = nlohmann::json::object();
    for (auto it = state.inputShapes.begin(); it != state.inputShapes.end(); ++it)
        j["input_shapes"][utf8(it.key())] = utf8(it.value());
    j["config"] = state.config.toJson();
    if (!state.statsFile.isEmpty())
        j["statistics"] = {{"file", utf8(QFileInfo(path).absoluteDir().relativeFilePath(state.statsFile))},
            {"key", utf8(state.statsKey)}};
    j["saved"] = utf8(QDateTime::currentDateTimeUtc().toString(Qt::ISODate));
    // Written to a temporary file and renamed: a crash while saving keeps the old project.
    QSaveFile out(path);
    const std::string text = j.dump(2) + "\n";
    if (!out.open(QIODevice::WriteOnly) || out.write(text.data(), qint64(text.size())) != qint64(text.size()) ||
        !out.commit())
        fail("project ", quoted(utf8(path)), ": cannot write (", utf8(out.errorString()), ")");
}

ProjectState readProjectFile(const QString& path)
{
    QFile in(path);
    if (!in.open(QIODevice::ReadOnly))
        fail("project ", quoted(utf8(path)), ": cannot read (", utf8(in.errorString()), ")");
    const QByteArray bytes = in.readAll();
    nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        fail("project ", quoted(utf8(path)), ": not a JSON object");
    if (stringField(j, "format", path) != QLatin1String(projectFormat))
        fail("project ", quoted(utf8(path)), ": field \"format\" is not ", quoted(projectFormat));
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() < 1 ||
        j["version"].get<int>() > projectVersion)
        fail("project ", quoted(utf8(path)), ": field \"version\" must be 1..", projectVersion);
    ProjectState s;
    // The model beside the project (moved together) first, else where it was saved from.
    const QString relative = stringField(j, "model_relative", path);
    const QString absolute = stringField(j, "model", path);
    const QString besides = relative.isEmpty() ? QString() : QFileInfo(path).absoluteDir().absoluteFilePath(relative);
    if (!besides.isEmpty() && QFileInfo::exists(besides))
        s.modelPath = QFileInfo(besides).absoluteFilePath();
    else if (!absolute.isEmpty() && QFileInfo::exists(absolute))
        s.modelPath = absolute;
    else
        fail("project ", quoted(utf8(path)), ": field \"model\": ",
            quoted(utf8(absolute.isEmpty() ? relative : absolute)), " does not exist");
    s.dataPath = stringField(j, "data", path);
    s.dataPreprocess = stringField(j, "preprocess", path);
    if (j.contains("input_shapes")) {
        if (!j["input_shapes"].is_object())
            fail("project ", quoted(utf8(path)), ": field \"input_shapes\" must be an object");
        for (const auto& [name, shape] : j["input_shapes"].items()) {
            if (!shape.is_string())
                fail("project ", quoted(utf8(path)), ": field \"input_shapes.", name, "\" must be a string");
            // Checked here, as the CLI's --input-shape is: every job of the studio reads them.
            try {
                parseInputShape(name + "=" + shape.get<std::string>());
            } catch (const Error& e) {
                fail("project ", quoted(utf8(path)), ": field \"input_shapes.", name, "\": ", e.what());
            }
            s.inputShapes.insert(QString::fromStdString(name), QString::fromStdString(shape.get<std::string>()));
        }
    }
    if (j.contains("statistics")) {
        const nlohmann::json& st = j["statistics"];
        if (!st.is_object() || !st.contains("file") || !st["file"].is_string() || !st.contains("key") ||
            !st["key"].is_string())
            fail("project ", quoted(utf8(path)), ": field \"statistics\" must be an object with file and key");
        s.statsFile =
            QFileInfo(path).absoluteDir().absoluteFilePath(QString::fromStdString(st["file"].get<std::string>()));
        s.statsKey = QString::fromStdString(st["key"].get<std::string>());
    }
    if (!j.contains("config"))
        fail("project ", quoted(utf8(path)), ": field \"config\" is missing");
    try {
        s.config = QuantConfig::fromJson(j["config"]);
    } catch (const Error& e) {
        fail("project ", quoted(utf8(path)), ": field \"config\": ", e.what());
    }
    return s;
}

ProjectController::ProjectController(Studio& studio, QObject* parent)
    : QObject(parent), studio_(studio), timer_(new QTimer(this))
{
    connect(&studio_, &Studio::modelOpened, this, &ProjectController::modelOpened);
    connect(timer_, &QTimer::timeout, this, &ProjectController::autosaveNow);
    setAutosaveInterval(QSettings().value(QStringLiteral("project/autosaveSeconds"), 30).toInt() * 1000);
}

bool ProjectController::isProjectFile(const QString& path)
{
    return QFileInfo(path).suffix().compare(QLatin1String(suffix), Qt::CaseInsensitive) == 0;
}

ProjectState ProjectController::current() const
{
    ProjectState s;
    if (const auto& m = studio_.document()->model())
        s.modelPath = m->path;
    s.dataPath = studio_.dataPath();
    s.dataPreprocess = studio_.dataPreprocess();
    s.inputShapes = studio_.inputShapes();
    s.config = studio_.config()->config();
    return s;
}

bool ProjectController::isModified() const
{
    return studio_.document()->model() && !(current() == baseline_);
}

QString ProjectController::statisticsKey() const
{
    const auto& m = studio_.document()->model();
    if (!m || m->path.isEmpty())
        return {};
    // Files by name, size and modification time: cheap on the GUI thread, and any rewrite
    // of the model or the data changes the key.
    QCryptographicHash h(QCryptographicHash::Sha256);
    auto addFile = [&h](const QString& path) {
        const QFileInfo f(path);
        h.addData(f.absoluteFilePath().toUtf8() + '\n' + QByteArray::number(f.size()) + '\n' +
            QByteArray::number(f.lastModified().toMSecsSinceEpoch()) + '\n');
    };
    addFile(m->path);
    const QString spec = studio_.calibrationDataSpec();
    h.addData(spec.toUtf8() + '\n');
    if (QFileInfo(spec).isFile())
        addFile(spec);
    h.addData(studio_.dataPreprocess().toUtf8() + '\n');
    const auto shapes = studio_.inputShapes();
    for (auto it = shapes.begin(); it != shapes.end(); ++it)
        h.addData(it.key().toUtf8() + '=' + it.value().toUtf8() + '\n');
    return QString::fromLatin1(h.result().toHex());
}

bool ProjectController::save(const QString& path)
{
    error_.clear();
    ProjectState state = current();
    if (state.modelPath.isEmpty()) {
        error_ = tr("Open a model from a file before saving a project.");
        return false;
    }
    // The statistics of the last calibration go beside the project, written by a job.
    const auto activations = studio_.document()->activations();
    if (activations) {
        state.statsFile = QFileInfo(path).absoluteDir().absoluteFilePath(
            QFileInfo(path).completeBaseName() + QStringLiteral(".qsstats"));
        state.statsKey = statisticsKey();
    }
    try {
        writeProjectFile(path, state);
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
    if (activations) {
        QPointer<ProjectController> self(this);
        const QString file = state.statsFile, key = state.statsKey;
        studio_.jobs()->start(QStringLiteral("save-statistics"), tr("Saving activation statistics"),
            [self, file, key, activations](Progress&, const CancelToken&) -> JobRunner::Deliver {
                QString message;
                try {
                    writeActivationCache(file, key, *activations);
                } catch (const Error& e) {
                    message = QString::fromUtf8(e.what());
                }
                return [self, message] {
                    if (self)
                        emit self->statisticsSaved(message.isEmpty(), message);
                };
            });
    }
    path_ = QFileInfo(path).absoluteFilePath();
    baseline_ = state;
    studio_.config()->undoStack()->setClean();
    discardAutosave();
    emit saved(path_);
    return true;
}

bool ProjectController::open(const QString& path)
{
    error_.clear();
    try {
        pendingState_ = readProjectFile(path);
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
    pending_ = true;
    pendingPath_ = QFileInfo(path).absoluteFilePath();
    studio_.openModel(pendingState_.modelPath);
    return true;
}

void ProjectController::apply(const ProjectState& state, const QString& undoText)
{
    // A configuration naming layers the model lacks is refused whole, with the first name.
    const auto& names = studio_.config()->layerNames();
    for (const auto& [layer, spec] : state.config.layers)
        if (std::find(names.begin(), names.end(), layer) == names.end())
            throw Error("the configuration names layer " + quoted(layer) + ", which " +
                        quoted(utf8(QFileInfo(state.modelPath).fileName())) + " does not have");
    if (!state.dataPath.isEmpty())
        studio_.setData(state.dataPath, state.dataPreprocess);
    studio_.setInputShapes(state.inputShapes);
    studio_.config()->setConfig(state.config, undoText);
}

void ProjectController::modelOpened(const QString& modelPath)
{
    if (pending_ && QFileInfo(modelPath) == QFileInfo(pendingState_.modelPath)) {
        pending_ = false;
        try {
            apply(pendingState_, tr("Open project"));
        } catch (const Error& e) {
            error_ = tr("project \"%1\": %2").arg(pendingPath_, QString::fromUtf8(e.what()));
            path_.clear();
            baseline_ = current();
            emit failed(error_);
            return;
        }
        studio_.config()->undoStack()->clear();
        path_ = pendingPath_;
        baseline_ = current();
        emit opened(path_);
        restoreStatistics(pendingState_);
        return;
    }
    pending_ = false;
    path_.clear();
    baseline_ = current();
    lastAutosave_ = ProjectState{};
    const QString autosave = autosavePath(modelPath);
    if (modelPath.isEmpty() || !QFileInfo::exists(autosave))
        return;
    try {
        const ProjectState saved = readProjectFile(autosave);
        if (!(saved == baseline_))
            emit autosaveFound(QFileInfo(autosave).lastModified());
    } catch (const Error&) {
        QFile::remove(autosave); // unreadable: it cannot be restored either
    }
}

// After a project opened: its statistics, when they were collected on this model with
// this data, read by a job into the document (as a calibration would have left them).
void ProjectController::restoreStatistics(const ProjectState& state)
{
    if (state.statsFile.isEmpty())
        return;
    const QString key = statisticsKey();
    if (key != state.statsKey) {
        emit statisticsRestored(false,
            tr("The saved activation statistics were collected on another version of the "
               "model or other data: calibrate again."));
        return;
    }
    QPointer<ProjectController> self(this);
    const QString file = state.statsFile;
    const int generation = studio_.document()->generation();
    studio_.jobs()->start(QStringLiteral("load-statistics"), tr("Reading activation statistics"),
        [self, file, key, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
            std::shared_ptr<const ActivationData> stats;
            QString message;
            try {
                stats = readActivationCache(file, key);
            } catch (const Error& e) {
                message = QString::fromUtf8(e.what());
            }
            return [self, stats, message, key, generation] {
                if (!self)
                    return;
                ModelDocument* doc = self->studio_.document();
                if (!stats || doc->generation() != generation || self->statisticsKey() != key) {
                    emit self->statisticsRestored(
                        false, message.isEmpty() ? tr("The model or data changed meanwhile.") : message);
                    return;
                }
                doc->setActivations(stats);
                emit self->statisticsRestored(true, QString());
            };
        });
}

QString ProjectController::autosavePath(const QString& modelPath) const
{
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + QStringLiteral("/autosave");
    const QByteArray key = QCryptographicHash::hash(QFileInfo(modelPath).absoluteFilePath().toUtf8(),
        QCryptographicHash::Sha1).toHex().left(16);
    return dir + u'/' + QFileInfo(modelPath).completeBaseName() + u'-' + QString::fromLatin1(key) +
           QStringLiteral(".qsproj");
}

void ProjectController::setAutosaveInterval(int milliseconds)
{
    timer_->stop();
    if (milliseconds > 0)
        timer_->start(milliseconds);
}

bool ProjectController::autosaveNow()
{
    if (!isModified())
        return false;
    const ProjectState state = current();
    if (state.modelPath.isEmpty() || state == lastAutosave_)
        return false;
    const QString target = autosavePath(state.modelPath);
    QDir().mkpath(QFileInfo(target).absolutePath());
    try {
        writeProjectFile(target, state);
    } catch (const Error&) {
        return false; // the next tick tries again; the user's work is still in memory
    }
    lastAutosave_ = state;
    return true;
}

void ProjectController::discardAutosave()
{
    if (const auto& m = studio_.document()->model(); m && !m->path.isEmpty())
        QFile::remove(autosavePath(m->path));
    lastAutosave_ = ProjectState{};
}

bool ProjectController::restoreAutosave()
{
    error_.clear();
    const auto& m = studio_.document()->model();
    if (!m || m->path.isEmpty())
        return false;
    try {
        ProjectState saved = readProjectFile(autosavePath(m->path));
        apply(saved, tr("Restore unsaved work"));
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
    return true;
}

} // namespace qs::ui
