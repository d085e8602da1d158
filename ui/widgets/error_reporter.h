// How the GUI tells the user that something failed: a non-modal dialog with the exact
// message from core. Injectable, so tests can record reports instead of showing them.
#pragma once

#include <QObject>
#include <QPointer>
#include <QString>

#include <QMessageBox>
class QWidget;

namespace qs::ui {

class ErrorReporter : public QObject {
    Q_OBJECT
public:
    explicit ErrorReporter(QObject* parent = nullptr) : QObject(parent) {}
    // `title` says what was attempted ("Open model"); `message` is core's message verbatim.
    virtual void report(QWidget* parent, const QString& title, const QString& message);

    QString lastMessage() const { return lastMessage_; }
    QMessageBox* lastDialog() const { return dialog_; }

signals:
    void reported(const QString& title, const QString& message);

protected:
    QString lastMessage_;
    QPointer<QMessageBox> dialog_;
};

} // namespace qs::ui
