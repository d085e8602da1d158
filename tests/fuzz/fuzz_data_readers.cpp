// libFuzzer: the IDX (gzipped or not), NPY and safetensors readers, and the image
// decoders (JPEG, PNG, BMP) with two preprocessing pipelines, on arbitrary bytes.
#include "data/idx.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "graph/safetensors.h"
#include "util/error.h"

#include <cstdint>
#include <string>
#include <vector>

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
    try {
        const qs::Image im = qs::decodeImage(bytes, "fuzz.img");
        if (im.rgb.size() != std::size_t(im.width * im.height * 3))
            __builtin_trap();
        // Small outputs: resampling, crop, letterbox and keep-ratio placement all run.
        static const qs::Preprocess pipelines[] = {
            qs::parsePreprocess("torchvision,resize=18,crop=16"),
            qs::parsePreprocess("yolo,letterbox=20x12"),
            qs::parsePreprocess("paddleocr-rec,keepratio=24x8,interp=area,nhwc"),
        };
        for (const qs::Preprocess& p : pipelines) {
            std::vector<float> out(std::size_t(qs::numelOf(p.sampleShape())));
            qs::preprocessImage(im, p, out.data());
        }
    } catch (const qs::Error&) {
    }
    return 0;
}
