// The runs of the open experiment database as a table: id, model, kind, state,
// started, top-1 with its 95 % interval, the samples and the data it was measured on,
// size, tags, note. Notes and tags are edited in place; the edit is
// handed on (editRequested) to be written to the store by a job, and shown at once.
#pragma once

#include "store/records.h"

#include <QAbstractTableModel>
#include <QStringList>

#include <vector>

namespace qs::ui {

class RunsTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Id, Model, Kind, State, Started, Top1, Samples, EvalData, Size, Tags, Note, ColumnCount };
    enum Role {
        SortRole = Qt::UserRole,      // raw value for sorting
        RunIdRole = Qt::UserRole + 1, // qint64
    };

    explicit RunsTableModel(QObject* parent = nullptr);

    void setRuns(std::vector<RunRecord> runs);
    const std::vector<RunRecord>& runs() const { return runs_; }
    const RunRecord* run(int row) const;
    int rowOf(int64_t runId) const; // -1 when not listed

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role) override;

    // The data a run's metrics were measured on, from its configuration: the evaluation file
    // and whether it is the calibration file ("fashion1k-images-idx3-ubyte.gz (the
    // calibration data, not held out)"); "" when the run does not say (sensitivity runs
    // measure on their one dataset: that one).
    static QString evaluationData(const RunRecord& r, bool full = false);

    // "a, b ,,c" -> {"a", "b", "c"}: trimmed, empty and repeated ones dropped.
    static QStringList parseTags(const QString& text);

signals:
    // A note or the whole tag list of a run was edited (the row shows it already).
    void noteEdited(qint64 runId, const QString& note);
    void tagsEdited(qint64 runId, const QStringList& tags);

private:
    std::vector<RunRecord> runs_;
};

} // namespace qs::ui
