// Data movement in plain C++ (any dtype, moved as bytes): Transpose, Gather,
// Slice, Split, Pad, Expand, Where, Concat (float Concat uses oneDNN).
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace qs::rt {
namespace {

// Copies one element of `size` bytes.
inline void copyElem(std::byte* dst, const std::byte* src, std::size_t size)
{
    switch (size) {
    case 1: *dst = *src; break;
    case 2: std::memcpy(dst, src, 2); break;
    case 4: std::memcpy(dst, src, 4); break;
    case 8: std::memcpy(dst, src, 8); break;
    default: std::memcpy(dst, src, size);
    }
}

std::size_t esize(NodeContext& c, DType t)
{
    const std::size_t s = elementSize(t);
    if (s == 0)
        c.fail("type ", dtypeName(t), " is not supported");
    return s;
}

// out[i] = in[offset(i)] for an arbitrary linear map of the output index: offset =
// base + sum(idx[d] * strides[d]). A unit-stride innermost dim is copied as one run.
void gatherStrided(std::byte* out, const std::byte* in, const Shape& outShape, const std::vector<int64_t>& strides,
                   int64_t base, std::size_t es)
{
    const int64_t total = numelOf(outShape);
    std::size_t r = outShape.size();
    int64_t run = 1; // elements copied per step
    if (r > 0 && strides[r - 1] == 1) {
        run = outShape[r - 1];
        --r;
    }
    if (run == 0)
        return;
    const std::size_t runBytes = std::size_t(run) * es;
    std::vector<int64_t> idx(r, 0);
    int64_t off = base;
    for (int64_t o = 0; o < total; o += run) {
        if (run == 1)
            copyElem(out + std::size_t(o) * es, in + std::size_t(off) * es, es);
        else
            std::memcpy(out + std::size_t(o) * es, in + std::size_t(off) * es, runBytes);
        for (std::size_t d = r; d-- > 0;) {
            ++idx[d];
            off += strides[d];
            if (idx[d] < outShape[d])
                break;
            off -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
}

bool buildTranspose(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const std::size_t r = in.size();
    auto perm = c.node.attrInts("perm");
    if (perm.empty())
        for (std::size_t i = 0; i < r; ++i)
            perm.push_back(int64_t(r - 1 - i));
    perm = normalizeAxes(perm, int64_t(r), c);
    if (perm.size() != r)
        c.fail("perm has ", perm.size(), " entries for rank ", r);
    std::vector<bool> seen(r, false);
    for (int64_t a : perm) {
        if (seen[std::size_t(a)])
            c.fail("perm ", shapeString(c.node.attrInts("perm")), " is not a permutation of 0..", r - 1);
        seen[std::size_t(a)] = true;
    }
    Shape out(r);
    const auto st = rowStrides(in);
    std::vector<int64_t> strides(r);
    for (std::size_t i = 0; i < r; ++i) {
        out[i] = in[std::size_t(perm[i])];
        strides[i] = st[std::size_t(perm[i])];
    }
    const std::size_t es = esize(c, c.dtype(0));
    const int src = c.plainInput(0);
    const int dst = c.output(0, c.dtype(0), out);
    c.addFn({src}, {dst}, [=](Program& p) {
        gatherStrided(static_cast<std::byte*>(p.slot(dst).data()), static_cast<const std::byte*>(p.slot(src).data()),
                      out, strides, 0, es);
    });
    return true;
}

bool buildGather(NodeContext& c)
{
    const Shape& data = c.shape(0);
    const Shape& ind = c.shape(1);
    if (c.dtype(1) != DType::Int64 && c.dtype(1) != DType::Int32)
        c.fail("indices must be int32 or int64");
    if (data.empty())
        c.fail("data must have rank >= 1 (it is a scalar)");
    const int64_t axis = normalizeAxis(c.node.attrInt("axis", 0), int64_t(data.size()), c);
    Shape out(data.begin(), data.begin() + axis);
    out.insert(out.end(), ind.begin(), ind.end());
    out.insert(out.end(), data.begin() + axis + 1, data.end());
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < int64_t(data.size()); ++i) {
        if (i < axis)
            outer *= data[std::size_t(i)];
        else if (i > axis)
            inner *= data[std::size_t(i)];
    }
    const int64_t n = data[std::size_t(axis)], count = numelOf(ind);
    const std::size_t es = esize(c, c.dtype(0));
    const bool i64 = c.dtype(1) == DType::Int64;
    const int src = c.plainInput(0), idx = c.plainInput(1);
    const int dst = c.output(0, c.dtype(0), out);
    const std::string where = c.where();
    c.addFn({src, idx}, {dst}, [=](Program& p) {
        const std::byte* in = static_cast<const std::byte*>(p.slot(src).data());
        std::byte* o = static_cast<std::byte*>(p.slot(dst).data());
        const std::size_t block = std::size_t(inner) * es;
        for (int64_t a = 0; a < outer; ++a)
            for (int64_t j = 0; j < count; ++j) {
                const int64_t given = i64 ? p.slot(idx).as<int64_t>()[j] : p.slot(idx).as<int32_t>()[j];
                const int64_t k = given < 0 ? given + n : given;
                if (k < 0 || k >= n)
                    fail(where, ": index ", given, " is out of range [", -n, ", ", n, ")");
                std::memcpy(o + std::size_t(a * count + j) * block, in + std::size_t(a * n + k) * block, block);
            }
    });
    return true;
}

bool buildSlice(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const int64_t r = int64_t(in.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if (c.opset() < 10) {
        starts = c.node.attrInts("starts");
        ends = c.node.attrInts("ends");
        axes = c.node.attrInts("axes");
    } else {
        starts = c.requireConstant(1, "starts").toInt64();
        ends = c.requireConstant(2, "ends").toInt64();
        if (c.has(3))
            axes = c.requireConstant(3, "axes").toInt64();
        if (c.has(4))
            steps = c.requireConstant(4, "steps").toInt64();
    }
    if (axes.empty())
        for (std::size_t i = 0; i < starts.size(); ++i)
            axes.push_back(int64_t(i));
    if (steps.empty())
        steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        c.fail("starts, ends, axes and steps differ in length");
    axes = normalizeAxes(axes, r, c);
    Shape out = in;
    std::vector<int64_t> begin(std::size_t(r), 0), step(std::size_t(r), 1);
    for (std::size_t i = 0; i < axes.size(); ++i) {
        const std::size_t a = std::size_t(axes[i]);
        const int64_t dim = in[a], s = steps[i];
        if (s == 0 || s == INT64_MIN)
            c.fail("step ", s, " is not allowed");
        // Clamped first so that adding dim cannot overflow (INT64_MIN/MAX mean "from the end").
        int64_t b = std::clamp<int64_t>(starts[i], -dim - 1, dim), e = std::clamp<int64_t>(ends[i], -dim - 1, dim);
        if (b < 0)
            b += dim;
        if (e < 0)
            e += dim;
        if (dim == 0) {
            b = 0;
            out[a] = 0;
        } else if (s > 0) {
            b = std::clamp<int64_t>(b, 0, dim);
            e = std::clamp<int64_t>(e, 0, dim);
            out[a] = e > b ? (e - b - 1) / s + 1 : 0;
        } else {
            b = std::clamp<int64_t>(b, 0, dim - 1);
            e = std::clamp<int64_t>(e, -1, dim - 1);
            out[a] = b > e ? (b - e - 1) / (-s) + 1 : 0;
        }
        begin[a] = b;
        step[a] = s;
    }
    const auto st = rowStrides(in);
    std::vector<int64_t> strides(static_cast<std::size_t>(r), 0);
    int64_t base = 0;
    for (std::size_t d = 0; d < std::size_t(r); ++d) {
        strides[d] = st[d] * step[d];
        base += begin[d] * st[d];
    }
    const std::size_t es = esize(c, c.dtype(0));
    const int src = c.plainInput(0);
    const int dst = c.output(0, c.dtype(0), out);
    c.addFn({src}, {dst}, [=](Program& p) {
        gatherStrided(static_cast<std::byte*>(p.slot(dst).data()), static_cast<const std::byte*>(p.slot(src).data()),
                      out, strides, base, es);
    });
    return true;
}

bool buildSplit(NodeContext& c)
{
    const Shape& in = c.shape(0);
    if (in.empty())
        c.fail("input must have rank >= 1 (it is a scalar)");
    const int64_t axis = normalizeAxis(c.node.attrInt("axis", 0), int64_t(in.size()), c);
    const std::size_t outs = c.node.outputs.size();
    std::vector<int64_t> split;
    if (c.opset() >= 13) {
        if (c.has(1))
            split = c.requireConstant(1, "split").toInt64();
    } else {
        split = c.node.attrInts("split");
    }
    const int64_t dim = in[std::size_t(axis)];
    if (split.empty()) {
        const int64_t n = c.node.attrInt("num_outputs", int64_t(outs));
        if (n < 1)
            c.fail("num_outputs ", n, " must be at least 1");
        const int64_t chunk = (dim + n - 1) / n;
        for (int64_t i = 0; i < n; ++i)
            split.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    }
    if (split.size() != outs)
        c.fail("split has ", split.size(), " parts for ", outs, " outputs");
    int64_t sum = 0;
    for (auto s : split) {
        if (s < 0 || s > dim)
            c.fail("split ", intList(split), " has a size outside 0..", dim);
        sum += s;
    }
    if (sum != dim)
        c.fail("split sizes add up to ", sum, ", the axis has ", dim);
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < int64_t(in.size()); ++i) {
        if (i < axis)
            outer *= in[std::size_t(i)];
        else if (i > axis)
            inner *= in[std::size_t(i)];
    }
    const std::size_t es = esize(c, c.dtype(0));
    const int src = c.plainInput(0);
    std::vector<int> dsts;
    for (std::size_t i = 0; i < outs; ++i) {
        Shape s = in;
        s[std::size_t(axis)] = split[i];
        dsts.push_back(c.output(i, c.dtype(0), s));
    }
    c.addFn({src}, dsts, [=](Program& p) {
        const std::byte* x = static_cast<const std::byte*>(p.slot(src).data());
        int64_t offset = 0;
        for (std::size_t i = 0; i < dsts.size(); ++i) {
            std::byte* y = static_cast<std::byte*>(p.slot(dsts[i]).data());
            const std::size_t block = std::size_t(split[i] * inner) * es;
            for (int64_t a = 0; a < outer; ++a)
                std::memcpy(y + std::size_t(a) * block, x + std::size_t((a * dim + offset) * inner) * es, block);
            offset += split[i];
        }
    });
    return true;
}

// A float Concat along the channels of 4-D values where every input is either computed
// in one channels-last or channel-blocked layout (nhwc, nChw8c, nChw16c) or a constant
// of zeros (tf2onnx's channel padding: BlazeFace concatenates a block's input with
// zeros before its residual Add). It writes that layout directly: the general path
// reorders every input to plain and the result back (a oneDNN concat in a blocked
// layout at an unaligned channel offset is its reference kernel). False when it does
// not apply.
bool buildChannelConcat(NodeContext& c, int64_t axis, const Shape& out)
{
    if (axis != 1 || out.size() != 4 || std::getenv("QS_RUNTIME_NO_CHANNEL_CONCAT"))
        return false;
    struct Part {
        int slot = -1; // -1: zeros
        int64_t channels = 0, offset = 0;
    };
    std::vector<Part> parts;
    std::optional<memory::format_tag> layout;
    bool zeros = false;
    int64_t offset = 0;
    for (std::size_t i = 0; i < c.inputCount(); ++i) {
        const Shape s = c.shape(i);
        Part p {-1, s[1], offset};
        offset += s[1];
        if (s[1] == 0)
            continue;
        if (const Tensor* t = c.constant(i)) {
            const std::vector<float> v = t->toFloat();
            if (std::any_of(v.begin(), v.end(), [](float f) { return f != 0.f || std::signbit(f); }))
                return false;
            zeros = true;
            parts.push_back(p);
            continue;
        }
        p.slot = c.input(i);
        const memory::desc& md = c.slot(p.slot).md;
        std::optional<memory::format_tag> found;
        for (auto t : {memory::format_tag::nhwc, memory::format_tag::nChw8c, memory::format_tag::nChw16c})
            if (md == memory::desc(toDims(s), memory::data_type::f32, t))
                found = t;
        if (!found || (layout && *layout != *found))
            return false;
        layout = found;
        parts.push_back(p);
    }
    // Without zeros, oneDNN's own concat is kept unless it would be its reference kernel.
    if (!layout)
        return false;
    if (!zeros) {
        std::vector<memory::desc> mds;
        for (const Part& p : parts)
            mds.push_back(c.slot(p.slot).md);
        const memory::desc want(toDims(out), memory::data_type::f32, *layout);
        try {
            if (implName(dnnl::concat::primitive_desc(want, 1, mds, cpuEngine())).rfind("ref", 0) != 0)
                return false;
        } catch (const dnnl::error&) {
        }
    }
    const memory::desc dstMd(toDims(out), memory::data_type::f32, *layout);
    const int dst = c.output(0, DType::Float, out, &dstMd);
    const int64_t block = *layout == memory::format_tag::nChw16c ? 16 : *layout == memory::format_tag::nChw8c ? 8 : 0;
    const int64_t n = out[0], total = out[1], hw = out[2] * out[3];
    std::vector<int> reads;
    for (const Part& p : parts)
        if (p.slot >= 0)
            reads.push_back(p.slot);
    c.addFn(reads, {dst}, [=](Program& prog) {
        float* y = prog.slot(dst).as<float>();
        if (block == 0) { // nhwc: one run of channels per input and pixel
            for (int64_t px = 0; px < n * hw; ++px)
                for (const Part& p : parts) {
                    float* to = y + px * total + p.offset;
                    if (p.slot < 0)
                        std::fill(to, to + p.channels, 0.f);
                    else
                        std::memcpy(to, prog.slot(p.slot).as<float>() + px * p.channels,
                                    std::size_t(p.channels) * sizeof(float));
                }
            return;
        }
        // Blocked: [n][channel block][hw][block]. An input starting on a block boundary
        // is copied as whole blocks (its padding lanes after it are rewritten by the
        // next input or zeroed below), any other channel by itself.
        const int64_t outBlocks = (total + block - 1) / block;
        for (const Part& p : parts) {
            const int64_t inBlocks = (p.channels + block - 1) / block;
            for (int64_t b = 0; b < n; ++b) {
                float* yb = y + b * outBlocks * hw * block;
                if (p.slot >= 0 && p.offset % block == 0) {
                    std::memcpy(yb + (p.offset / block) * hw * block,
                                prog.slot(p.slot).as<float>() + b * inBlocks * hw * block,
                                std::size_t(inBlocks * hw * block) * sizeof(float));
                    continue;
                }
                const float* xb = p.slot >= 0 ? prog.slot(p.slot).as<float>() + b * inBlocks * hw * block : nullptr;
                for (int64_t ch = 0; ch < p.channels; ++ch) {
                    const int64_t o = p.offset + ch;
                    float* to = yb + (o / block) * hw * block + o % block;
                    const float* from = xb ? xb + (ch / block) * hw * block + ch % block : nullptr;
                    for (int64_t i = 0; i < hw; ++i)
                        to[i * block] = from ? from[i * block] : 0.f;
                }
            }
        }
        for (int64_t b = 0; b < n; ++b) // oneDNN reads blocked padding lanes as zeros
            for (int64_t o = total; o < outBlocks * block; ++o) {
                float* to = y + (b * outBlocks + o / block) * hw * block + o % block;
                for (int64_t i = 0; i < hw; ++i)
                    to[i * block] = 0.f;
            }
    });
    return true;
}

bool buildConcat(NodeContext& c)
{
    const std::size_t n = c.inputCount();
    const Shape& first = c.shape(0);
    const DType t = c.dtype(0);
    if (first.empty())
        c.fail("inputs must have rank >= 1 (input 0 is a scalar)");
    const int64_t axis = normalizeAxis(c.node.attrInt("axis", 0), int64_t(first.size()), c);
    Shape out = first;
    out[std::size_t(axis)] = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const Shape& s = c.shape(i);
        if (s.size() != first.size() || c.dtype(i) != t)
            c.fail("input ", i, " is ", dtypeName(c.dtype(i)), " ", shapeString(s), ", input 0 is ", dtypeName(t), " ",
                   shapeString(first));
        for (std::size_t d = 0; d < s.size(); ++d)
            if (int64_t(d) != axis && s[d] != first[d])
                c.fail("input ", i, " has shape ", shapeString(s), ", incompatible with ", shapeString(first));
        out[std::size_t(axis)] += s[std::size_t(axis)];
    }
    if (t == DType::Float && numelOf(out) > 0 && buildChannelConcat(c, axis, out))
        return true;
    if (t == DType::Float && numelOf(out) > 0) {
        // oneDNN concat on the inputs' own layout when they agree, else plain.
        std::vector<memory::desc> mds;
        std::vector<int> slots;
        bool sameLayout = true;
        for (std::size_t i = 0; i < n; ++i) {
            if (numelOf(c.shape(i)) == 0)
                continue;
            slots.push_back(c.input(i));
            mds.push_back(c.slot(slots.back()).md);
            sameLayout = sameLayout && c.slot(slots.back()).blocked == c.slot(slots.front()).blocked;
        }
        if (!sameLayout || !c.slot(slots.front()).blocked) {
            for (std::size_t j = 0; j < slots.size(); ++j) {
                slots[j] = c.slotAs(slots[j], plainDesc(c.slot(slots[j]).shape, DType::Float));
                mds[j] = c.slot(slots[j]).md;
            }
        }
        const memory::desc dstAny(toDims(out), memory::data_type::f32, memory::format_tag::any);
        dnnl::concat::primitive_desc pd(dstAny, int(axis), mds, cpuEngine());
        const memory::desc dstMd = pd.dst_desc();
        const int dst = c.output(0, t, out, &dstMd);
        std::map<int, int> args{{DNNL_ARG_DST, dst}};
        for (std::size_t j = 0; j < slots.size(); ++j)
            args[DNNL_ARG_MULTIPLE_SRC + int(j)] = slots[j];
        c.addPrimitive(dnnl::concat(pd), implName(pd), args);
        return true;
    }
    const std::size_t es = esize(c, t);
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < int64_t(first.size()); ++i) {
        if (i < axis)
            outer *= first[std::size_t(i)];
        else if (i > axis)
            inner *= first[std::size_t(i)];
    }
    std::vector<int> srcs;
    std::vector<int64_t> sizes;
    for (std::size_t i = 0; i < n; ++i) {
        srcs.push_back(c.plainInput(i));
        sizes.push_back(c.shape(i)[std::size_t(axis)]);
    }
    const int dst = c.output(0, t, out);
    const int64_t total = out[std::size_t(axis)];
    c.addFn(srcs, {dst}, [=](Program& p) {
        std::byte* y = static_cast<std::byte*>(p.slot(dst).data());
        int64_t offset = 0;
        for (std::size_t i = 0; i < srcs.size(); ++i) {
            const std::byte* x = static_cast<const std::byte*>(p.slot(srcs[i]).data());
            const std::size_t block = std::size_t(sizes[i] * inner) * es;
            for (int64_t a = 0; a < outer; ++a)
                std::memcpy(y + std::size_t((a * total + offset) * inner) * es, x + std::size_t(a) * block, block);
            offset += sizes[i];
        }
    });
    return true;
}

bool buildPad(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const std::size_t r = in.size();
    std::vector<int64_t> pads;
    double value = 0;
    const std::string mode = c.node.attrString("mode", "constant");
    if (c.opset() < 11) {
        pads = c.node.attrInts(c.opset() < 2 ? "paddings" : "pads");
        value = c.node.attrFloat("value", 0.f);
    } else {
        pads = c.requireConstant(1, "pads").toInt64();
        if (c.has(2)) {
            const Tensor& v = c.requireConstant(2, "constant_value");
            if (v.numel() > 0)
                value = v.toFloat()[0];
        }
        if (c.has(3)) {
            auto axes = normalizeAxes(c.requireConstant(3, "axes").toInt64(), int64_t(r), c);
            if (pads.size() != 2 * axes.size())
                c.fail("pads has ", pads.size(), " values for ", axes.size(), " axes");
            std::vector<int64_t> full(2 * r, 0);
            for (std::size_t i = 0; i < axes.size(); ++i) {
                full[std::size_t(axes[i])] = pads[i];
                full[std::size_t(axes[i]) + r] = pads[i + axes.size()];
            }
            pads = full;
        }
    }
    if (pads.size() != 2 * r)
        c.fail("pads has ", pads.size(), " values for rank ", r);
    if (mode != "constant" && mode != "reflect" && mode != "edge")
        c.fail("mode ", mode, " is not supported");
    Shape out(r);
    constexpr int64_t kMaxPad = int64_t(1) << 32;
    for (std::size_t d = 0; d < r; ++d) {
        if (pads[d] < -kMaxPad || pads[d] > kMaxPad || pads[d + r] < -kMaxPad || pads[d + r] > kMaxPad)
            c.fail("pads ", intList(pads), " are implausibly large");
        out[d] = in[d] + pads[d] + pads[d + r];
        if (mode == "edge" && in[d] == 0 && out[d] > 0)
            c.fail("edge padding of the empty dim ", d, " of ", shapeString(in));
        if (out[d] < 0)
            c.fail("pads ", intList(pads), " remove more than ", shapeString(in), " holds");
        if (mode == "reflect" && (pads[d] >= in[d] || pads[d + r] >= in[d]) && (pads[d] > 0 || pads[d + r] > 0))
            c.fail("reflect padding must be smaller than the dim");
    }
    const DType t = c.dtype(0);
    const std::size_t es = esize(c, t);
    // The fill value in the tensor's own type.
    std::vector<std::byte> fill(es);
    dispatchType(t, [&](auto tag) {
        using T = decltype(tag);
        const T v = T(value);
        std::memcpy(fill.data(), &v, es);
    });
    const int src = c.plainInput(0);
    const int dst = c.output(0, t, out);
    const auto st = rowStrides(in);
    // Per dim, the source index of each output index (-1: the constant fill), resolved once
    // here; the kernel then copies whole rows of the innermost dim (memcpy of the unpadded
    // middle, the few padded elements one by one) instead of mapping every element.
    std::vector<std::vector<int64_t>> from(r);
    for (std::size_t d = 0; d < r; ++d)
        for (int64_t o = 0; o < out[d]; ++o) {
            int64_t i = o - pads[d];
            if (i < 0 || i >= in[d]) {
                if (mode == "constant")
                    i = -1;
                else if (mode == "edge")
                    i = std::clamp<int64_t>(i, 0, in[d] - 1);
                else
                    i = i < 0 ? -i : 2 * (in[d] - 1) - i;
            }
            from[d].push_back(i);
        }
    c.addFn({src}, {dst}, [=](Program& p) {
        const std::byte* x = static_cast<const std::byte*>(p.slot(src).data());
        std::byte* y = static_cast<std::byte*>(p.slot(dst).data());
        if (numelOf(out) == 0)
            return;
        if (r == 0) {
            copyElem(y, x, es);
            return;
        }
        const std::size_t last = r - 1;
        const int64_t width = out[last];
        // The output range [lo, hi) of the innermost dim reads the input contiguously.
        const int64_t lo = std::clamp<int64_t>(pads[last], 0, width);
        const int64_t hi = std::clamp<int64_t>(pads[last] + in[last], lo, width);
        const int64_t rows = numelOf(out) / width;
        std::vector<int64_t> idx(r, 0);
        for (int64_t row = 0; row < rows; ++row) {
            int64_t off = 0;
            bool inside = true;
            for (std::size_t d = 0; d < last && inside; ++d) {
                const int64_t i = from[d][std::size_t(idx[d])];
                inside = i >= 0;
                off += i * st[d];
            }
            std::byte* yr = y + std::size_t(row * width) * es;
            if (!inside) {
                for (int64_t j = 0; j < width; ++j)
                    copyElem(yr + std::size_t(j) * es, fill.data(), es);
            } else {
                const std::byte* xr = x + std::size_t(off) * es;
                auto one = [&](int64_t j) {
                    const int64_t i = from[last][std::size_t(j)];
                    copyElem(yr + std::size_t(j) * es, i >= 0 ? xr + std::size_t(i) * es : fill.data(), es);
                };
                for (int64_t j = 0; j < lo; ++j)
                    one(j);
                if (hi > lo)
                    std::memcpy(
                        yr + std::size_t(lo) * es, xr + std::size_t(lo - pads[last]) * es, std::size_t(hi - lo) * es);
                for (int64_t j = hi; j < width; ++j)
                    one(j);
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

bool buildExpand(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const auto target = c.requireConstant(1, "shape").toInt64();
    const Shape out = broadcastShapes(in, Shape(target.begin(), target.end()), c);
    const std::size_t es = esize(c, c.dtype(0));
    const int src = c.plainInput(0);
    const int dst = c.output(0, c.dtype(0), out);
    const auto strides = broadcastStrides(in, out);
    c.addFn({src}, {dst}, [=](Program& p) {
        gatherStrided(static_cast<std::byte*>(p.slot(dst).data()), static_cast<const std::byte*>(p.slot(src).data()),
                      out, strides, 0, es);
    });
    return true;
}

bool buildWhere(NodeContext& c)
{
    if (c.dtype(0) != DType::Bool)
        c.fail("condition must be bool");
    if (c.dtype(1) != c.dtype(2))
        c.fail("X and Y types differ");
    const Shape sc = c.shape(0), sx = c.shape(1), sy = c.shape(2);
    const Shape out = broadcastShapes(broadcastShapes(sc, sx, c), sy, c);
    const std::size_t es = esize(c, c.dtype(1));
    const int cs = c.plainInput(0), xs = c.plainInput(1), ys = c.plainInput(2);
    const int dst = c.output(0, c.dtype(1), out);
    // Attention masks: one of X, Y has the output shape, the other is a scalar and the condition repeats
    // over leading dims (e.g. [T, T] under [B, H, T, T]): one pass per repetition.
    Shape scTrim = sc; // leading 1s do not change the element order
    while (!scTrim.empty() && scTrim.front() == 1)
        scTrim.erase(scTrim.begin());
    const int64_t condN = numelOf(scTrim), outN = numelOf(out);
    const bool xFull = sx == out && numelOf(sy) == 1, yFull = sy == out && numelOf(sx) == 1;
    if ((xFull || yFull) && es == 4 && condN > 0 && scTrim.size() <= out.size() &&
        std::equal(scTrim.rbegin(), scTrim.rend(), out.rbegin())) {
        // torch's masked_fill exports Where(mask, fill, x): the scalar may be either side
        const int full = xFull ? xs : ys, scalar = xFull ? ys : xs;
        c.addFn({cs, xs, ys}, {dst}, [=](Program& p) {
            const bool* cond = p.slot(cs).as<bool>();
            const uint32_t* v = p.slot(full).as<uint32_t>();
            const uint32_t k = *p.slot(scalar).as<uint32_t>();
            uint32_t* o = p.slot(dst).as<uint32_t>();
            for (int64_t b = 0; b < outN; b += condN)
                for (int64_t i = 0; i < condN; ++i)
                    o[b + i] = cond[i] == xFull ? v[b + i] : k;
        });
        return true;
    }
    c.addFn({cs, xs, ys}, {dst}, [=](Program& p) {
        const bool* cond = p.slot(cs).as<bool>();
        const std::byte* x = static_cast<const std::byte*>(p.slot(xs).data());
        const std::byte* y = static_cast<const std::byte*>(p.slot(ys).data());
        std::byte* o = static_cast<std::byte*>(p.slot(dst).data());
        forEachBroadcast(out, {sc, sx, sy}, [&](int64_t i, const int64_t* off) {
            copyElem(o + std::size_t(i) * es, cond[off[0]] ? x + std::size_t(off[1]) * es : y + std::size_t(off[2]) * es,
                     es);
        });
    });
    return true;
}

const bool movementRegistered = [] {
    registerOp("Transpose", buildTranspose);
    registerOp("Gather", buildGather);
    registerOp("Slice", buildSlice);
    registerOp("Split", buildSplit);
    registerOp("Concat", buildConcat);
    registerOp("Pad", buildPad);
    registerOp("Expand", buildExpand);
    registerOp("Where", buildWhere);
    return true;
}();

} // namespace
} // namespace qs::rt
