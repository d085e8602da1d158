#include "ui/runs/runs_feature.h"

#include "ui/main_window.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_panel.h"

#include <QAction>
#include <QDockWidget>
#include <QMenu>
#include <QMenuBar>
#include <QTabWidget>
#include <QToolBar>

namespace qs::ui {

RunsFeature* RunsFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new RunsFeature(&window);
    f->controller_ = new RunsController(studio, &window);
    // A tab beside the layer table, not a second column: the window keeps its minimum width.
    f->runsDock_ = window.addDock(f->controller_->browser(), tr("Runs"), QStringLiteral("runsDock"),
        Qt::BottomDockWidgetArea, window.layersDock());
    window.layersDock()->raise();
    // Compare is a main view: a tab beside the graph, where two runs' graphs have room side by side.
    QTabWidget* compare = f->controller_->compareTabs();
    window.addMainView(compare, tr("Compare"));
    MainWindow* w = &window;
    f->controller_->setViews(f->runsDock_, [w, compare](bool show) { w->showMainView(compare, show); });
    f->compareAction_ = new QAction(tr("&Compare View"), f);
    f->compareAction_->setObjectName(QStringLiteral("compareViewAction"));
    f->compareAction_->setToolTip(
        tr("The open comparisons, in the middle of the window (select two runs and Compare)"));
    connect(f->compareAction_, &QAction::triggered, f, [w, compare] {
        if (compare->count() > 0)
            w->showMainView(compare);
    });

    QMenu* menu = window.addMenu(tr("&Runs"));
    menu->addAction(f->controller_->quantizeAction());
    menu->addAction(f->controller_->exportAction());
    menu->addSeparator();
    menu->addAction(f->runsDock_->toggleViewAction());
    menu->addAction(f->compareAction_);
    window.toolBar()->addAction(f->controller_->quantizeAction());
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
