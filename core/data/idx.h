// IDX files (the MNIST family's format), gzipped or not, and NPY arrays.
#pragma once

#include "graph/tensor.h"

#include <string>

namespace qs {

// Reads an IDX file; the result's dtype follows the IDX type code (uint8 images
// stay uint8). Gzip is detected from the content, not the name.
Tensor readIdx(const std::string& path);
Tensor parseIdx(const std::string& bytes, const std::string& label); // uncompressed bytes
void writeIdx(const Tensor& t, const std::string& path); // uncompressed

// Whole file contents, transparently gunzipped when it starts with the gzip magic. Gzipped
// content must be IDX: only its header and then the payload it announces are inflated.
std::string readMaybeGzip(const std::string& path);
std::string gunzipIfNeeded(std::string bytes, const std::string& label);

} // namespace qs
