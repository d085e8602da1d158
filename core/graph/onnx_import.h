// ONNX -> Graph. Everything that can be wrong with a model file is reported as a
// qs::Error naming the file and the node, tensor or field at fault.
#pragma once

#include "graph/graph.h"

#include <map>
#include <string>
#include <string_view>

namespace qs {

struct ImportOptions {
    // Fix input shapes before shape inference, e.g. {"input", {1,1,28,28}}; a
    // symbolic batch dimension stays symbolic when not given.
    std::map<std::string, Shape> inputShapes;
    bool inferShapes = true;
};

Graph importOnnx(const std::string& path, const ImportOptions& options = {});

// From memory; `label` names the source in messages, `baseDir` is where external
// data may live ("" refuses external data).
Graph importOnnxBytes(std::string_view bytes, const std::string& label, const std::string& baseDir,
                      const ImportOptions& options = {});

} // namespace qs
