// The runs panel: every run of the open database in a table, filtered by model,
// kind, state and tag (the store's RunFilter); notes and tags edited in place and
// written at once, runs deleted after a confirmation; Compare and Export start from
// the selection. Reading and writing the store happen in jobs.
#pragma once

#include <QList>
#include <functional>
#include <QPointer>
#include <QWidget>

class QComboBox;
class QLabel;
class QMessageBox;
class QPushButton;
class QSortFilterProxyModel;
class QTableView;

namespace qs {
class Store;
}

namespace qs::ui {

class JobRunner;
class RunDetailsDialog;
class RunsTableModel;

class RunsPanel : public QWidget {
    Q_OBJECT
public:
    RunsPanel(JobRunner* jobs, QWidget* parent = nullptr);

    QString storePath() const { return storePath_; }
    RunsTableModel* model() const { return model_; }
    QSortFilterProxyModel* proxy() const { return proxy_; }
    QTableView* view() const { return view_; }
    QComboBox* modelFilter() const { return modelFilter_; }
    QComboBox* kindFilter() const { return kindFilter_; }
    QComboBox* stateFilter() const { return stateFilter_; }
    QComboBox* tagFilter() const { return tagFilter_; }
    QPushButton* compareButton() const { return compare_; }
    QPushButton* exportButton() const { return export_; }
    QPushButton* deleteButton() const { return delete_; }
    // The confirmation of the last deleteSelected(), while it is open.
    QMessageBox* confirmation() const;

    QList<qint64> selectedRunIds() const; // in table order
    // The run's details (double-click on a row, outside Tags and Note); nullptr when not listed.
    RunDetailsDialog* showDetails(qint64 runId);
    void selectRuns(const QList<qint64>& ids);

public slots:
    void setStorePath(const QString& path); // and refresh
    int refresh();                          // job id, -1 without a database
    // Asks (window-modal, not blocking); on Yes a job deletes the selected runs.
    void deleteSelected();

signals:
    void refreshed();
    // A note, tag or delete reached the store.
    void storeEdited();
    void compareRequested(const QList<qint64>& runIds);
    void exportRequested(qint64 runId);

private:
    void writeEdit(const QString& what, std::function<void(Store&)> edit, bool thenRefresh = false);
    void deleteRuns(const QList<qint64>& ids);
    void updateButtons();
    void setChoices(QComboBox* combo, const QList<QPair<QString, QString>>& items); // (label, value)

    JobRunner* jobs_;
    RunsTableModel* model_;
    QSortFilterProxyModel* proxy_;
    QTableView* view_;
    QComboBox *modelFilter_, *kindFilter_, *stateFilter_, *tagFilter_;
    QPushButton *compare_, *export_, *delete_, *refresh_;
    QLabel* count_;
    QPointer<QMessageBox> confirm_;
    QString storePath_;
    int editSerial_ = 0;
};

} // namespace qs::ui
