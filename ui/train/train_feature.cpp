#include "ui/train/train_feature.h"

#include "ui/main_window.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"
#include "ui/train/qat_controller.h"
#include "ui/train/qat_panel.h"

#include <QAction>
#include <QDockWidget>
#include <QMenu>
#include <QMenuBar>
#include <QToolBar>

namespace qs::ui {

TrainFeature* TrainFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new TrainFeature(&window);
    f->panel_ = new QatPanel(&window);
    f->controller_ = new QatController(studio, f->panel_, &window);
    RunsFeature* runs = window.feature<RunsFeature>();
    f->dock_ = window.addDock(f->panel_, tr("Training"), QStringLiteral("trainingDock"), Qt::BottomDockWidgetArea,
        runs ? runs->controller()->runsDock() : nullptr);
    f->dock_->hide();
    QAction* train = f->controller_->trainAction();
    // Beside Quantize in its menu and on the toolbar; else in a menu of its own.
    QAction* quantize = runs ? runs->controller()->quantizeAction() : nullptr;
    QMenu* menu = nullptr;
    for (QAction* top : window.menuBar()->actions())
        if (top->menu() && quantize && top->menu()->actions().contains(quantize))
            menu = top->menu();
    if (!menu)
        menu = window.addMenu(tr("&Train"));
    const QList<QAction*> items = menu->actions();
    const qsizetype at = items.indexOf(quantize);
    menu->insertAction(at >= 0 && at + 1 < items.size() ? items[at + 1] : nullptr, train);
    window.toolBar()->addAction(train);
    QObject::connect(f->controller_, &QatController::started, f->dock_, [dock = f->dock_] {
        dock->show();
        dock->raise();
    });
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
