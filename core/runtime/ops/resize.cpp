// Resize (nearest and n-linear, every coordinate transformation mode of opsets
// 10-18 except cubic interpolation) in plain C++, float32.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <cmath>

namespace qs::rt {
namespace {

struct AxisMap {
    std::vector<int64_t> i0, i1;  // source indices
    std::vector<float> w1;        // weight of i1 (linear)
    std::vector<char> outside;    // tf_crop_and_resize outside the input
};

// Longest resized dim: keeps the index maps and the output size sane.
constexpr int64_t kMaxDim = int64_t(1) << 30;

std::string floatList(const std::vector<float>& v)
{
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        s += (i ? ", " : "") + str(v[i]);
    return s + "]";
}

bool buildResize(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& in = c.shape(0);
    const std::size_t r = in.size();
    const std::string mode = n.attrString("mode", "nearest");
    if (mode != "nearest" && mode != "linear")
        c.fail("mode ", mode, " is not supported (nearest and linear are)");
    const bool opset10 = c.opset() < 11;
    const std::string coord =
        opset10 ? "asymmetric" : n.attrString("coordinate_transformation_mode", "half_pixel");
    const std::string nearestMode = opset10 ? "floor" : n.attrString("nearest_mode", "round_prefer_floor");
    const float extrapolation = n.attrFloat("extrapolation_value", 0.f);
    if (n.has("axes") || n.attrInt("antialias", 0) != 0 || n.has("keep_aspect_ratio_policy"))
        c.fail("axes, antialias and keep_aspect_ratio_policy are not supported");
    std::vector<float> scales, roi;
    Shape out(r);
    const std::size_t scalesInput = opset10 ? 1 : 2;
    bool sizesGiven = false;
    if (!opset10 && c.has(3) && c.in(3).numel() > 0) {
        auto sizes = c.requireConstant(3, "sizes").toInt64();
        if (sizes.size() != r)
            c.fail("sizes has ", sizes.size(), " values for rank ", r);
        sizesGiven = true;
        for (std::size_t d = 0; d < r; ++d) {
            if (sizes[d] < 0 || sizes[d] > kMaxDim || (in[d] == 0 && sizes[d] > 0))
                c.fail("sizes ", shapeString(sizes), " do not fit the input ", shapeString(in));
            out[d] = sizes[d];
            scales.push_back(float(double(sizes[d]) / double(in[d])));
        }
    } else {
        scales = c.requireConstant(scalesInput, "scales").toFloat();
        if (scales.size() != r)
            c.fail("scales has ", scales.size(), " values for rank ", r);
        for (std::size_t d = 0; d < r; ++d) {
            const double len = std::floor(double(in[d]) * scales[d]);
            if (!std::isfinite(scales[d]) || scales[d] <= 0 || len > double(kMaxDim) || (in[d] == 0 && len > 0))
                c.fail("scales ", floatList(scales), " do not fit the input ", shapeString(in),
                    " (each must be positive and finite)");
            out[d] = int64_t(len);
        }
    }
    if (!opset10 && c.has(1) && c.in(1).numel() > 0)
        roi = c.requireConstant(1, "roi").toFloat();
    if (coord == "tf_crop_and_resize" && roi.size() != 2 * r)
        c.fail("tf_crop_and_resize needs roi with ", 2 * r, " values");
    static const std::set<std::string> known{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                             "tf_crop_and_resize", "tf_half_pixel_for_nn", "half_pixel_symmetric"};
    if (!known.count(coord))
        c.fail("coordinate_transformation_mode ", coord, " is not supported");

    std::vector<AxisMap> maps(r);
    for (std::size_t d = 0; d < r; ++d) {
        AxisMap& m = maps[d];
        // With scales given, ONNX measures the resized length unrounded (in * scale).
        const double len = double(in[d]), scale = scales[d];
        const double olen = sizesGiven ? double(out[d]) : len * scale;
        for (int64_t o = 0; o < out[d]; ++o) {
            double x;
            if (coord == "half_pixel")
                x = (o + 0.5) / scale - 0.5;
            else if (coord == "half_pixel_symmetric") {
                const double adj = olen / (scale * len), center = len / 2;
                x = center * (1 - adj) + (o + 0.5) / scale - 0.5;
            } else if (coord == "pytorch_half_pixel")
                x = olen > 1 ? (o + 0.5) / scale - 0.5 : 0;
            else if (coord == "align_corners")
                x = olen == 1 ? 0 : o * (len - 1) / (olen - 1);
            else if (coord == "tf_half_pixel_for_nn")
                x = (o + 0.5) / scale;
            else if (coord == "tf_crop_and_resize") {
                const double s = roi[d], e = roi[d + r];
                x = olen > 1 ? s * (len - 1) + o * (e - s) * (len - 1) / (olen - 1) : 0.5 * (s + e) * (len - 1);
            } else
                x = o / scale;
            const bool outside = coord == "tf_crop_and_resize" && (x < 0 || x > len - 1);
            m.outside.push_back(outside);
            if (mode == "nearest") {
                double k;
                if (nearestMode == "round_prefer_ceil")
                    k = std::floor(x + 0.5);
                else if (nearestMode == "floor")
                    k = std::floor(x);
                else if (nearestMode == "ceil")
                    k = std::ceil(x);
                else // round_prefer_floor
                    k = (x - std::floor(x) == 0.5) ? std::floor(x) : std::round(x);
                const int64_t i = std::clamp<int64_t>(int64_t(k), 0, in[d] - 1);
                m.i0.push_back(i);
                m.i1.push_back(i);
                m.w1.push_back(0.f);
            } else {
                const double xc = std::clamp(x, 0.0, len - 1);
                const int64_t i0 = int64_t(std::floor(xc));
                const int64_t i1 = std::min<int64_t>(i0 + 1, in[d] - 1);
                m.i0.push_back(i0);
                m.i1.push_back(i1);
                m.w1.push_back(float(xc - double(i0)));
            }
        }
    }
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, out);
    const auto st = rowStrides(in);
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        const int64_t total = numelOf(out);
        std::vector<int64_t> idx(r, 0);
        for (int64_t o = 0; o < total; ++o) {
            bool outside = false;
            for (std::size_t d = 0; d < r; ++d)
                outside = outside || maps[d].outside[std::size_t(idx[d])];
            float v = extrapolation;
            if (!outside) {
                // Sum over the 2^r corners with non-zero weight.
                double acc = 0;
                const std::size_t corners = std::size_t(1) << r;
                for (std::size_t k = 0; k < corners; ++k) {
                    double w = 1;
                    int64_t off = 0;
                    for (std::size_t d = 0; d < r && w != 0; ++d) {
                        const std::size_t j = std::size_t(idx[d]);
                        const bool hi = (k >> d) & 1;
                        const double wd = hi ? maps[d].w1[j] : 1.0 - maps[d].w1[j];
                        w *= wd;
                        off += (hi ? maps[d].i1[j] : maps[d].i0[j]) * st[d];
                    }
                    if (w != 0)
                        acc += w * x[off];
                }
                v = float(acc);
            }
            y[o] = v;
            for (std::size_t d = r; d-- > 0;) {
                if (++idx[d] < out[d])
                    break;
                idx[d] = 0;
            }
        }
    });
    return true;
}

const bool registered = [] {
    registerOp("Resize", buildResize);
    return true;
}();

} // namespace
} // namespace qs::rt
