#include "ui/widgets/plot_view.h"

#include "ui/widgets/elided_label.h"
#include "ui/widgets/icons.h"
#include "ui/widgets/theme.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QClipboard>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMimeData>
#include <QSettings>
#include <QToolButton>
#include <QVBoxLayout>

namespace qs::ui {
namespace {

QToolButton* smallButton(QWidget* parent, const QIcon& icon, const QString& tip)
{
    auto* b = new QToolButton(parent);
    b->setIcon(icon);
    b->setToolTip(tip);
    b->setAutoRaise(true);
    b->setIconSize(QSize(16, 16));
    return b;
}

} // namespace

PlotView::PlotView(const QString& title, QWidget* parent) : QWidget(parent)
{
    title_ = new QLabel(title, this);
    title_->setProperty("role", "section");
    subtitle_ = new ElidedLabel(this);
    subtitle_->setProperty("role", "muted");
    tools_ = new QHBoxLayout;
    tools_->setSpacing(2);
    tools_->setContentsMargins(0, 0, 0, 0);

    plot_ = new QCustomPlot(this);
    plot_->setMinimumHeight(120);
    plot_->setContextMenuPolicy(Qt::CustomContextMenu);
    plot_->setNoAntialiasingOnDrag(true);
    styleAxes(plot_);
    connect(plot_, &QCustomPlot::customContextMenuRequested, this, &PlotView::showMenu);

    message_ = new QLabel(plot_);
    message_->setAlignment(Qt::AlignCenter);
    message_->setWordWrap(true);
    message_->setStyleSheet(QStringLiteral("color: #6b7280; background: transparent;"));
    message_->hide();

    auto* save = smallButton(this, icon(IconId::Save), QStringLiteral("Save as PNG or PDF\u2026"));
    auto* copy = smallButton(this, icon(IconId::Copy), QStringLiteral("Copy the plot as an image"));
    connect(save, &QToolButton::clicked, this, &PlotView::saveAs);
    connect(copy, &QToolButton::clicked, this, &PlotView::copyImage);

    auto* head = new QHBoxLayout;
    head->setContentsMargins(8, 2, 4, 0);
    head->setSpacing(6);
    head->addWidget(title_);
    head->addWidget(subtitle_, 1);
    head->addLayout(tools_);
    head->addWidget(save);
    head->addWidget(copy);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(head);
    layout->addWidget(plot_, 1);
}

void PlotView::styleAxes(QCustomPlot* plot)
{
    plot->setBackground(Qt::white);
    plot->axisRect()->setBackground(Qt::white);
    QFont tick = QApplication::font();
    tick.setPointSizeF(7.5);
    QFont label = QApplication::font();
    label.setPointSizeF(8);
    for (QCPAxis* axis : {plot->xAxis, plot->yAxis}) {
        axis->setBasePen(QPen(QColor(0xb8, 0xbe, 0xc7)));
        axis->setTickPen(QPen(QColor(0xb8, 0xbe, 0xc7)));
        axis->setSubTickPen(Qt::NoPen);
        axis->setTickLabelFont(tick);
        axis->setTickLabelColor(theme::mutedText);
        axis->setLabelFont(label);
        axis->setLabelColor(theme::mutedText);
        axis->grid()->setPen(QPen(QColor(0xee, 0xf0, 0xf3)));
        axis->grid()->setZeroLinePen(QPen(QColor(0xd5, 0xd9, 0xdf)));
        axis->setTickLength(0, 3);
    }
    plot->axisRect()->setMargins(QMargins(0, 0, 0, 0));
    plot->axisRect()->setAutoMargins(QCP::msAll);
    plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    // Filled areas are axis-aligned steps or envelopes: antialiasing them costs
    // most of a redraw and shows no difference.
    plot->setNotAntialiasedElements(QCP::aeFills);
    plot->axisRect()->setRangeDrag(Qt::Horizontal);
    plot->axisRect()->setRangeZoom(Qt::Horizontal);
}

void PlotView::addTool(QWidget* w)
{
    tools_->addWidget(w);
}

QToolButton* PlotView::addToggle(const QIcon& icon, const QString& tip)
{
    auto* b = smallButton(this, icon, tip);
    b->setCheckable(true);
    tools_->addWidget(b);
    return b;
}

void PlotView::setTitle(const QString& title)
{
    title_->setText(title);
}

void PlotView::setSubtitle(const QString& text)
{
    subtitle_->setFullText(text);
}

void PlotView::setMessage(const QString& text)
{
    message_->setText(text);
    message_->setVisible(!text.isEmpty());
    for (QCPAxis* axis : {plot_->xAxis, plot_->yAxis})
        axis->setVisible(text.isEmpty());
    message_->setGeometry(plot_->rect().adjusted(16, 0, -16, 0));
    message_->raise();
}

bool PlotView::hasMessage() const
{
    return message_->isVisible() || !message_->text().isEmpty();
}

bool PlotView::savePng(const QString& path) const
{
    return plot_->savePng(path, plot_->width(), plot_->height(), 2.0);
}

bool PlotView::savePdf(const QString& path) const
{
    return plot_->savePdf(path, plot_->width(), plot_->height());
}

void PlotView::copyImage() const
{
    QApplication::clipboard()->setPixmap(plot_->toPixmap(plot_->width(), plot_->height(), 2.0));
}

void PlotView::saveAs()
{
    QSettings settings;
    const QString dir = settings.value(QStringLiteral("plots/lastDir"), QDir::homePath()).toString();
    QString filter;
    const QString path = QFileDialog::getSaveFileName(this, QStringLiteral("Save plot"),
                                                      QDir(dir).filePath(stem_ + QStringLiteral(".png")),
                                                      QStringLiteral("PNG image (*.png);;PDF document (*.pdf)"), &filter);
    if (path.isEmpty())
        return;
    settings.setValue(QStringLiteral("plots/lastDir"), QFileInfo(path).absolutePath());
    const bool pdf = path.endsWith(QStringLiteral(".pdf"), Qt::CaseInsensitive) ||
                     (filter.startsWith(QStringLiteral("PDF")) && !path.endsWith(QStringLiteral(".png"), Qt::CaseInsensitive));
    QString target = path;
    if (pdf && !target.endsWith(QStringLiteral(".pdf"), Qt::CaseInsensitive))
        target += QStringLiteral(".pdf");
    if (!(pdf ? savePdf(target) : savePng(target)))
        QMessageBox::warning(this, QStringLiteral("Save plot"), QStringLiteral("Could not write %1").arg(target));
}

void PlotView::showMenu(const QPoint& pos)
{
    QMenu menu(this);
    connect(menu.addAction(icon(IconId::Save), QStringLiteral("Save as PNG or PDF\u2026")), &QAction::triggered, this,
            &PlotView::saveAs);
    connect(menu.addAction(icon(IconId::Copy), QStringLiteral("Copy image")), &QAction::triggered, this,
            &PlotView::copyImage);
    QAction* data = menu.addAction(QStringLiteral("Copy data as CSV"));
    data->setEnabled(bool(csv_));
    connect(data, &QAction::triggered, this, [this] { QApplication::clipboard()->setText(csv()); });
    menu.addSeparator();
    connect(menu.addAction(QStringLiteral("Reset zoom")), &QAction::triggered, this, [this] {
        plot_->rescaleAxes();
        plot_->replot();
    });
    menu.exec(plot_->mapToGlobal(pos));
}

} // namespace qs::ui
