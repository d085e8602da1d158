#include "ui/pareto/pareto_feature.h"

#include "ui/document/studio.h"
#include "ui/graph/graph_panel.h"
#include "ui/main_window.h"
#include "ui/pareto/pareto_panel.h"
#include "ui/pareto/precision_boundary_overlay.h"

#include <QAction>
#include <QDockWidget>
#include <QMenu>

namespace qs::ui {

ParetoFeature* ParetoFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new ParetoFeature(&window);
    f->panel_ = new ParetoPanel(studio, &window);
    f->dock_ = window.addDock(
        f->panel_, tr("Pareto"), QStringLiteral("paretoDock"), Qt::RightDockWidgetArea, window.inspectorDock());
    window.inspectorDock()->raise();
    window.addViewEntry(f->dock_);

    f->boundaries_ = new PrecisionBoundaryOverlay(window.graphPanel()->view(), studio.document(), studio.config(), f);
    connect(f->panel_, &ParetoPanel::latencyProfileChanged, f->boundaries_,
        [f] { f->boundaries_->setProfile(f->panel_->latencyProfile(), f->panel_->latencyLinks()); });
    f->boundaryAction_ = new QAction(tr("Precision &Boundaries on the Graph"), f);
    f->boundaryAction_->setObjectName(QStringLiteral("boundaryAction"));
    f->boundaryAction_->setCheckable(true);
    f->boundaryAction_->setChecked(f->boundaries_->isEnabled());
    f->boundaryAction_->setToolTip(tr("Mark where the configuration quantizes into or dequantizes out of INT8, "
                                      "with each crossing's measured cost (needs the latency profile)"));
    connect(f->boundaryAction_, &QAction::toggled, f->boundaries_, &PrecisionBoundaryOverlay::setEnabled);
    connect(f->boundaryAction_, &QAction::triggered, f, [f](bool on) {
        if (on && !f->panel_->latencyProfile() && !f->panel_->isMeasuring())
            f->panel_->requestProfile(); // the marks need it; the Pareto panel keeps it
    });
    window.viewMenu()->addSeparator();
    window.viewMenu()->addAction(f->boundaryAction_);
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
