// Element-wise comparison of float results shared by the runtime tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace qs::test {

// The largest |a[i] - b[i]|; infinity when the sizes differ.
inline double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b)
{
    if (a.size() != b.size())
        return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, double(std::fabs(a[i] - b[i])));
    return m;
}

// maxAbsDiff relative to the reference `b`'s largest magnitude (outputs compared as a
// whole, so values near zero do not dominate).
inline double maxRelDiff(const std::vector<float>& a, const std::vector<float>& b)
{
    double scale = 1e-30;
    for (float v : b)
        scale = std::max(scale, double(std::fabs(v)));
    return maxAbsDiff(a, b) / scale;
}

} // namespace qs::test
