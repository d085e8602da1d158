#include "ui/widgets/color_scale.h"

#include <algorithm>
#include <cmath>

namespace qs::ui {
namespace {

// ColorBrewer Blues and YlOrRd, light to dark: readable text on every stop.
const std::vector<QColor>& rampStops(ColorScale::Ramp r)
{
    static const std::vector<QColor> blues = {QColor(0xf4, 0xf8, 0xfd), QColor(0xc6, 0xdb, 0xef),
                                              QColor(0x9e, 0xca, 0xe1), QColor(0x6b, 0xae, 0xd6),
                                              QColor(0x31, 0x82, 0xbd), QColor(0x08, 0x51, 0x9c)};
    static const std::vector<QColor> heat = {QColor(0xff, 0xfb, 0xe0), QColor(0xfe, 0xe3, 0x91),
                                             QColor(0xfe, 0xc4, 0x4f), QColor(0xfb, 0x8c, 0x3c),
                                             QColor(0xe8, 0x4a, 0x2b), QColor(0xb1, 0x1a, 0x26)};
    return r == ColorScale::Ramp::Blues ? blues : heat;
}

} // namespace

ColorScale::ColorScale(Ramp ramp, double lo, double hi, bool log, bool lowIsBad)
    : stops_(rampStops(ramp)), lo_(lo), hi_(hi), log_(log), lowIsBad_(lowIsBad)
{
    if (lowIsBad_)
        std::reverse(stops_.begin(), stops_.end());
}

double ColorScale::severity(double value) const
{
    const double p = position(value);
    return lowIsBad_ ? 1 - p : p;
}

double ColorScale::position(double value) const
{
    if (!std::isfinite(value))
        return value > 0 ? 1.0 : 0.0;
    double a = lo_, b = hi_, v = value;
    if (log_) {
        const double floor = 1e-12;
        a = std::log(std::max(a, floor));
        b = std::log(std::max(b, floor));
        v = std::log(std::max(v, floor));
    }
    if (b <= a)
        return 0.5;
    return std::clamp((v - a) / (b - a), 0.0, 1.0);
}

QColor ColorScale::color(double value) const
{
    if (stops_.empty())
        return QColor(Qt::white);
    const double t = position(value) * double(stops_.size() - 1);
    const std::size_t i = std::min(std::size_t(t), stops_.size() - 2);
    const double f = t - double(i);
    const QColor& c0 = stops_[i];
    const QColor& c1 = stops_[i + 1];
    return QColor::fromRgbF(float(c0.redF() + (c1.redF() - c0.redF()) * f),
                            float(c0.greenF() + (c1.greenF() - c0.greenF()) * f),
                            float(c0.blueF() + (c1.blueF() - c0.blueF()) * f));
}

QLinearGradient ColorScale::gradient(QPointF start, QPointF end) const
{
    QLinearGradient g(start, end);
    for (std::size_t i = 0; i < stops_.size(); ++i)
        g.setColorAt(double(i) / double(stops_.size() - 1), stops_[i]);
    return g;
}

QColor ColorScale::textColorOn(const QColor& background)
{
    // Relative luminance (sRGB approximation) decides between dark and white text.
    const double l = 0.2126 * background.redF() + 0.7152 * background.greenF() + 0.0722 * background.blueF();
    return l > 0.55 ? QColor(0x1f, 0x23, 0x2b) : QColor(Qt::white);
}

} // namespace qs::ui
