#include "ui/samples/samples_feature.h"

#include "ui/layers/layer_table_panel.h"
#include "ui/main_window.h"
#include "ui/samples/samples_panel.h"

#include <QDockWidget>

namespace qs::ui {

SamplesFeature* SamplesFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new SamplesFeature(&window);
    f->panel_ = new SamplesPanel(studio, &window);
    f->dock_ = window.addDock(
        f->panel_, tr("Samples"), QStringLiteral("samplesDock"), Qt::RightDockWidgetArea, window.inspectorDock());
    window.inspectorDock()->raise();
    window.addViewEntry(f->dock_);
    window.layerPanel()->addRowAction(tr("Show divergent samples"), [f](int row) {
        f->dock_->show();
        f->dock_->raise();
        f->panel_->showDivergent(row);
    });
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
