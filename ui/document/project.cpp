#include "ui/document/project.h"

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"

#include "data/input_binding.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
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

} // namespace

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

bool ProjectController::save(const QString& path)
{
    error_.clear();
    const ProjectState state = current();
    if (state.modelPath.isEmpty()) {
        error_ = tr("Open a model from a file before saving a project.");
        return false;
    }
    try {
        writeProjectFile(path, state);
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
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
