#include "ui/document/quant_config_document.h"

#include "ui/document/model_document.h"
#include "ui/widgets/format.h"

#include "util/error.h"

#include <QFile>
#include <QUndoCommand>
#include <QUndoStack>

namespace qs::ui {

QString granularityText(const QuantSpec& spec)
{
    if (spec.granularity == Granularity::Group)
        return QStringLiteral("group:%1").arg(spec.groupSize);
    return QString::fromLatin1(granularityName(spec.granularity));
}

QString calibratorText(const QuantSpec& spec)
{
    const QString name = QString::fromStdString(spec.calibrator);
    if ((spec.calibrator == "percentile" || spec.calibrator == "ema") && spec.calibratorParam != 0)
        return QStringLiteral("%1:%2").arg(name).arg(spec.calibratorParam, 0, 'g', 6);
    return name;
}

// One undo step: the whole configuration before and after (configs are small).
class ConfigCommand : public QUndoCommand {
public:
    ConfigCommand(QuantConfigDocument* doc, QuantConfig before, QuantConfig after, const QString& text)
        : QUndoCommand(text), doc_(doc), before_(std::move(before)), after_(std::move(after))
    {
    }
    void redo() override { doc_->assign(after_); }
    void undo() override { doc_->assign(before_); }

private:
    QuantConfigDocument* doc_;
    QuantConfig before_, after_;
};

QuantConfigDocument::QuantConfigDocument(ModelDocument* doc, QObject* parent)
    : QObject(parent), doc_(doc), undo_(new QUndoStack(this))
{
    connect(doc_, &ModelDocument::modelChanged, this, &QuantConfigDocument::resetForModel);
    resetForModel();
}

void QuantConfigDocument::resetForModel()
{
    names_.clear();
    for (int r = 0; r < doc_->layerCount(); ++r)
        names_.push_back(doc_->layer(r)->summary.name);
    undo_->clear();
    config_ = QuantConfig{}; // W8 per-channel symmetric weights, A8 affine min-max activations
    sizes_.reset();
    sensitivity_.reset();
    emit configChanged();
    emit sizesChanged();
    emit sensitivityChanged();
}

void QuantConfigDocument::setSizes(std::shared_ptr<const ModelSizeTable> sizes)
{
    sizes_ = std::move(sizes);
    emit sizesChanged();
}

void QuantConfigDocument::setSensitivity(std::shared_ptr<const SensitivityResult> sensitivity)
{
    sensitivity_ = std::move(sensitivity);
    emit sensitivityChanged();
}

int64_t QuantConfigDocument::sizeBits() const
{
    return sizes_ ? sizes_->sizeBits(config_) : -1;
}

std::optional<ErrorPrediction> QuantConfigDocument::prediction() const
{
    if (!sensitivity_ || sensitivity_->layers.empty())
        return std::nullopt;
    return predictError(*sensitivity_, config_, names_);
}

LayerQuant QuantConfigDocument::layer(int row) const
{
    if (row < 0 || row >= layerCount())
        return config_.defaults;
    auto it = config_.layers.find(names_[std::size_t(row)]);
    return it == config_.layers.end() ? config_.defaults : it->second;
}

QVariant QuantConfigDocument::value(int row, Field field) const
{
    const LayerQuant q = layer(row);
    switch (field) {
    case Field::WeightBits: return q.weight.bits;
    case Field::ActivationBits: return q.activation.bits;
    case Field::Granularity: return granularityText(q.weight);
    case Field::Calibrator: return calibratorText(q.activation);
    }
    return {};
}

QString QuantConfigDocument::fieldName(Field field)
{
    switch (field) {
    case Field::WeightBits: return QStringLiteral("weight bits");
    case Field::ActivationBits: return QStringLiteral("activation bits");
    case Field::Granularity: return QStringLiteral("granularity");
    case Field::Calibrator: return QStringLiteral("calibrator");
    }
    return {};
}

QString QuantConfigDocument::presetName(Preset preset)
{
    switch (preset) {
    case Preset::All8: return QStringLiteral("All layers W8A8");
    case Preset::W4A8: return QStringLiteral("All layers W4A8");
    case Preset::KeepEnds8: return QStringLiteral("First and last layer at 8 bits");
    }
    return {};
}

namespace {

bool validBits(int b)
{
    return (b >= 2 && b <= 8) || b == 16 || b == 32;
}

// Stores `q` for `name`, as an override only where it differs from the defaults.
void put(QuantConfig& c, const std::string& name, const LayerQuant& q)
{
    if (q == c.defaults)
        c.layers.erase(name);
    else
        c.layers[name] = q;
}

} // namespace

bool QuantConfigDocument::setLayers(const QList<int>& rows, Field field, const QVariant& value)
{
    error_.clear();
    QuantConfig next = config_;
    QuantSpec probe;
    int bits = 0;
    try {
        switch (field) {
        case Field::WeightBits:
        case Field::ActivationBits: {
            bool ok = false;
            bits = value.toInt(&ok);
            if (!ok || !validBits(bits))
                fail(fieldName(field).toStdString(), ": ", value.toString().toStdString(), " is not 2..8, 16 or 32");
            break;
        }
        case Field::Granularity: parseGranularity(value.toString().toStdString(), probe); break;
        case Field::Calibrator: parseCalibrator(value.toString().toStdString(), probe); break;
        }
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
    int changed = 0;
    QString last;
    for (int row : rows) {
        if (row < 0 || row >= layerCount())
            continue;
        LayerQuant q = layer(row);
        switch (field) {
        case Field::WeightBits: q.weight.bits = bits; break;
        case Field::ActivationBits: q.activation.bits = bits; break;
        case Field::Granularity:
            q.weight.granularity = probe.granularity;
            q.weight.groupSize = probe.groupSize;
            break;
        case Field::Calibrator:
            q.activation.calibrator = probe.calibrator;
            q.activation.calibratorParam = probe.calibratorParam;
            break;
        }
        if (q == layer(row))
            continue;
        put(next, names_[std::size_t(row)], q);
        last = QString::fromStdString(names_[std::size_t(row)]);
        ++changed;
    }
    if (changed == 0)
        return true;
    push(std::move(next), changed == 1 ? QStringLiteral("Set %1 of %2").arg(fieldName(field), last)
                                       : QStringLiteral("Set %1 of %2 layers").arg(fieldName(field)).arg(changed));
    return true;
}

void QuantConfigDocument::applyPreset(Preset preset)
{
    QuantConfig next = config_;
    auto setBits = [&](int row, int w, int a) {
        LayerQuant q = layer(row);
        q.weight.bits = w;
        q.activation.bits = a;
        put(next, names_[std::size_t(row)], q);
    };
    switch (preset) {
    case Preset::All8:
    case Preset::W4A8:
        for (int r = 0; r < layerCount(); ++r)
            setBits(r, preset == Preset::All8 ? 8 : 4, 8);
        break;
    case Preset::KeepEnds8:
        if (layerCount() > 0) {
            setBits(0, 8, 8);
            setBits(layerCount() - 1, 8, 8);
        }
        break;
    }
    push(std::move(next), presetName(preset));
}

void QuantConfigDocument::applyBits(const std::map<std::string, std::pair<int, int>>& bits, const QString& text)
{
    QuantConfig next = config_;
    for (int r = 0; r < layerCount(); ++r) {
        auto it = bits.find(names_[std::size_t(r)]);
        if (it == bits.end())
            continue;
        LayerQuant q = layer(r);
        if (validBits(it->second.first))
            q.weight.bits = it->second.first;
        if (it->second.second > 0 && validBits(it->second.second))
            q.activation.bits = it->second.second;
        put(next, names_[std::size_t(r)], q);
    }
    push(std::move(next), text.isEmpty() ? QStringLiteral("Apply bit widths") : text);
}

void QuantConfigDocument::setConfig(const QuantConfig& config, const QString& text)
{
    push(config, text);
}

void QuantConfigDocument::push(QuantConfig next, const QString& text)
{
    if (next.toJson() == config_.toJson())
        return;
    undo_->push(new ConfigCommand(this, config_, std::move(next), text));
}

void QuantConfigDocument::assign(const QuantConfig& config)
{
    config_ = config;
    emit configChanged();
}

bool QuantConfigDocument::save(const QString& path)
{
    error_.clear();
    try {
        config_.save(path.toStdString());
        undo_->setClean();
        return true;
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
}

bool QuantConfigDocument::load(const QString& path)
{
    error_.clear();
    try {
        QuantConfig loaded = QuantConfig::load(path.toStdString());
        // Overrides equal to the defaults say nothing; keep the file's other layers as they are.
        for (auto it = loaded.layers.begin(); it != loaded.layers.end();)
            it = it->second == loaded.defaults ? loaded.layers.erase(it) : std::next(it);
        push(std::move(loaded), QStringLiteral("Load %1").arg(path.section(QLatin1Char('/'), -1)));
        return true;
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
}

bool QuantConfigDocument::importPrecision(const QString& path, PrecisionFormat format, QStringList* notes)
{
    error_.clear();
    const auto model = doc_->model();
    if (!model) {
        error_ = QStringLiteral("Open a model before importing precision settings.");
        return false;
    }
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        error_ = QStringLiteral("%1: %2").arg(path, file.errorString());
        return false;
    }
    const QByteArray text = file.readAll();
    try {
        PrecisionImport imported =
            qs::importPrecision(*model->graph, text.toStdString(), format, path.toStdString(), config_);
        if (notes)
            *notes = toQStringList(imported.notes);
        push(std::move(imported.config), QStringLiteral("Import %1 precision from %2")
                                              .arg(QString::fromLatin1(precisionFormatName(format)),
                                                   path.section(QLatin1Char('/'), -1)));
        return true;
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
}

bool QuantConfigDocument::exportPrecision(const QString& path, PrecisionFormat format, QStringList* notes)
{
    error_.clear();
    const auto model = doc_->model();
    if (!model) {
        error_ = QStringLiteral("Open a model before exporting precision settings.");
        return false;
    }
    if (format == PrecisionFormat::Aimet || format == PrecisionFormat::Aimet1) {
        error_ = QStringLiteral("AIMET encodings carry calibrated scales: export them with "
                                "quantstudio-cli precision export MODEL --format %1 --data DATA, or export "
                                "the quantized model from a run (Runs > Export).")
                     .arg(QString::fromLatin1(precisionFormatName(format)));
        return false;
    }
    try {
        const PrecisionText out = qs::exportPrecision(*model->graph, config_, format);
        QFile file(path);
        if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
            file.write(QByteArray::fromStdString(out.text)) != qint64(out.text.size())) {
            error_ = QStringLiteral("%1: %2").arg(path, file.errorString());
            return false;
        }
        if (notes)
            *notes = toQStringList(out.notes);
        return true;
    } catch (const Error& e) {
        error_ = QString::fromUtf8(e.what());
        return false;
    }
}

} // namespace qs::ui
