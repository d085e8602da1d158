// The bundled demo CNN and its 1000-image slice, shared by the quantization tests.
#pragma once

#include "data/dataset.h"
#include "graph/onnx_import.h"

namespace qs::test {

inline const char* const kDemoModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
inline const char* const kDemoData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

// The first `limit` images (< 0: all), normalized as the model's metadata says.
inline Dataset demoData(int64_t limit)
{
    static const Graph model = importOnnx(kDemoModel);
    DataOptions o;
    o.spec = kDemoData;
    o.limit = limit;
    return loadDataset(o, model);
}

} // namespace qs::test
