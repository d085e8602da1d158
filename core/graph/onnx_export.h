// Graph -> ONNX protobuf: the inverse of onnx_import, used by exporters and tests.
#pragma once

#include "graph/graph.h"

#include <string>

namespace qs {

// Serialized ModelProto. Initializers are written as raw_data.
std::string exportOnnxBytes(const Graph& g);
// Writes atomically (temporary file + rename); throws Error naming the path.
void saveOnnx(const Graph& g, const std::string& path);

} // namespace qs
