#include "ui/calibration/calibration_feature.h"

#include "ui/calibration/calib_diag_dialog.h"
#include "ui/main_window.h"

#include <QAction>

namespace qs::ui {

CalibrationFeature* CalibrationFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new CalibrationFeature(&window);
    f->dialog_ = new CalibDiagDialog(studio, &window);
    auto* diag = new QAction(tr("Calibration &Diagnostics\u2026"), f);
    diag->setObjectName(QStringLiteral("calibDiagAction"));
    diag->setToolTip(tr("How many calibration samples the ranges need, and whether the calibration data "
                        "look like the evaluation data"));
    connect(diag, &QAction::triggered, f, [f] {
        f->dialog_->show();
        f->dialog_->raise();
        f->dialog_->activateWindow();
    });
    window.addAnalyzeAction(diag);
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
