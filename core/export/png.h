// A minimal RGB canvas and PNG encoder (zlib deflate, no filtering) for report
// charts: core has no Qt, and the charts are bars on a white background.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct Rgb {
    uint8_t r = 255, g = 255, b = 255;
};

class Canvas {
public:
    Canvas(int width, int height, Rgb background = {});
    int width() const { return w_; }
    int height() const { return h_; }
    // Clipped to the canvas; x0 <= x < x1, y0 <= y < y1.
    void fill(int x0, int y0, int x1, int y1, Rgb c);
    Rgb at(int x, int y) const;
    // The PNG file's bytes (8-bit RGB).
    std::string png() const;

private:
    int w_, h_;
    std::vector<uint8_t> px_; // row-major RGB
};

// Vertical bars of `values` (one per label, NaN drawn as no bar) scaled to the largest
// |value|, negative values below a zero line; axes in grey.
Canvas barChart(const std::vector<double>& values, int width, int height, Rgb bar);

std::string base64(const std::string& bytes);

} // namespace qs
