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
    ColorScale(Ramp ramp, double lo, double hi, bool log);

    QColor color(double value) const;    // clamps outside [lo, hi]
    double position(double value) const; // 0..1 along the ramp
    // The ramp as a gradient from `start` (lo) to `end` (hi), for legends.
    QLinearGradient gradient(QPointF start, QPointF end) const;
    static QColor textColorOn(const QColor& background);

    double lo() const { return lo_; }
    double hi() const { return hi_; }
    bool isLog() const { return log_; }

private:
    std::vector<QColor> stops_;
    double lo_ = 0, hi_ = 1;
    bool log_ = false;
};

} // namespace qs::ui
