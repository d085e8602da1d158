// The quantization configuration being edited for the open model: per-layer weight and
// activation bits, weight granularity and activation calibrator. Every edit is one
// QUndoCommand on undoStack(); the file format is QuantConfig's JSON (quantize --config).
#pragma once

#include "analysis/bit_budget.h"
#include "analysis/sensitivity.h"
#include "interop/precision.h"
#include "quant/spec.h"

#include <QList>
#include <QStringList>
#include <QObject>
#include <QString>
#include <QVariant>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

class QUndoStack;

namespace qs::ui {

class ModelDocument;

class QuantConfigDocument : public QObject {
    Q_OBJECT
public:
    enum class Field { WeightBits, ActivationBits, Granularity, Calibrator };
    enum class Preset {
        All8,       // every layer W8A8
        W4A8,       // every layer W4A8
        KeepEnds8,  // first and last layer W8A8, the others unchanged
    };

    explicit QuantConfigDocument(ModelDocument* doc, QObject* parent = nullptr);

    const QuantConfig& config() const { return config_; }
    QUndoStack* undoStack() const { return undo_; }
    // The layer names of the open model, in ModelData::layers order (the rows).
    const std::vector<std::string>& layerNames() const { return names_; }
    int layerCount() const { return int(names_.size()); }
    // Effective spec of a row (override or default); the default for an excluded layer.
    LayerQuant layer(int row) const;
    // Display/edit value of one field: int bits, or text ("channel", "group:64", "percentile:99.99").
    QVariant value(int row, Field field) const;

    // Each is one undo step; nothing is pushed when nothing would change. Returns false
    // (and changes nothing) when `value` is not valid for `field` (see lastError()).
    bool setLayers(const QList<int>& rows, Field field, const QVariant& value);
    void applyPreset(Preset preset);
    // layer name -> (weight bits, activation bits); activation bits <= 0 keep the current ones.
    void applyBits(const std::map<std::string, std::pair<int, int>>& bits, const QString& text = QString());
    // Replaces the whole configuration (one undo step).
    void setConfig(const QuantConfig& config, const QString& text = QStringLiteral("Replace configuration"));

    // File I/O in QuantConfig JSON. Load is one undo step. Both return false with lastError() set.
    bool save(const QString& path);
    bool load(const QString& path);
    QString lastError() const { return error_; }

    // Per-layer precision in another tool's format (core/interop/precision.h): ONNX
    // Runtime TensorQuantOverrides, TensorRT --layerPrecisions, rule lists, and for import
    // also AIMET encodings. Import is one undo step; `notes` gets what the format could
    // not say exactly. AIMET export needs calibrated scales: that is the CLI's
    // `precision export --format aimet`, and here an error saying so.
    bool importPrecision(const QString& path, PrecisionFormat format, QStringList* notes = nullptr);
    bool exportPrecision(const QString& path, PrecisionFormat format, QStringList* notes = nullptr);

    // What the configuration costs and is predicted to lose: the size table (computed by a
    // job when a model opens) and the latest sensitivity result (from a sweep or the store).
    // Both are dropped when the model changes.
    const std::shared_ptr<const ModelSizeTable>& sizes() const { return sizes_; }
    void setSizes(std::shared_ptr<const ModelSizeTable> sizes);
    const std::shared_ptr<const SensitivityResult>& sensitivity() const { return sensitivity_; }
    void setSensitivity(std::shared_ptr<const SensitivityResult> sensitivity);
    // Stored bits of the whole model at the current configuration; -1 before sizes() exist.
    int64_t sizeBits() const;
    // Predicted error of the current configuration; nullopt without a sensitivity result.
    std::optional<ErrorPrediction> prediction() const;

    static QString fieldName(Field field);
    static QString presetName(Preset preset);

signals:
    void configChanged();
    void sizesChanged();
    void sensitivityChanged();

private:
    friend class ConfigCommand;
    void assign(const QuantConfig& config); // no undo: used by the command
    void push(QuantConfig next, const QString& text);
    void resetForModel();

    ModelDocument* doc_;
    QUndoStack* undo_;
    QuantConfig config_;
    std::vector<std::string> names_;
    QString error_;
    std::shared_ptr<const ModelSizeTable> sizes_;
    std::shared_ptr<const SensitivityResult> sensitivity_;
};

// The text of a granularity as the editor shows and parses it: "tensor", "channel", "group:N".
QString granularityText(const QuantSpec& spec);
// "minmax", "mse", "percentile:99.99", "ema:0.9".
QString calibratorText(const QuantSpec& spec);

} // namespace qs::ui
