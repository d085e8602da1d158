#include "measure/stats.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

TensorStats computeStats(std::span<const float> values)
{
    TensorStats s;
    double sum = 0;
    s.min = std::numeric_limits<double>::infinity();
    s.max = -s.min;
    for (float v : values) {
        if (!std::isfinite(v)) {
            ++s.nonFinite;
            continue;
        }
        ++s.count;
        sum += v;
        s.min = std::min<double>(s.min, v);
        s.max = std::max<double>(s.max, v);
    }
    if (s.count == 0) {
        s.min = s.max = 0;
        return s;
    }
    s.mean = sum / double(s.count);
    // Second pass for numerically stable central moments.
    double m2 = 0, m4 = 0;
    for (float v : values)
        if (std::isfinite(v)) {
            double d = v - s.mean, d2 = d * d;
            m2 += d2;
            m4 += d2 * d2;
        }
    m2 /= double(s.count);
    m4 /= double(s.count);
    s.std = std::sqrt(m2);
    s.kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0;
    if (s.std > 0) {
        int64_t out = 0;
        for (float v : values)
            if (std::isfinite(v) && std::abs(v - s.mean) > 6 * s.std)
                ++out;
        s.outlierFraction = double(out) / double(s.count);
    }
    return s;
}

namespace {

// A shape seen as [outer, channels, inner] around the channel axis.
struct ChannelView {
    int64_t outer = 1, channels = 1, inner = 1;
};

ChannelView channelView(const Shape& shape, int axis)
{
    if (axis < 0)
        axis += int(shape.size());
    if (axis < 0 || axis >= int(shape.size()))
        fail("channel axis ", axis, " is out of range for shape ", shapeString(shape));
    ChannelView v;
    v.channels = shape[std::size_t(axis)];
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (int(i) < axis)
            v.outer *= shape[i];
        else if (int(i) > axis)
            v.inner *= shape[i];
    }
    return v;
}

} // namespace

ChannelRanges channelMinMax(std::span<const float> values, const Shape& shape, int axis)
{
    if (shape.empty())
        return ChannelRanges {{0}, {0}, {}};
    const auto [outer, channels, inner] = channelView(shape, axis);
    if (int64_t(values.size()) < outer * channels * inner)
        fail("channel ranges: ", values.size(), " values for shape ", shapeString(shape));
    ChannelRanges r;
    r.min.assign(std::size_t(channels), std::numeric_limits<float>::infinity());
    r.max.assign(std::size_t(channels), -std::numeric_limits<float>::infinity());
    const float* p = values.data();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            float lo = r.min[std::size_t(c)], hi = r.max[std::size_t(c)];
            for (int64_t i = 0; i < inner; ++i, ++p)
                if (std::isfinite(*p)) {
                    lo = std::min(lo, *p);
                    hi = std::max(hi, *p);
                }
            r.min[std::size_t(c)] = lo;
            r.max[std::size_t(c)] = hi;
        }
    for (int64_t c = 0; c < channels; ++c)
        if (r.min[std::size_t(c)] > r.max[std::size_t(c)]) // no finite value
            r.min[std::size_t(c)] = r.max[std::size_t(c)] = 0;
    return r;
}

ChannelRanges channelRanges(std::span<const float> values, const Shape& shape, int axis)
{
    if (shape.empty())
        return ChannelRanges {{0}, {0}, {0}};
    const auto [outer, channels, inner] = channelView(shape, axis);
    ChannelRanges r;
    r.min.assign(std::size_t(channels), std::numeric_limits<float>::infinity());
    r.max.assign(std::size_t(channels), -std::numeric_limits<float>::infinity());
    r.absP999.assign(std::size_t(channels), 0);
    std::vector<float> absVals;
    for (int64_t c = 0; c < channels; ++c) {
        absVals.clear();
        for (int64_t o = 0; o < outer; ++o) {
            const float* p = values.data() + (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; ++i) {
                float v = p[i];
                if (!std::isfinite(v))
                    continue;
                r.min[std::size_t(c)] = std::min(r.min[std::size_t(c)], v);
                r.max[std::size_t(c)] = std::max(r.max[std::size_t(c)], v);
                absVals.push_back(std::abs(v));
            }
        }
        if (absVals.empty()) {
            r.min[std::size_t(c)] = r.max[std::size_t(c)] = 0;
            continue;
        }
        r.absP999[std::size_t(c)] = float(percentile(absVals, 99.9));
    }
    return r;
}

double rangeRatio(const ChannelRanges& r)
{
    std::vector<double> ranges;
    for (std::size_t c = 0; c < r.min.size(); ++c)
        ranges.push_back(double(r.max[c]) - double(r.min[c]));
    if (ranges.size() < 2)
        return 1;
    double mx = *std::max_element(ranges.begin(), ranges.end());
    std::sort(ranges.begin(), ranges.end());
    std::size_t n = ranges.size();
    double median = n % 2 ? ranges[n / 2] : 0.5 * (ranges[n / 2 - 1] + ranges[n / 2]);
    return median > 0 ? mx / median : (mx > 0 ? std::numeric_limits<double>::infinity() : 1);
}

void Histogram::add(std::span<const float> values)
{
    const int n = bins();
    if (n == 0)
        return;
    const double scale = hi > lo ? double(n) / (hi - lo) : 0;
    for (float v : values) {
        if (!std::isfinite(v))
            continue;
        if (v < lo) {
            ++below;
        } else if (v > hi) {
            ++above;
        } else {
            int b = int((v - lo) * scale);
            ++counts[std::size_t(std::clamp(b, 0, n - 1))];
        }
    }
}

uint64_t Histogram::total() const
{
    uint64_t t = below + above;
    for (uint64_t c : counts)
        t += c;
    return t;
}

Histogram makeHistogram(std::span<const float> values, int bins)
{
    Histogram h;
    h.counts.assign(std::size_t(std::max(bins, 1)), 0);
    bool any = false;
    for (float v : values)
        if (std::isfinite(v)) {
            h.lo = any ? std::min<double>(h.lo, v) : v;
            h.hi = any ? std::max<double>(h.hi, v) : v;
            any = true;
        }
    if (h.hi == h.lo) {
        h.lo -= 0.5;
        h.hi += 0.5;
    }
    h.add(values);
    return h;
}

double percentile(std::span<const float> values, double p)
{
    std::vector<float> v;
    v.reserve(values.size());
    for (float x : values)
        if (std::isfinite(x))
            v.push_back(x);
    if (v.empty())
        return 0;
    double pos = std::clamp(p, 0.0, 100.0) / 100.0 * double(v.size() - 1);
    std::size_t lo = std::size_t(std::floor(pos));
    std::size_t hi = std::min(lo + 1, v.size() - 1);
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(lo), v.end());
    double a = v[lo];
    if (hi == lo)
        return a;
    double b = *std::min_element(v.begin() + std::ptrdiff_t(lo) + 1, v.end());
    return a + (b - a) * (pos - double(lo));
}

std::pair<double, double> wilsonInterval(double p, int64_t n, double z)
{
    if (n <= 0)
        return {0.0, 1.0};
    p = std::clamp(p, 0.0, 1.0);
    const double nn = double(n), z2 = z * z;
    const double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    const double half = z * std::sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / (1 + z2 / nn);
    return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

} // namespace qs
