// A dataset sample drawn as a picture: its input tensor denormalized with the mean/std
// the dataset applied, grayscale or RGB, scaled by whole pixels (nearest neighbour) so
// a 28x28 digit stays crisp.
#pragma once

#include "data/dataset.h"

#include <QImage>
#include <QString>

#include <optional>

namespace qs::ui {

struct ImageLayout {
    int channels = 1; // 1 (grayscale) or 3 (RGB)
    int height = 0, width = 0;
};

// The image layout of `data`'s samples ([N,C,H,W] with C 1 or 3, or [N,H,W]); nullopt,
// with the reason in *why, for data that is not images (text token windows, vectors).
std::optional<ImageLayout> imageLayout(const Dataset& data, QString* why = nullptr);

// Whole-pixel factor that brings the longer side near `target` pixels (at least 1).
int thumbnailScale(const ImageLayout& layout, int target);

// Sample `index` as an RGB32 image, each pixel `scale` x `scale` screen pixels: the value
// x * std[c] + mean[c] (the dataset's normalization undone), clamped to [0, 1], times 255.
// Throws Error when the data is not images or the index is out of range.
QImage sampleImage(const Dataset& data, int64_t index, int scale);

} // namespace qs::ui
