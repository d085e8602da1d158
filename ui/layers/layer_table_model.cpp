#include "ui/layers/layer_table_model.h"

#include "ui/document/graph_layout.h"
#include "ui/document/layer_metric.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/widgets/format.h"
#include "util/error.h"

#include <QBrush>
#include <QColor>
#include <QFont>

#include <cmath>

namespace qs::ui {
namespace {

std::optional<LayerMetric> metricOf(int column)
{
    switch (column) {
    case LayerTableModel::SizeShare: return LayerMetric::SizeShare;
    case LayerTableModel::Kurtosis: return LayerMetric::WeightKurtosis;
    case LayerTableModel::Outliers: return LayerMetric::WeightOutliers;
    case LayerTableModel::ChannelRange: return LayerMetric::ChannelRange;
    case LayerTableModel::InputKurtosis: return LayerMetric::InputKurtosis;
    case LayerTableModel::Sensitivity: return LayerMetric::Sensitivity;
    case LayerTableModel::Bits: return LayerMetric::Bits;
    default: return std::nullopt;
    }
}

QuantConfigDocument::Field fieldOf(int column)
{
    return QuantConfigDocument::Field(LayerTableModel::fieldOfColumn(column));
}

QString bitsText(int bits)
{
    return bits >= 16 ? QStringLiteral("FP%1").arg(bits) : QString::number(bits);
}

QVariant alignmentOf(int column)
{
    using M = LayerTableModel;
    if (column == M::Name || column == M::Op || column == M::Granularity || column == M::Calibrator)
        return QVariant(Qt::AlignLeft | Qt::AlignVCenter);
    if (column == M::WeightBits || column == M::ActBits)
        return QVariant(Qt::AlignCenter);
    return QVariant(Qt::AlignRight | Qt::AlignVCenter);
}

} // namespace

int LayerTableModel::fieldOfColumn(int column)
{
    using Field = QuantConfigDocument::Field;
    switch (column) {
    case ActBits: return int(Field::ActivationBits);
    case Granularity: return int(Field::Granularity);
    case Calibrator: return int(Field::Calibrator);
    default: return int(Field::WeightBits);
    }
}

void LayerTableModel::setConfigDocument(QuantConfigDocument* config)
{
    config_ = config;
    connect(config_, &QuantConfigDocument::configChanged, this, [this] {
        if (rowCount() > 0)
            emit dataChanged(index(0, WeightBits), index(rowCount() - 1, Calibrator));
    });
}

const AttentionPoint* LayerTableModel::operandAt(int row) const
{
    const int i = row - doc_->layerCount();
    return i >= 0 && i < operandCount() ? &operands_[std::size_t(i)] : nullptr;
}

QVariant LayerTableModel::operandData(const AttentionPoint& p, int column, int role) const
{
    const bool sort = role == SortRole;
    // The point's spec (its own or its role's); bits as quantized (FP32 when excluded or off).
    std::optional<OperandSpec> spec;
    if (config_) {
        const AttentionQuant& a = config_->config().attention;
        auto own = a.points.find(p.name);
        spec = own != a.points.end() ? own->second : a.role(p.role);
        if (!config_->config().forOperand(p.name, p.role))
            spec->bits = 32;
    }
    switch (column) {
    case Index: {
        const int row = doc_->layerCount() + int(&p - operands_.data());
        return sort ? QVariant(row) : QVariant(row + 1);
    }
    case Name:
        return QString::fromStdString(p.name);
    case Op:
        return QStringLiteral("MatMul:%1").arg(operandRoleName(p.role));
    case ActBits:
        if (!config_)
            return {};
        if (role == Qt::EditRole)
            return spec ? spec->bits : 32;
        return sort ? QVariant(double(spec ? spec->bits : 32)) : QVariant(bitsText(spec ? spec->bits : 32));
    case Granularity:
        return spec ? QString(operandGranularityName(spec->granularity)) : QString();
    case Calibrator:
        return spec ? QString::fromStdString(spec->calibrator) : QString();
    default:
        return sort ? QVariant() : QVariant(dash());
    }
}

// One point's spec in the configuration being edited (QuantConfig::attention.points), one
// undo step; a value the spec refuses leaves the configuration as it was.
bool LayerTableModel::setOperand(const AttentionPoint& p, int column, const QVariant& value)
{
    QuantConfig c = config_->config();
    auto own = c.attention.points.find(p.name);
    OperandSpec spec = own != c.attention.points.end() ? own->second : c.attention.role(p.role);
    try {
        if (column == ActBits) {
            spec.bits = value.toInt();
            if (!((spec.bits >= 2 && spec.bits <= 8) || spec.bits == 16 || spec.bits == 32))
                return false;
        } else if (column == Granularity) {
            spec.granularity = parseOperandGranularity(value.toString().toStdString(), p.name);
        } else if (column == Calibrator) {
            QuantSpec q;
            parseCalibrator(value.toString().toStdString(), q);
            spec.calibrator = q.calibrator;
            spec.calibratorParam = q.calibratorParam;
        } else {
            return false;
        }
    } catch (const Error&) {
        return false;
    }
    c.attention.points[p.name] = spec;
    c.excluded.erase(p.name);
    config_->setConfig(c, QStringLiteral("Set %1").arg(QString::fromStdString(p.name)));
    return true;
}

Qt::ItemFlags LayerTableModel::flags(const QModelIndex& index) const
{
    Qt::ItemFlags f = QAbstractTableModel::flags(index);
    if (config_ && index.isValid() && operandAt(index.row()) &&
        (index.column() == ActBits || index.column() == Granularity || index.column() == Calibrator))
        return f | Qt::ItemIsEditable;
    if (config_ && index.isValid() && isConfigColumn(index.column()) && index.row() < config_->layerCount())
        f |= Qt::ItemIsEditable;
    return f;
}

bool LayerTableModel::setData(const QModelIndex& index, const QVariant& value, int role)
{
    if (!config_ || role != Qt::EditRole || !index.isValid() || !isConfigColumn(index.column()))
        return false;
    if (const AttentionPoint* p = operandAt(index.row()))
        return setOperand(*p, index.column(), value);
    return config_->setLayers({index.row()}, fieldOf(index.column()), value);
}

LayerTableModel::LayerTableModel(ModelDocument* doc, QObject* parent) : QAbstractTableModel(parent), doc_(doc)
{
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        beginResetModel();
        operands_.clear();
        if (const auto& m = doc_->model(); m && m->graph)
            operands_ = findAttentionOperands(*m->graph).points;
        maxShare_ = 0;
        for (int r = 0; r < doc_->layerCount(); ++r)
            maxShare_ = std::max(maxShare_, doc_->layer(r)->sizeShare);
        updateScales();
        endResetModel();
    });
    connect(doc_, &ModelDocument::storedChanged, this, [this] {
        updateScales();
        if (rowCount() > 0)
            emit dataChanged(index(0, Sensitivity), index(rowCount() - 1, Bits));
        emit headerDataChanged(Qt::Horizontal, Sensitivity, Bits); // their titles name the run
    });
    connect(doc_, &ModelDocument::activationsChanged, this, [this] {
        updateScales();
        if (rowCount() > 0)
            emit dataChanged(index(0, InputKurtosis), index(rowCount() - 1, InputKurtosis));
    });
    connect(doc_, &ModelDocument::weightsChanged, this, [this] {
        updateScales();
        if (rowCount() > 0)
            emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
    });
}

void LayerTableModel::updateScales()
{
    scales_.clear();
    for (int m = 0; m < layerMetricCount; ++m)
        scales_.push_back(metricScale(LayerMetric(m), *doc_));
}

int LayerTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : doc_->layerCount() + operandCount();
}

int LayerTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant LayerTableModel::display(int row, int column) const
{
    const LayerData& l = *doc_->layer(row);
    switch (column) {
    case Index: return row + 1;
    case Name: return shortLayerName(l.summary.name, l.summary.op);
    case Op: return QString::fromStdString(l.summary.op);
    case WeightShape: return formatShape(l.summary.weightShape);
    case OutputShape: return l.outputText;
    case Params: return formatCount(l.summary.params);
    default: break;
    }
    if (isConfigColumn(column)) {
        if (!config_ || row >= config_->layerCount())
            return {};
        const QVariant v = config_->value(row, fieldOf(column));
        return column == WeightBits || column == ActBits ? QVariant(bitsText(v.toInt())) : v;
    }
    if (column == Bits)
        if (const auto& s = doc_->stored())
            if (auto it = s->bits.find(l.summary.name); it != s->bits.end())
                return QStringLiteral("%1 / %2").arg(it->second.first).arg(it->second.second);
    if (auto m = metricOf(column)) {
        auto v = metricValue(*m, *doc_, row);
        return v ? formatMetric(*m, *v) : dash();
    }
    return {};
}

QVariant LayerTableModel::sortValue(int row, int column) const
{
    const LayerData& l = *doc_->layer(row);
    switch (column) {
    case Index: return row;
    case Name: return QString::fromStdString(l.summary.name);
    case Op: return QString::fromStdString(l.summary.op);
    case WeightShape: return double(numelOf(l.summary.weightShape));
    case OutputShape: {
        double n = 1;
        for (int64_t d : l.summary.outputShape)
            n *= d > 0 ? double(d) : 1.0;
        return n;
    }
    case Params: return double(l.summary.params);
    default: break;
    }
    if (isConfigColumn(column)) {
        if (!config_ || row >= config_->layerCount())
            return {};
        const QVariant v = config_->value(row, fieldOf(column));
        return column == WeightBits || column == ActBits ? QVariant(v.toDouble()) : v;
    }
    if (auto m = metricOf(column))
        if (auto v = metricValue(*m, *doc_, row))
            return *v;
    return {};
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= rowCount())
        return {};
    const int row = index.row(), column = index.column();
    if (const AttentionPoint* p = operandAt(row)) {
        switch (role) {
        case Qt::DisplayRole:
        case Qt::EditRole:
        case SortRole:
            return operandData(*p, column, role);
        case LayerRowRole:
            return -1;
        case OperandRole:
            return QString::fromStdString(p->name);
        case Qt::TextAlignmentRole:
            return alignmentOf(column);
        case Qt::ToolTipRole:
            return QStringLiteral("<b>%1</b>: %2 input of the MatMul %3 (value %4)%5<br/><br/>An attention operand: "
                                  "its A bits, granularity (tensor, head, token, channel) and calibrator edit the "
                                  "configuration's attention points.")
                .arg(QString::fromStdString(p->name).toHtmlEscaped(), QString(operandRoleName(p->role)),
                    QString::fromStdString(p->node).toHtmlEscaped(), QString::fromStdString(p->value).toHtmlEscaped(),
                    p->cache.empty() ? QString()
                                     : QStringLiteral(", past tokens from %1").arg(QString::fromStdString(p->cache)));
        default:
            return {};
        }
    }
    switch (role) {
    case Qt::DisplayRole: return display(row, column);
    case Qt::EditRole:
        if (isConfigColumn(column) && config_ && row < config_->layerCount())
            return config_->value(row, fieldOf(column));
        return display(row, column);
    case SortRole: return sortValue(row, column);
    case LayerRowRole: return row;
    case BarRole:
        if (column == SizeShare && maxShare_ > 0)
            return doc_->layer(row)->sizeShare / maxShare_;
        return {};
    case Qt::TextAlignmentRole:
        return alignmentOf(column);
    case Qt::ForegroundRole:
        if (auto m = metricOf(column); m && !metricValue(*m, *doc_, row))
            return QBrush(QColor(0x9a, 0xa0, 0xa8));
        if (column == Index)
            return QBrush(QColor(0x8a, 0x90, 0x99));
        return {};
    case Qt::BackgroundRole:
        if ((column == WeightBits || column == ActBits) && config_ && row < config_->layerCount()) {
            // Fewer bits, warmer: 8 and float plain, 6-7 pale, 4-5 amber, 2-3 orange.
            const int bits = config_->value(row, fieldOf(column)).toInt();
            if (bits >= 8)
                return {};
            return QBrush(bits >= 6 ? QColor(0xfe, 0xf3, 0xc7) : bits >= 4 ? QColor(0xfd, 0xe6, 0x8a) : QColor(0xfd, 0xba, 0x74));
        }
        // Conditional formatting: only values past the point where they start to hurt.
        if (auto m = metricOf(column); m && *m != LayerMetric::SizeShare)
            if (auto v = metricValue(*m, *doc_, row)) {
                const ColorScale& scale = scales_[std::size_t(*m)];
                if (scale.severity(*v) > 0.6) {
                    QColor c = scale.color(*v);
                    c.setAlpha(110);
                    return QBrush(c);
                }
            }
        return {};
    case Qt::FontRole:
        if (column == OutputShape || column == WeightShape) {
            QFont f;
            f.setFamily(QStringLiteral("DejaVu Sans Mono"));
            f.setStyleHint(QFont::Monospace);
            f.setPointSizeF(f.pointSizeF() * 0.92);
            return f;
        }
        return {};
    case Qt::ToolTipRole: {
        const LayerData& l = *doc_->layer(row);
        QString tip = QStringLiteral("<b>%1</b> (%2)").arg(QString::fromStdString(l.summary.name).toHtmlEscaped(),
                                                           QString::fromStdString(l.summary.op));
        if (auto m = metricOf(column))
            tip += QStringLiteral("<br/><br/>") + metricExplanation(*m).toHtmlEscaped();
        if (const auto& s = doc_->stored(); s && (column == Sensitivity || column == Bits))
            tip += QStringLiteral("<br/>") + (column == Sensitivity ? s->sensitivityText() : s->bitsText()).toHtmlEscaped();
        else if (column == WeightShape)
            tip += QStringLiteral("<br/>weight %1, output channels along axis %2")
                       .arg(QString::fromStdString(l.summary.weight).toHtmlEscaped())
                       .arg(l.summary.channelAxis);
        return tip;
    }
    default: return {};
    }
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case Index: return QStringLiteral("#");
        case Name: return QStringLiteral("Layer");
        case Op: return QStringLiteral("Op");
        case WeightShape: return QStringLiteral("Weight");
        case OutputShape: return QStringLiteral("Output");
        case Params: return QStringLiteral("Params");
        case SizeShare: return QStringLiteral("Size");
        case Kurtosis: return QStringLiteral("Kurtosis");
        case Outliers: return QStringLiteral("Outliers");
        case ChannelRange: return QStringLiteral("Ch. range");
        case InputKurtosis: return QStringLiteral("Act. kurt.");
        // Stored results say what they are: the SQNR at the swept bits, the bits of which
        // run (not to be mistaken for "W bits", the configuration being edited).
        case Sensitivity: {
            const auto& s = doc_->stored();
            return s && s->sensitivityRun && s->sensitivityIsSqnr
                       ? QStringLiteral("SQNR @%1b (dB)").arg(s->sensitivityBits)
                       : QStringLiteral("Sensitivity");
        }
        case Bits: {
            const auto& s = doc_->stored();
            return s && s->bitsRun ? QStringLiteral("Run #%1 W/A").arg(s->bitsRun) : QStringLiteral("Last run W/A");
        }
        case WeightBits: return QStringLiteral("W bits");
        case ActBits: return QStringLiteral("A bits");
        case Granularity: return QStringLiteral("Granularity");
        case Calibrator: return QStringLiteral("Calibrator");
        }
    }
    if (role == Qt::ToolTipRole) {
        if (auto m = metricOf(section))
            return metricName(*m) + QStringLiteral(": ") + metricExplanation(*m);
        switch (section) {
        case Index: return QStringLiteral("Position in graph order");
        case WeightShape: return QStringLiteral("Shape of the weight tensor");
        case OutputShape: return QStringLiteral("Shape of the layer's output (N: batch)");
        case Params: return QStringLiteral("Weight and bias elements");
        case WeightBits: return QStringLiteral("Weight bits of the configuration being edited (2..8, FP16/FP32 = float); "
                                               "double-click or F2 to edit, the edit applies to every selected row");
        case ActBits: return QStringLiteral("Activation bits at the layer's input in the configuration being edited");
        case Granularity: return QStringLiteral("Weight scales per tensor, per output channel, or per group of N input channels");
        case Calibrator: return QStringLiteral("How the activation range is chosen from calibration data");
        }
    }
    if (role == Qt::TextAlignmentRole)
        return QVariant((section == Name || section == Op ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignVCenter);
    return {};
}

} // namespace qs::ui
