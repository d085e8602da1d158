// Sensitivity curves with layers of different tolerance, as a weight sweep would give
// them (2, 4 and 8 bits), for GUI tests that need a front without running a sweep.
#pragma once

#include "analysis/sensitivity.h"

#include <memory>
#include <string>
#include <vector>

namespace qs::test {

inline std::shared_ptr<SensitivityResult> syntheticSensitivity(const std::vector<std::string>& layers)
{
    auto s = std::make_shared<SensitivityResult>();
    int k = 0;
    for (const auto& name : layers) {
        LayerSensitivity l;
        l.layer = name;
        const double base = 4.0 + 3.0 * (k++ % 4);
        l.byBits[2].sqnrDb = base;
        l.byBits[4].sqnrDb = base + 12;
        l.byBits[8].sqnrDb = base + 36;
        s->layers.push_back(l);
    }
    return s;
}

} // namespace qs::test
