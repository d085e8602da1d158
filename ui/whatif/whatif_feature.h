// The what-if feature in the window, installed by one call: its panel at the foot of
// the inspector, driven by a WhatIfController.
#pragma once

#include <QObject>

namespace qs::ui {

class MainWindow;
class Studio;
class WhatIfController;
class WhatIfPanel;

class WhatIfFeature : public QObject {
    Q_OBJECT
public:
    static WhatIfFeature* install(MainWindow& window, Studio& studio);

    WhatIfController* controller() const { return controller_; }
    WhatIfPanel* panel() const { return panel_; }

private:
    using QObject::QObject;

    WhatIfController* controller_ = nullptr;
    WhatIfPanel* panel_ = nullptr;
};

} // namespace qs::ui
