// The studio's record-keeping half, behind the Runs and Compare docks: the Quantize
// action (a job recording a run through quantizeAndRecord, the CLI's `quantize --db`),
// the runs panel, comparisons as tabs and the export dialog. Everything it reads or
// writes goes through the studio's open database.
#pragma once

#include "ui/runs/quantize_dialog.h"

#include <QList>
#include <QObject>

#include <QPointer>
#include <functional>

class QAction;
class QDockWidget;
class QTabWidget;

namespace qs::ui {

class ComparePanel;
class ExportDialog;
class RunsPanel;
class Studio;

class RunsController : public QObject {
    Q_OBJECT
public:
    // `window` parents the dialogs; the dock showing browser() and the main view showing
    // compareTabs() are the installer's (setViews: `showCompare(true)` brings the view forward,
    // false hides it once its last comparison is closed).
    RunsController(Studio& studio, QWidget* window);
    void setViews(QDockWidget* runs, std::function<void(bool)> showCompare);

    RunsPanel* browser() const { return browser_; }
    QDockWidget* runsDock() const { return runsDock_; }
    QTabWidget* compareTabs() const { return compareTabs_; }
    QAction* quantizeAction() const { return quantizeAction_; }
    QAction* exportAction() const { return exportAction_; }
    ExportDialog* exportDialog() const; // the open one, or null
    // The settings a Quantize dialog starts from (the model's data, the last choices).
    QuantizeRequest defaultRequest() const;

    // Quantizes the open model with the current configuration; returns the job id
    // (-1 when no model is open). Without an open database the default one is used.
    int quantize(const QuantizeRequest& request);
    // Opens a comparison tab (two or more runs); returns the job id that fills it.
    int compare(const QList<qint64>& runIds);
    // Shows the export dialog for `runId` (0: the browser's selection).
    ExportDialog* showExport(qint64 runId = 0);

public slots:
    void openQuantizeDialog();

signals:
    void runStored(qint64 runId); // a quantization job finished writing its run (any outcome)
    void comparisonShown(qs::ui::ComparePanel* view);

private:
    void finishQuantize(qint64 runId, const QString& storePath); // 0: cancelled or failed

    Studio& studio_;
    QWidget* window_;
    RunsPanel* browser_;
    QPointer<QDockWidget> runsDock_;
    std::function<void(bool)> showCompare_;
    QTabWidget* compareTabs_;
    QAction* quantizeAction_;
    QAction* exportAction_;
    QPointer<ExportDialog> export_;
    QuantizeRequest last_;
    bool haveLast_ = false;
};

} // namespace qs::ui
