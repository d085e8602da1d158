// libFuzzer: the IDX (gzipped or not), NPY and safetensors readers on arbitrary bytes.
#include "data/idx.h"
#include "data/npy.h"
#include "graph/safetensors.h"
#include "util/error.h"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        qs::parseNpy(bytes, "fuzz.npy");
    } catch (const qs::Error&) {
    }
    try {
        qs::parseIdx(qs::gunzipIfNeeded(bytes, "fuzz.idx"), "fuzz.idx");
    } catch (const qs::Error&) {
    }
    try {
        qs::parseSafetensors({reinterpret_cast<const std::byte*>(data), size}, "fuzz.safetensors");
    } catch (const qs::Error&) {
    }
    return 0;
}
