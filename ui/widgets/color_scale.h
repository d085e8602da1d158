// Maps a number to a colour along a perceptual ramp, on a linear or log axis:
// what the graph view paints nodes with and its legend explains.
#pragma once

#include <QColor>
#include <QLinearGradient>
#include <QString>

#include <vector>

namespace qs::ui {

class ColorScale {
public:
    enum class Ramp { Blues, Heat };

    ColorScale() = default;
    // `lowIsBad`: the ramp runs dark to light, for numbers where small values hurt (SQNR).
    ColorScale(Ramp ramp, double lo, double hi, bool log, bool lowIsBad = false);

    QColor color(double value) const;    // clamps outside [lo, hi]
    double position(double value) const; // 0..1 along the ramp
    double severity(double value) const;  // 0 harmless .. 1 worst, whichever end that is
    // The ramp as a gradient from `start` (lo) to `end` (hi), for legends.
    QLinearGradient gradient(QPointF start, QPointF end) const;
    static QColor textColorOn(const QColor& background);

    double lo() const { return lo_; }
    double hi() const { return hi_; }
    bool isLog() const { return log_; }
    bool lowIsBad() const { return lowIsBad_; }

private:
    std::vector<QColor> stops_;
    double lo_ = 0, hi_ = 1;
    bool log_ = false;
    bool lowIsBad_ = false;
};

} // namespace qs::ui
