// An image preprocessing pipeline as data: resize, crop or letterbox, scale, per-channel
// mean/std, channel order and layout. It parses from and prints to a short string
// ("torchvision", "yolo,pad=0", "resize=256,crop=224,scale=1/255,mean=...,rgb,nchw")
// and JSON, so a run records it, its hash covers it and export writes it to metadata.
//
// Resampling is Pillow's (Image.resize without reducing_gap): separable, horizontal pass
// then vertical, each rounded to 8 bits with Pillow's 22-bit fixed-point coefficients;
// bilinear is Pillow's antialiased triangle filter, area its box filter. Torchvision's
// PIL path resizes the same way; OpenCV's INTER_LINEAR (PaddleOCR, Ultralytics) does
// not antialias, so shrinking by more than 2x differs slightly from those.
#pragma once

#include "data/image.h"
#include "graph/tensor.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qs {

struct Preprocess {
    enum class Resize {
        None,      // keep the decoded size
        Shorter,   // shorter side to `height`, the other side int(S * long / short) (torchvision Resize(S))
        Exact,     // to width x height
        Letterbox, // fit inside width x height keeping the ratio, centered, `pad` around (Ultralytics)
        KeepRatio, // height to `height`, width ceil(height * w / h) up to `width`, `pad` on the right (PaddleOCR)
    };
    enum class Interp { Bilinear, Area };

    Resize resize = Resize::None;
    int64_t width = 0, height = 0; // of the resize (Shorter: the side in `height`)
    Interp interp = Interp::Bilinear;
    int64_t cropWidth = 0, cropHeight = 0; // center crop after the resize; 0: none
    float pad = 0;                         // a pixel value (0..255) for padding, then scaled and normalized like pixels
    double scale = 1.0 / 255;              // pixel (0..255) * scale, then (- mean) / std per channel
    std::vector<float> mean, std;          // 3 values (in output channel order), or empty
    bool bgr = false;                      // channel order of the output
    bool nhwc = false;                     // [H, W, 3] samples, else [3, H, W]
    // When the model's input fixes H and W, take the output size from it (presets set it):
    // the crop (and the resize in torchvision's 256/224 proportion), the exact size, the
    // letterbox or the KeepRatio box.
    bool fitModel = false;

    bool operator==(const Preprocess&) const = default;

    // The sample shape this pipeline produces: [3, H, W] or [H, W, 3].
    Shape sampleShape() const;
    // Canonical text, which parsePreprocess reads back to an equal pipeline.
    std::string text() const;
    nlohmann::json toJson() const;
    static Preprocess fromJson(const nlohmann::json& j, const std::string& what);
};

// "torchvision", "paddleocr-rec", "yolo", or comma-separated items, each a preset name
// (first only) or: resize=S | resize=WxH | letterbox=S|WxH | keepratio=WxH | interp=bilinear|area
// | crop=S|WxH|none | pad=V | scale=X|1/N | mean=a:b:c | std=a:b:c | rgb | bgr | nchw | nhwc
// | f32 | fit=model|fixed. A path ending in .json holds Preprocess::toJson. Errors name
// --preprocess and the item.
Preprocess parsePreprocess(const std::string& spec);
const std::vector<std::string>& preprocessPresets();

// The pipeline for a model input whose sample shape is `modelSample` (the batch removed;
// dimensions < 0 unknown): sizes taken from it when fitModel and H and W are fixed,
// then checked against it (channels 3, H and W where fixed). `what` names the input.
Preprocess resolvePreprocess(const Preprocess& p, const Shape& modelSample, const std::string& what);

// Writes the sample of `image` (numel of p.sampleShape() floats) to `out`.
void preprocessImage(const Image& image, const Preprocess& p, float* out);

// Pillow-compatible 8-bit resampling of an RGB image to width x height.
Image resizeImage(const Image& image, int64_t width, int64_t height, Preprocess::Interp interp);

} // namespace qs
