// NumPy .npy arrays (format versions 1-3, little-endian, C order).
#pragma once

#include "graph/tensor.h"

#include <string>

namespace qs {

Tensor readNpy(const std::string& path);
Tensor parseNpy(const std::string& bytes, const std::string& label);
void writeNpy(const Tensor& t, const std::string& path);

} // namespace qs
