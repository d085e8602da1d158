#include "quant/calibrator.h"

#include "quant/quantizer.h"
#include "util/error.h"

#include <algorithm>

namespace qs {

static std::vector<CalibratorInfo>& table()
{
    static std::vector<CalibratorInfo> t;
    return t;
}

bool registerCalibrator(CalibratorInfo info)
{
    table().push_back(std::move(info));
    std::sort(table().begin(), table().end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return true;
}

const std::vector<CalibratorInfo>& calibrators()
{
    return table();
}

const CalibratorInfo& calibrator(const std::string& name)
{
    for (const auto& c : table())
        if (c.name == name)
            return c;
    std::string known;
    for (const auto& c : table())
        known += (known.empty() ? "" : ", ") + c.name;
    fail("unknown calibrator ", quoted(name), " (known: ", known, ")");
}

double histogramQuantile(const Histogram& h, double fraction)
{
    const double total = double(h.total());
    if (total <= 0)
        return 0;
    double target = fraction * total;
    double acc = double(h.below);
    if (acc >= target)
        return h.lo;
    const double w = h.binWidth();
    for (int i = 0; i < h.bins(); ++i) {
        double c = double(h.counts[std::size_t(i)]);
        if (acc + c >= target && c > 0)
            return h.lo + w * (i + (target - acc) / c); // linear within the bin
        acc += c;
    }
    return h.hi;
}

double histogramQuantMse(const Histogram& h, float lo, float hi, int bits, bool symmetric)
{
    QParams q = qparamsFor(lo, hi, bits, symmetric);
    const double w = h.binWidth();
    double err = 0, total = 0;
    for (int i = 0; i < h.bins(); ++i) {
        double c = double(h.counts[std::size_t(i)]);
        if (c == 0)
            continue;
        // Bin centre as its representative; the rounding-noise term w^2/12 within a bin
        // is the same for every candidate range and so left out.
        float x = float(h.lo + w * (i + 0.5));
        double d = double(x) - double(fakeQuant(x, q));
        err += c * d * d;
        total += c;
    }
    return total > 0 ? err / total : 0;
}

} // namespace qs
