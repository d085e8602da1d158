#include "ui/graph/graph_panel.h"

#include "ui/document/layer_metric.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/graph/graph_view.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"

#include <QComboBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QShortcut>
#include <QStandardItemModel>
#include <QToolButton>
#include <QVBoxLayout>

namespace qs::ui {
namespace {

QToolButton* toolButton(QWidget* parent, IconId id, const QString& tip)
{
    auto* b = new QToolButton(parent);
    b->setIcon(icon(id));
    b->setToolTip(tip);
    b->setAutoRaise(true);
    b->setIconSize(QSize(18, 18));
    return b;
}

} // namespace

GraphPanel::GraphPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), doc_(studio.document())
{
    view_ = new GraphView(doc_, studio.selection(), this);
    connect(this, &GraphPanel::directionChanged, &studio, &Studio::setGraphDirection);

    auto* label = new QLabel(QStringLiteral("Color by"), this);
    label->setProperty("role", "muted");
    colorBy_ = new QComboBox(this);
    colorBy_->setObjectName(QStringLiteral("graphColorBy"));
    for (int m = 0; m < layerMetricCount; ++m) {
        colorBy_->addItem(metricName(LayerMetric(m)), m);
        colorBy_->setItemData(m, metricExplanation(LayerMetric(m)), Qt::ToolTipRole);
    }
    colorBy_->setCurrentIndex(int(LayerMetric::WeightKurtosis));
    connect(colorBy_, &QComboBox::currentIndexChanged, this,
            [this] { view_->setColorMetric(LayerMetric(colorBy_->currentData().toInt())); });

    info_ = new QLabel(this);
    info_->setProperty("role", "muted");
    info_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred); // gives way to the tools on a narrow window
    zoomLabel_ = new QLabel(this);
    zoomLabel_->setProperty("role", "muted");
    zoomLabel_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("400 %")) + 4);
    zoomLabel_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
    auto* zoomOut = toolButton(this, IconId::ZoomOut, QStringLiteral("Zoom out (Ctrl+-)"));
    auto* zoomIn = toolButton(this, IconId::ZoomIn, QStringLiteral("Zoom in (Ctrl++)"));
    auto* fit = toolButton(this, IconId::Fit, QStringLiteral("Fit the graph (Ctrl+0, or double-click the canvas)"));
    directionButton_ = toolButton(this, IconId::Direction, QString());

    // Search by name or op type: Enter for the next match, Shift+Enter for the previous.
    search_ = new QLineEdit(this);
    search_->setObjectName(QStringLiteral("graphSearch"));
    search_->setPlaceholderText(QStringLiteral("Find node or op (Ctrl+F)"));
    search_->setClearButtonEnabled(true);
    search_->setFixedWidth(fontMetrics().horizontalAdvance(QStringLiteral("Find node or op (Ctrl+F)")) + 40);
    search_->addAction(icon(IconId::Search), QLineEdit::LeadingPosition);
    searchCount_ = new QLabel(this);
    searchCount_->setProperty("role", "muted");
    auto* previous = new QToolButton(this);
    previous->setArrowType(Qt::UpArrow);
    previous->setAutoRaise(true);
    previous->setToolTip(QStringLiteral("Previous match (Shift+Enter)"));
    auto* next = new QToolButton(this);
    next->setArrowType(Qt::DownArrow);
    next->setAutoRaise(true);
    next->setToolTip(QStringLiteral("Next match (Enter)"));
    auto find = [this](bool backward) { view_->findNode(search_->text(), backward); };
    connect(search_, &QLineEdit::returnPressed, this, [find] {
        find(QGuiApplication::keyboardModifiers() & Qt::ShiftModifier);
    });
    connect(search_, &QLineEdit::textChanged, this, [this](const QString& text) {
        if (text.trimmed().isEmpty())
            view_->findNode(QString());
    });
    connect(previous, &QToolButton::clicked, this, [find] { find(true); });
    connect(next, &QToolButton::clicked, this, [find] { find(false); });
    connect(view_, &GraphView::searchChanged, this, [this](int match, int count) {
        searchCount_->setText(search_->text().trimmed().isEmpty() ? QString()
                              : count == 0                        ? QStringLiteral("no match")
                                                                  : QStringLiteral("%1 of %2").arg(match + 1).arg(count));
    });
    auto* findShortcut = new QShortcut(QKeySequence::Find, this, nullptr, nullptr, Qt::WidgetWithChildrenShortcut);
    connect(findShortcut, &QShortcut::activated, this, [this] {
        search_->setFocus();
        search_->selectAll();
    });

    // Repeated blocks and the minimap.
    auto* expandAll = new QToolButton(this);
    expandAll->setText(QStringLiteral("Expand"));
    expandAll->setToolTip(QStringLiteral("Expand every repeated block"));
    expandAll->setAutoRaise(true);
    auto* collapseAll = new QToolButton(this);
    collapseAll->setText(QStringLiteral("Collapse"));
    collapseAll->setToolTip(QStringLiteral("Collapse every repeated block (transformer layers, ResNet stages) into one box"));
    collapseAll->setAutoRaise(true);
    connect(expandAll, &QToolButton::clicked, this, [this] { view_->setAllBlocksCollapsed(false); });
    connect(collapseAll, &QToolButton::clicked, this, [this] { view_->setAllBlocksCollapsed(true); });
    auto* minimap = new QToolButton(this);
    minimap->setObjectName(QStringLiteral("graphMinimapToggle"));
    minimap->setText(QStringLiteral("Map"));
    minimap->setToolTip(QStringLiteral("Show the overview while part of the graph is out of view"));
    minimap->setCheckable(true);
    minimap->setChecked(true);
    minimap->setAutoRaise(true);
    connect(minimap, &QToolButton::toggled, view_, &GraphView::setMinimapEnabled);
    auto updateBlockButtons = [this, expandAll, collapseAll] {
        const auto& layout = doc_->layout();
        const bool any = layout && !layout->blocks.empty();
        expandAll->setVisible(any);
        collapseAll->setVisible(any);
    };
    connect(doc_, &ModelDocument::layoutChanged, this, updateBlockButtons);
    connect(doc_, &ModelDocument::modelChanged, this, updateBlockButtons);
    updateBlockButtons();
    connect(zoomOut, &QToolButton::clicked, view_, &GraphView::zoomOut);
    connect(zoomIn, &QToolButton::clicked, view_, &GraphView::zoomIn);
    connect(fit, &QToolButton::clicked, view_, &GraphView::fitGraph);
    connect(directionButton_, &QToolButton::clicked, this, [this] {
        setDirection(direction_ == GraphDirection::LeftToRight ? GraphDirection::TopToBottom
                                                               : GraphDirection::LeftToRight);
        emit directionChanged(direction_);
    });
    connect(view_, &GraphView::zoomChanged, this,
            [this](double z) { zoomLabel_->setText(QString::number(int(std::lround(z * 100))) + QStringLiteral(" %")); });
    setDirection(direction_);

    auto* bar = new QHBoxLayout;
    bar->setContentsMargins(8, 4, 6, 4);
    bar->setSpacing(6);
    bar->addWidget(label);
    bar->addWidget(colorBy_);
    bar->addSpacing(10);
    bar->addWidget(info_, 1);
    bar->addWidget(search_);
    bar->addWidget(searchCount_);
    bar->addWidget(previous);
    bar->addWidget(next);
    bar->addSpacing(6);
    bar->addWidget(collapseAll);
    bar->addWidget(expandAll);
    bar->addWidget(minimap);
    bar->addWidget(directionButton_);
    bar->addWidget(zoomOut);
    bar->addWidget(zoomLabel_);
    bar->addWidget(zoomIn);
    bar->addWidget(fit);
    auto* barWidget = new QWidget(this);
    barWidget->setObjectName(QStringLiteral("graphToolBar"));
    barWidget->setLayout(bar);
    barWidget->setStyleSheet(QStringLiteral("#graphToolBar { background: #f6f7f9; border-bottom: 1px solid #e1e4e8; }"));

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(barWidget);
    layout->addWidget(view_, 1);

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        updateMetricItems();
        updateInfo();
    });
    connect(doc_, &ModelDocument::activationsChanged, this, &GraphPanel::updateMetricItems);
    connect(doc_, &ModelDocument::storedChanged, this, &GraphPanel::updateMetricItems);
    updateMetricItems();
    updateInfo();
}

void GraphPanel::setDirection(GraphDirection d)
{
    direction_ = d;
    directionButton_->setToolTip(d == GraphDirection::LeftToRight ? QStringLiteral("Lay out top to bottom")
                                                                 : QStringLiteral("Lay out left to right"));
}

void GraphPanel::updateMetricItems()
{
    // Metrics without numbers stay selectable (the legend says why) but read as greyed.
    auto* model = qobject_cast<QStandardItemModel*>(colorBy_->model());
    for (int m = 0; m < layerMetricCount; ++m) {
        const bool available = metricAvailable(LayerMetric(m), *doc_);
        if (QStandardItem* item = model->item(m))
            item->setForeground(available ? QBrush() : QBrush(QColor(0xa0, 0xa6, 0xae)));
    }
}

void GraphPanel::updateInfo()
{
    const auto& m = doc_->model();
    if (!m) {
        info_->clear();
        return;
    }
    info_->setText(QStringLiteral("%1 \u00B7 %2 \u00B7 %3 parameters")
                       .arg(countOf(int64_t(m->graph->nodes.size()), QStringLiteral("operator"), QStringLiteral("operators")),
                            countOf(int64_t(m->layers.size()), QStringLiteral("layer"), QStringLiteral("layers")))
                       .arg(formatCompact(double(m->totalParams))));
}

} // namespace qs::ui
