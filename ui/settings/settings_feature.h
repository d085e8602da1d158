// The settings feature in the window, installed by one call: Edit > Settings and its dialog.
#pragma once

#include <QObject>

namespace qs::ui {

class MainWindow;
class SettingsDialog;
class Studio;

class SettingsFeature : public QObject {
    Q_OBJECT
public:
    static SettingsFeature* install(MainWindow& window, Studio& studio);

    SettingsDialog* dialog() const { return dialog_; }

private:
    using QObject::QObject;

    SettingsDialog* dialog_ = nullptr;
};

} // namespace qs::ui
