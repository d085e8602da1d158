#include "ui/whatif/range_editor.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

namespace qs::ui {
namespace {

// Near-black: apart from the calibrators' coloured dashed lines and both histograms.
const QColor lineColor(0x11, 0x18, 0x27);

} // namespace

RangeEditor::RangeEditor(QCustomPlot* plot, QObject* parent) : QObject(parent), plot_(plot)
{
    connect(plot_, &QCustomPlot::mousePress, this, &RangeEditor::press);
    connect(plot_, &QCustomPlot::mouseMove, this, &RangeEditor::move);
    connect(plot_, &QCustomPlot::mouseRelease, this, &RangeEditor::release);
    connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { place(); });
}

void RangeEditor::restore()
{
    if (!shown_) {
        for (QCPAbstractItem* i : {static_cast<QCPAbstractItem*>(loLine_.data()), static_cast<QCPAbstractItem*>(hiLine_.data()),
                                   static_cast<QCPAbstractItem*>(loShade_.data()), static_cast<QCPAbstractItem*>(hiShade_.data())})
            if (i)
                plot_->removeItem(i);
        return;
    }
    for (QPointer<QCPItemRect>* r : {&loShade_, &hiShade_}) {
        if (*r)
            continue;
        auto* rect = new QCPItemRect(plot_);
        rect->setPen(Qt::NoPen);
        rect->setBrush(QColor(lineColor.red(), lineColor.green(), lineColor.blue(), 22));
        rect->setSelectable(false);
        rect->setClipToAxisRect(true);
        rect->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
        rect->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
        *r = rect;
    }
    for (QPointer<QCPItemStraightLine>* l : {&loLine_, &hiLine_}) {
        if (*l)
            continue;
        auto* line = new QCPItemStraightLine(plot_);
        line->setPen(QPen(lineColor, 2.0));
        line->setSelectable(false);
        line->setClipToAxisRect(true);
        line->setLayer(QStringLiteral("overlay"));
        *l = line;
    }
    place();
}

void RangeEditor::place()
{
    if (!loLine_ || !hiLine_)
        return;
    loLine_->point1->setCoords(lo_, 0);
    loLine_->point2->setCoords(lo_, 1);
    hiLine_->point1->setCoords(hi_, 0);
    hiLine_->point2->setCoords(hi_, 1);
    if (loShade_ && hiShade_) {
        const QCPRange x = plot_->xAxis->range();
        loShade_->topLeft->setCoords(std::min(x.lower, lo_), 0);
        loShade_->bottomRight->setCoords(lo_, 1);
        hiShade_->topLeft->setCoords(hi_, 0);
        hiShade_->bottomRight->setCoords(std::max(x.upper, hi_), 1);
    }
}

void RangeEditor::setShown(bool shown)
{
    shown_ = shown;
    restore();
    plot_->replot(QCustomPlot::rpQueuedReplot);
}

void RangeEditor::setRange(double lo, double hi)
{
    if (!(lo < hi) || !std::isfinite(lo) || !std::isfinite(hi))
        return;
    lo_ = lo;
    hi_ = hi;
    place();
    plot_->replot(QCustomPlot::rpQueuedReplot);
    emit rangeChanged(lo_, hi_);
}

void RangeEditor::finishEdit()
{
    emit rangeReleased(lo_, hi_);
}

void RangeEditor::press(QMouseEvent* e)
{
    if (!shown_ || e->button() != Qt::LeftButton || !loLine_ || !hiLine_)
        return;
    const double x = e->position().x();
    const double dLo = std::abs(plot_->xAxis->coordToPixel(lo_) - x);
    const double dHi = std::abs(plot_->xAxis->coordToPixel(hi_) - x);
    if (std::min(dLo, dHi) > grabPixels)
        return;
    drag_ = dLo <= dHi ? Drag::Lo : Drag::Hi;
    // The plot would pan with the same drag: off while a line moves.
    rangeDragWas_ = plot_->interactions().testFlag(QCP::iRangeDrag);
    plot_->setInteraction(QCP::iRangeDrag, false);
}

void RangeEditor::move(QMouseEvent* e)
{
    if (!shown_)
        return;
    const double x = e->position().x();
    if (drag_ == Drag::None) {
        const bool near = std::abs(plot_->xAxis->coordToPixel(lo_) - x) <= grabPixels ||
                          std::abs(plot_->xAxis->coordToPixel(hi_) - x) <= grabPixels;
        plot_->setCursor(near ? Qt::SizeHorCursor : Qt::ArrowCursor);
        return;
    }
    const double v = plot_->xAxis->pixelToCoord(x);
    // The two lines never cross: at least a pixel's worth apart.
    const double gap = std::abs(plot_->xAxis->pixelToCoord(1) - plot_->xAxis->pixelToCoord(0));
    if (drag_ == Drag::Lo)
        setRange(std::min(v, hi_ - gap), hi_);
    else
        setRange(lo_, std::max(v, lo_ + gap));
}

void RangeEditor::release(QMouseEvent* e)
{
    if (drag_ == Drag::None || e->button() != Qt::LeftButton)
        return;
    drag_ = Drag::None;
    plot_->setInteraction(QCP::iRangeDrag, rangeDragWas_);
    emit rangeReleased(lo_, hi_);
}

} // namespace qs::ui
