#include "ui/runs/runs_panel.h"

#include "ui/jobs/job_runner.h"
#include "ui/runs/run_details_dialog.h"
#include "ui/runs/runs_table_model.h"
#include "ui/widgets/format.h"

#include "store/store.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

#include <memory>
#include <set>

namespace qs::ui {
namespace {

struct RunsListing {
    std::vector<RunRecord> runs;  // filtered
    QList<QPair<QString, QString>> models, tags; // choices, from all runs
};

std::optional<std::string> choice(const QComboBox* c)
{
    const QString v = c->currentData().toString();
    return v.isEmpty() ? std::nullopt : std::optional(v.toStdString());
}

} // namespace

RunsPanel::RunsPanel(JobRunner* jobs, QWidget* parent) : QWidget(parent), jobs_(jobs)
{
    setObjectName(QStringLiteral("runsBrowser"));
    model_ = new RunsTableModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(model_);
    proxy_->setSortRole(RunsTableModel::SortRole);
    view_ = new QTableView(this);
    view_->setObjectName(QStringLiteral("runsTable"));
    view_->setModel(proxy_);
    view_->setSortingEnabled(true);
    view_->sortByColumn(RunsTableModel::Id, Qt::DescendingOrder);
    view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                           QAbstractItemView::AnyKeyPressed);
    view_->verticalHeader()->hide();
    view_->verticalHeader()->setDefaultSectionSize(view_->fontMetrics().height() + 8);
    view_->setWordWrap(false);
    view_->setAlternatingRowColors(true);
    view_->horizontalHeader()->setStretchLastSection(true);
    view_->horizontalHeader()->setHighlightSections(false);

    auto makeFilter = [this](const QString& name, const QString& tip, const QString& all) {
        auto* c = new QComboBox(this);
        c->setObjectName(name);
        c->setToolTip(tip);
        c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        c->setMinimumContentsLength(6);
        c->addItem(all, QString());
        connect(c, &QComboBox::activated, this, &RunsPanel::refresh);
        return c;
    };
    modelFilter_ = makeFilter(QStringLiteral("runsModelFilter"), QStringLiteral("Only runs of this model"), QStringLiteral("All models"));
    kindFilter_ = makeFilter(QStringLiteral("runsKindFilter"), QStringLiteral("Only runs of this kind"), QStringLiteral("All kinds"));
    for (RunKind k : {RunKind::Quantization, RunKind::Sensitivity, RunKind::MixedPrecisionSearch, RunKind::Calibration,
             RunKind::Inference})
        kindFilter_->addItem(QString::fromStdString(runKindName(k)), QString::fromStdString(runKindName(k)));
    stateFilter_ = makeFilter(QStringLiteral("runsStateFilter"), QStringLiteral("Only runs in this state"), QStringLiteral("All states"));
    for (RunState s : {RunState::Done, RunState::Running, RunState::Failed, RunState::Cancelled, RunState::Interrupted})
        stateFilter_->addItem(QString::fromStdString(runStateName(s)), QString::fromStdString(runStateName(s)));
    tagFilter_ = makeFilter(QStringLiteral("runsTagFilter"), QStringLiteral("Only runs with this tag"), QStringLiteral("All tags"));

    compare_ = new QPushButton(QStringLiteral("Compare"), this);
    compare_->setObjectName(QStringLiteral("runsCompare"));
    compare_->setToolTip(QStringLiteral("Side by side: two runs in detail, more as a table and a size-accuracy chart"));
    export_ = new QPushButton(QStringLiteral("Export\u2026"), this);
    export_->setObjectName(QStringLiteral("runsExport"));
    export_->setToolTip(QStringLiteral("The selected quantization run as QDQ ONNX with a report"));
    delete_ = new QPushButton(QStringLiteral("Delete\u2026"), this);
    delete_->setObjectName(QStringLiteral("runsDelete"));
    delete_->setToolTip(QStringLiteral("Delete the selected runs with their layer results (exported files stay)"));
    refresh_ = new QPushButton(QStringLiteral("Refresh"), this);
    count_ = new QLabel(this);
    count_->setProperty("role", "muted");

    auto* bar = new QHBoxLayout;
    bar->setContentsMargins(0, 0, 0, 0);
    bar->addWidget(modelFilter_);
    bar->addWidget(kindFilter_);
    bar->addWidget(stateFilter_);
    bar->addWidget(tagFilter_);
    bar->addStretch(1);
    // Actions below the table: one row of filters and buttons would set the window's minimum width.
    auto* actions = new QHBoxLayout;
    actions->setContentsMargins(0, 0, 0, 0);
    actions->addWidget(count_);
    actions->addStretch(1);
    actions->addWidget(refresh_);
    actions->addWidget(compare_);
    actions->addWidget(export_);
    actions->addWidget(delete_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addLayout(bar);
    layout->addWidget(view_, 1);
    layout->addLayout(actions);

    connect(refresh_, &QPushButton::clicked, this, &RunsPanel::refresh);
    connect(delete_, &QPushButton::clicked, this, &RunsPanel::deleteSelected);
    connect(compare_, &QPushButton::clicked, this, [this] { emit compareRequested(selectedRunIds()); });
    connect(export_, &QPushButton::clicked, this, [this] {
        const auto ids = selectedRunIds();
        if (!ids.isEmpty())
            emit exportRequested(ids.front());
    });
    connect(view_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &RunsPanel::updateButtons);
    connect(model_, &QAbstractItemModel::modelReset, this, &RunsPanel::updateButtons);
    // Tags and notes edit in place on double-click; every other cell opens the run.
    connect(view_, &QAbstractItemView::doubleClicked, this, [this](const QModelIndex& index) {
        const QModelIndex source = proxy_->mapToSource(index);
        if (source.column() == RunsTableModel::Tags || source.column() == RunsTableModel::Note)
            return;
        if (const RunRecord* r = model_->run(source.row()))
            showDetails(r->id);
    });
    connect(model_, &RunsTableModel::noteEdited, this, [this](qint64 id, const QString& note) {
        writeEdit(QStringLiteral("Saving the note of run %1").arg(id),
            [id, n = note.toStdString()](Store& s) { s.setNote(id, n); });
    });
    connect(model_, &RunsTableModel::tagsEdited, this, [this](qint64 id, const QStringList& tags) {
        std::vector<std::string> list;
        for (const QString& t : tags)
            list.push_back(t.toStdString());
        writeEdit(QStringLiteral("Saving the tags of run %1").arg(id), [id, list](Store& s) { s.setTags(id, list); });
    });
    updateButtons();
}

RunDetailsDialog* RunsPanel::showDetails(qint64 runId)
{
    const int row = model_->rowOf(runId);
    if (row < 0)
        return nullptr;
    auto* dialog = new RunDetailsDialog(*model_->run(row), this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    dialog->show();
    return dialog;
}

QList<qint64> RunsPanel::selectedRunIds() const
{
    QList<qint64> ids;
    for (const QModelIndex& i : view_->selectionModel()->selectedRows())
        ids << i.data(RunsTableModel::RunIdRole).toLongLong();
    // Table order, not click order: runs compare as a before/after pair top to bottom.
    std::sort(ids.begin(), ids.end(), [this](qint64 a, qint64 b) {
        return proxy_->mapFromSource(model_->index(model_->rowOf(a), 0)).row() <
               proxy_->mapFromSource(model_->index(model_->rowOf(b), 0)).row();
    });
    return ids;
}

void RunsPanel::selectRuns(const QList<qint64>& ids)
{
    QItemSelection sel;
    for (qint64 id : ids) {
        const int row = model_->rowOf(id);
        if (row < 0)
            continue;
        const QModelIndex i = proxy_->mapFromSource(model_->index(row, 0));
        sel.select(i, i.siblingAtColumn(RunsTableModel::ColumnCount - 1));
    }
    view_->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
}

void RunsPanel::setStorePath(const QString& path)
{
    if (path != storePath_) {
        storePath_ = path;
        for (QComboBox* c : {modelFilter_, tagFilter_})
            c->setCurrentIndex(0);
    }
    refresh();
}

void RunsPanel::setChoices(QComboBox* combo, const QList<QPair<QString, QString>>& items)
{
    const QString current = combo->currentData().toString();
    while (combo->count() > 1)
        combo->removeItem(1);
    for (const auto& [label, value] : items)
        combo->addItem(label, value);
    const int keep = combo->findData(current);
    combo->setCurrentIndex(keep >= 0 ? keep : 0);
}

int RunsPanel::refresh()
{
    if (storePath_.isEmpty()) {
        model_->setRuns({});
        count_->setText(QStringLiteral("No database"));
        return -1;
    }
    RunFilter filter;
    filter.model = choice(modelFilter_);
    if (auto k = choice(kindFilter_))
        filter.kind = parseRunKind(*k);
    if (auto s = choice(stateFilter_))
        filter.state = parseRunState(*s);
    filter.tag = choice(tagFilter_);
    const std::string path = storePath_.toStdString();
    QPointer<RunsPanel> self(this);
    return jobs_->start(QStringLiteral("runs-list"), QStringLiteral("Reading the runs"),
        [self, path, filter](Progress&, const CancelToken&) -> JobRunner::Deliver {
            StoreOptions options;
            options.mode = OpenMode::ReadOnly;
            const Store store = Store::open(path, options);
            auto listing = std::make_shared<RunsListing>();
            listing->runs = store.runs(filter);
            for (const ModelRecord& m : store.models())
                listing->models.append({QString::fromStdString(m.name), QString::fromStdString(m.hash)});
            std::set<std::string> tags;
            for (const RunRecord& r : store.runs())
                tags.insert(r.tags.begin(), r.tags.end());
            for (const auto& t : tags)
                listing->tags.append({QString::fromStdString(t), QString::fromStdString(t)});
            return [self, listing, path] {
                if (!self || self->storePath_.toStdString() != path)
                    return;
                const QList<qint64> selected = self->selectedRunIds();
                self->setChoices(self->modelFilter_, listing->models);
                self->setChoices(self->tagFilter_, listing->tags);
                self->model_->setRuns(std::move(listing->runs));
                self->selectRuns(selected);
                for (int c = 0; c < RunsTableModel::Note; ++c)
                    self->view_->resizeColumnToContents(c);
                self->count_->setText(countOf(self->model_->rowCount(), QStringLiteral("run"), QStringLiteral("runs")));
                emit self->refreshed();
            };
        });
}

void RunsPanel::writeEdit(const QString& what, std::function<void(Store&)> edit, bool thenRefresh)
{
    const std::string path = storePath_.toStdString();
    QPointer<RunsPanel> self(this);
    // Each edit its own kind: edits must not replace (cancel) each other.
    jobs_->start(QStringLiteral("runs-edit-%1").arg(++editSerial_), what,
        [self, path, edit, thenRefresh](Progress&, const CancelToken&) -> JobRunner::Deliver {
            Store store = Store::open(path, {.createIfMissing = false});
            edit(store);
            return [self, thenRefresh] {
                if (!self)
                    return;
                emit self->storeEdited();
                if (thenRefresh)
                    self->refresh();
            };
        });
}

QMessageBox* RunsPanel::confirmation() const
{
    return confirm_.data();
}

void RunsPanel::deleteSelected()
{
    const QList<qint64> ids = selectedRunIds();
    if (ids.isEmpty())
        return;
    QStringList names;
    for (qint64 id : ids)
        names << QStringLiteral("#%1").arg(id);
    auto* box = new QMessageBox(QMessageBox::Warning, QStringLiteral("Delete runs"),
        ids.size() == 1 ? QStringLiteral("Delete run %1 with its layer results?").arg(names.front())
                        : QStringLiteral("Delete %1 runs (%2) with their layer results?").arg(ids.size()).arg(names.join(QStringLiteral(", "))),
        QMessageBox::Yes | QMessageBox::Cancel, this);
    box->setObjectName(QStringLiteral("deleteRunsConfirmation"));
    box->setInformativeText(QStringLiteral("Exported files stay on disk. This cannot be undone."));
    box->setDefaultButton(QMessageBox::Cancel);
    box->setAttribute(Qt::WA_DeleteOnClose);
    confirm_ = box;
    connect(box, &QMessageBox::finished, this, [this, box, ids](int) {
        if (box->clickedButton() == box->button(QMessageBox::Yes))
            deleteRuns(ids);
    });
    box->open();
}

void RunsPanel::deleteRuns(const QList<qint64>& ids)
{
    std::vector<int64_t> list(ids.begin(), ids.end());
    writeEdit(ids.size() == 1 ? QStringLiteral("Deleting run %1").arg(ids.front())
                              : QStringLiteral("Deleting %1 runs").arg(ids.size()),
        [list](Store& s) {
            for (int64_t id : list)
                s.deleteRun(id);
        },
        true);
}

void RunsPanel::updateButtons()
{
    const QList<qint64> ids = selectedRunIds();
    compare_->setEnabled(ids.size() >= 2);
    bool quantization = ids.size() == 1;
    if (quantization)
        if (const RunRecord* r = model_->run(model_->rowOf(ids.front())))
            quantization = r->kind == RunKind::Quantization && r->state == RunState::Done;
    export_->setEnabled(quantization);
    delete_->setEnabled(!ids.isEmpty());
}

} // namespace qs::ui
