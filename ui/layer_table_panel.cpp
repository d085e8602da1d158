#include "ui/layer_table_panel.h"

#include "ui/bar_delegate.h"
#include "ui/format.h"
#include "ui/icons.h"
#include "ui/layer_filter_proxy.h"
#include "ui/layer_table_model.h"
#include "ui/model_document.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QTableView>
#include <QVBoxLayout>

#include <set>

namespace qs::ui {

LayerTablePanel::LayerTablePanel(ModelDocument* doc, QWidget* parent) : QWidget(parent), doc_(doc)
{
    model_ = new LayerTableModel(doc, this);
    proxy_ = new LayerFilterProxy(this);
    proxy_->setSourceModel(model_);

    nameEdit_ = new QLineEdit(this);
    nameEdit_->setObjectName(QStringLiteral("layerNameFilter"));
    nameEdit_->setPlaceholderText(QStringLiteral("Filter layers by name  (* and ? as wildcards)"));
    nameEdit_->setClearButtonEnabled(true);
    nameEdit_->addAction(icon(IconId::Search), QLineEdit::LeadingPosition);
    opCombo_ = new QComboBox(this);
    opCombo_->setObjectName(QStringLiteral("layerOpFilter"));
    opCombo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    count_ = new QLabel(this);
    count_->setObjectName(QStringLiteral("layerCount"));
    count_->setProperty("role", "muted");

    view_ = new QTableView(this);
    view_->setObjectName(QStringLiteral("layerTable"));
    view_->setModel(proxy_);
    view_->setSortingEnabled(true);
    view_->sortByColumn(LayerTableModel::Index, Qt::AscendingOrder);
    view_->setSelectionBehavior(QAbstractItemView::SelectRows);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setAlternatingRowColors(true);
    view_->setShowGrid(false);
    view_->setWordWrap(false);
    view_->setTextElideMode(Qt::ElideMiddle);
    view_->verticalHeader()->hide();
    view_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 9);
    view_->horizontalHeader()->setHighlightSections(false);
    view_->horizontalHeader()->setStretchLastSection(false);
    view_->horizontalHeader()->setSectionsMovable(true);
    view_->horizontalHeader()->setContextMenuPolicy(Qt::CustomContextMenu);
    view_->setItemDelegateForColumn(LayerTableModel::SizeShare,
                                    new BarDelegate(LayerTableModel::BarRole, QColor(0x93, 0xc5, 0xfd, 150), this));
    connect(view_->horizontalHeader(), &QHeaderView::customContextMenuRequested, this,
            &LayerTablePanel::showHeaderMenu);

    auto* bar = new QHBoxLayout;
    bar->setContentsMargins(6, 6, 6, 4);
    bar->setSpacing(6);
    bar->addWidget(nameEdit_, 1);
    bar->addWidget(opCombo_);
    bar->addWidget(count_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(bar);
    layout->addWidget(view_, 1);

    connect(nameEdit_, &QLineEdit::textChanged, this, [this](const QString& t) {
        proxy_->setNameFilter(t);
        updateCount();
    });
    connect(opCombo_, &QComboBox::currentIndexChanged, this, [this] {
        proxy_->setOpFilter(opCombo_->currentData().toString());
        updateCount();
    });
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        rebuildOps();
        updateCount();
    });
    rebuildOps();
    updateCount();
    fitColumns();
    // The weight shape is in the inspector's header; the column is one click away.
    view_->setColumnHidden(LayerTableModel::WeightShape, true);
}

void LayerTablePanel::rebuildOps()
{
    const QString keep = opCombo_->currentData().toString();
    QSignalBlocker block(opCombo_);
    opCombo_->clear();
    opCombo_->addItem(QStringLiteral("All ops"), QString());
    std::map<QString, int> ops;
    for (int r = 0; r < doc_->layerCount(); ++r)
        ++ops[QString::fromStdString(doc_->layer(r)->summary.op)];
    for (const auto& [op, n] : ops)
        opCombo_->addItem(QStringLiteral("%1  (%2)").arg(op).arg(n), op);
    const int i = opCombo_->findData(keep);
    opCombo_->setCurrentIndex(i >= 0 ? i : 0);
    proxy_->setOpFilter(opCombo_->currentData().toString());
}

void LayerTablePanel::updateCount()
{
    const int all = model_->rowCount(), shown = proxy_->rowCount();
    count_->setText(shown == all ? countOf(all, QStringLiteral("layer"), QStringLiteral("layers")) : QStringLiteral("%1 of %2 layers").arg(shown).arg(all));
}

void LayerTablePanel::fitColumns()
{
    QHeaderView* h = view_->horizontalHeader();
    // Widths in average characters: enough for the header and typical values.
    const int ch = fontMetrics().averageCharWidth() + 1;
    static const int widths[LayerTableModel::ColumnCount] = {4, 18, 7, 13, 14, 8, 10, 8, 8, 8, 8, 8, 6};
    QFont bold = h->font();
    bold.setBold(true);
    const QFontMetrics headerMetrics(bold);
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) {
        // Room for the bold header and its sort arrow, too.
        const QString title = model_->headerData(c, Qt::Horizontal, Qt::DisplayRole).toString();
        h->resizeSection(c, std::max(widths[c] * ch, headerMetrics.horizontalAdvance(title) + 16));
    }
    h->setSectionResizeMode(LayerTableModel::Name, QHeaderView::Interactive);
}

QString LayerTablePanel::toTsv() const
{
    const QHeaderView* h = view_->horizontalHeader();
    QList<int> columns; // in the order the user arranged them
    for (int v = 0; v < h->count(); ++v) {
        const int c = h->logicalIndex(v);
        if (!view_->isColumnHidden(c))
            columns << c;
    }
    auto clean = [](QString s) { return s.replace(QLatin1Char('\t'), QLatin1Char(' ')).replace(QLatin1Char('\n'), QLatin1Char(' ')); };
    QStringList lines;
    QStringList head;
    for (int c : columns)
        head << clean(model_->headerData(c, Qt::Horizontal, Qt::DisplayRole).toString());
    lines << head.join(QLatin1Char('\t'));
    for (int r = 0; r < proxy_->rowCount(); ++r) {
        QStringList cells;
        for (int c : columns) {
            const QModelIndex i = proxy_->index(r, c);
            const QVariant raw = i.data(LayerTableModel::SortRole);
            const bool numeric = raw.isValid() && raw.typeId() == QMetaType::Double && c != LayerTableModel::Bits &&
                                 c != LayerTableModel::OutputShape && c != LayerTableModel::WeightShape;
            if (c == LayerTableModel::Name)
                cells << clean(raw.toString());
            else if (numeric)
                cells << QString::number(raw.toDouble(), 'g', 8);
            else
                cells << clean(i.data(Qt::DisplayRole).toString());
        }
        lines << cells.join(QLatin1Char('\t'));
    }
    return lines.join(QLatin1Char('\n')) + QLatin1Char('\n');
}

void LayerTablePanel::copyToClipboard() const
{
    QApplication::clipboard()->setText(toTsv());
}

void LayerTablePanel::clearFilters()
{
    nameEdit_->clear();
    opCombo_->setCurrentIndex(0);
}

void LayerTablePanel::showHeaderMenu(const QPoint& pos)
{
    QMenu menu(this);
    menu.addSection(QStringLiteral("Columns"));
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) {
        if (c == LayerTableModel::Name)
            continue; // the name is the row's identity
        QString label = model_->headerData(c, Qt::Horizontal, Qt::DisplayRole).toString();
        if (c == LayerTableModel::Index)
            label = QStringLiteral("# (graph order)");
        QAction* a = menu.addAction(label);
        a->setCheckable(true);
        a->setChecked(!view_->isColumnHidden(c));
        a->setToolTip(model_->headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString());
        connect(a, &QAction::toggled, this, [this, c](bool on) { view_->setColumnHidden(c, !on); });
    }
    menu.addSeparator();
    connect(menu.addAction(QStringLiteral("Sort in graph order")), &QAction::triggered, this,
            [this] { view_->sortByColumn(LayerTableModel::Index, Qt::AscendingOrder); });
    connect(menu.addAction(QStringLiteral("Reset columns")), &QAction::triggered, this, [this] {
        for (int c = 0; c < LayerTableModel::ColumnCount; ++c)
            view_->setColumnHidden(c, false);
        fitColumns();
    });
    menu.exec(view_->horizontalHeader()->mapToGlobal(pos));
}

QByteArray LayerTablePanel::saveHeaderState() const
{
    return view_->horizontalHeader()->saveState();
}

void LayerTablePanel::restoreHeaderState(const QByteArray& state)
{
    if (!state.isEmpty())
        view_->horizontalHeader()->restoreState(state);
}

} // namespace qs::ui
