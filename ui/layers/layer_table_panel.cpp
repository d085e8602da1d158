#include "ui/layers/layer_table_panel.h"

#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/layers/config_footer.h"
#include "ui/layers/layer_filter_proxy.h"
#include "ui/layers/layer_table_model.h"
#include "ui/layers/quant_field_delegate.h"
#include "ui/widgets/bar_delegate.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"

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
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <set>

namespace qs::ui {

LayerTablePanel::LayerTablePanel(Studio& studio, QWidget* parent) : QWidget(parent), doc_(studio.document())
{
    model_ = new LayerTableModel(doc_, this);
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
    // Several rows at once: the configuration columns edit every selected row together.
    view_->setSelectionMode(QAbstractItemView::ExtendedSelection);
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

    // A filter that hides the selected rows selects the row that becomes current, as a
    // single-selection table does (the inspector keeps showing a layer).
    auto keepSelection = [this] {
        const QModelIndex current = view_->currentIndex();
        if (!view_->selectionModel()->hasSelection() && current.isValid())
            view_->selectionModel()->select(current, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    };
    connect(nameEdit_, &QLineEdit::textChanged, this, [this, keepSelection](const QString& t) {
        proxy_->setNameFilter(t);
        keepSelection();
        updateCount();
    });
    connect(opCombo_, &QComboBox::currentIndexChanged, this, [this, keepSelection] {
        proxy_->setOpFilter(opCombo_->currentData().toString());
        keepSelection();
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

    studio.selection()->attach(proxy_, view_->selectionModel());
    connect(studio.selection(), &LayerSelection::revealRequested, this, &LayerTablePanel::clearFilters);
    setConfigDocument(studio.config());
    addFooter(new ConfigFooter(studio.config(), this));
}

void LayerTablePanel::setConfigDocument(QuantConfigDocument* config)
{
    model_->setConfigDocument(config);
    fieldDelegate_ = new QuantFieldDelegate(config, view_, this);
    for (int c = LayerTableModel::WeightBits; c <= LayerTableModel::Calibrator; ++c)
        view_->setItemDelegateForColumn(c, fieldDelegate_);
    view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                           QAbstractItemView::AnyKeyPressed);
    connect(fieldDelegate_, &QuantFieldDelegate::editRefused, this, [this](const QString& message) {
        QToolTip::showText(view_->mapToGlobal(view_->visualRect(view_->currentIndex()).bottomLeft()), message, view_);
    });
    view_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(view_, &QWidget::customContextMenuRequested, this, &LayerTablePanel::showRowMenu);
}

void LayerTablePanel::addFooter(QWidget* footer)
{
    static_cast<QVBoxLayout*>(layout())->addWidget(footer);
}

QList<int> LayerTablePanel::selectedLayerRows() const
{
    QList<int> rows;
    for (const QModelIndex& r : view_->selectionModel()->selectedRows())
        if (const int row = r.data(LayerTableModel::LayerRowRole).toInt(); row >= 0) // not attention operands
            rows << row;
    std::sort(rows.begin(), rows.end());
    return rows;
}

// Bulk edit by menu: every choice of every configuration column, for the selected rows.
void LayerTablePanel::showRowMenu(const QPoint& pos)
{
    QuantConfigDocument* config = model_->configDocument();
    const QList<int> rows = selectedLayerRows();
    if (!config || rows.isEmpty())
        return;
    QMenu menu(this);
    menu.addSection(rows.size() == 1 ? QStringLiteral("Layer %1").arg(QString::fromStdString(config->layerNames()[std::size_t(rows.front())]))
                                     : QStringLiteral("%1 selected layers").arg(rows.size()));
    using Field = QuantConfigDocument::Field;
    const std::pair<int, Field> columns[] = {{LayerTableModel::WeightBits, Field::WeightBits},
                                             {LayerTableModel::ActBits, Field::ActivationBits},
                                             {LayerTableModel::Granularity, Field::Granularity},
                                             {LayerTableModel::Calibrator, Field::Calibrator}};
    for (const auto& [column, field] : columns) {
        QString title = QuantConfigDocument::fieldName(field);
        title[0] = title[0].toUpper();
        QMenu* sub = menu.addMenu(title);
        const QVariant current = config->value(rows.front(), field);
        for (const QString& choice : QuantFieldDelegate::choices(column)) {
            const bool bits = field == Field::WeightBits || field == Field::ActivationBits;
            QAction* a = sub->addAction(bits && choice.toInt() >= 16 ? QStringLiteral("FP%1 (float)").arg(choice) : choice);
            a->setCheckable(true);
            a->setChecked(current.toString() == choice);
            const QVariant value = bits ? QVariant(choice.toInt()) : QVariant(choice);
            connect(a, &QAction::triggered, this, [config, rows, field, value] { config->setLayers(rows, field, value); });
        }
    }
    if (rows.size() == 1 && !rowActions_.empty()) {
        menu.addSeparator();
        for (const auto& [text, action] : rowActions_)
            connect(menu.addAction(text), &QAction::triggered, this, [row = rows.front(), action = action] { action(row); });
    }
    menu.exec(view_->viewport()->mapToGlobal(pos));
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
    static const int widths[LayerTableModel::ColumnCount] = {4, 18, 7, 13, 14, 8, 10, 8, 8, 8, 8, 8, 6, 5, 5, 10, 14};
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
