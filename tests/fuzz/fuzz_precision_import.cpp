// libFuzzer: the precision importers (rules, trtexec flags, ORT overrides, AIMET
// encodings) on arbitrary text against the demo model. The first byte picks the format;
// anything but a qs::Error escaping is a bug.
#include "graph/onnx_import.h"
#include "interop/precision.h"
#include "util/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const qs::Graph model = qs::importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
    if (size == 0)
        return 0;
    static const qs::PrecisionFormat formats[] = {
        qs::PrecisionFormat::Rules, qs::PrecisionFormat::Trt, qs::PrecisionFormat::Ort, qs::PrecisionFormat::Aimet};
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        qs::importPrecision(model, text, formats[data[0] % 4], "fuzz");
    } catch (const qs::Error&) {
    }
    return 0;
}
