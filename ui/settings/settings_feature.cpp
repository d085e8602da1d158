#include "ui/settings/settings_feature.h"

#include "ui/main_window.h"
#include "ui/settings/settings_dialog.h"

#include <QAction>
#include <QMenu>

namespace qs::ui {

SettingsFeature* SettingsFeature::install(MainWindow& window, Studio& studio)
{
    auto* f = new SettingsFeature(&window);
    f->dialog_ = new SettingsDialog(studio, &window);
    auto* action = new QAction(tr("Se&ttings\u2026"), f);
    action->setObjectName(QStringLiteral("settingsAction"));
    action->setMenuRole(QAction::PreferencesRole);
    action->setToolTip(tr("The memory budget of the analyses' caches"));
    connect(action, &QAction::triggered, f, [f] {
        f->dialog_->show();
        f->dialog_->raise();
        f->dialog_->activateWindow();
    });
    window.editMenu()->addSeparator();
    window.editMenu()->addAction(action);
    window.addFeature(f);
    return f;
}

} // namespace qs::ui
