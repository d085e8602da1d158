// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool as oneDNN pooling (any
// layout: they run on a convolution's blocked output without reorders), and LRN.
#include "runtime/ops/ops.h"

#include <algorithm>
#include <limits>

namespace qs::rt {
namespace {

using dnnl::algorithm;

void addPooling(NodeContext& c, algorithm alg, const memory::dims& strides, const memory::dims& kernel,
                const memory::dims& dilation, const memory::dims& padL, const memory::dims& padR, const Shape& out)
{
    const int src = c.input(0);
    const memory::desc srcMd = c.slot(src).md;
    const memory::desc dstAny(toDims(out), memory::data_type::f32, memory::format_tag::any);
    dnnl::pooling_v2_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, alg, srcMd, dstAny, strides, kernel, dilation, padL, padR}, cpuEngine());
    const bool undilated = std::all_of(dilation.begin(), dilation.end(), [](memory::dim d) { return d == 0; });
    if (alg == algorithm::pooling_max && kernel.size() == 2 && undilated && !c.slot(src).blocked &&
        implName(pd).find("jit") == std::string::npos) {
        // A plain NCHW input (M-LSD's 1-channel peak map): oneDNN's simple_nchw kernel walks
        // it element by element; a max is exact, so the same numbers from a plain loop.
        const Shape x = c.slot(src).shape;
        const int dst = c.output(0, DType::Float, out);
        c.addFn({src}, {dst}, [=](Program& p) {
            const float* a = p.slot(src).as<float>();
            float* b = p.slot(dst).as<float>();
            const int64_t planes = x[0] * x[1], h = x[2], w = x[3], oh = out[2], ow = out[3];
            for (int64_t pl = 0; pl < planes; ++pl)
                for (int64_t i = 0; i < oh; ++i) {
                    const int64_t h0 = std::max<int64_t>(0, i * strides[0] - padL[0]);
                    const int64_t h1 = std::min<int64_t>(h, i * strides[0] - padL[0] + kernel[0]);
                    float* row = b + (pl * oh + i) * ow;
                    for (int64_t j = 0; j < ow; ++j) {
                        const int64_t w0 = std::max<int64_t>(0, j * strides[1] - padL[1]);
                        const int64_t w1 = std::min<int64_t>(w, j * strides[1] - padL[1] + kernel[1]);
                        float m = -std::numeric_limits<float>::infinity();
                        for (int64_t y = h0; y < h1; ++y)
                            for (int64_t v = w0; v < w1; ++v)
                                m = std::max(m, a[(pl * h + y) * w + v]);
                        row[j] = m;
                    }
                }
        });
        return;
    }
    const memory::desc dstMd = pd.dst_desc();
    const int dst = c.output(0, DType::Float, out, &dstMd);
    c.addPrimitive(dnnl::pooling_v2_forward(pd), implName(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
}

bool buildPool(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    if (n.outputs.size() > 1 && !n.outputs[1].empty())
        c.fail("the Indices output is not supported");
    const Shape& x = c.shape(0);
    const int sp = int(x.size()) - 2;
    if (sp < 1 || sp > 3)
        c.fail("expected input rank 3 to 5, got ", shapeString(x));
    auto kernel = n.attrInts("kernel_shape");
    if (int(kernel.size()) != sp)
        c.fail("kernel_shape must have ", sp, " values");
    auto strides = n.attrInts("strides", std::vector<int64_t>(std::size_t(sp), 1));
    auto dil = n.attrInts("dilations", std::vector<int64_t>(std::size_t(sp), 1));
    auto pads = n.attrInts("pads", std::vector<int64_t>(std::size_t(2 * sp), 0));
    checkWindow(c, sp, kernel, strides, dil, pads);
    const bool ceil = n.attrInt("ceil_mode", 0) != 0;
    const std::string autoPad = n.attrString("auto_pad", "NOTSET");
    const bool isMax = n.opType == "MaxPool";
    const bool includePad = !isMax && n.attrInt("count_include_pad", 0) != 0;
    if (!isMax && n.has("dilations"))
        for (auto d : dil)
            if (d != 1)
                c.fail("dilations are not supported for AveragePool");
    Shape out{x[0], x[1]};
    memory::dims st, ks, dl, pl, pr;
    bool extended = false;
    for (int i = 0; i < sp; ++i) {
        const std::size_t u = std::size_t(i);
        const int64_t in = x[u + 2], keff = (kernel[u] - 1) * dil[u] + 1, s = strides[u];
        int64_t l = pads[u], r = pads[u + std::size_t(sp)], o;
        if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            o = (in + s - 1) / s;
            const int64_t total = std::max<int64_t>(0, (o - 1) * s + keff - in);
            l = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
            r = total - l;
        } else if (autoPad == "VALID") {
            l = r = 0;
            o = (in - keff) / s + 1;
        } else {
            const int64_t span = in + l + r - keff;
            o = ceil ? (span + s - 1) / s + 1 : span / s + 1;
            if (ceil && (o - 1) * s >= in + l)
                --o; // the last window must start inside the input or left padding
        }
        if (o < 1 || in + l + r < keff)
            c.fail("kernel_shape ", shapeString(kernel), " (dilated) is larger than the padded input ", shapeString(x));
        const int64_t need = (o - 1) * s + keff - in - l; // right padding oneDNN must see
        if (need > r)
            extended = true;
        r = std::max(need, int64_t(0));
        out.push_back(o);
        st.push_back(s);
        ks.push_back(kernel[u]);
        dl.push_back(dil[u] - 1);
        pl.push_back(l);
        pr.push_back(r);
    }
    if (extended && includePad)
        c.fail("ceil_mode with count_include_pad is not supported");
    const algorithm alg = isMax ? algorithm::pooling_max
                                : (includePad ? algorithm::pooling_avg_include_padding
                                              : algorithm::pooling_avg_exclude_padding);
    addPooling(c, alg, st, ks, dl, pl, pr, out);
    return true;
}

bool buildGlobalPool(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& x = c.shape(0);
    const int sp = int(x.size()) - 2;
    if (sp < 1 || sp > 3)
        c.fail("expected input rank 3 to 5, got ", shapeString(x));
    Shape out{x[0], x[1]};
    memory::dims ones(std::size_t(sp), 1), zeros(std::size_t(sp), 0), kernel;
    for (int i = 0; i < sp; ++i) {
        out.push_back(1);
        kernel.push_back(x[std::size_t(i + 2)]);
    }
    addPooling(c, c.node.opType == "GlobalMaxPool" ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding,
               ones, kernel, zeros, zeros, zeros, out);
    return true;
}

bool buildLrn(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Node& n = c.node;
    const int src = c.input(0);
    const memory::desc md = c.slot(src).md;
    const int64_t size = n.attrInt("size", 0);
    if (size <= 0)
        c.fail("attribute size is required");
    dnnl::lrn_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, algorithm::lrn_across_channels, md,
                                          size, n.attrFloat("alpha", 1e-4f), n.attrFloat("beta", 0.75f),
                                          n.attrFloat("bias", 1.0f)},
                                         cpuEngine());
    const int dst = c.output(0, DType::Float, c.shape(0), &md);
    c.addPrimitive(dnnl::lrn_forward(pd), implName(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    return true;
}

const bool poolRegistered = [] {
    registerOp("MaxPool", buildPool);
    registerOp("AveragePool", buildPool);
    registerOp("GlobalAveragePool", buildGlobalPool);
    registerOp("GlobalMaxPool", buildGlobalPool);
    registerOp("LRN", buildLrn);
    return true;
}();

} // namespace
} // namespace qs::rt
