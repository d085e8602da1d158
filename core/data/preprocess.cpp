// The image preprocessing pipeline: parsing and printing, sizes from the model, and
// the per-image work (Pillow-compatible resampling, placement, normalization).
#include "data/preprocess.h"

#include "util/error.h"
#include "util/file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace qs {

namespace {

constexpr const char* kOption = "--preprocess";

const char* resizeName(Preprocess::Resize r)
{
    switch (r) {
    case Preprocess::Resize::None:
        return "none";
    case Preprocess::Resize::Shorter:
        return "shorter";
    case Preprocess::Resize::Exact:
        return "exact";
    case Preprocess::Resize::Letterbox:
        return "letterbox";
    case Preprocess::Resize::KeepRatio:
        return "keepratio";
    }
    return "none";
}

std::string number(double v)
{
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::string scaleText(double s)
{
    const double inv = std::round(1.0 / s);
    if (inv >= 1 && inv < 1e9 && 1.0 / inv == s)
        return "1/" + number(inv);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", s);
    return buf;
}

std::string floatList(const std::vector<float>& v, char sep)
{
    std::string out;
    for (float x : v)
        out += (out.empty() ? "" : std::string(1, sep)) + number(double(x));
    return out;
}

double parseNumber(const std::string& text, const std::string& item)
{
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
        fail(kOption, " ", quoted(item), ": ", quoted(text), " is not a number");
    return v;
}

int64_t parseSide(const std::string& text, const std::string& item)
{
    const double v = parseNumber(text, item);
    if (v != std::floor(v) || v < 1 || v > double(kMaxImageSide))
        fail(kOption, " ", quoted(item), ": size ", quoted(text), " must be a whole number in 1..", kMaxImageSide);
    return int64_t(v);
}

// "S" -> {S, S}; "WxH" -> {W, H}.
std::pair<int64_t, int64_t> parseSize(const std::string& text, const std::string& item)
{
    const auto x = text.find('x');
    if (x == std::string::npos) {
        const int64_t s = parseSide(text, item);
        return {s, s};
    }
    return {parseSide(text.substr(0, x), item), parseSide(text.substr(x + 1), item)};
}

std::vector<float> parseTriple(const std::string& text, const std::string& item)
{
    std::vector<float> out;
    for (std::size_t at = 0; at <= text.size();) {
        const std::size_t colon = std::min(text.find(':', at), text.size());
        out.push_back(float(parseNumber(text.substr(at, colon - at), item)));
        at = colon + 1;
    }
    if (out.size() == 1)
        out.assign(3, out.front());
    if (out.size() != 3)
        fail(kOption, " ", quoted(item), ": expected 1 or 3 values separated by ':', got ", out.size());
    return out;
}

Preprocess preset(const std::string& name)
{
    Preprocess p;
    p.fitModel = true;
    if (name == "torchvision") {
        p.resize = Preprocess::Resize::Shorter;
        p.width = p.height = 256;
        p.cropWidth = p.cropHeight = 224;
        p.mean = {0.485f, 0.456f, 0.406f};
        p.std = {0.229f, 0.224f, 0.225f};
    } else if (name == "paddleocr-rec") {
        p.resize = Preprocess::Resize::KeepRatio;
        p.width = 320;
        p.height = 48;
        p.pad = 127.5f; // 0 after (x/255 - 0.5) / 0.5, as PaddleOCR pads the normalized line
        p.mean = {0.5f, 0.5f, 0.5f};
        p.std = {0.5f, 0.5f, 0.5f};
        p.bgr = true; // PaddleOCR reads with OpenCV and feeds BGR
    } else if (name == "yolo") {
        p.resize = Preprocess::Resize::Letterbox;
        p.width = p.height = 640;
        p.pad = 114;
    } else {
        fail(kOption, " ", quoted(name), ": unknown preset or item (presets: torchvision, paddleocr-rec, yolo)");
    }
    return p;
}

// Pillow's filters (libImaging/Resample.c).
double triangle(double x)
{
    x = std::fabs(x);
    return x < 1 ? 1 - x : 0;
}

double box(double x)
{
    return x > -0.5 && x <= 0.5 ? 1 : 0;
}

struct Taps {
    std::vector<int64_t> first, count;
    std::vector<int32_t> k; // fixed point, `stride` per output
    int64_t stride = 0;
};

constexpr int kPrecisionBits = 32 - 8 - 2;

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for `out` outputs over `in` inputs.
Taps taps(int64_t in, int64_t out, Preprocess::Interp interp)
{
    const double support0 = interp == Preprocess::Interp::Bilinear ? 1.0 : 0.5;
    const double scale = double(in) / double(out);
    const double filterscale = std::max(scale, 1.0);
    const double support = support0 * filterscale;
    Taps t;
    t.stride = int64_t(std::ceil(support)) * 2 + 1;
    t.first.resize(std::size_t(out));
    t.count.resize(std::size_t(out));
    t.k.assign(std::size_t(out * t.stride), 0);
    std::vector<double> w(std::size_t(t.stride));
    for (int64_t xx = 0; xx < out; ++xx) {
        const double center = (double(xx) + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int64_t xmin = int64_t(center - support + 0.5);
        xmin = std::max<int64_t>(xmin, 0);
        int64_t xmax = std::min<int64_t>(int64_t(center + support + 0.5), in) - xmin;
        xmax = std::min(xmax, t.stride);
        double ww = 0;
        for (int64_t x = 0; x < xmax; ++x) {
            const double arg = (double(x + xmin) - center + 0.5) * ss;
            w[std::size_t(x)] = interp == Preprocess::Interp::Bilinear ? triangle(arg) : box(arg);
            ww += w[std::size_t(x)];
        }
        for (int64_t x = 0; x < xmax; ++x) {
            const double k = ww != 0 ? w[std::size_t(x)] / ww : w[std::size_t(x)];
            t.k[std::size_t(xx * t.stride + x)] =
                int32_t(k < 0 ? -0.5 + k * (1 << kPrecisionBits) : 0.5 + k * (1 << kPrecisionBits));
        }
        t.first[std::size_t(xx)] = xmin;
        t.count[std::size_t(xx)] = std::max<int64_t>(xmax, 0);
    }
    return t;
}

uint8_t clip8(int32_t v)
{
    if (v >= int32_t(1) << (kPrecisionBits + 8))
        return 255;
    if (v <= 0)
        return 0;
    return uint8_t(v >> kPrecisionBits);
}

// One pass along x (`horizontal`) or y of Pillow's separable resample, with its int32
// accumulators (a normalized positive filter sums to at most 255 << 22).
Image pass(const Image& in, int64_t size, bool horizontal, Preprocess::Interp interp)
{
    const Taps t = taps(horizontal ? in.width : in.height, size, interp);
    Image out;
    out.width = horizontal ? size : in.width;
    out.height = horizontal ? in.height : size;
    out.rgb.resize(std::size_t(out.width * out.height * 3));
    constexpr int32_t half = int32_t(1) << (kPrecisionBits - 1);
    if (horizontal) {
        for (int64_t y = 0; y < out.height; ++y) {
            const uint8_t* row = in.pixel(0, y);
            uint8_t* q = out.rgb.data() + y * out.width * 3;
            for (int64_t x = 0; x < out.width; ++x, q += 3) {
                const int32_t* k = t.k.data() + x * t.stride;
                const uint8_t* p = row + t.first[std::size_t(x)] * 3;
                int32_t s0 = half, s1 = half, s2 = half;
                for (int64_t i = 0, n = t.count[std::size_t(x)]; i < n; ++i, p += 3) {
                    s0 += int32_t(p[0]) * k[i];
                    s1 += int32_t(p[1]) * k[i];
                    s2 += int32_t(p[2]) * k[i];
                }
                q[0] = clip8(s0);
                q[1] = clip8(s1);
                q[2] = clip8(s2);
            }
        }
        return out;
    }
    const std::size_t rowBytes = std::size_t(out.width * 3);
    std::vector<int32_t> acc(rowBytes);
    for (int64_t y = 0; y < out.height; ++y) {
        std::fill(acc.begin(), acc.end(), half);
        const int32_t* k = t.k.data() + y * t.stride;
        for (int64_t i = 0, n = t.count[std::size_t(y)]; i < n; ++i) {
            const uint8_t* r = in.pixel(0, t.first[std::size_t(y)] + i);
            const int32_t w = k[i];
            for (std::size_t e = 0; e < rowBytes; ++e)
                acc[e] += int32_t(r[e]) * w;
        }
        uint8_t* q = out.rgb.data() + std::size_t(y) * rowBytes;
        for (std::size_t e = 0; e < rowBytes; ++e)
            q[e] = clip8(acc[e]);
    }
    return out;
}

// Where the crop starts in a canvas of `size`: torchvision's CenterCrop (rounded half
// to even like Python's round; a crop wider than the canvas pads it on both sides).
int64_t cropStart(int64_t size, int64_t crop)
{
    if (crop > size)
        return -((crop - size) / 2);
    return int64_t(std::nearbyint(double(size - crop) / 2.0));
}

int64_t outputWidth(const Preprocess& p)
{
    if (p.cropWidth > 0)
        return p.cropWidth;
    return p.resize == Preprocess::Resize::Exact || p.resize == Preprocess::Resize::Letterbox ||
            p.resize == Preprocess::Resize::KeepRatio
        ? p.width
        : 0;
}

int64_t outputHeight(const Preprocess& p)
{
    if (p.cropHeight > 0)
        return p.cropHeight;
    return p.resize == Preprocess::Resize::None || p.resize == Preprocess::Resize::Shorter ? 0 : p.height;
}

} // namespace

Shape Preprocess::sampleShape() const
{
    const int64_t w = outputWidth(*this), h = outputHeight(*this);
    if (w <= 0 || h <= 0)
        fail(kOption, " ", quoted(text()), ": the output size depends on each image; add crop=WxH or resize=WxH");
    return nhwc ? Shape {h, w, 3} : Shape {3, h, w};
}

std::string Preprocess::text() const
{
    std::string out;
    auto add = [&](const std::string& item) { out += (out.empty() ? "" : ",") + item; };
    const std::string size = std::to_string(width) + "x" + std::to_string(height);
    switch (resize) {
    case Resize::None:
        break;
    case Resize::Shorter:
        add("resize=" + std::to_string(height));
        break;
    case Resize::Exact:
        add("resize=" + size);
        break;
    case Resize::Letterbox:
        add("letterbox=" + size);
        break;
    case Resize::KeepRatio:
        add("keepratio=" + size);
        break;
    }
    add(interp == Interp::Bilinear ? "interp=bilinear" : "interp=area");
    add(cropWidth > 0 ? "crop=" + std::to_string(cropWidth) + "x" + std::to_string(cropHeight) : "crop=none");
    add("pad=" + number(double(pad)));
    add("scale=" + scaleText(scale));
    if (!mean.empty())
        add("mean=" + floatList(mean, ':'));
    if (!std.empty())
        add("std=" + floatList(std, ':'));
    add(bgr ? "bgr" : "rgb");
    add(nhwc ? "nhwc" : "nchw");
    add("f32");
    add(fitModel ? "fit=model" : "fit=fixed");
    return out;
}

nlohmann::json Preprocess::toJson() const
{
    return {{"resize", resizeName(resize)}, {"width", width}, {"height", height},
        {"interp", interp == Interp::Bilinear ? "bilinear" : "area"}, {"crop", {cropWidth, cropHeight}}, {"pad", pad},
        {"scale", scale}, {"mean", mean}, {"std", std}, {"channels", bgr ? "bgr" : "rgb"},
        {"layout", nhwc ? "nhwc" : "nchw"}, {"dtype", "float32"}, {"fit", fitModel ? "model" : "fixed"}};
}

Preprocess Preprocess::fromJson(const nlohmann::json& j, const std::string& what)
{
    Preprocess p;
    try {
        const std::string r = j.at("resize").get<std::string>();
        const Resize all[] = {Resize::None, Resize::Shorter, Resize::Exact, Resize::Letterbox, Resize::KeepRatio};
        auto it = std::find_if(std::begin(all), std::end(all), [&](Resize x) { return r == resizeName(x); });
        if (it == std::end(all))
            fail(what, ": resize ", quoted(r), " is not none, shorter, exact, letterbox or keepratio");
        p.resize = *it;
        p.width = j.value("width", int64_t(0));
        p.height = j.value("height", int64_t(0));
        p.interp = j.value("interp", std::string("bilinear")) == "area" ? Interp::Area : Interp::Bilinear;
        if (j.contains("crop")) {
            p.cropWidth = j.at("crop").at(0).get<int64_t>();
            p.cropHeight = j.at("crop").at(1).get<int64_t>();
        }
        p.pad = j.value("pad", 0.f);
        p.scale = j.value("scale", 1.0 / 255);
        p.mean = j.value("mean", std::vector<float> {});
        p.std = j.value("std", std::vector<float> {});
        p.bgr = j.value("channels", std::string("rgb")) == "bgr";
        p.nhwc = j.value("layout", std::string("nchw")) == "nhwc";
        p.fitModel = j.value("fit", std::string("fixed")) == "model";
        if (j.value("dtype", std::string("float32")) != "float32")
            fail(what, ": dtype ", quoted(j.value("dtype", std::string())), " (only float32)");
    } catch (const nlohmann::json::exception& e) {
        fail(what, ": not a preprocessing pipeline (", e.what(), ")");
    }
    // The same checks as the text form: print it and read it back.
    Preprocess checked = parsePreprocess(p.text());
    return checked;
}

const std::vector<std::string>& preprocessPresets()
{
    static const std::vector<std::string> names = {"torchvision", "paddleocr-rec", "yolo"};
    return names;
}

Preprocess parsePreprocess(const std::string& spec)
{
    if (spec.ends_with(".json")) {
        const std::string text = readRegularFile(spec, kMaxTextFileBytes);
        nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_discarded())
            fail(spec, ": not JSON");
        return Preprocess::fromJson(j, spec);
    }
    Preprocess p;
    std::size_t at = 0;
    for (bool first = true; at <= spec.size(); first = false) {
        const std::size_t comma = std::min(spec.find(',', at), spec.size());
        const std::string item = spec.substr(at, comma - at);
        at = comma + 1;
        const std::size_t eq = item.find('=');
        const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (eq == std::string::npos) {
            if (item == "rgb" || item == "bgr")
                p.bgr = item == "bgr";
            else if (item == "nchw" || item == "nhwc")
                p.nhwc = item == "nhwc";
            else if (item == "f32" || item == "float32")
                ;
            else if (first)
                p = preset(item);
            else
                fail(kOption, " ", quoted(item), ": unknown item (a preset comes first)");
        } else if (key == "resize") {
            const auto [w, h] = parseSize(value, item);
            p.resize = value.find('x') == std::string::npos ? Preprocess::Resize::Shorter : Preprocess::Resize::Exact;
            p.width = w;
            p.height = h;
        } else if (key == "letterbox" || key == "keepratio") {
            const auto [w, h] = parseSize(value, item);
            p.resize = key == "letterbox" ? Preprocess::Resize::Letterbox : Preprocess::Resize::KeepRatio;
            p.width = w;
            p.height = h;
        } else if (key == "interp") {
            if (value != "bilinear" && value != "area")
                fail(kOption, " ", quoted(item), ": interp is bilinear or area");
            p.interp = value == "area" ? Preprocess::Interp::Area : Preprocess::Interp::Bilinear;
        } else if (key == "crop") {
            const auto [w, h] = value == "none" ? std::pair<int64_t, int64_t> {0, 0} : parseSize(value, item);
            p.cropWidth = w;
            p.cropHeight = h;
        } else if (key == "pad") {
            p.pad = float(parseNumber(value, item));
        } else if (key == "scale") {
            const auto slash = value.find('/');
            p.scale = slash == std::string::npos
                ? parseNumber(value, item)
                : parseNumber(value.substr(0, slash), item) / parseNumber(value.substr(slash + 1), item);
            if (!std::isfinite(p.scale) || p.scale == 0)
                fail(kOption, " ", quoted(item), ": scale must be finite and not 0");
        } else if (key == "mean" || key == "std") {
            (key == "mean" ? p.mean : p.std) = parseTriple(value, item);
        } else if (key == "fit") {
            if (value != "model" && value != "fixed")
                fail(kOption, " ", quoted(item), ": fit is model or fixed");
            p.fitModel = value == "model";
        } else {
            fail(kOption, " ", quoted(item), ": unknown item (resize, letterbox, keepratio, interp, crop, pad, ",
                "scale, mean, std, rgb, bgr, nchw, nhwc, f32, fit, or a preset first)");
        }
    }
    for (float s : p.std)
        if (!(s > 0))
            fail(kOption, " ", quoted(spec), ": std values must be positive");
    if (p.resize == Preprocess::Resize::Shorter && p.width != p.height)
        fail(kOption, " ", quoted(spec), ": resize=S takes one side");
    return p;
}

Preprocess resolvePreprocess(const Preprocess& given, const Shape& modelSample, const std::string& what)
{
    Preprocess p = given;
    if (modelSample.size() != 3)
        fail(what, ": takes samples of shape ", shapeString(modelSample), "; images give [3, H, W] or [H, W, 3]");
    const int64_t c = modelSample[p.nhwc ? 2 : 0], h = modelSample[p.nhwc ? 0 : 1], w = modelSample[p.nhwc ? 1 : 2];
    if (c > 0 && c != 3) {
        const int64_t other = modelSample[p.nhwc ? 0 : 2];
        fail(what, ": takes ", c, " channels at axis ", p.nhwc ? 3 : 1, " of ", shapeString(modelSample),
            " (images give 3",
            other == 3 ? std::string("; the model looks ") + (p.nhwc ? "NCHW: add nchw" : "NHWC: add nhwc") : "", ")");
    }
    if (p.fitModel) {
        using R = Preprocess::Resize;
        if (p.cropWidth > 0 || p.resize == R::None || p.resize == R::Shorter) {
            if (p.resize == R::Shorter && w > 0 && h > 0 && p.cropWidth > 0 && (w != p.cropWidth || h != p.cropHeight))
                p.width = p.height = std::min(w, h) * p.height / std::min(p.cropWidth, p.cropHeight);
            if (w > 0)
                p.cropWidth = w;
            if (h > 0)
                p.cropHeight = h;
            if (p.cropWidth <= 0 || p.cropHeight <= 0) // one side from the model only: square
                p.cropWidth = p.cropHeight = std::max(p.cropWidth, p.cropHeight);
        } else {
            if (w > 0)
                p.width = w;
            if (h > 0)
                p.height = h;
        }
    }
    const Shape out = p.sampleShape();
    for (std::size_t i = 0; i < 3; ++i)
        if (modelSample[i] > 0 && modelSample[i] != out[i])
            fail(what, ": takes samples of shape ", shapeString(modelSample), "; ", kOption, " ", quoted(p.text()),
                " gives ", shapeString(out));
    return p;
}

Image resizeImage(const Image& image, int64_t width, int64_t height, Preprocess::Interp interp)
{
    Image out = image.width != width ? pass(image, width, true, interp) : image;
    return out.height != height ? pass(out, height, false, interp) : out;
}

void preprocessImage(const Image& im, const Preprocess& p, float* out)
{
    using R = Preprocess::Resize;
    const int64_t w = im.width, h = im.height;
    int64_t rw = w, rh = h;
    switch (p.resize) {
    case R::None:
        break;
    case R::Shorter: {
        const int64_t shortSide = std::min(w, h), longSide = std::max(w, h);
        const int64_t newLong = p.height * longSide / shortSide;
        rw = w <= h ? p.height : newLong;
        rh = w <= h ? newLong : p.height;
        break;
    }
    case R::Exact:
        rw = p.width;
        rh = p.height;
        break;
    case R::Letterbox: {
        const double r = std::min(double(p.height) / double(h), double(p.width) / double(w));
        rw = int64_t(std::nearbyint(double(w) * r));
        rh = int64_t(std::nearbyint(double(h) * r));
        break;
    }
    case R::KeepRatio: {
        const double ratio = double(w) / double(h);
        rw = std::min<int64_t>(p.width, int64_t(std::ceil(double(p.height) * ratio)));
        rh = p.height;
        break;
    }
    }
    rw = std::max<int64_t>(rw, 1);
    rh = std::max<int64_t>(rh, 1);
    const Image resized = rw != w || rh != h ? resizeImage(im, rw, rh, p.interp) : Image();
    const Image& src = rw != w || rh != h ? resized : im;
    // The canvas: the resized image, or the letterbox / keep-ratio box it sits in.
    int64_t cw = rw, ch = rh, left = 0, top = 0;
    if (p.resize == R::Letterbox) {
        cw = p.width;
        ch = p.height;
        left = int64_t(std::nearbyint(double(p.width - rw) / 2.0 - 0.1));
        top = int64_t(std::nearbyint(double(p.height - rh) / 2.0 - 0.1));
    } else if (p.resize == R::KeepRatio) {
        cw = p.width;
        ch = p.height;
    }
    const int64_t ow = p.cropWidth > 0 ? p.cropWidth : cw, oh = p.cropHeight > 0 ? p.cropHeight : ch;
    const int64_t x0 = p.cropWidth > 0 ? cropStart(cw, ow) : 0, y0 = p.cropHeight > 0 ? cropStart(ch, oh) : 0;
    float a[3], b[3], padded[3];
    for (int c = 0; c < 3; ++c) {
        const float mean = p.mean.empty() ? 0.f : p.mean[std::size_t(c)];
        const float sd = p.std.empty() ? 1.f : p.std[std::size_t(c)];
        a[c] = float(p.scale) / sd;
        b[c] = -mean / sd;
        padded[c] = p.pad * a[c] + b[c];
    }
    const int64_t plane = ow * oh;
    for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x) {
            // Canvas position, then the image's.
            const int64_t sx = x + x0 - left, sy = y + y0 - top;
            const bool inside = sx >= 0 && sy >= 0 && sx < rw && sy < rh;
            const uint8_t* px = inside ? src.pixel(sx, sy) : nullptr;
            for (int c = 0; c < 3; ++c) {
                const int from = p.bgr ? 2 - c : c;
                const float v = inside ? float(px[from]) * a[c] + b[c] : padded[c];
                out[p.nhwc ? (y * ow + x) * 3 + c : c * plane + y * ow + x] = v;
            }
        }
}

} // namespace qs
