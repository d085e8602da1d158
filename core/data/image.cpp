// Image decoding: libjpeg and libpng report errors through longjmp, caught in the
// function that called setjmp and turned into Error; BMP is parsed here with every
// offset and size checked against the file.
#include "data/image.h"

#include "util/error.h"
#include "util/file.h"

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

namespace qs {

namespace {

constexpr uint64_t kMaxImageFileBytes = uint64_t(256) << 20;

void checkSize(int64_t width, int64_t height, const std::string& name, const char* format)
{
    if (width <= 0 || height <= 0)
        fail(name, ": ", format, " declares an empty image (", width, "x", height, ")");
    if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels)
        fail(name, ": ", format, " declares ", width, "x", height, " pixels, more than the limit of ", kMaxImageSide,
            " a side and ", kMaxImagePixels, " in all");
}

Image blank(int64_t width, int64_t height)
{
    Image im;
    im.width = width;
    im.height = height;
    im.rgb.resize(std::size_t(width * height * 3));
    return im;
}

// Runs `call` (C library calls only: nothing with a destructor may be live when they
// longjmp) with `jump` set; false when the library jumped back with an error. setjmp
// sits alone in this frame, so no local of the decoders can be clobbered.
template<typename F> [[gnu::noinline]] bool underJump(std::jmp_buf& jump, const F& call)
{
    if (setjmp(jump))
        return false;
    call();
    return true;
}

// ---- JPEG ----

struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpegFail(j_common_ptr cinfo)
{
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

// Warnings are ignored (extraneous bytes, unknown markers) except missing or corrupt
// image data, which libjpeg would fill with gray or zeros.
void jpegMessage(j_common_ptr cinfo, int level)
{
    const int code = cinfo->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE))
        jpegFail(cinfo);
}

// ---- PNG ----

struct PngReader {
    std::string_view bytes;
    std::size_t at = 0;
    char message[256] = {};
};

void pngFail(png_structp png, png_const_charp msg)
{
    auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
    std::snprintf(r->message, sizeof r->message, "%s", msg);
    png_longjmp(png, 1);
}

void pngWarn(png_structp, png_const_charp)
{
}

void pngRead(png_structp png, png_bytep out, png_size_t n)
{
    auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
    if (n > r->bytes.size() - r->at)
        png_error(png, "the file ends early");
    std::memcpy(out, r->bytes.data() + r->at, n);
    r->at += n;
}

// ---- BMP ----

uint32_t le32(std::string_view b, std::size_t at)
{
    return uint32_t(uint8_t(b[at])) | uint32_t(uint8_t(b[at + 1])) << 8 | uint32_t(uint8_t(b[at + 2])) << 16 |
        uint32_t(uint8_t(b[at + 3])) << 24;
}

uint16_t le16(std::string_view b, std::size_t at)
{
    return uint16_t(uint8_t(b[at]) | uint8_t(b[at + 1]) << 8);
}

} // namespace

Image decodeJpeg(std::string_view bytes, const std::string& name)
{
    jpeg_decompress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpegFail;
    err.mgr.emit_message = jpegMessage;
    jpeg_create_decompress(&cinfo);
    auto step = [&](const auto& call) {
        if (!underJump(err.jump, call)) {
            jpeg_destroy_decompress(&cinfo);
            fail(name, ": not a readable JPEG (libjpeg: ", err.message, ")");
        }
    };
    step([&] {
        jpeg_mem_src(
            &cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
        jpeg_read_header(&cinfo, TRUE);
    });
    const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk || (cinfo.num_components != 1 && cinfo.num_components != 3)) {
        jpeg_destroy_decompress(&cinfo);
        fail(name, ": JPEG with ", cinfo.num_components, " components", cmyk ? " (CMYK)" : "",
            " is not supported (gray or RGB only)");
    }
    const int64_t width = cinfo.image_width, height = cinfo.image_height;
    if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels || width == 0 ||
        height == 0) {
        jpeg_destroy_decompress(&cinfo);
        checkSize(width, height, name, "JPEG");
    }
    step([&] {
        cinfo.out_color_space = JCS_RGB;
        jpeg_start_decompress(&cinfo);
    });
    // Rows are appended as they decode: a truncated file declaring a large image stops
    // at its end having touched only what it held.
    Image im;
    im.width = cinfo.output_width;
    im.height = cinfo.output_height;
    im.rgb.reserve(std::size_t(im.width * im.height * 3));
    std::vector<uint8_t> line(std::size_t(im.width) * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = line.data();
        step([&] { jpeg_read_scanlines(&cinfo, &row, 1); });
        im.rgb.insert(im.rgb.end(), line.begin(), line.end());
    }
    step([&] { jpeg_finish_decompress(&cinfo); });
    jpeg_destroy_decompress(&cinfo);
    return im;
}

Image decodePng(std::string_view bytes, const std::string& name)
{
    PngReader reader {bytes};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, pngFail, pngWarn);
    if (!png)
        fail(name, ": libpng could not start");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        fail(name, ": libpng could not start");
    }
    auto step = [&](const auto& call) {
        if (!underJump(png_jmpbuf(png), call)) {
            png_destroy_read_struct(&png, &info, nullptr);
            fail(name, ": not a readable PNG (libpng: ", reader.message, ")");
        }
    };
    step([&] {
        png_set_read_fn(png, &reader, pngRead);
        png_set_user_limits(png, uint32_t(kMaxImageSide), uint32_t(kMaxImageSide));
        png_set_chunk_malloc_max(png, kMaxImageFileBytes);
        png_read_info(png, info);
    });
    const int64_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if (width * height > kMaxImagePixels) {
        png_destroy_read_struct(&png, &info, nullptr);
        checkSize(width, height, name, "PNG");
    }
    // Deflate expands at most 1032:1 and a pixel takes at least one bit: a larger
    // declared size cannot be in the file, so nothing that large is allocated.
    if (uint64_t(width) * uint64_t(height) > uint64_t(bytes.size()) * 1032 * 8) {
        png_destroy_read_struct(&png, &info, nullptr);
        fail(name, ": PNG declares ", width, "x", height, " pixels, more than its ", bytes.size(), " bytes can hold");
    }
    step([&] {
        const int type = png_get_color_type(png, info);
        png_set_expand(png); // palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha
        png_set_strip_16(png);
        png_set_strip_alpha(png);
        if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA)
            png_set_gray_to_rgb(png);
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        if (png_get_rowbytes(png, info) != std::size_t(width) * 3) // every transform above lands on RGB8
            png_error(png, "unexpected row layout after conversion to RGB");
    });
    Image im = blank(width, height);
    std::vector<png_bytep> rows(static_cast<std::size_t>(height));
    for (int64_t y = 0; y < height; ++y)
        rows[std::size_t(y)] = im.rgb.data() + std::size_t(y * width * 3);
    step([&] {
        png_read_image(png, rows.data());
        png_read_end(png, nullptr);
    });
    png_destroy_read_struct(&png, &info, nullptr);
    return im;
}

Image decodeBmp(std::string_view b, const std::string& name)
{
    if (b.size() < 14 + 40 || b[0] != 'B' || b[1] != 'M')
        fail(name, ": not a BMP (", b.size(), " bytes, expected a 54-byte header at least)");
    const uint32_t offset = le32(b, 10), dib = le32(b, 14);
    if (dib < 40 || 14 + uint64_t(dib) > b.size())
        fail(name, ": BMP header of ", dib, " bytes is not supported (BITMAPINFOHEADER or later, 40+)");
    const int32_t w = int32_t(le32(b, 18)), h = int32_t(le32(b, 22));
    const uint16_t bits = le16(b, 28);
    const uint32_t compression = le32(b, 30);
    const bool topDown = h < 0;
    const int64_t width = w, height = topDown ? -int64_t(h) : int64_t(h);
    checkSize(width, height, name, "BMP");
    if (bits != 8 && bits != 24 && bits != 32)
        fail(name, ": BMP with ", bits, " bits per pixel is not supported (8, 24 or 32)");
    // Uncompressed, or 32-bit bit fields that are the plain BGRA layout.
    bool plain = compression == 0;
    if (compression == 3 && bits == 32 && 14 + 40 + 12 <= b.size())
        plain = le32(b, 54) == 0x00FF0000u && le32(b, 58) == 0x0000FF00u && le32(b, 62) == 0x000000FFu;
    if (!plain)
        fail(name, ": compressed BMP (method ", compression, ") is not supported");
    std::vector<uint8_t> palette; // BGRX entries
    if (bits == 8) {
        uint32_t colors = le32(b, 46);
        if (colors == 0)
            colors = 256;
        if (colors > 256)
            fail(name, ": BMP palette of ", colors, " colors (at most 256)");
        const uint64_t at = 14 + uint64_t(dib);
        if (at + uint64_t(colors) * 4 > b.size())
            fail(name, ": BMP palette of ", colors, " colors runs past the end of the file");
        palette.assign(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + colors * 4));
        palette.resize(256 * 4, 0);
    }
    const uint64_t stride = (uint64_t(width) * bits / 8 + 3) / 4 * 4;
    if (uint64_t(offset) + stride * uint64_t(height) > b.size())
        fail(name, ": BMP pixel data (", stride * uint64_t(height), " bytes at ", offset,
            ") runs past the end of the file (", b.size(), " bytes)");
    Image im = blank(width, height);
    const auto* data = reinterpret_cast<const uint8_t*>(b.data()) + offset;
    for (int64_t y = 0; y < height; ++y) {
        const uint8_t* row = data + std::size_t(topDown ? y : height - 1 - y) * stride;
        uint8_t* out = im.rgb.data() + std::size_t(y * width * 3);
        for (int64_t x = 0; x < width; ++x, out += 3) {
            const uint8_t* p = bits == 8 ? palette.data() + std::size_t(row[x]) * 4 : row + x * (bits / 8);
            out[0] = p[2];
            out[1] = p[1];
            out[2] = p[0];
        }
    }
    return im;
}

Image decodeImage(std::string_view bytes, const std::string& name)
{
    if (bytes.size() >= 2 && uint8_t(bytes[0]) == 0xFF && uint8_t(bytes[1]) == 0xD8)
        return decodeJpeg(bytes, name);
    if (bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0)
        return decodePng(bytes, name);
    if (bytes.size() >= 2 && bytes[0] == 'B' && bytes[1] == 'M')
        return decodeBmp(bytes, name);
    fail(name, ": not a JPEG, PNG or BMP image (", bytes.empty() ? "empty file" : "unknown signature", ")");
}

Image readImage(const std::string& path)
{
    return decodeImage(readRegularFile(path, kMaxImageFileBytes), path);
}

bool isImageFileName(const std::string& path)
{
    std::string ext = std::filesystem::path(path).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

} // namespace qs
