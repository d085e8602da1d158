#include "ui/graph/graph_panel.h"

#include "analysis/optimizer_overlay.h"
#include "runtime/passes/passes.h"
#include "ui/document/layer_metric.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/graph/graph_view.h"
#include "ui/jobs/job_runner.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"

#include <QComboBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
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
    : QWidget(parent), doc_(studio.document()), jobs_(studio.jobs())
{
    view_ = new GraphView(doc_, studio.selection(), this);
    connect(view_, &GraphView::rowLimitChanged, &studio, &Studio::setGraphRowLimit);
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
    colorBy_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    colorBy_->setMinimumContentsLength(10);
    connect(colorBy_, &QComboBox::currentIndexChanged, this,
            [this] { view_->setColorMetric(LayerMetric(colorBy_->currentData().toInt())); });

    info_ = new QLabel(this);
    info_->setProperty("role", "muted");
    info_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred); // gives way to the tools on a narrow window
    info_->installEventFilter(this);
    zoomLabel_ = new QLabel(this);
    zoomLabel_->setProperty("role", "muted");
    zoomLabel_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("400 %")) + 4);
    zoomLabel_->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
    auto* zoomOut = toolButton(this, IconId::ZoomOut, QStringLiteral("Zoom out (Ctrl+-)"));
    auto* zoomIn = toolButton(this, IconId::ZoomIn, QStringLiteral("Zoom in (Ctrl++)"));
    auto* fit = toolButton(this, IconId::Fit, QStringLiteral("Fit the graph (Ctrl+0, or double-click the canvas)"));
    directionButton_ = toolButton(this, IconId::Direction, QString());

    // Search by name or op type: Enter (F3) for the next match, Shift+Enter (Shift+F3) for
    // the previous; "n of m" stands in the info line while a search is on.
    search_ = new QLineEdit(this);
    search_->setObjectName(QStringLiteral("graphSearch"));
    search_->setPlaceholderText(QStringLiteral("Find (Ctrl+F)"));
    search_->setToolTip(QStringLiteral("Find a node by name or op type: Enter or F3 for the next match, "
                                       "Shift+Enter or Shift+F3 for the previous"));
    search_->setClearButtonEnabled(true);
    search_->setMinimumWidth(60);
    search_->setMaximumWidth(220);
    search_->addAction(icon(IconId::Search), QLineEdit::LeadingPosition);
    auto find = [this](bool backward) { view_->findNode(search_->text(), backward); };
    connect(search_, &QLineEdit::returnPressed, this,
            [find] { find(QGuiApplication::keyboardModifiers() & Qt::ShiftModifier); });
    connect(search_, &QLineEdit::textChanged, this, [this](const QString& text) {
        if (text.trimmed().isEmpty())
            view_->findNode(QString());
    });
    connect(view_, &GraphView::searchChanged, this, [this](int match, int count) {
        searchStatus_ = search_->text().trimmed().isEmpty() ? QString()
                        : count == 0 ? QStringLiteral("no node matches \u201C%1\u201D").arg(search_->text().trimmed())
                                     : QStringLiteral("match %1 of %2").arg(match + 1).arg(count);
        updateInfo();
    });
    auto shortcut = [this](const QKeySequence& keys, auto slot) {
        connect(new QShortcut(keys, this, nullptr, nullptr, Qt::WidgetWithChildrenShortcut), &QShortcut::activated, this, slot);
    };
    shortcut(QKeySequence::Find, [this] {
        search_->setFocus();
        search_->selectAll();
    });
    shortcut(QKeySequence(Qt::Key_F3), [find] { find(false); });
    shortcut(QKeySequence(Qt::SHIFT | Qt::Key_F3), [find] { find(true); });

    // Repeated blocks and the minimap, in one menu.
    auto* viewMenuButton = new QToolButton(this);
    viewMenuButton->setObjectName(QStringLiteral("graphViewMenu"));
    viewMenuButton->setText(QStringLiteral("Blocks"));
    viewMenuButton->setToolTip(QStringLiteral("Repeated blocks (transformer layers, ResNet stages: click one to expand it, "
                                              "its frame's header to collapse it) and the overview"));
    viewMenuButton->setPopupMode(QToolButton::InstantPopup);
    viewMenuButton->setAutoRaise(true);
    auto* viewMenu = new QMenu(viewMenuButton);
    QAction* collapseAll = viewMenu->addAction(QStringLiteral("Collapse All Blocks"), this, [this] { view_->setAllBlocksCollapsed(true); });
    QAction* expandAll = viewMenu->addAction(QStringLiteral("Expand All Blocks"), this, [this] { view_->setAllBlocksCollapsed(false); });
    viewMenu->addSeparator();
    minimapAction_ = viewMenu->addAction(QStringLiteral("Overview Map"));
    minimapAction_->setCheckable(true);
    minimapAction_->setChecked(true);
    minimapAction_->setToolTip(QStringLiteral("Show the overview while part of the graph is out of view"));
    connect(minimapAction_, &QAction::toggled, view_, &GraphView::setMinimapEnabled);
    viewMenuButton->setMenu(viewMenu);
    // The optimizer overlay: off by default, off again when another model opens.
    optimizerButton_ = new QToolButton(this);
    optimizerButton_->setObjectName(QStringLiteral("graphOptimizerOverlay"));
    optimizerButton_->setText(QStringLiteral("Optimizer"));
    optimizerButton_->setCheckable(true);
    optimizerButton_->setAutoRaise(true);
    optimizerButton_->setToolTip(QStringLiteral(
        "Show what the runtime's graph optimizer does to each node (QS_RUNTIME_PASSES): fused into another node, "
        "folded to a constant, removed or rewritten, and by which pass. Quantization and analysis keep the "
        "original layers; this is the plan that runs."));
    connect(optimizerButton_, &QToolButton::toggled, this, &GraphPanel::setOptimizerOverlay);
    connect(jobs_, &JobRunner::jobFinished, this,
        [this](int id, const QString&, JobOutcome outcome, const QString& message, double) {
            if (outcome != JobOutcome::Failed || id != optimizerJob_)
                return;
            optimizerText_ = QStringLiteral("optimizer: ") + message; // e.g. a QS_RUNTIME_PASSES typo
            updateInfo();
        });
    auto updateBlockButtons = [this, collapseAll, expandAll] {
        const auto& layout = doc_->layout();
        const bool any = layout && !layout->blocks.empty();
        collapseAll->setEnabled(any);
        expandAll->setEnabled(any);
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
    bar->addWidget(optimizerButton_);
    bar->addWidget(viewMenuButton);
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
        if (optimizerButton_->isChecked())
            optimizerButton_->setChecked(false); // clears the overlay
        updateMetricItems();
        updateInfo();
    });
    connect(doc_, &ModelDocument::activationsChanged, this, &GraphPanel::updateMetricItems);
    connect(doc_, &ModelDocument::storedChanged, this, &GraphPanel::updateMetricItems);
    connect(doc_, &ModelDocument::weightsChanged, this, &GraphPanel::updateMetricItems);
    updateMetricItems();
    updateInfo();
}

void GraphPanel::setDirection(GraphDirection d)
{
    direction_ = d;
    directionButton_->setToolTip(d == GraphDirection::LeftToRight ? QStringLiteral("Lay out top to bottom")
                                                                 : QStringLiteral("Lay out left to right"));
}

void GraphPanel::clearOptimizerOverlay()
{
    jobs_->cancelKind(QStringLiteral("graph-optimizer"));
    view_->setNodeBadges({});
    optimizerText_.clear();
    updateInfo();
}

void GraphPanel::setOptimizerOverlay(bool on)
{
    if (optimizerButton_->isChecked() != on) {
        optimizerButton_->setChecked(on); // comes back here through toggled()
        return;
    }
    clearOptimizerOverlay();
    const auto& m = doc_->model();
    if (!on || !m)
        return;
    optimizerText_ = QStringLiteral("optimizer: running the passes\u2026");
    updateInfo();
    std::shared_ptr<const Graph> graph = m->graph;
    optimizerJob_ = jobs_->start(QStringLiteral("graph-optimizer"), QStringLiteral("Graph optimizer overlay"),
        [this, graph](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            auto overlay = std::make_shared<OptimizerOverlay>(
                optimizerOverlay(*graph, rt::passSpecFromEnv(), progress, cancel));
            return [this, graph, overlay] {
                if (!optimizerButton_->isChecked() || !doc_->model() || doc_->model()->graph != graph)
                    return; // switched off, or another model opened meanwhile
                std::map<std::string, int> index;
                for (std::size_t i = 0; i < graph->nodes.size(); ++i)
                    index.emplace(graph->nodes[i].name, int(i));
                std::map<int, QString> badges, tips;
                for (const auto& [name, fate] : overlay->fates) {
                    auto it = index.find(name);
                    if (it == index.end())
                        continue;
                    const QString kind = QString::fromLatin1(optimizerFateName(fate.kind));
                    badges[it->second] = kind + QStringLiteral(" \u00B7 ") + QString::fromStdString(fate.pass);
                    QString tip = QStringLiteral("%1: %2 by the %3 pass")
                                      .arg(QString::fromStdString(name), kind, QString::fromStdString(fate.pass));
                    if (fate.kind == OptimizerNodeFate::Kind::Fused)
                        tip += QStringLiteral(" into %1").arg(QString::fromStdString(fate.into));
                    tips[it->second] = tip;
                }
                view_->setNodeBadges(std::move(badges), std::move(tips));
                QStringList perPass;
                for (const auto& [pass, n] : overlay->changedByPass)
                    perPass << QStringLiteral("%1 %2").arg(QString::fromStdString(pass)).arg(n);
                optimizerText_ = QStringLiteral("optimizer: %1 \u2192 %2 operators, %3 changed (%4)")
                                     .arg(overlay->nodesBefore)
                                     .arg(overlay->nodesAfter)
                                     .arg(overlay->fates.size())
                                     .arg(perPass.isEmpty() ? QStringLiteral("no pass applies") : perPass.join(QStringLiteral(", ")));
                updateInfo();
                emit optimizerOverlayShown(int(overlay->fates.size()));
            };
        });
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
    infoText_ = searchStatus_;
    if (searchStatus_.isEmpty() && !optimizerText_.isEmpty())
        infoText_ = optimizerText_;
    else if (m && searchStatus_.isEmpty())
        infoText_ = QStringLiteral("%1 \u00B7 %2 \u00B7 %3 parameters")
                       .arg(countOf(int64_t(m->graph->nodes.size()), QStringLiteral("operator"), QStringLiteral("operators")),
                            countOf(int64_t(m->layers.size()), QStringLiteral("layer"), QStringLiteral("layers")))
                       .arg(formatCompact(double(m->totalParams)));
    info_->setToolTip(infoText_);
    info_->setText(info_->fontMetrics().elidedText(infoText_, Qt::ElideRight, info_->width()));
}

bool GraphPanel::eventFilter(QObject* watched, QEvent* event)
{
    if (watched == info_ && event->type() == QEvent::Resize)
        info_->setText(info_->fontMetrics().elidedText(infoText_, Qt::ElideRight, info_->width()));
    return QWidget::eventFilter(watched, event);
}

} // namespace qs::ui
