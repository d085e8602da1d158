#include "ui/widgets/error_reporter.h"

#include <QMessageBox>

namespace qs::ui {

void ErrorReporter::report(QWidget* parent, const QString& title, const QString& message)
{
    lastMessage_ = message;
    emit reported(title, message);
    // Non-modal: the window stays usable and nothing in it is lost; one dialog at a time.
    if (dialog_)
        dialog_->close();
    auto* box = new QMessageBox(QMessageBox::Warning, title, QStringLiteral("%1 failed.").arg(title),
                                QMessageBox::Close, parent);
    box->setObjectName(QStringLiteral("errorDialog"));
    box->setInformativeText(message);
    box->setTextInteractionFlags(Qt::TextSelectableByMouse);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setWindowModality(Qt::NonModal);
    box->show();
    dialog_ = box;
}

} // namespace qs::ui
