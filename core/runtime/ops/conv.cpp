// Conv (1D/2D/3D, grouped, depthwise, dilated, padded, strided) and ConvTranspose
// as oneDNN primitives. Constant weights are reordered once into the layout oneDNN
// picks; a following BatchNormalization is folded into them; trailing activations
// and a residual Add become post-ops.
#include "runtime/ops/ops.h"

#include "runtime/batch_split.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>

namespace qs::rt {
namespace {

using dnnl::algorithm;
using tag = memory::format_tag;

std::vector<int64_t> attrOr(const Node& n, const char* name, int sp, int64_t fill)
{
    auto v = n.attrInts(name);
    return v.empty() ? std::vector<int64_t>(std::size_t(sp), fill) : v;
}

// kernel_shape, when given, must be the weights' spatial dims (the kernels read them).
std::vector<int64_t> kernelOf(const NodeContext& c, const Shape& w)
{
    const std::vector<int64_t> fromWeights(w.begin() + 2, w.end());
    auto kernel = c.node.attrInts("kernel_shape");
    if (kernel.empty())
        return fromWeights;
    if (kernel != fromWeights)
        c.fail("kernel_shape ", shapeString(kernel), " contradicts the weights ", shapeString(w));
    return kernel;
}

// The bias (input 2), when present, has one value per output channel.
void checkBias(const NodeContext& c, int64_t outChannels)
{
    if (c.has(2) && (c.shape(2).size() != 1 || c.shape(2)[0] != outChannels))
        c.fail("bias ", quoted(c.node.inputs[2]), " has shape ", shapeString(c.shape(2)), ", expected [", outChannels,
            "] (one value per output channel)");
}

} // namespace

void checkWindow(const NodeContext& c, int sp, const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
    const std::vector<int64_t>& dilations, const std::vector<int64_t>& pads)
{
    if (int(kernel.size()) != sp || int(strides.size()) != sp || int(dilations.size()) != sp ||
        int(pads.size()) != 2 * sp)
        c.fail("kernel_shape/strides/dilations/pads do not match ", sp, " spatial dims");
    constexpr int64_t kMax = int64_t(1) << 24; // keeps window arithmetic far from overflow
    for (int i = 0; i < sp; ++i) {
        const std::size_t u = std::size_t(i);
        if (kernel[u] < 1 || kernel[u] > kMax || strides[u] < 1 || strides[u] > kMax || dilations[u] < 1 ||
            dilations[u] > kMax)
            c.fail("kernel_shape ", shapeString(kernel), ", strides ", shapeString(strides), " and dilations ",
                shapeString(dilations), " must be 1..", kMax);
    }
    for (int64_t p : pads)
        if (p < 0 || p > kMax)
            c.fail("pads ", intList(pads), " must be 0..", kMax);
}

Geometry convGeometry(const NodeContext& c, const Shape& x, const Shape& w, int64_t outChannels)
{
    Geometry g;
    g.sp = int(x.size()) - 2;
    const Node& n = c.node;
    if (w.size() != x.size())
        c.fail("weights ", shapeString(w), " and input ", shapeString(x), " differ in rank");
    auto kernel = kernelOf(c, w);
    auto strides = attrOr(n, "strides", g.sp, 1);
    auto dil = attrOr(n, "dilations", g.sp, 1);
    auto pads = attrOr(n, "pads", 2 * g.sp, 0);
    checkWindow(c, g.sp, kernel, strides, dil, pads);
    const std::string autoPad = n.attrString("auto_pad", "NOTSET");
    g.out = {x[0], outChannels};
    for (int i = 0; i < g.sp; ++i) {
        const int64_t in = x[std::size_t(2 + i)];
        const int64_t keff = (kernel[std::size_t(i)] - 1) * dil[std::size_t(i)] + 1;
        int64_t pl = pads[std::size_t(i)], pr = pads[std::size_t(i + g.sp)];
        if (autoPad == "VALID") {
            pl = pr = 0;
        } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            const int64_t o = (in + strides[std::size_t(i)] - 1) / strides[std::size_t(i)];
            const int64_t total = std::max<int64_t>(0, (o - 1) * strides[std::size_t(i)] + keff - in);
            pl = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
            pr = total - pl;
        } else if (autoPad != "NOTSET") {
            c.fail("auto_pad ", autoPad, " is not supported");
        }
        const int64_t o = (in + pl + pr - keff) / strides[std::size_t(i)] + 1;
        if (in + pl + pr < keff)
            c.fail("kernel ", shapeString(kernel), " (dilated) is larger than the padded input ", shapeString(x));
        g.out.push_back(o);
        g.strides.push_back(strides[std::size_t(i)]);
        g.dilates.push_back(dil[std::size_t(i)] - 1);
        g.padL.push_back(pl);
        g.padR.push_back(pr);
        g.kernel.push_back(kernel[std::size_t(i)]);
    }
    return g;
}

// oneDNN weights dims: [OC, IC/g, k...] or [g, OC/g, IC/g, k...].
memory::dims weightDims(int64_t groups, int64_t oc, int64_t icPerGroup, const memory::dims& kernel)
{
    memory::dims d;
    if (groups > 1)
        d.push_back(groups);
    d.push_back(groups > 1 ? oc / groups : oc);
    d.push_back(icPerGroup);
    d.insert(d.end(), kernel.begin(), kernel.end());
    return d;
}

namespace {

memory::desc anyDesc(const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); }

memory::desc stridedDesc(const memory::dims& dims, const memory::dims& strides)
{
    return memory::desc(dims, memory::data_type::f32, strides);
}

memory::dims rowMajorStrides(const memory::dims& d)
{
    memory::dims s(d.size());
    int64_t acc = 1;
    for (std::size_t i = d.size(); i-- > 0;) {
        s[i] = acc;
        acc *= d[i];
    }
    return s;
}

bool isRef(const std::string& impl) { return impl.rfind("ref", 0) == 0; }

// Folds y = BN(conv(x)) into the weights and bias: W' = W * s, b' = (b - mean) * s + beta,
// s = gamma / sqrt(var + eps), per output channel (the outermost weight dim).
bool foldBatchNorm(NodeContext& c, const Node& bn, std::vector<float>& w, std::vector<float>& b, int64_t oc)
{
    if (bn.opType != "BatchNormalization" || bn.attrInt("training_mode", 0) != 0 || bn.inputs.size() < 5)
        return false;
    for (std::size_t i = 1; i < bn.outputs.size(); ++i)
        if (!bn.outputs[i].empty())
            return false;
    const Tensor *gamma = c.constantValue(bn.inputs[1]), *beta = c.constantValue(bn.inputs[2]),
                 *mean = c.constantValue(bn.inputs[3]), *var = c.constantValue(bn.inputs[4]);
    if (!gamma || !beta || !mean || !var || gamma->numel() != oc || beta->numel() != oc || mean->numel() != oc ||
        var->numel() != oc)
        return false;
    const double eps = bn.attrFloat("epsilon", 1e-5f);
    auto g = gamma->toFloat(), be = beta->toFloat(), m = mean->toFloat(), v = var->toFloat();
    const std::size_t per = w.size() / std::size_t(oc);
    for (std::size_t o = 0; o < std::size_t(oc); ++o) {
        const double s = double(g[o]) / std::sqrt(double(v[o]) + eps);
        for (std::size_t i = 0; i < per; ++i)
            w[o * per + i] = float(double(w[o * per + i]) * s);
        b[o] = float((double(b[o]) - m[o]) * s + be[o]);
    }
    return true;
}

struct Weights {
    bool constant = false;
    std::vector<float> w, b;     // constant case (possibly BN-folded)
    bool hasBias = false;
    int wSlot = -1, bSlot = -1;  // run-time case
};

template <typename PD, typename Make>
bool tryCreate(Make make, PD& out, std::string& impl)
{
    try {
        out = make();
        impl = implName(out);
        return true;
    } catch (const dnnl::error&) {
        return false;
    }
}

// Activation layout for 2-D convolutions, one choice per model so consecutive convs
// need no reorders. Left to oneDNN (format any) it picks nhwc and its brgemm kernels,
// the faster ones for dense k x k convolutions; for 1x1 and depthwise ones the
// nChw16c kernels are faster (measured on avx512_core, 1 thread, CPU time per run:
// MobileNetV2 batch 1 4.5 -> 4.1 ms, batch 32 146 -> 130 ms; ResNet-18 batch 1
// 15.5 -> 18.4 ms the other way). So nChw16c when at least 2/3 of the model's
// convolutions are 1x1 or depthwise and oneDNN runs AVX-512: below it oneDNN 2.6 has no
// jit convolution for nChw16c and falls back to its reference kernel (M-LSD tiny on AVX2:
// 40 s instead of 0.1 s per image). QS_RUNTIME_BLOCKED=1 / =0 forces either.
bool preferBlocked(const Graph& graph)
{
    if (const char* env = std::getenv("QS_RUNTIME_BLOCKED"))
        return std::string(env) != "0";
    static const bool avx512 = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
    if (!avx512)
        return false;
    int convs = 0, pointOrDepth = 0;
    for (const auto& n : graph.nodes) {
        if (n.opType != "Conv" || n.inputs.size() < 2)
            continue;
        auto w = graph.initializers.find(n.inputs[1]);
        if (w == graph.initializers.end() || w->second.shape.size() != 4)
            continue;
        const Shape& ws = w->second.shape;
        ++convs;
        const bool pointwise = ws[2] == 1 && ws[3] == 1;
        const bool depthwise = n.attrInt("group", 1) > 1 && ws[1] == 1;
        pointOrDepth += pointwise || depthwise ? 1 : 0;
    }
    return convs > 0 && 3 * pointOrDepth >= 2 * convs;
}

// A 3x3 depthwise convolution (stride 1 or 2, padding 1, constant weights) reading a
// 1x1 convolution's output, with its folded BatchNormalization and activations: oneDNN
// runs it as a depthwise post-op of the 1x1 kernel, so the intermediate never leaves
// the cache and one parallel region does both. Not planned when the intermediate is
// observed (fusableConsumer refuses kept values).
struct DwFusion {
    int64_t stride = 1;
    std::vector<float> w, b;             // [C][1][3][3] (BN folded), [C]
    std::vector<const Node*> nodes;      // depthwise conv, BN, activations, in order
    std::vector<EltwiseStep> steps;      // activations after the depthwise conv
    std::string output;                  // value the fused primitive writes
    Shape shape;                         // its shape
};

std::optional<DwFusion> planDepthwise(NodeContext& c, const std::string& value, const Shape& in)
{
    // In parts mode the 1x1 and the depthwise conv each run as parts instead: a fused
    // kernel would run on one thread (buildParts).
    if (std::getenv("QS_RUNTIME_NO_DW_FUSION") || in.size() != 4 || c.partsPerThread() > 0)
        return std::nullopt;
    const Node* n = c.fusableConsumer(value);
    if (!n || n->opType != "Conv" || !n->domain.empty() || n->inputs.size() < 2 || n->inputs[0] != value ||
        n->outputs.size() != 1)
        return std::nullopt;
    const int64_t ch = in[1];
    const Tensor* W = c.constantValue(n->inputs[1]);
    const Tensor* B = n->inputs.size() > 2 && !n->inputs[2].empty() ? c.constantValue(n->inputs[2]) : nullptr;
    if (!W || W->shape != Shape{ch, 1, 3, 3} || n->attrInt("group", 1) != ch ||
        (n->inputs.size() > 2 && !n->inputs[2].empty() && (!B || B->numel() != ch)))
        return std::nullopt;
    const std::string autoPad = n->attrString("auto_pad", "NOTSET");
    const auto strides = n->attrInts("strides"), pads = n->attrInts("pads"), dil = n->attrInts("dilations");
    const auto kernel = n->attrInts("kernel_shape");
    if (autoPad != "NOTSET" || pads != std::vector<int64_t>{1, 1, 1, 1} ||
        !(dil.empty() || dil == std::vector<int64_t>{1, 1}) || !(kernel.empty() || kernel == std::vector<int64_t>{3, 3}))
        return std::nullopt;
    DwFusion f;
    if (strides.empty() || strides == std::vector<int64_t>{1, 1})
        f.stride = 1;
    else if (strides == std::vector<int64_t>{2, 2})
        f.stride = 2;
    else
        return std::nullopt;
    f.w = W->toFloat();
    f.b = B ? B->toFloat() : std::vector<float>(std::size_t(ch), 0.f);
    f.nodes.push_back(n);
    f.output = n->outputs[0];
    if (const Node* bn = c.fusableConsumer(f.output); bn && foldBatchNorm(c, *bn, f.w, f.b, ch)) {
        f.nodes.push_back(bn);
        f.output = bn->outputs[0];
    }
    while (const Node* act = c.fusableConsumer(f.output)) {
        auto steps = act->outputs.size() == 1 ? eltwiseSteps(c, *act) : std::nullopt;
        if (!steps)
            break;
        f.steps.insert(f.steps.end(), steps->begin(), steps->end());
        f.nodes.push_back(act);
        f.output = act->outputs[0];
    }
    f.shape = {in[0], ch, (in[2] + 2 - 3) / f.stride + 1, (in[3] + 2 - 3) / f.stride + 1};
    return f;
}

// Parts of a 2-D convolution at batch 1 in parts mode (Compiler::choosePartsPerThread),
// each a single-threaded primitive that reads and writes its own contiguous range, run
// on the caller-participating pool (PartsKernel): a part goes to whoever is free,
// where a libgomp region splits statically and waits for a worker that may wake late.
// - nChw16c output: output-channel parts (channel blocks are outermost; a depthwise
//   conv needs its input nChw16c too and reads the same channels).
// - nhwc input and output: output-row parts, each reading the input rows it needs,
//   with the padding only at the image's own edges.
// Every part must get the whole convolution's implementation with its post-ops
// (activations, the residual sum), else the convolution stays whole; so does one with
// a binary post-op or a fused depthwise conv (oneDNN fuses that only when the
// intermediate outgrows the L2 caches, which a part's does not). A convolution that
// stays whole runs on one thread.

memory::desc withTag(const Shape& s, tag t) { return memory::desc(toDims(s), memory::data_type::f32, t); }

struct PartPlan {
    Shape src, dst;                      // the part's input and output (NCHW dims)
    std::size_t srcOffset = 0, dstOffset = 0; // bytes into the whole input and output
    int64_t c0 = 0, channels = 0;        // its output channels
    memory::dims padL, padR;
};

// The parts' geometry, or nothing when the convolution stays whole.
std::vector<PartPlan> planParts(const Geometry& g, const Shape& x, bool depthwise, tag layout, int n)
{
    std::vector<PartPlan> parts;
    if (layout == tag::nChw16c) {
        const int64_t blocks = (g.out[1] + 15) / 16;
        n = int(std::min<int64_t>(n, blocks));
        if (n < 2)
            return parts;
        for (int j = 0; j < n; ++j) {
            PartPlan p;
            p.c0 = 16 * (j * blocks / n);
            p.channels = std::min(g.out[1], 16 * ((j + 1) * blocks / n)) - p.c0;
            p.src = depthwise ? Shape{1, p.channels, x[2], x[3]} : x;
            p.srcOffset = depthwise ? std::size_t(p.c0 * x[2] * x[3]) * 4 : 0;
            p.dst = {1, p.channels, g.out[2], g.out[3]};
            p.dstOffset = std::size_t(p.c0 * g.out[2] * g.out[3]) * 4;
            p.padL = g.padL;
            p.padR = g.padR;
            parts.push_back(p);
        }
        return parts;
    }
    // nhwc rows: output rows [r0, r1) read input rows [r0 s - padTop, (r1 - 1) s - padTop + kEff).
    const int64_t rows = g.out[2], s = g.strides[0], kEff = (g.kernel[0] - 1) * (g.dilates[0] + 1) + 1;
    n = int(std::min<int64_t>(n, rows));
    if (n < 2)
        return parts;
    for (int j = 0; j < n; ++j) {
        const int64_t r0 = j * rows / n, r1 = (j + 1) * rows / n;
        const int64_t first = r0 * s - g.padL[0], end = (r1 - 1) * s - g.padL[0] + kEff;
        const int64_t in0 = std::max<int64_t>(0, first), in1 = std::min(x[2], end);
        PartPlan p;
        p.channels = g.out[1];
        p.src = {1, x[1], in1 - in0, x[3]};
        p.srcOffset = std::size_t(in0 * x[3] * x[1]) * 4;
        p.dst = {1, g.out[1], r1 - r0, g.out[3]};
        p.dstOffset = std::size_t(r0 * g.out[3] * g.out[1]) * 4;
        p.padL = {in0 - first, g.padL[1]};
        p.padR = {end - in1, g.padR[1]};
        parts.push_back(p);
    }
    return parts;
}

// The fused tail's post-ops for one part: a binary operand of the whole destination's
// shape (a residual) becomes one of the part's; any other binary keeps the conv whole.
dnnl::post_ops partPostOps(const dnnl::post_ops& ops, const memory::desc& wholeDst, const memory::desc& partDst)
{
    dnnl::post_ops out;
    for (int i = 0; i < ops.len(); ++i) {
        switch (ops.kind(i)) {
        case dnnl::primitive::kind::eltwise: {
            float scale = 1.f, alpha = 0.f, beta = 0.f;
            algorithm alg = algorithm::undef;
            ops.get_params_eltwise(i, scale, alg, alpha, beta);
            out.append_eltwise(scale, alg, alpha, beta);
            break;
        }
        case dnnl::primitive::kind::sum: {
            float scale = 1.f;
            ops.get_params_sum(i, scale);
            out.append_sum(scale);
            break;
        }
        case dnnl::primitive::kind::binary: {
            algorithm alg = algorithm::undef;
            memory::desc md;
            ops.get_params_binary(i, alg, md);
            if (md.dims() != wholeDst.dims())
                throw std::runtime_error("a broadcast binary post-op");
            out.append_binary(alg, partDst);
            break;
        }
        default:
            throw std::runtime_error("a post-op of another kind");
        }
    }
    return out;
}

bool buildParts(NodeContext& c, const Geometry& g, const memory::dims& wDims, const Weights& wt, const DwFusion* dw,
                const FusedTail& tail, const dnnl::convolution_forward::primitive_desc& whole, int srcSlot,
                int dstSlot, const std::string& impl)
{
    const int threads = c.planThreads();
    const Shape& x = c.shape(0);
    // Scalar operands (FusedTail::scalars) are bound per primitive: such a conv stays whole.
    if (threads < 2 || c.partsPerThread() == 0 || !wt.constant || dw || !tail.scalars.empty() || g.sp != 2 ||
        x[0] != 1)
        return false;
    const bool grouped = wDims.size() == 5;
    const bool depthwise = grouped && wDims[1] == 1 && wDims[2] == 1;
    if (grouped && !depthwise)
        return false;
    tag layout = tag::undef;
    if (whole.dst_desc() == withTag(g.out, tag::nChw16c) && (!depthwise || whole.src_desc() == withTag(x, tag::nChw16c)))
        layout = tag::nChw16c;
    else if (whole.dst_desc() == withTag(g.out, tag::nhwc) && whole.src_desc() == withTag(x, tag::nhwc))
        layout = tag::nhwc;
    else
        return false;
    const int64_t macs = g.out[1] * g.out[2] * g.out[3] * (depthwise ? 1 : x[1]) * g.kernel[0] * g.kernel[1];
    const std::vector<PartPlan> plans = planParts(g, x, depthwise, layout, threads * c.partsPerThread());
    if (macs < kPartsMinMacs || plans.empty())
        return false;

    auto k = std::make_unique<PartsKernel>(); // single-threaded primitives: parts mode set the node's threads to 1
    const std::string wholeImpl = implName(whole);
    const std::size_t perChannel = wt.w.size() / std::size_t(g.out[1]);
    auto* src = static_cast<std::byte*>(c.slot(srcSlot).data());
    auto* dst = static_cast<std::byte*>(c.slot(dstSlot).data());
    std::map<std::pair<int64_t, int64_t>, memory> weightsOf; // (first channel, channels) -> reordered, shared
    try {
        for (const PartPlan& pp : plans) {
            const int64_t ch = pp.channels;
            const memory::dims partW = depthwise ? memory::dims{ch, 1, 1, g.kernel[0], g.kernel[1]}
                                                 : memory::dims{ch, wDims[1], g.kernel[0], g.kernel[1]};
            const memory::desc biasMd({ch}, memory::data_type::f32, tag::a);
            const memory::desc srcMd = layout == tag::nChw16c && !depthwise ? whole.src_desc() : withTag(pp.src, layout);
            const memory::desc dstMd = withTag(pp.dst, layout), wMd = anyDesc(partW);
            const auto desc = wt.hasBias ? dnnl::convolution_forward::desc(
                                               dnnl::prop_kind::forward_inference, algorithm::convolution_direct, srcMd,
                                               wMd, biasMd, dstMd, g.strides, g.dilates, pp.padL, pp.padR)
                                         : dnnl::convolution_forward::desc(
                                               dnnl::prop_kind::forward_inference, algorithm::convolution_direct, srcMd,
                                               wMd, dstMd, g.strides, g.dilates, pp.padL, pp.padR);
            dnnl::primitive_attr attr;
            attr.set_post_ops(partPostOps(tail.ops, whole.dst_desc(), dstMd));
            dnnl::convolution_forward::primitive_desc pd(desc, attr, cpuEngine());
            while (implName(pd) != wholeImpl && pd.next_impl()) {
            }
            if (implName(pd) != wholeImpl || pd.dst_desc() != dstMd || pd.src_desc() != srcMd)
                throw std::runtime_error("a part gets " + implName(pd));
            PartsKernel::Part part;
            part.prim = dnnl::convolution_forward(pd);
            part.offset = pp.dstOffset;
            part.bytes = dstMd.get_size();
            part.args[DNNL_ARG_SRC] = memory(srcMd, cpuEngine(), src + pp.srcOffset);
            part.args[DNNL_ARG_DST] = memory(dstMd, cpuEngine(), dst + pp.dstOffset);
            auto shared = weightsOf.find({pp.c0, ch});
            if (shared != weightsOf.end() && shared->second.get_desc() == pd.weights_desc())
                part.args[DNNL_ARG_WEIGHTS] = shared->second;
            else
                part.args[DNNL_ARG_WEIGHTS] = weightsOf[{pp.c0, ch}] =
                    reorderedConstant(pd.weights_desc(), stridedDesc(partW, rowMajorStrides(partW)),
                                      wt.w.data() + std::size_t(pp.c0) * perChannel, k->owned);
            if (wt.hasBias)
                part.args[DNNL_ARG_BIAS] = copiedConstant(biasMd, wt.b.data() + pp.c0, k->owned);
            // A residual added by a binary post-op has the destination's layout: the
            // part reads the same byte range of it.
            for (const auto& [index, slot] : tail.binarySlots)
                part.args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] =
                    memory(dstMd, cpuEngine(), static_cast<std::byte*>(c.slot(slot).data()) + pp.dstOffset);
            k->parts.push_back(std::move(part));
        }
    } catch (const std::exception& e) { // dnnl::error included
        if (std::getenv("QS_RUNTIME_DEBUG"))
            std::fprintf(stderr, "%s: kept whole: %s\n", c.where().c_str(), e.what());
        return false;
    }
    k->impl = str(impl, tail.sumSlot >= 0 ? " +sum" : "", " x", plans.size(),
                  layout == tag::nhwc ? " row parts" : " parts");
    k->dst = dstSlot;
    k->sumFrom = tail.sumSlot;
    k->maxThreads = threads;
    k->reads = {srcSlot};
    if (tail.sumSlot >= 0)
        k->reads.push_back(tail.sumSlot);
    for (const auto& [index, slot] : tail.binarySlots)
        k->reads.push_back(slot);
    k->writes = {dstSlot};
    c.add(std::move(k));
    return true;
}

// Shared by Conv and ConvTranspose: builds the primitive, binds weights and fusion.
template <typename Prim>
bool buildWithTail(NodeContext& c, const Geometry& g, const memory::dims& wDims, const memory::desc& wPlainMd,
                   Weights& wt, const std::function<typename Prim::desc(const memory::desc& src, const memory::desc& wts,
                                                                       const memory::desc* bias,
                                                                       const memory::desc& dst)>& makeDesc,
                   const std::string& firstValue, bool allowDw = false)
{
    const int64_t oc = g.out[1];
    const bool blocked16 = c.shape(0).size() == 4 && preferBlocked(c.graph());
    const memory::desc srcAny = blocked16 && c.shape(0)[1] >= 8
                                    ? memory::desc(toDims(c.shape(0)), memory::data_type::f32, tag::nChw16c)
                                    : anyDesc(toDims(c.shape(0)));
    const memory::desc wMd = wt.constant ? anyDesc(wDims) : wPlainMd;
    const memory::desc biasMd({oc}, memory::data_type::f32, tag::a);
    const bool bias = wt.hasBias;
    const memory::desc dstAny = blocked16 ? memory::desc(toDims(g.out), memory::data_type::f32, tag::nChw16c)
                                          : anyDesc(toDims(g.out));

    auto create = [&](const FusedTail& tail, const memory::desc& dst) {
        dnnl::primitive_attr attr;
        attr.set_post_ops(tail.ops);
        return typename Prim::primitive_desc(makeDesc(srcAny, wMd, bias ? &biasMd : nullptr, dst), attr, cpuEngine());
    };
    // oneDNN 2.6's deconvolution (a backward-data convolution inside) applies any post-op
    // in a slow pass of its own: a k2 s2 ConvTranspose to one channel, 320 x 320, took
    // 150 ms with a Sigmoid post-op and 3.3 ms without (avx512_core). Its tail stays out.
    constexpr bool deconv = std::is_same_v<Prim, dnnl::deconvolution_forward>;
    FusedTail tail = deconv ? FusedTail {{}, {}, firstValue, {}} : planTail(c, firstValue, g.out, nullptr, true, false, true);
    typename Prim::primitive_desc pd = create(tail, dstAny);
    std::string impl = implName(pd);
    std::optional<DwFusion> dw = allowDw && tail.scalars.empty() ? planDepthwise(c, tail.output, g.out) : std::nullopt;
    if (dw) {
        // A fresh post_ops (copies of a dnnl handle share it): the 1x1's activations, the
        // depthwise conv, its activations.
        FusedTail withDw;
        withDw.nodes = tail.nodes;
        for (const Node* n : tail.nodes)
            if (const auto steps = eltwiseSteps(c, *n))
                for (const auto& st : *steps)
                    withDw.ops.append_eltwise(1.f, st.alg, st.alpha, st.beta);
        withDw.ops.append_dw(memory::data_type::f32, memory::data_type::f32, memory::data_type::f32, 3, dw->stride, 1,
                             0, {});
        for (const auto& st : dw->steps)
            withDw.ops.append_eltwise(1.f, st.alg, st.alpha, st.beta);
        typename Prim::primitive_desc pd2;
        std::string impl2;
        const bool created =
            tryCreate<typename Prim::primitive_desc>([&] { return create(withDw, dstAny); }, pd2, impl2);
        const bool ok = created && !isRef(impl2) && pd2.dst_desc().dims() == toDims(dw->shape);
        if (std::getenv("QS_RUNTIME_DEBUG"))
            std::fprintf(stderr, "%s: depthwise %s as post-op: %s\n", c.where().c_str(), dw->nodes[0]->name.c_str(),
                         ok ? impl2.c_str() : created ? ("not used: " + impl2).c_str() : "refused");
        if (ok) {
            pd = pd2;
            impl = impl2 + " +dw";
            for (const Node* n : dw->nodes)
                withDw.nodes.push_back(n);
            // Values fused away keep their own shapes for Plan::shapeOf.
            c.declare(firstValue, DType::Float, g.out);
            for (const Node* n : tail.nodes)
                c.declare(n->outputs[0], DType::Float, g.out);
            for (const Node* n : dw->nodes)
                c.declare(n->outputs[0], DType::Float, dw->shape);
            withDw.output = dw->output;
            tail = withDw;
        } else {
            dw.reset();
        }
    }
    // A residual Add can join once the output layout is known (its other operand must
    // match it): as a binary post-op, which adds after the bias exactly as the Add node
    // would, else as a sum one (dst pre-filled with the residual). oneDNN's AVX2 kernel
    // starts its accumulators from a sum's residual: another rounding, so a plan that
    // keeps the conv output (taps, what-if, sensitivity) would disagree with this one.
    if (const Node* next = c.fusableConsumer(tail.output); next && next->opType == "Add" && !dw && !deconv) {
        const memory::desc dstMd = pd.dst_desc();
        for (bool useSum : {false, true}) {
            FusedTail withAdd = planTail(c, firstValue, g.out, &dstMd, true, useSum, true);
            if (withAdd.binarySlots.empty() && withAdd.sumSlot < 0)
                continue;
            typename Prim::primitive_desc pd2;
            std::string impl2;
            const bool created =
                tryCreate<typename Prim::primitive_desc>([&] { return create(withAdd, dstMd); }, pd2, impl2);
            if (std::getenv("QS_RUNTIME_DEBUG"))
                std::fprintf(stderr, "%s: residual add as %s post-op: %s\n", c.where().c_str(),
                             useSum ? "sum" : "binary", created ? impl2.c_str() : "refused");
            if (created && !isRef(impl2)) {
                pd = pd2;
                impl = impl2;
                tail = withAdd;
                break;
            }
        }
    }
    absorbTail(c, tail);

    const memory::desc dstMd = pd.dst_desc();
    const int dst = c.outputNamed(tail.output, DType::Float, dw ? dw->shape : g.out, &dstMd);
    std::map<int, int> args{{DNNL_ARG_SRC, c.inputAs(0, pd.src_desc())}, {DNNL_ARG_DST, dst}};
    bindTail(c, tail, args);
    if constexpr (std::is_same_v<Prim, dnnl::convolution_forward>)
        if (buildParts(c, g, wDims, wt, dw ? &*dw : nullptr, tail, pd, args.at(DNNL_ARG_SRC), dst, impl))
            return true;
    std::unordered_map<int, memory> fixed;
    std::vector<Buffer> owned;
    std::vector<int> extraReads;
    bindScalars(tail, g.out.size(), fixed, owned);
    if (wt.constant) {
        fixed[DNNL_ARG_WEIGHTS] = reorderedConstant(pd.weights_desc(), wPlainMd, wt.w.data(), owned);
        if (dw) {
            // Depthwise weights [C, 1, 1, 3, 3] and bias, in the layouts the fused kernel asks for.
            const int64_t ch = g.out[1];
            const memory::dims dwDims{ch, 1, 1, 3, 3};
            const int wArg = DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS, bArg = DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS;
            fixed[wArg] = reorderedConstant(pd.query_md(dnnl::query::exec_arg_md, wArg),
                                            stridedDesc(dwDims, rowMajorStrides(dwDims)), dw->w.data(), owned);
            fixed[bArg] = copiedConstant(memory::desc({ch}, memory::data_type::f32, tag::a), dw->b.data(), owned);
        }
        if (bias)
            fixed[DNNL_ARG_BIAS] = copiedConstant(biasMd, wt.b.data(), owned);
    } else {
        fixed[DNNL_ARG_WEIGHTS] = c.view(wt.wSlot, wPlainMd);
        extraReads.push_back(wt.wSlot);
        if (bias) {
            fixed[DNNL_ARG_BIAS] = c.view(wt.bSlot, biasMd);
            extraReads.push_back(wt.bSlot);
        }
    }
    if (tail.sumSlot >= 0) {
        auto k = std::make_unique<SumPrimitiveKernel>();
        k->prim = Prim(pd);
        k->impl = impl + " +sum";
        k->args = fixed;
        for (const auto& [arg, s] : args)
            k->args[arg] = c.slot(s).mem;
        k->reads = {args.at(DNNL_ARG_SRC), tail.sumSlot};
        k->reads.insert(k->reads.end(), extraReads.begin(), extraReads.end());
        k->writes = {dst};
        k->sumFrom = tail.sumSlot;
        k->dst = dst;
        k->owned = std::move(owned);
        c.add(std::move(k));
        return true;
    }
    auto* k = static_cast<PrimitiveKernel*>(c.addPrimitive(Prim(pd), impl, args, fixed));
    k->owned = std::move(owned);
    k->reads.insert(k->reads.end(), extraReads.begin(), extraReads.end());
    return true;
}

// A 1-D convolution that oneDNN 2.6 runs on its gemm or reference kernel (grouped and
// depthwise ones: Silero VAD's k5 depthwise convs on gemm, 2.6 ms for batch 32 x 258
// channels x 25 steps where the 2-D depthwise kernel takes 0.03 ms) runs as the 2-D one
// over H = 1: ncw, nwc and nCw16c bytes are nchw, nhwc and nChw16c ones with H = 1, so
// the kernel reads and writes the 1-D values in place. Constant weights; only
// activations join as post-ops. False when the 1-D kernel is already a jit one or the
// 2-D one is not.
bool buildConv1dAs2d(NodeContext& c, const Geometry& g, int64_t groups, const Shape& w, const Weights& wt,
                     const std::string& value)
{
    const Shape& x = c.shape(0);
    if (g.sp != 1 || !wt.constant || std::getenv("QS_RUNTIME_NO_CONV1D_AS_2D"))
        return false;
    const int64_t oc = g.out[1];
    const memory::desc biasMd({oc}, memory::data_type::f32, tag::a);
    const memory::dims wDims1 = weightDims(groups, oc, w[1], g.kernel);
    const std::string impl1 = implName(dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct,
                                        anyDesc(toDims(x)), anyDesc(wDims1), biasMd, anyDesc(toDims(g.out)), g.strides,
                                        g.dilates, g.padL, g.padR),
        cpuEngine()));
    if (!isRef(impl1) && impl1.find("gemm") == std::string::npos)
        return false;
    const memory::dims src4{x[0], x[1], 1, x[2]}, dst4{g.out[0], oc, 1, g.out[2]};
    const memory::dims wDims4 = weightDims(groups, oc, w[1], {1, g.kernel[0]});
    FusedTail tail = planTail(c, value, g.out, nullptr);
    dnnl::primitive_attr attr;
    attr.set_post_ops(tail.ops);
    const auto desc = wt.hasBias
        ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct,
                                          anyDesc(src4), anyDesc(wDims4), biasMd, anyDesc(dst4), {1, g.strides[0]},
                                          {0, g.dilates[0]}, {0, g.padL[0]}, {0, g.padR[0]})
        : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct,
                                          anyDesc(src4), anyDesc(wDims4), anyDesc(dst4), {1, g.strides[0]},
                                          {0, g.dilates[0]}, {0, g.padL[0]}, {0, g.padR[0]});
    dnnl::convolution_forward::primitive_desc pd;
    std::string impl;
    if (!tryCreate<dnnl::convolution_forward::primitive_desc>(
            [&] { return dnnl::convolution_forward::primitive_desc(desc, attr, cpuEngine()); }, pd, impl) ||
        isRef(impl) || impl.find("gemm") != std::string::npos)
        return false;
    memory::desc src3, dst3;
    try { // the 1-D views of the 2-D layouts (dropping H = 1)
        src3 = pd.src_desc().reshape(toDims(x));
        dst3 = pd.dst_desc().reshape(toDims(g.out));
    } catch (const dnnl::error&) {
        return false;
    }
    if (std::getenv("QS_RUNTIME_DEBUG"))
        std::fprintf(stderr, "%s: 1-D conv on %s as 2-D over H = 1: %s\n", c.where().c_str(), impl1.c_str(),
                     impl.c_str());
    absorbTail(c, tail);
    auto k = std::make_unique<PrimitiveKernel>();
    const int src = c.inputAs(0, src3);
    const int dst = c.outputNamed(tail.output, DType::Float, g.out, &dst3);
    k->prim = dnnl::convolution_forward(pd);
    k->impl = impl + " (1-D as 2-D)";
    k->args[DNNL_ARG_SRC] = c.view(src, pd.src_desc());
    k->args[DNNL_ARG_DST] = c.view(dst, pd.dst_desc());
    k->args[DNNL_ARG_WEIGHTS] =
        reorderedConstant(pd.weights_desc(), stridedDesc(wDims4, rowMajorStrides(wDims4)), wt.w.data(), k->owned);
    if (wt.hasBias)
        k->args[DNNL_ARG_BIAS] = copiedConstant(biasMd, wt.b.data(), k->owned);
    k->reads = {src};
    k->writes = {dst};
    c.add(std::move(k));
    return true;
}

bool buildConv(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1);
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
        c.fail("expected input rank 3 to 5 with weights of the same rank, got ", shapeString(x), " and ",
               shapeString(w));
    const int64_t groups = c.node.attrInt("group", 1);
    const int64_t oc = w[0];
    if (groups < 1 || x[1] != w[1] * groups || oc % groups != 0)
        c.fail("channels do not match: input ", shapeString(x), ", weights ", shapeString(w), ", group ", groups);
    checkBias(c, oc);
    const Geometry g = convGeometry(c, x, w, oc);
    const memory::dims wDims = weightDims(groups, oc, w[1], g.kernel);
    const memory::desc wPlainMd = stridedDesc(wDims, rowMajorStrides(wDims));

    Weights wt;
    std::string value = c.node.outputs[0];
    const Tensor* W = c.constant(1);
    const Tensor* B = c.has(2) ? c.constant(2) : nullptr;
    wt.constant = W && (!c.has(2) || B);
    if (wt.constant) {
        wt.w = W->toFloat();
        wt.b = B ? B->toFloat() : std::vector<float>(std::size_t(oc), 0.f);
        wt.hasBias = c.has(2);
        if (const Node* bn = c.fusableConsumer(value); bn && c.fuse() && foldBatchNorm(c, *bn, wt.w, wt.b, oc)) {
            c.absorb(*bn);
            value = bn->outputs[0];
            wt.hasBias = true;
        }
    } else {
        wt.wSlot = c.plainInput(1);
        wt.hasBias = c.has(2);
        if (wt.hasBias)
            wt.bSlot = c.plainInput(2);
    }
    auto makeDesc = [&](const memory::desc& src, const memory::desc& wts, const memory::desc* bias,
                        const memory::desc& dst) {
        if (bias)
            return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct,
                                                   src, wts, *bias, dst, g.strides, g.dilates, g.padL, g.padR);
        return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct, src,
                                               wts, dst, g.strides, g.dilates, g.padL, g.padR);
    };
    if (buildConv1dAs2d(c, g, groups, w, wt, value))
        return true;
    // A 1x1 convolution may carry the 3x3 depthwise one that reads it (constant weights only).
    bool pointwise = groups == 1 && x.size() == 4 && wt.constant;
    for (std::size_t i = 0; i < g.kernel.size(); ++i)
        pointwise = pointwise && g.kernel[i] == 1 && g.strides[i] == 1 && g.padL[i] == 0 && g.padR[i] == 0;
    return buildWithTail<dnnl::convolution_forward>(c, g, wDims, wPlainMd, wt, makeDesc, value, pointwise);
}

bool buildConvTranspose(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1); // [C, M/g, k...]
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
        c.fail("expected input rank 3 to 5 with weights of the same rank, got ", shapeString(x), " and ",
               shapeString(w));
    const Node& n = c.node;
    const int64_t groups = n.attrInt("group", 1);
    if (groups < 1 || x[1] != w[0] || x[1] % groups != 0)
        c.fail("channels do not match: input ", shapeString(x), ", weights ", shapeString(w), ", group ", groups);
    const int64_t oc = w[1] * groups, icg = w[0] / groups;
    checkBias(c, oc);
    Geometry g;
    g.sp = int(x.size()) - 2;
    auto kernel = kernelOf(c, w);
    auto strides = attrOr(n, "strides", g.sp, 1);
    auto dil = attrOr(n, "dilations", g.sp, 1);
    auto pads = attrOr(n, "pads", 2 * g.sp, 0);
    auto outPad = attrOr(n, "output_padding", g.sp, 0);
    auto outShape = n.attrInts("output_shape");
    const std::string autoPad = n.attrString("auto_pad", "NOTSET");
    checkWindow(c, g.sp, kernel, strides, dil, pads);
    if (int(outPad.size()) != g.sp)
        c.fail("output_padding has ", outPad.size(), " values for ", g.sp, " spatial dims");
    for (int i = 0; i < g.sp; ++i)
        if (outPad[std::size_t(i)] < 0 ||
            outPad[std::size_t(i)] >= std::max(strides[std::size_t(i)], dil[std::size_t(i)]))
            c.fail("output_padding ", shapeString(outPad), " must be below the stride or dilation");
    if (outShape.size() == x.size())
        outShape.erase(outShape.begin(), outShape.begin() + 2);
    if (!outShape.empty() && int(outShape.size()) != g.sp)
        c.fail("output_shape has ", outShape.size(), " values for ", g.sp, " spatial dims");
    if (autoPad != "NOTSET" && autoPad != "VALID" && autoPad != "SAME_UPPER" && autoPad != "SAME_LOWER")
        c.fail("auto_pad ", autoPad, " is not supported");
    g.out = {x[0], oc};
    for (int i = 0; i < g.sp; ++i) {
        const std::size_t u = std::size_t(i);
        const int64_t in = x[u + 2], keff = (kernel[u] - 1) * dil[u] + 1;
        const int64_t full = strides[u] * (in - 1) + outPad[u] + keff;
        int64_t pl = pads[u], pr = pads[u + std::size_t(g.sp)];
        if (!outShape.empty() || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
            const int64_t target = !outShape.empty() ? outShape[u] : in * strides[u];
            // ONNX halves the total with floor division: a negative total (output_shape
            // larger than the full output) grows the end, as output_padding does.
            const int64_t total = full - target;
            const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
            if (autoPad == "SAME_UPPER") {
                pl = half;
                pr = total - half;
            } else {
                pl = total - half;
                pr = half;
            }
        } else if (autoPad == "VALID") {
            pl = pr = 0;
        }
        if (full - pl - pr < 1)
            c.fail("output dim ", i, " would be ", full - pl - pr, " (pads ", intList(pads), ", output_shape ",
                shapeString(outShape), ")");
        g.out.push_back(full - pl - pr);
        g.strides.push_back(strides[u]);
        g.dilates.push_back(dil[u] - 1);
        g.padL.push_back(pl);
        g.padR.push_back(pr - outPad[u]); // oneDNN has no output_padding: less right padding
        g.kernel.push_back(kernel[u]);
    }
    // ONNX weights are [g][IC/g][OC/g][k...]; oneDNN wants dims [g, OC/g, IC/g, k...].
    const memory::dims wDims = weightDims(groups, oc, icg, g.kernel);
    int64_t kvol = 1;
    for (auto k : g.kernel)
        kvol *= k;
    const int64_t ocg = oc / groups;
    memory::dims st;
    if (groups > 1)
        st.push_back(icg * ocg * kvol);
    st.push_back(kvol);       // OC/g
    st.push_back(ocg * kvol); // IC/g
    memory::dims ks = rowMajorStrides(g.kernel);
    st.insert(st.end(), ks.begin(), ks.end());
    const memory::desc wPlainMd = stridedDesc(wDims, st);

    Weights wt;
    const Tensor* W = c.constant(1);
    const Tensor* B = c.has(2) ? c.constant(2) : nullptr;
    wt.constant = W && (!c.has(2) || B);
    wt.hasBias = c.has(2);
    if (wt.constant) {
        wt.w = W->toFloat();
        wt.b = B ? B->toFloat() : std::vector<float>(std::size_t(oc), 0.f);
    } else {
        wt.wSlot = c.plainInput(1);
        if (wt.hasBias)
            wt.bSlot = c.plainInput(2);
    }
    auto makeDesc = [&](const memory::desc& src, const memory::desc& wts, const memory::desc* bias,
                        const memory::desc& dst) {
        if (bias)
            return dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                     algorithm::deconvolution_direct, src, wts, *bias, dst, g.strides,
                                                     g.dilates, g.padL, g.padR);
        return dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm::deconvolution_direct,
                                                 src, wts, dst, g.strides, g.dilates, g.padL, g.padR);
    };
    return buildWithTail<dnnl::deconvolution_forward>(c, g, wDims, wPlainMd, wt, makeDesc, n.outputs[0]);
}

const bool convRegistered = [] {
    registerOp("Conv", buildConv);
    registerOp("ConvTranspose", buildConvTranspose);
    return true;
}();

} // namespace

void PartsKernel::run(Program& p)
{
    auto* out = static_cast<std::byte*>(p.slot(dst).data());
    const auto* residual = sumFrom >= 0 ? static_cast<const std::byte*>(p.slot(sumFrom).data()) : nullptr;
    parallelShards(
        int(parts.size()),
        [&](int i) {
            Part& part = parts[std::size_t(i)];
            if (residual)
                std::memcpy(out + part.offset, residual + part.offset, part.bytes);
            thread_local dnnl::stream stream(cpuEngine());
            part.prim.execute(stream, part.args);
        },
        maxThreads);
}

} // namespace qs::rt
