// The bit configuration's commands in the window, installed by one call: Edit > Undo,
// Redo and Bit-width Preset, File > Save/Load Bit Configuration, and File > Import/Export
// Precision in the formats of other tools (ONNX Runtime, TensorRT, rules, AIMET). The
// configuration itself is the Studio's QuantConfigDocument; the layer table edits it.
#pragma once

#include <QObject>

namespace qs::ui {

class MainWindow;
class Studio;

class ConfigFeature : public QObject {
    Q_OBJECT
public:
    static ConfigFeature* install(MainWindow& window, Studio& studio);

private:
    using QObject::QObject;
    void addEditActions(MainWindow& window, Studio& studio);
    void addFileActions(MainWindow& window, Studio& studio);
    void addPrecisionActions(MainWindow& window, Studio& studio);
};

} // namespace qs::ui
