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
    f->compareDock_ = window.addDock(f->controller_->compareTabs(), tr("Compare"), QStringLiteral("compareDock"),
        Qt::BottomDockWidgetArea, f->runsDock_);
    f->compareDock_->hide();
    window.layersDock()->raise();
    f->controller_->setDocks(f->runsDock_, f->compareDock_);

    QMenu* menu = window.addMenu(tr("&Runs"));
    menu->addAction(f->controller_->quantizeAction());
    menu->addAction(f->controller_->exportAction());
    menu->addSeparator();
    menu->addAction(f->runsDock_->toggleViewAction());
    menu->addAction(f->compareDock_->toggleViewAction());
    window.toolBar()->addAction(f->controller_->quantizeAction());
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
