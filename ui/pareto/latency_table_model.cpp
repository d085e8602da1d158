#include "ui/pareto/latency_table_model.h"

#include <cmath>
#include <limits>

namespace qs::ui {

LatencyTableModel::LatencyTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LatencyTableModel::setProfile(const LatencyProfile& profile)
{
    beginResetModel();
    profile_ = profile;
    endResetModel();
}

int LatencyTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(profile_.layers.size());
}

int LatencyTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

double LatencyTableModel::raw(int row, int column) const
{
    const LayerLatency& l = profile_.layers[std::size_t(row)];
    const double nan = std::numeric_limits<double>::quiet_NaN();
    switch (column) {
    case Fp32Ms: return l.fp32Ms;
    case Int8Ms: return l.int8Ms.value_or(nan);
    case Speedup: return l.int8Ms && *l.int8Ms > 0 ? l.fp32Ms / *l.int8Ms : nan;
    case QuantizeMs: return l.quantizeMs.value_or(nan);
    case DequantizeMs: return l.dequantizeMs.value_or(nan);
    default: return nan;
    }
}

QVariant LatencyTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount)
        return {};
    const LayerLatency& l = profile_.layers[std::size_t(index.row())];
    const int c = index.column();
    if (c == Layer || c == Op) {
        const QString text = QString::fromStdString(c == Layer ? l.layer : l.op);
        return role == Qt::DisplayRole || role == SortRole ? QVariant(text) : QVariant();
    }
    const double v = raw(index.row(), c);
    switch (role) {
    case SortRole: return v;
    case Qt::DisplayRole:
        if (std::isnan(v))
            return QStringLiteral("\u2013");
        return c == Speedup ? QStringLiteral("%1\u00D7").arg(v, 0, 'f', 2) : QString::number(v, 'f', 4);
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ToolTipRole:
        if (std::isnan(v))
            return QStringLiteral("No INT8 kernel for this layer");
        return QStringLiteral("median of %1 runs after %2 warm-up, batch %3, oneDNN %4")
            .arg(profile_.repeats)
            .arg(profile_.warmup)
            .arg(profile_.batch)
            .arg(QString::fromStdString(profile_.isa));
    default: return {};
    }
}

QVariant LatencyTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    static const char* names[] = {"Layer", "Op", "FP32 ms", "INT8 ms", "Speed-up", "Quantize ms", "Dequantize ms"};
    return section >= 0 && section < ColumnCount ? QString::fromLatin1(names[section]) : QVariant();
}

} // namespace qs::ui
