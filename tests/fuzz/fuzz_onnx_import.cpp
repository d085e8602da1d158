// libFuzzer: any byte string given to the ONNX importer (with shape inference)
// yields a Graph or a qs::Error, never a crash, hang or sanitizer report.
#include "graph/onnx_import.h"
#include "util/error.h"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    try {
        qs::Graph g = qs::importOnnxBytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx", "");
        (void)g.quantizableLayers();
    } catch (const qs::Error&) {
    }
    return 0;
}
