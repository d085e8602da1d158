// Image files decoded to 8-bit RGB: JPEG (libjpeg), PNG (libpng) and BMP (our reader:
// uncompressed 24/32-bit and 8-bit palette, bottom-up or top-down). A malformed,
// truncated or oversized file is a one-line Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qs {

// Declared sizes beyond these are refused before anything is allocated.
inline constexpr int64_t kMaxImageSide = 32768;
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 27; // 128 Mpixel, 384 MiB as RGB

// Row-major, interleaved R, G, B; alpha is dropped and gray repeated in all three.
struct Image {
    int64_t width = 0, height = 0;
    std::vector<uint8_t> rgb; // width * height * 3

    const uint8_t* pixel(int64_t x, int64_t y) const { return rgb.data() + (y * width + x) * 3; }
};

// By the content's signature (JPEG FF D8, PNG, BMP "BM"); `name` labels errors.
Image decodeImage(std::string_view bytes, const std::string& name);
Image readImage(const std::string& path);
Image decodeJpeg(std::string_view bytes, const std::string& name);
Image decodePng(std::string_view bytes, const std::string& name);
Image decodeBmp(std::string_view bytes, const std::string& name);

// True for the extensions the image datasets pick up (.jpg .jpeg .png .bmp, any case).
bool isImageFileName(const std::string& path);

} // namespace qs
