// BatchNormalization (inference form, when not folded into a convolution),
// LayerNormalization, Softmax and LogSoftmax as oneDNN primitives.
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cmath>

namespace qs::rt {
namespace {

using dnnl::algorithm;
using flags = dnnl::normalization_flags;

bool buildBatchNorm(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    if (n.attrInt("training_mode", 0) != 0 || (n.outputs.size() > 1 && c.opset() < 14 && c.opset() >= 9 &&
                                                std::any_of(n.outputs.begin() + 1, n.outputs.end(),
                                                            [](const std::string& o) { return !o.empty(); })))
        c.fail("training mode is not supported (inference only)");
    if (n.inputs.size() < 5)
        c.fail("expected 5 inputs (X, scale, B, mean, var)");
    const Shape& x = c.shape(0);
    if (x.size() < 2)
        c.fail("input must have rank >= 2, got ", shapeString(x));
    const int64_t ch = x[1];
    for (std::size_t i = 1; i < 5; ++i)
        if (c.in(i).numel() != ch || c.dtype(i) != DType::Float)
            c.fail("input ", i, " must be float32 with ", ch, " values, got ", shapeString(c.shape(i)));
    // oneDNN wants ranks 3..5 ([N,C] is [N,C,1]).
    Shape shape3 = x;
    if (shape3.size() == 2)
        shape3.push_back(1);
    const int src = x.size() == 2 ? c.plainInput(0) : c.input(0);
    const memory::desc md = x.size() == 2 ? plainDesc(shape3, DType::Float) : c.slot(src).md;
    dnnl::batch_normalization_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, md, n.attrFloat("epsilon", 1e-5f),
         flags::use_global_stats | flags::use_scale | flags::use_shift},
        cpuEngine());
    const memory::desc outMd = x.size() == 2 ? plainDesc(x, DType::Float) : md;
    const int dst = c.output(0, DType::Float, x, &outMd);
    const memory::desc vec({ch}, memory::data_type::f32, memory::format_tag::a);
    std::unordered_map<int, memory> fixed;
    std::vector<int> reads;
    const int args[] = {DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
    for (std::size_t i = 1; i < 5; ++i) {
        const int s = c.input(i);
        fixed[args[i - 1]] = c.view(s, vec);
        reads.push_back(s);
    }
    fixed[DNNL_ARG_SRC] = c.view(src, md);
    fixed[DNNL_ARG_DST] = c.view(dst, md);
    reads.push_back(src);
    Kernel* k = c.addPrimitive(dnnl::batch_normalization_forward(pd), implName(pd), {}, fixed);
    k->reads = reads;
    k->writes = {dst};
    return true;
}

bool buildLayerNorm(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const bool stats = (n.outputs.size() > 1 && !n.outputs[1].empty()) || (n.outputs.size() > 2 && !n.outputs[2].empty());
    const Shape& x = c.shape(0);
    const int64_t axis = normalizeAxis(n.attrInt("axis", -1), int64_t(x.size()), c);
    int64_t outer = 1, inner = 1;
    for (std::size_t i = 0; i < x.size(); ++i)
        (int64_t(i) < axis ? outer : inner) *= x[i];
    // Scale and bias broadcast over the normalized dims; expanded to [inner] when constant.
    auto vectorOf = [&](std::size_t i, float fill) -> std::vector<float> {
        if (!c.has(i))
            return std::vector<float>(std::size_t(inner), fill);
        const Tensor& t = c.requireConstant(i, i == 1 ? "Scale" : "B");
        std::vector<float> v = t.toFloat();
        if (int64_t(v.size()) == inner)
            return v;
        if (v.size() == 1)
            return std::vector<float>(std::size_t(inner), v[0]);
        c.fail("input ", i, " has shape ", shapeString(t.shape), "; only the full normalized shape or a scalar is supported");
    };
    std::vector<float> scale = vectorOf(1, 1.f), shift = vectorOf(2, 0.f);
    const memory::desc md = plainDesc({outer, inner}, DType::Float);
    const float eps = n.attrFloat("epsilon", 1e-5f);
    dnnl::layer_normalization_forward::primitive_desc pd(
        {stats ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, md, eps,
         flags::use_scale | flags::use_shift},
        cpuEngine());
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, x);
    const memory::desc vec({inner}, memory::data_type::f32, memory::format_tag::a);
    Buffer sb = Buffer::make(std::size_t(inner) * 4), hb = Buffer::make(std::size_t(inner) * 4);
    std::memcpy(sb.data(), scale.data(), scale.size() * 4);
    std::memcpy(hb.data(), shift.data(), shift.size() * 4);
    std::unordered_map<int, memory> fixed{{DNNL_ARG_SRC, c.view(src, md)},
                                          {DNNL_ARG_DST, c.view(dst, md)},
                                          {DNNL_ARG_SCALE, memory(vec, cpuEngine(), sb.data())},
                                          {DNNL_ARG_SHIFT, memory(vec, cpuEngine(), hb.data())}};
    int meanSlot = -1, varSlot = -1;
    if (stats) {
        // Mean and InvStdDev have the input's shape with the normalized dims set to 1.
        Shape statShape = x;
        for (std::size_t i = std::size_t(axis); i < statShape.size(); ++i)
            statShape[i] = 1;
        const memory::desc sv({outer}, memory::data_type::f32, memory::format_tag::a);
        meanSlot = c.output(1, DType::Float, statShape);
        varSlot = c.output(2, DType::Float, statShape);
        fixed[DNNL_ARG_MEAN] = c.view(meanSlot, sv);
        fixed[DNNL_ARG_VARIANCE] = c.view(varSlot, sv);
    }
    auto* k = static_cast<PrimitiveKernel*>(c.addPrimitive(dnnl::layer_normalization_forward(pd), implName(pd), {}, fixed));
    k->owned = {sb, hb};
    k->reads = {src};
    k->writes = {dst};
    if (stats) {
        k->writes.push_back(meanSlot);
        k->writes.push_back(varSlot);
        c.addFn({varSlot}, {varSlot}, [varSlot, eps](Program& p) {
            float* v = p.slot(varSlot).as<float>();
            for (int64_t i = 0, m = p.slot(varSlot).numel(); i < m; ++i)
                v[i] = 1.f / std::sqrt(v[i] + eps);
        });
    }
    return true;
}

bool buildSoftmax(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& x = c.shape(0);
    const int64_t r = int64_t(x.size());
    const bool log = c.node.opType == "LogSoftmax";
    // Before opset 13 the input is coerced to 2-D at `axis`; from 13 it is per axis.
    int64_t axis = normalizeAxis(c.node.attrInt("axis", c.opset() >= 13 ? -1 : 1), std::max<int64_t>(r, 1), c);
    Shape shape = x.empty() ? Shape{1} : x;
    if (c.opset() < 13) {
        int64_t a = 1, b = 1;
        for (int64_t i = 0; i < r; ++i)
            (i < axis ? a : b) *= x[std::size_t(i)];
        shape = {a, b};
        axis = 1;
    }
    const memory::desc md = plainDesc(shape, DType::Float);
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, x);
    std::unordered_map<int, memory> fixed{{DNNL_ARG_SRC, c.view(src, md)}, {DNNL_ARG_DST, c.view(dst, md)}};
    Kernel* k;
    if (log) {
        dnnl::logsoftmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, int(axis)}, cpuEngine());
        k = c.addPrimitive(dnnl::logsoftmax_forward(pd), implName(pd), {}, fixed);
    } else {
        dnnl::softmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, int(axis)}, cpuEngine());
        k = c.addPrimitive(dnnl::softmax_forward(pd), implName(pd), {}, fixed);
    }
    k->reads = {src};
    k->writes = {dst};
    return true;
}

const bool normRegistered = [] {
    registerOp("BatchNormalization", buildBatchNorm);
    registerOp("LayerNormalization", buildLayerNorm);
    registerOp("Softmax", buildSoftmax);
    registerOp("LogSoftmax", buildSoftmax);
    return true;
}();

} // namespace
} // namespace qs::rt
