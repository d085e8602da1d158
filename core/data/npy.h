// NumPy .npy arrays (format versions 1-3, little-endian, C order).
#pragma once

#include "graph/tensor.h"

#include <string>

namespace qs {

Tensor readNpy(const std::string& path);
Tensor parseNpy(const std::string& bytes, const std::string& label);
// The file's bytes (version 1.0 header), as writeNpy writes them.
std::string npyBytes(const Tensor& t);
void writeNpy(const Tensor& t, const std::string& path);

} // namespace qs
