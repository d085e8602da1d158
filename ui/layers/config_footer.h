// The line under the layer table that follows every edit of the configuration: stored
// model size at the chosen bits, compression against FP32, and the output error the
// sensitivity curves predict (or that there are none yet); with the presets.
#pragma once

#include <QWidget>

class QLabel;
class QToolButton;

namespace qs::ui {

class QuantConfigDocument;

class ConfigFooter : public QWidget {
    Q_OBJECT
public:
    explicit ConfigFooter(QuantConfigDocument* config, QWidget* parent = nullptr);

    QLabel* sizeLabel() const { return size_; }
    QLabel* errorLabel() const { return error_; }
    QToolButton* presetButton() const { return presets_; }

private:
    void update();

    QuantConfigDocument* config_;
    QLabel* size_;
    QLabel* error_;
    QToolButton* presets_;
};

} // namespace qs::ui
