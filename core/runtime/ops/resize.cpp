// Resize (nearest, n-linear and n-cubic, every coordinate transformation mode of
// opsets 10-18; no antialias) in plain C++, float32; Upsample (opsets 7-9, scales an
// attribute before 9) as the Resize of opset 10 it became. Cubic follows the ONNX
// reference (onnx/reference/ops/op_resize.py): Keys' kernel with cubic_coeff_a, four
// taps per axis, edge-clamped indices, exclude_outside renormalizing the weights.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace qs::rt {
namespace {

// Per output index o of one axis: source taps [first[o], first[o+1]) of idx and w.
struct AxisMap {
    std::vector<int64_t> first {0};
    std::vector<int64_t> idx;
    std::vector<double> w;
    std::vector<char> outside; // tf_crop_and_resize outside the input
    void tap(int64_t i, double weight)
    {
        idx.push_back(i);
        w.push_back(weight);
    }
    void next() { first.push_back(int64_t(idx.size())); }
};

// Nearest resizes inside the input (every output index one tap of weight 1): a gather of
// the innermost axis per output row, and a copy of the previous output row when it reads
// the same input row (integer upsampling: PaddleOCR's detector's 2x to 8x neck, where the
// general path's per-element sums took 2.5 ms per image). The same values: a one-tap sum
// is the input value itself.
bool addResizeRowsNearest(NodeContext& c, int src, int dst, const Shape& in, const Shape& out,
                          const std::vector<AxisMap>& maps)
{
    for (const AxisMap& m : maps) {
        if (std::any_of(m.outside.begin(), m.outside.end(), [](char o) { return o != 0; }))
            return false;
        for (std::size_t o = 0; o + 1 < m.first.size(); ++o)
            if (m.first[o + 1] - m.first[o] != 1 || m.w[std::size_t(m.first[o])] != 1.0)
                return false;
    }
    const std::size_t r = in.size(), last = r - 1;
    std::vector<int64_t> st(r, 1);
    for (std::size_t d = r - 1; d-- > 0;)
        st[d] = st[d + 1] * in[d + 1];
    std::vector<std::vector<int64_t>> pick(r); // output index -> input index, per axis
    for (std::size_t d = 0; d < r; ++d)
        for (int64_t o = 0; o < out[d]; ++o)
            pick[d].push_back(maps[d].idx[std::size_t(maps[d].first[std::size_t(o)])]);
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        const int64_t width = out[last], rows = numelOf(out) / std::max<int64_t>(width, 1);
        if (numelOf(out) == 0)
            return;
        const std::vector<int64_t>& inner = pick[last];
        std::vector<int64_t> idx(r, 0);
        int64_t prevOff = -1;
        for (int64_t row = 0; row < rows; ++row) {
            int64_t off = 0;
            for (std::size_t d = 0; d < last; ++d)
                off += pick[d][std::size_t(idx[d])] * st[d];
            float* yr = y + row * width;
            if (off == prevOff) {
                std::memcpy(yr, yr - width, std::size_t(width) * sizeof(float));
            } else {
                const float* xr = x + off;
                for (int64_t j = 0; j < width; ++j)
                    yr[j] = xr[inner[std::size_t(j)]];
            }
            prevOff = off;
            for (std::size_t d = last; d-- > 0;) {
                if (++idx[d] < out[d])
                    break;
                idx[d] = 0;
            }
        }
    });
    return true;
}

// Linear resizes of the last two axes only (every other axis maps each index to itself, no
// point outside the input: M-LSD's and DB heads' upsampling): each output row blends two
// input rows, each interpolated along the innermost axis once and kept while consecutive
// output rows read it; float arithmetic, a few ulp from the general path's double sums.
// False (nothing added) for any other resize.
bool addResizeRowsLinear(NodeContext& c, int src, int dst, const Shape& in, const Shape& out,
                         const std::vector<AxisMap>& maps)
{
    const std::size_t r = in.size();
    for (std::size_t d = 0; d < r; ++d)
        for (int64_t o = 0; o < out[d]; ++o) {
            const int64_t t0 = maps[d].first[std::size_t(o)], taps = maps[d].first[std::size_t(o) + 1] - t0;
            if (maps[d].outside[std::size_t(o)] || taps < 1 || taps > 2)
                return false;
            if (d + 2 < r && (taps != 1 || maps[d].idx[std::size_t(t0)] != o || maps[d].w[std::size_t(t0)] != 1.0))
                return false;
        }
    struct Taps {
        std::vector<int64_t> i0, i1;
        std::vector<float> w0, w1;
    };
    auto tapsOf = [&](std::size_t d) {
        Taps t;
        for (int64_t o = 0; o < out[d]; ++o) {
            const auto k = std::size_t(maps[d].first[std::size_t(o)]);
            const bool two = maps[d].first[std::size_t(o) + 1] - int64_t(k) == 2;
            t.i0.push_back(maps[d].idx[k]);
            t.w0.push_back(float(maps[d].w[k]));
            t.i1.push_back(two ? maps[d].idx[k + 1] : maps[d].idx[k]); // one tap: itself at weight 0
            t.w1.push_back(two ? float(maps[d].w[k + 1]) : 0.f);
        }
        return t;
    };
    const Taps rows = tapsOf(r - 2), cols = tapsOf(r - 1);
    const int64_t h = in[r - 2], w = in[r - 1], oh = out[r - 2], ow = out[r - 1];
    const int64_t planes = numelOf(out) / std::max<int64_t>(1, oh * ow);
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        if (planes == 0 || oh == 0 || ow == 0)
            return;
        std::vector<float> buf[2] = {std::vector<float>(std::size_t(ow)), std::vector<float>(std::size_t(ow))};
        for (int64_t pl = 0; pl < planes; ++pl) {
            const float* xp = x + pl * h * w;
            int64_t held[2] = {-1, -1};
            // Input row i interpolated along the innermost axis, in the buffer not holding `keep`.
            auto rowOf = [&](int64_t i, int64_t keep) -> const float* {
                for (int k = 0; k < 2; ++k)
                    if (held[k] == i)
                        return buf[k].data();
                const int k = held[0] == keep ? 1 : 0;
                const float* xr = xp + i * w;
                float* b = buf[k].data();
                for (int64_t j = 0; j < ow; ++j)
                    b[j] = cols.w0[std::size_t(j)] * xr[cols.i0[std::size_t(j)]] +
                        cols.w1[std::size_t(j)] * xr[cols.i1[std::size_t(j)]];
                held[k] = i;
                return b;
            };
            for (int64_t o = 0; o < oh; ++o) {
                const float* a = rowOf(rows.i0[std::size_t(o)], -2);
                const float* b = rowOf(rows.i1[std::size_t(o)], rows.i0[std::size_t(o)]);
                const float wa = rows.w0[std::size_t(o)], wb = rows.w1[std::size_t(o)];
                float* yr = y + (pl * oh + o) * ow;
                for (int64_t j = 0; j < ow; ++j)
                    yr[j] = wa * a[j] + wb * b[j];
            }
        }
    });
    return true;
}

// Longest resized dim: keeps the index maps and the output size sane.
constexpr int64_t kMaxDim = int64_t(1) << 30;

std::string floatList(const std::vector<float>& v)
{
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i)
        s += (i ? ", " : "") + str(v[i]);
    return s + "]";
}

// Keys' cubic convolution weights of the taps at floor(x) - 1 .. floor(x) + 2, t = x - floor(x).
std::array<double, 4> cubicWeights(double t, double a)
{
    const double s = 1 + t, u = 1 - t, v = 2 - t;
    return {((a * s - 5 * a) * s + 8 * a) * s - 4 * a, ((a + 2) * t - (a + 3)) * t * t + 1,
        ((a + 2) * u - (a + 3)) * u * u + 1, ((a * v - 5 * a) * v + 8 * a) * v - 4 * a};
}

bool buildResize(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& in = c.shape(0);
    const std::size_t r = in.size();
    const bool upsample = n.opType == "Upsample";
    std::string mode = n.attrString("mode", "nearest");
    if (upsample && mode == "bilinear")
        mode = "linear";
    if (mode != "nearest" && mode != "linear" && (mode != "cubic" || upsample))
        c.fail("mode ", mode, " is not supported (nearest, linear and cubic are)");
    const double cubicA = n.attrFloat("cubic_coeff_a", -0.75f);
    const bool excludeOutside = n.attrInt("exclude_outside", 0) != 0;
    const bool opset10 = c.opset() < 11 || upsample;
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
        if (upsample && c.opset() < 9) {
            if (!n.has("scales"))
                c.fail("attribute scales is missing");
            scales = n.attrFloats("scales");
        } else {
            scales = c.requireConstant(scalesInput, "scales").toFloat();
        }
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

    for (std::size_t d = 0; d < r; ++d)
        if (out[d] < 0 || (in[d] == 0 && out[d] > 0))
            c.fail("cannot resize axis ", d, " of ", shapeString(in), " to ", out[d]);
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
                m.tap(std::clamp<int64_t>(int64_t(k), 0, in[d] - 1), 1.0);
            } else if (mode == "linear") {
                const double xc = std::clamp(x, 0.0, len - 1);
                const int64_t i0 = int64_t(std::floor(xc));
                const int64_t i1 = std::min<int64_t>(i0 + 1, in[d] - 1);
                m.tap(i0, 1.0 - (xc - double(i0)));
                if (xc > double(i0))
                    m.tap(i1, xc - double(i0));
            } else {
                // Outside points of tf_crop_and_resize take the extrapolation value; keep x finite.
                const double xf = std::clamp(x, -2.0, len + 1);
                const int64_t base = int64_t(std::floor(xf));
                const auto cw = cubicWeights(xf - double(base), cubicA);
                double sum = 0;
                std::array<double, 4> w {};
                for (int j = 0; j < 4; ++j) {
                    const int64_t i = base - 1 + j;
                    w[std::size_t(j)] = excludeOutside && (i < 0 || i >= in[d]) ? 0.0 : cw[std::size_t(j)];
                    sum += w[std::size_t(j)];
                }
                const int64_t before = int64_t(m.idx.size());
                for (int j = 0; j < 4; ++j)
                    if (w[std::size_t(j)] != 0)
                        m.tap(std::clamp<int64_t>(base - 1 + j, 0, in[d] - 1),
                            excludeOutside ? w[std::size_t(j)] / sum : w[std::size_t(j)]);
                if (int64_t(m.idx.size()) == before) // every tap outside: a zero, never an empty sum
                    m.tap(std::clamp<int64_t>(base, 0, in[d] - 1), 0.0);
            }
            m.next();
        }
    }
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, out);
    if (r >= 2 && mode == "linear" && addResizeRowsLinear(c, src, dst, in, out, maps))
        return true;
    if (r >= 1 && mode == "nearest" && addResizeRowsNearest(c, src, dst, in, out, maps))
        return true;
    const auto st = rowStrides(in);
    // Row by row of the innermost axis: the outer axes' tap combinations (weight product and
    // offset, in the order of an odometer over the axes) once per row, then per output element
    // the sum over those combinations and the innermost axis's taps. Same terms, same order of
    // double arithmetic as a per-element odometer over all axes, so the same numbers.
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        if (numelOf(out) == 0)
            return;
        if (r == 0) {
            y[0] = x[0];
            return;
        }
        const std::size_t last = r - 1;
        const AxisMap& inner = maps[last];
        const int64_t width = out[last], rows = numelOf(out) / width;
        std::vector<int64_t> idx(r, 0), tap(r, 0);
        std::vector<double> comboW;
        std::vector<int64_t> comboOff;
        for (int64_t row = 0; row < rows; ++row) {
            bool outside = false;
            for (std::size_t d = 0; d < last; ++d)
                outside = outside || maps[d].outside[std::size_t(idx[d])];
            comboW.clear();
            comboOff.clear();
            if (!outside) {
                for (std::size_t d = 0; d < last; ++d)
                    tap[d] = maps[d].first[std::size_t(idx[d])];
                for (;;) {
                    double w = 1;
                    int64_t off = 0;
                    for (std::size_t d = 0; d < last; ++d) {
                        w *= maps[d].w[std::size_t(tap[d])];
                        off += maps[d].idx[std::size_t(tap[d])] * st[d];
                    }
                    comboW.push_back(w);
                    comboOff.push_back(off);
                    std::size_t d = last;
                    while (d-- > 0) {
                        if (++tap[d] < maps[d].first[std::size_t(idx[d]) + 1])
                            break;
                        tap[d] = maps[d].first[std::size_t(idx[d])];
                    }
                    if (d == std::size_t(-1))
                        break;
                }
            }
            float* yr = y + row * width;
            const std::size_t combos = comboW.size();
            for (int64_t j = 0; j < width; ++j) {
                if (outside || inner.outside[std::size_t(j)]) {
                    yr[j] = extrapolation;
                    continue;
                }
                const int64_t t0 = inner.first[std::size_t(j)], t1 = inner.first[std::size_t(j) + 1];
                double acc = 0;
                for (std::size_t k = 0; k < combos; ++k)
                    for (int64_t t = t0; t < t1; ++t)
                        acc +=
                            comboW[k] * inner.w[std::size_t(t)] * x[comboOff[k] + inner.idx[std::size_t(t)] * st[last]];
                yr[j] = float(acc);
            }
            for (std::size_t d = last; d-- > 0;) {
                if (++idx[d] < out[d])
                    break;
                idx[d] = 0;
            }
        }
    });
    return true;
}

const bool resizeRegistered = [] {
    registerOp("Resize", buildResize);
    registerOp("Upsample", buildResize);
    return true;
}();

} // namespace
} // namespace qs::rt
