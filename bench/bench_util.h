// Shared by the C++ benchmarks: medians and "--name value" argument pairs.
#pragma once

#include "util/error.h"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace qs::bench {

inline double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Calls `option(name, value)` for each "--name value" pair from argv[first] on; a name
// without a value is an error.
inline void forEachOption(int argc, char** argv, int first,
                          const std::function<void(const std::string&, const std::string&)>& option)
{
    for (int i = first; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc)
            fail(a, ": missing value");
        option(a, argv[++i]);
    }
}

} // namespace qs::bench
