#include "ui/sensitivity/sensitivity_feature.h"

#include "ui/main_window.h"
#include "ui/sensitivity/cluster_sweep_dialog.h"
#include "ui/sensitivity/sensitivity_agreement_panel.h"
#include "ui/sensitivity/sensitivity_panel.h"

#include <QAction>
#include <QDockWidget>
#include <QTabWidget>

namespace qs::ui {

SensitivityFeature* SensitivityFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new SensitivityFeature(&window);
    f->panel_ = new SensitivityPanel(studio, &window);
    f->agreement_ = new SensitivityAgreementPanel(studio, &window);
    // The sweep and the metric comparison share the dock as two tabs.
    f->tabs_ = new QTabWidget(&window);
    f->tabs_->setObjectName(QStringLiteral("sensitivityTabs"));
    f->tabs_->setDocumentMode(true);
    f->tabs_->addTab(f->panel_, tr("Sweep"));
    f->tabs_->addTab(f->agreement_, tr("Compare Metrics"));
    f->dock_ = window.addDock(f->tabs_, tr("Sensitivity"), QStringLiteral("sensitivityDock"), Qt::RightDockWidgetArea,
        window.inspectorDock());
    window.inspectorDock()->raise();

    auto* sweep = new QAction(tr("&Sensitivity Sweep"), f);
    sweep->setObjectName(QStringLiteral("sensitivityAction"));
    sweep->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_R));
    sweep->setToolTip(tr("Quantize each layer alone at each bit width and measure the loss (Ctrl+Shift+R)"));
    connect(sweep, &QAction::triggered, f, [f] {
        f->dock_->show();
        f->dock_->raise();
        f->panel_->startSweep();
    });
    auto* compare = new QAction(tr("Compare Sensitivity &Metrics"), f);
    compare->setObjectName(QStringLiteral("compareMetricsAction"));
    compare->setToolTip(tr("One-shot KL, local SQNR, Hessian and kurtosis per layer with 95% intervals, and "
                           "how far they agree"));
    connect(compare, &QAction::triggered, f, [f] {
        f->dock_->show();
        f->dock_->raise();
        f->tabs_->setCurrentWidget(f->agreement_);
        f->agreement_->start();
    });
    auto* cluster = new QAction(tr("Run Sweep on &Cluster\u2026"), f);
    cluster->setObjectName(QStringLiteral("clusterSweepAction"));
    cluster->setToolTip(tr("The sweep as a Slurm job array of shards, merged into one run as they finish"));
    connect(cluster, &QAction::triggered, f, [f, &window, &studio] {
        f->dock_->show();
        f->dock_->raise();
        f->tabs_->setCurrentWidget(f->panel_);
        if (!f->cluster_)
            f->cluster_ = new ClusterSweepDialog(studio, *f->panel_, &window);
        f->cluster_->show();
        f->cluster_->raise();
    });
    window.addAnalyzeAction(sweep);
    window.addAnalyzeAction(cluster);
    window.addAnalyzeAction(compare);
    window.addViewEntry(f->dock_);
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
