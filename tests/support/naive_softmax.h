// Naive references for classifier outputs, written the textbook way (no
// log-sum-exp, no shared code with core/analysis): softmax KL, argmax, SQNR.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace qs::test {

// KL(softmax(a) || softmax(b)) of `k` logits, nats.
inline double naiveKl(const float* a, const float* b, int64_t k)
{
    double sa = 0, sb = 0;
    for (int64_t i = 0; i < k; ++i) {
        sa += std::exp(double(a[i]));
        sb += std::exp(double(b[i]));
    }
    double kl = 0;
    for (int64_t i = 0; i < k; ++i) {
        const double p = std::exp(double(a[i])) / sa, q = std::exp(double(b[i])) / sb;
        kl += p * std::log(p / q);
    }
    return kl;
}

inline int64_t naiveArgmax(const float* v, int64_t k)
{
    return int64_t(std::max_element(v, v + k) - v);
}

// 10 log10(sum a^2 / sum (a - b)^2), dB.
inline double naiveSqnr(const float* a, const float* b, int64_t n)
{
    double s = 0, e = 0;
    for (int64_t i = 0; i < n; ++i) {
        s += double(a[i]) * a[i];
        e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    }
    return 10 * std::log10(s / e);
}

} // namespace qs::test
