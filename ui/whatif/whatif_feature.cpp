#include "ui/whatif/whatif_feature.h"

#include "ui/document/studio.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/main_window.h"
#include "ui/whatif/whatif_controller.h"
#include "ui/whatif/whatif_panel.h"

namespace qs::ui {

WhatIfFeature* WhatIfFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new WhatIfFeature(&window);
    f->controller_ = new WhatIfController(studio, &window);
    f->panel_ = new WhatIfPanel(studio.document(), f->controller_, window.inspector());
    window.inspector()->addPanel(f->panel_);
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
