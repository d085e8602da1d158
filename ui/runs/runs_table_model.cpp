#include "ui/runs/runs_table_model.h"

#include "ui/widgets/format.h"

#include "measure/stats.h"
#include "store/compare.h"

#include <QColor>
#include <QDateTime>
#include <QFileInfo>

#include <cmath>

namespace qs::ui {
namespace {

QString stateTip(RunState s)
{
    switch (s) {
    case RunState::Running: return QStringLiteral("Being written now");
    case RunState::Done: return QStringLiteral("Finished; its results are complete");
    case RunState::Failed: return QStringLiteral("Stopped by an error (hover the row for it)");
    case RunState::Cancelled: return QStringLiteral("Cancelled; what was stored before is kept");
    case RunState::Interrupted: return QStringLiteral("Its writer died before finishing");
    }
    return {};
}

// "92.00 % ±1.7": top-1 with the larger half of its 95 % Wilson interval in points.
QString top1Text(double top1, std::optional<double> samples)
{
    if (!samples || *samples <= 0)
        return formatPercent(top1, 2);
    const auto [lo, hi] = wilsonInterval(top1, int64_t(*samples));
    const double half = std::max(top1 - lo, hi - top1) * 100;
    return QStringLiteral("%1 \u00B1%2").arg(formatPercent(top1, 2)).arg(half, 0, 'f', 1);
}

QString joinTags(const std::vector<std::string>& tags)
{
    return toQStringList(tags).join(QStringLiteral(", "));
}

} // namespace

RunsTableModel::RunsTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void RunsTableModel::setRuns(std::vector<RunRecord> runs)
{
    beginResetModel();
    runs_ = std::move(runs);
    endResetModel();
}

const RunRecord* RunsTableModel::run(int row) const
{
    return row >= 0 && row < int(runs_.size()) ? &runs_[std::size_t(row)] : nullptr;
}

int RunsTableModel::rowOf(int64_t runId) const
{
    for (std::size_t i = 0; i < runs_.size(); ++i)
        if (runs_[i].id == runId)
            return int(i);
    return -1;
}

int RunsTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(runs_.size());
}

int RunsTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant RunsTableModel::data(const QModelIndex& index, int role) const
{
    const RunRecord* r = run(index.row());
    if (!r)
        return {};
    const int c = index.column();
    if (role == RunIdRole)
        return QVariant::fromValue<qint64>(r->id);
    if (role == Qt::DisplayRole || role == Qt::EditRole) {
        switch (c) {
        case Id: return QVariant::fromValue<qint64>(r->id);
        case Model: return QString::fromStdString(r->modelName);
        case Kind: return QString::fromStdString(runKindName(r->kind));
        case State: return QString::fromStdString(runStateName(r->state));
        case Started:
            return QDateTime::fromMSecsSinceEpoch(r->startedMs).toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm"));
        case Top1:
            return r->metrics.top1 ? top1Text(*r->metrics.top1, evaluationSamples(*r))
                                   : (role == Qt::EditRole ? QString() : dash());
        case Samples: {
            const auto n = evaluationSamples(*r);
            return n ? formatCount(int64_t(*n)) : (role == Qt::EditRole ? QString() : dash());
        }
        case EvalData: {
            const QString on = evaluationData(*r);
            return on.isEmpty() && role != Qt::EditRole ? dash() : on;
        }
        case Size:
            return r->metrics.sizeBits ? formatBytes(uint64_t(std::llround(*r->metrics.sizeBits / 8)))
                                       : (role == Qt::EditRole ? QString() : dash());
        case Tags: return joinTags(r->tags);
        case Note: return QString::fromStdString(r->note);
        }
    }
    if (role == SortRole) {
        switch (c) {
        case Id: return QVariant::fromValue<qint64>(r->id);
        case Started: return QVariant::fromValue<qint64>(r->startedMs);
        case Top1: return r->metrics.top1.value_or(-1.0);
        case Samples: return evaluationSamples(*r).value_or(-1.0);
        case Size: return r->metrics.sizeBits.value_or(-1.0);
        default: return data(index, Qt::DisplayRole);
        }
    }
    if (role == Qt::TextAlignmentRole && (c == Id || c == Top1 || c == Samples || c == Size))
        return QVariant(Qt::AlignRight | Qt::AlignVCenter);
    if (role == Qt::ForegroundRole && c == State) {
        switch (r->state) {
        case RunState::Done: return QColor(0x2e, 0x7d, 0x32);
        case RunState::Failed:
        case RunState::Interrupted: return QColor(0xc6, 0x28, 0x28);
        case RunState::Cancelled: return QColor(0x8d, 0x6e, 0x00);
        case RunState::Running: return QColor(0x15, 0x65, 0xc0);
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (c) {
        case State: return r->error.empty() ? stateTip(r->state) : QString::fromStdString(r->error);
        case Model: return QStringLiteral("%1\nsha256 %2").arg(QString::fromStdString(r->modelName),
                                                                  QString::fromStdString(r->modelHash));
        case Size:
            return r->metrics.sizeBits ? QStringLiteral("%1 bits stored, scales and zero points included")
                                             .arg(formatCount(int64_t(*r->metrics.sizeBits)))
                                       : QString();
        case Top1: {
            if (!r->metrics.top1)
                return {};
            const auto n = evaluationSamples(*r);
            if (!n)
                return QStringLiteral("Top-1 accuracy; the number of samples was not recorded");
            const auto [lo, hi] = wilsonInterval(*r->metrics.top1, int64_t(*n));
            return QStringLiteral("Top-1 accuracy on %1 samples; 95 % Wilson interval %2 \u2013 %3")
                .arg(formatCount(int64_t(*n)), formatPercent(lo, 1), formatPercent(hi, 1));
        }
        case Samples: return QStringLiteral("Evaluation samples the accuracy was measured on");
        case EvalData:
            return evaluationData(*r, true);
        case Tags: return QStringLiteral("Comma-separated; double-click to edit");
        case Note: return r->note.empty() ? QStringLiteral("Double-click to add a note") : QString::fromStdString(r->note);
        default: return {};
        }
    }
    return {};
}

QVariant RunsTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case Id: return QStringLiteral("Run");
    case Model: return QStringLiteral("Model");
    case Kind: return QStringLiteral("Kind");
    case State: return QStringLiteral("State");
    case Started: return QStringLiteral("Started");
    case Top1: return QStringLiteral("Top-1 (95 % CI)");
    case Samples: return QStringLiteral("Samples");
    case EvalData:
        return QStringLiteral("Measured on");
    case Size: return QStringLiteral("Size");
    case Tags: return QStringLiteral("Tags");
    case Note: return QStringLiteral("Note");
    }
    return {};
}

Qt::ItemFlags RunsTableModel::flags(const QModelIndex& index) const
{
    Qt::ItemFlags f = QAbstractTableModel::flags(index);
    if (index.column() == Tags || index.column() == Note)
        f |= Qt::ItemIsEditable;
    return f;
}

QString RunsTableModel::evaluationData(const RunRecord& r, bool full)
{
    auto path = [&r](const char* key) {
        const nlohmann::json& c = r.config;
        if (c.is_object() && c.contains(key) && c[key].is_object() && c[key].contains("data") &&
            c[key]["data"].is_string())
            return QString::fromStdString(c[key]["data"].get<std::string>());
        return QString();
    };
    const QString eval = path("evaluation"), calib = path("calibration");
    QString on =
        eval.isEmpty() ? (r.kind == RunKind::Quantization ? QString() : QString::fromStdString(r.datasetPath)) : eval;
    if (on.isEmpty())
        return QString();
    QString text = full ? on : QFileInfo(on).fileName();
    if (!eval.isEmpty() && eval == calib)
        text += QStringLiteral(" (the calibration data, not held out)");
    else if (!calib.isEmpty() && eval.startsWith(calib + QLatin1Char('['))) // "FILE[256:]": a held-out part
        text = QStringLiteral("%1 from sample %2 (held out from calibration)")
                   .arg(full ? calib : QFileInfo(calib).fileName(), eval.mid(calib.size() + 1).chopped(2));
    else if (!eval.isEmpty() && !calib.isEmpty())
        text += QStringLiteral(" (held out from calibration)");
    return text;
}

QStringList RunsTableModel::parseTags(const QString& text)
{
    QStringList out;
    for (const QString& part : text.split(QLatin1Char(','))) {
        const QString t = part.trimmed();
        if (!t.isEmpty() && !out.contains(t))
            out << t;
    }
    return out;
}

bool RunsTableModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    if (role != Qt::EditRole || index.row() < 0 || index.row() >= int(runs_.size()))
        return false;
    RunRecord& r = runs_[std::size_t(index.row())];
    if (index.column() == Note) {
        const QString note = value.toString();
        if (note.toStdString() == r.note)
            return false;
        r.note = note.toStdString();
        emit dataChanged(index, index);
        emit noteEdited(r.id, note);
        return true;
    }
    if (index.column() == Tags) {
        const QStringList tags = parseTags(value.toString());
        std::vector<std::string> list;
        for (const QString& t : tags)
            list.push_back(t.toStdString());
        if (list == r.tags)
            return false;
        r.tags = list;
        emit dataChanged(index, index);
        emit tagsEdited(r.id, tags);
        return true;
    }
    return false;
}

} // namespace qs::ui
