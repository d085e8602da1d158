#include "measure/observer.h"

#include <algorithm>
#include <cmath>

namespace qs {

void ActivationObserver::grow(double lo, double hi)
{
    Histogram& h = data_.histogram;
    if (h.counts.empty()) {
        // First batch: a range a little wider than what was seen, never degenerate.
        double span = hi - lo;
        double pad = span > 0 ? span * 1e-3 : std::max(std::abs(lo), 1.0) * 1e-3;
        h.lo = lo - pad;
        h.hi = hi + pad;
        h.counts.assign(std::size_t(bins_), 0);
        return;
    }
    // Double the width (merging bin pairs) towards whichever side is exceeded.
    while (lo < h.lo || hi > h.hi) {
        const std::size_t n = h.counts.size();
        std::vector<uint64_t> merged(n, 0);
        const double width = h.hi - h.lo;
        if (hi > h.hi) { // keep lo: old bins land in the lower half
            for (std::size_t i = 0; i < n; ++i)
                merged[i / 2] += h.counts[i];
            h.hi = h.lo + 2 * width;
        } else { // keep hi: old bins land in the upper half
            for (std::size_t i = 0; i < n; ++i)
                merged[n / 2 + i / 2] += h.counts[i];
            h.lo = h.hi - 2 * width;
        }
        h.counts = std::move(merged);
    }
}

void ActivationObserver::observe(const Tensor& batch)
{
    std::vector<float> owned;
    std::span<const float> v;
    if (batch.dtype == DType::Float) {
        v = batch.data<float>();
    } else {
        owned = batch.toFloat();
        v = owned;
    }
    float lo = INFINITY, hi = -INFINITY;
    for (float x : v)
        if (std::isfinite(x)) {
            lo = std::min(lo, x);
            hi = std::max(hi, x);
        } else {
            ++nonFinite_;
        }
    if (!(lo <= hi))
        return; // nothing finite in this batch
    if (count_ == 0) {
        data_.min = lo;
        data_.max = hi;
        double sum = 0;
        int64_t n = 0;
        for (float x : v)
            if (std::isfinite(x)) {
                sum += x;
                ++n;
            }
        shift_ = sum / double(n);
    }
    data_.min = std::min<double>(data_.min, lo);
    data_.max = std::max<double>(data_.max, hi);
    data_.batchRanges.emplace_back(lo, hi);
    grow(lo, hi);
    data_.histogram.add(v);
    for (float x : v)
        if (std::isfinite(x)) {
            double d = double(x) - shift_, d2 = d * d;
            s1_ += d;
            s2_ += d2;
            s3_ += d2 * d;
            s4_ += d2 * d2;
            ++count_;
        }
    // Per-channel ranges along axis 1 (N, C, ...).
    if (batch.shape.size() >= 2) {
        const int64_t c = batch.shape[1];
        const int64_t inner = numelOf(Shape(batch.shape.begin() + 2, batch.shape.end()));
        if (chMin_.empty()) {
            chMin_.assign(std::size_t(c), INFINITY);
            chMax_.assign(std::size_t(c), -INFINITY);
        }
        if (int64_t(chMin_.size()) == c)
            for (int64_t n = 0; n < batch.shape[0]; ++n)
                for (int64_t k = 0; k < c; ++k) {
                    const float* p = v.data() + (n * c + k) * inner;
                    for (int64_t i = 0; i < inner; ++i)
                        if (std::isfinite(p[i])) {
                            chMin_[std::size_t(k)] = std::min(chMin_[std::size_t(k)], p[i]);
                            chMax_[std::size_t(k)] = std::max(chMax_[std::size_t(k)], p[i]);
                        }
                }
    }
}

TensorStats ActivationObserver::stats() const
{
    TensorStats s;
    s.count = count_;
    s.nonFinite = nonFinite_;
    if (count_ == 0)
        return s;
    const double n = double(count_);
    const double m1 = s1_ / n, m2 = s2_ / n, m3 = s3_ / n, m4 = s4_ / n;
    const double var = std::max(0.0, m2 - m1 * m1);
    const double c4 = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1 * m1 * m1 * m1;
    s.min = data_.min;
    s.max = data_.max;
    s.mean = shift_ + m1;
    s.std = std::sqrt(var);
    s.kurtosis = var > 0 ? c4 / (var * var) : 0;
    if (s.std > 0) {
        const Histogram& h = data_.histogram;
        double out = 0;
        for (int i = 0; i < h.bins(); ++i) {
            double centre = h.lo + h.binWidth() * (i + 0.5);
            if (std::abs(centre - s.mean) > 6 * s.std)
                out += double(h.counts[std::size_t(i)]);
        }
        s.outlierFraction = out / n;
    }
    if (!chMin_.empty()) {
        ChannelRanges r{chMin_, chMax_, {}};
        s.channelRangeRatio = rangeRatio(r);
    }
    return s;
}

} // namespace qs
