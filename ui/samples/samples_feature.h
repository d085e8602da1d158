// The samples feature in the window, installed by one call: the Samples dock, its View
// entry and "Show divergent samples" on a layer row of the table.
#pragma once

#include <QObject>

class QDockWidget;

namespace qs::ui {

class MainWindow;
class SamplesPanel;
class Studio;

class SamplesFeature : public QObject {
    Q_OBJECT
public:
    static SamplesFeature* install(MainWindow& window, Studio& studio);

    SamplesPanel* panel() const { return panel_; }
    QDockWidget* dock() const { return dock_; }

private:
    using QObject::QObject;

    SamplesPanel* panel_ = nullptr;
    QDockWidget* dock_ = nullptr;
};

} // namespace qs::ui
