// Two draggable vertical lines on a QCustomPlot histogram: a clipping range [lo, hi]
// the user edits with the mouse (or a test through setRange/finishEdit). While a line
// moves the editor reports rangeChanged; when the mouse is released, rangeReleased.
#pragma once

#include <qcustomplot.h>

#include <QObject>
#include <QPointer>

namespace qs::ui {

class RangeEditor : public QObject {
    Q_OBJECT
public:
    explicit RangeEditor(QCustomPlot* plot, QObject* parent = nullptr);

    double lo() const { return lo_; }
    double hi() const { return hi_; }
    bool isShown() const { return shown_; }
    bool isDragging() const { return drag_ != Drag::None; }
    // Moves the lines (lo < hi is kept); emits rangeChanged.
    void setRange(double lo, double hi);
    // Ends an edit made through setRange: emits rangeReleased, as a mouse release does.
    void finishEdit();
    void setShown(bool shown);
    // Re-creates the lines after the plot cleared its items (a redraw).
    void restore();
    QCPItemStraightLine* loLine() const { return loLine_; }
    QCPItemStraightLine* hiLine() const { return hiLine_; }
    // Pixels from a line within which a press grabs it.
    static constexpr int grabPixels = 6;

signals:
    void rangeChanged(double lo, double hi);
    void rangeReleased(double lo, double hi);

private:
    enum class Drag { None, Lo, Hi };
    void press(QMouseEvent* e);
    void move(QMouseEvent* e);
    void release(QMouseEvent* e);
    void place();

    QCustomPlot* plot_;
    QPointer<QCPItemStraightLine> loLine_, hiLine_;
    QPointer<QCPItemRect> loShade_, hiShade_; // what the range clips, shaded
    double lo_ = 0, hi_ = 1;
    bool shown_ = false;
    Drag drag_ = Drag::None;
    bool rangeDragWas_ = false;
};

} // namespace qs::ui
