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

} // namespace qs::test
