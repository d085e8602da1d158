// INT8 execution (CompileOptions::int8Layers): Conv, Gemm and MatMul with constant
// weights as oneDNN 2.x int8 primitives — u8/s8 activations with zero points, s8
// weights, s32 bias, requantization fused as output scales fixed at creation (one
// primitive per layer). A layer's output goes straight to 8 bits when its value is
// another INT8 layer's input; a residual Add joins as a sum (or binary) post-op; float
// consumers get a dequantized copy. A value's 8-bit copy is the slot "<value>#q8".
// A MatMul listed without a weight multiplies two INT8 values (attention operands).
#include "runtime/cpu_isa.h"
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace qs::rt {
namespace {

// Moves pd to oneDNN's reference implementation; false when it has none.
template <class PD> bool takeReferenceImpl(PD& pd)
{
    while (implName(pd).rfind("ref", 0) != 0)
        if (!pd.next_impl())
            return false;
    return true;
}

using dnnl::algorithm;
using tag = memory::format_tag;
using dt = memory::data_type;

const char* const kQ = "#q8";

const Int8Layer* int8Layer(const NodeContext& c, const Node& n)
{
    if (!n.domain.empty())
        return nullptr;
    auto it = c.options().int8Layers.find(n.name);
    return it == c.options().int8Layers.end() ? nullptr : &it->second;
}

const Int8Value* int8Value(const NodeContext& c, const std::string& v)
{
    auto it = c.options().int8Values.find(v);
    return it == c.options().int8Values.end() ? nullptr : &it->second;
}

dt qType(const Int8Value& q) { return q.isSigned ? dt::s8 : dt::u8; }
DType qDType(const Int8Value& q) { return q.isSigned ? DType::Int8 : DType::UInt8; }

memory::desc withType(const memory::desc& md, dt t)
{
    dnnl_memory_desc_t d = md.data;
    d.data_type = dnnl_data_type_t(t);
    return memory::desc(d);
}

// Channels-last: what oneDNN's int8 convolutions run fastest on.
memory::desc channelsLast(const Shape& s, dt t)
{
    const tag k = s.size() == 3 ? tag::nwc : s.size() == 4 ? tag::nhwc : tag::ndhwc;
    return memory::desc(toDims(s), t, k);
}

// Shape of input i, which may exist only as its 8-bit copy.
Shape inputShape(NodeContext& c, std::size_t i)
{
    const std::string& v = c.node.input(i);
    if (!c.defined(v) && c.defined(v + kQ))
        return c.slot(c.slotOfValue(v + kQ)).shape;
    return c.shape(i);
}

// x (float) -> q = round(x / scale) + zeroPoint, saturated, into a new slot named `name`.
int quantizeInto(NodeContext& c, int from, const Int8Value& q, const std::string& name, const memory::desc& md)
{
    const Shape shape = c.slot(from).shape;
    const memory::desc srcMd = c.slot(from).md;
    const int dst = c.outputNamed(name, qDType(q), shape, &md);
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {1.f / q.scale});
    if (q.zeroPoint)
        attr.set_zero_points(DNNL_ARG_DST, 0, {q.zeroPoint});
    dnnl::reorder::primitive_desc pd(cpuEngine(), srcMd, cpuEngine(), md, attr);
    c.addPrimitive(dnnl::reorder(pd), "quantize " + implName(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, dst}});
    if (q.isSigned) { // the symmetric grid [-127, 127], as the simulation has it: the reorder saturates to -128
        const std::size_t bytes = md.get_size();
        c.addFn({dst}, {dst}, [dst, bytes](Program& p) {
            int8_t* v = p.slot(dst).as<int8_t>();
            for (std::size_t i = 0; i < bytes; ++i)
                v[i] = std::max(v[i], int8_t(-127));
        });
    }
    return dst;
}

// q -> scale * (q - zeroPoint) into a new float slot named `name` (same strides when unblocked).
int dequantizeInto(NodeContext& c, int from, const Int8Value& q, const std::string& name)
{
    const Shape shape = c.slot(from).shape;
    const memory::desc srcMd = c.slot(from).md;
    const memory::desc md =
        srcMd.data.format_desc.blocking.inner_nblks == 0 ? withType(srcMd, dt::f32) : plainDesc(shape, DType::Float);
    const int dst = c.outputNamed(name, DType::Float, shape, &md);
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {q.scale});
    if (q.zeroPoint)
        attr.set_zero_points(DNNL_ARG_SRC, 0, {q.zeroPoint});
    dnnl::reorder::primitive_desc pd(cpuEngine(), srcMd, cpuEngine(), md, attr);
    c.addPrimitive(dnnl::reorder(pd), "dequantize " + implName(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, dst}});
    return dst;
}

// The 8-bit copy of `value` in layout `md` (its dtype): made once from the float value.
int quantizedInput(NodeContext& c, const std::string& value, const Int8Value& q, const memory::desc& md)
{
    if (c.defined(value + kQ))
        return c.slotAs(c.slotOfValue(value + kQ), md);
    const int from = c.slotOfValue(value);
    if (c.slot(from).dtype != DType::Float)
        c.fail("INT8 input ", quoted(value), " must be float32 before quantization, got ",
               dtypeName(c.slot(from).dtype));
    return quantizeInto(c, from, q, value + kQ, md);
}

const Int8Value* outputQuant(const NodeContext& c, const std::string& value, const Shape& shape);

// Makes the float form of a value that so far exists only as its 8-bit copy.
void ensureFloat(NodeContext& c, const std::string& value)
{
    if (c.defined(value) || !c.defined(value + kQ))
        return;
    const int from = c.slotOfValue(value + kQ);
    const Int8Value* q = outputQuant(c, value, c.slot(from).shape);
    if (!q)
        c.fail("internal: INT8 value ", quoted(value), " has no quantization");
    dequantizeInto(c, from, *q, value);
}

// An Add that an INT8 layer not built yet will absorb as its residual, `skip` being the
// other operand: the Add's other input comes from that layer through fusable activations.
bool absorbedAdd(const NodeContext& c, const Node& add, const std::string& skip)
{
    if (add.opType != "Add" || !add.domain.empty() || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1])
        return false;
    std::string cur = add.inputs[0] == skip ? add.inputs[1] : add.inputs[0];
    const Node* consumer = &add;
    for (;;) {
        if (c.defined(cur) || c.fusableConsumer(cur) != consumer)
            return false;
        const int p = c.graph().producerOf(cur);
        if (p < 0)
            return false;
        const Node& n = c.graph().nodes[std::size_t(p)];
        if (n.opType == "Conv" && int8Layer(c, n))
            return true;
        if (n.inputs.empty() || n.outputs.size() != 1 || !eltwiseSteps(c, n))
            return false;
        consumer = &n;
        cur = n.inputs[0];
    }
}

// A MaxPool over 8-bit values: max commutes with the (monotonic) quantization, so
// max(q(x)) = q(max(x)) exactly and it runs on the stored integers when its output is
// an INT8 input. Plain 2-D geometry only (no auto_pad, ceil_mode, dilations, indices).
struct PoolGeometry {
    memory::dims kernel, strides, padL, padR;
    Shape out;
};

std::optional<PoolGeometry> int8MaxPool(const NodeContext& c, const Node& n, const Shape& x)
{
    if (n.opType != "MaxPool" || !n.domain.empty() || n.outputs.size() != 1 || x.size() != 4 ||
        !int8Value(c, n.outputs[0]) || n.attrInt("ceil_mode", 0) != 0 ||
        n.attrString("auto_pad", "NOTSET") != "NOTSET")
        return std::nullopt;
    auto k = n.attrInts("kernel_shape"), st = n.attrInts("strides", {1, 1}), pads = n.attrInts("pads", {0, 0, 0, 0}),
         dil = n.attrInts("dilations", {1, 1});
    if (k.size() != 2 || st.size() != 2 || pads.size() != 4 || dil != std::vector<int64_t>{1, 1})
        return std::nullopt;
    for (std::size_t i = 0; i < 2; ++i) // anything odd is left to the float MaxPool, which names it
        if (k[i] < 1 || st[i] < 1 || pads[i] < 0 || pads[i + 2] < 0 || x[i + 2] + pads[i] + pads[i + 2] < k[i])
            return std::nullopt;
    PoolGeometry g;
    g.out = {x[0], x[1]};
    for (std::size_t i = 0; i < 2; ++i) {
        g.kernel.push_back(k[i]);
        g.strides.push_back(st[i]);
        g.padL.push_back(pads[i]);
        g.padR.push_back(pads[i + 2]);
        g.out.push_back((x[i + 2] + pads[i] + pads[i + 2] - k[i]) / st[i] + 1);
    }
    return g;
}

// How an INT8 layer's output `value` is stored in 8 bits: its own quantization when it
// is an INT8 input, else that of an 8-bit MaxPool it feeds (nullptr: float).
const Int8Value* outputQuant(const NodeContext& c, const std::string& value, const Shape& shape)
{
    if (const Int8Value* q = int8Value(c, value))
        return q->isSigned && q->zeroPoint != 0 ? nullptr : q;
    const Node* n = c.fusableConsumer(value);
    if (n && int8MaxPool(c, *n, shape))
        return outputQuant(c, n->outputs[0], Shape{});
    return nullptr;
}

// Whether a value produced in 8 bits also needs its float form: a graph output, observed,
// or read by anything but INT8 layers (as their input) and residual Adds they absorb.
bool needsFloat(const NodeContext& c, const std::string& value, const Shape& shape)
{
    if (c.kept(value))
        return true;
    for (int idx : c.graph().consumersOf(value)) {
        const Node& n = c.graph().nodes[std::size_t(idx)];
        int uses = 0;
        for (const auto& in : n.inputs)
            uses += in == value;
        if (int8Layer(c, n) && uses == 1 && n.inputs[0] == value)
            continue;
        if (uses == 1 && n.inputs[0] == value && c.fusableConsumer(value) == &n && int8MaxPool(c, n, shape))
            continue;
        if (uses == 1 && absorbedAdd(c, n, value))
            continue;
        return true;
    }
    return false;
}

// What follows the integer primitive: activations, at most one residual Add, more
// activations; the output value and how it is stored.
struct Tail {
    std::vector<EltwiseStep> pre, post; // before / after the residual
    std::string residual;               // the Add's other operand ("" for none)
    std::vector<const Node*> nodes;
    std::string output;
};

Tail planInt8Tail(NodeContext& c, const std::string& first, const Shape& shape, bool allowResidual)
{
    Tail t;
    t.output = first;
    while (const Node* n = c.fusableConsumer(t.output)) {
        if (n->outputs.size() != 1)
            break;
        if (auto steps = eltwiseSteps(c, *n)) {
            auto& into = t.residual.empty() ? t.pre : t.post;
            into.insert(into.end(), steps->begin(), steps->end());
        } else if (allowResidual && t.residual.empty() && n->opType == "Add" && n->domain.empty() &&
                   n->inputs.size() == 2 && n->inputs[0] != n->inputs[1]) {
            const std::string& other = n->inputs[0] == t.output ? n->inputs[1] : n->inputs[0];
            if (c.constantValue(other) || !(c.defined(other) || c.defined(other + kQ)))
                break;
            const int s = c.slotOfValue(c.defined(other + kQ) ? other + kQ : other);
            if (c.slot(s).shape != shape)
                break;
            t.residual = other;
        } else {
            break;
        }
        t.nodes.push_back(n);
        t.output = n->outputs[0];
    }
    return t;
}

bool homogeneous(const std::vector<EltwiseStep>& steps)
{
    // relu(k x) = k relu(x) for k > 0 (also with a negative slope): scales move through it.
    for (const auto& s : steps)
        if (s.alg != algorithm::eltwise_relu)
            return false;
    return true;
}

void appendSteps(dnnl::post_ops& ops, const std::vector<EltwiseStep>& steps)
{
    for (const auto& s : steps)
        ops.append_eltwise(1.f, s.alg, s.alpha, s.beta);
}

// Output scales, post-ops and argument bindings for one tail.
struct Requant {
    std::vector<float> scales; // output scales (x accumulator -> dst units)
    dnnl::post_ops ops;
    int sumSlot = -1;
    std::vector<std::pair<int, int>> binary; // post-op index -> slot
};

// acc * inScale * wScale[c] is the real value; `out` quantizes the result (nullptr: float dst).
Requant requantize(NodeContext& c, const Tail& t, float inScale, const std::vector<float>& wScales,
                   const Int8Value* out, const memory::desc& dstMd, bool allowSum)
{
    Requant r;
    const float outUnit = out ? 1.f / out->scale : 1.f; // real -> dst units
    float k = 1.f;                                      // factor folded into the output scales
    if (!t.residual.empty()) {
        const Int8Value* rq = c.defined(t.residual + kQ) ? int8Value(c, t.residual) : nullptr;
        const dt dstType = dstMd.data_type();
        if (allowSum && t.pre.empty() && ((rq && qType(*rq) == dstType) || dstType == dt::f32)) {
            if (dstType == dt::f32 && rq) {
                // Float dst: the sum reads the residual's float form (one dequantize;
                // a binary post-op over the 8-bit form did not match the simulation).
                ensureFloat(c, t.residual);
                rq = nullptr;
            }
            // dst starts as the residual: real = acc*sx*sw + s_r (r - z_r). Fold the final
            // scale into both terms when the activations after it allow.
            const bool fold = homogeneous(t.post);
            k = fold ? outUnit : 1.f;
            const int from = c.slotOfValue(rq ? t.residual + kQ : t.residual);
            r.sumSlot = c.slotAs(from, dstMd);
            r.ops.append_sum((rq ? rq->scale : 1.f) * k, rq ? rq->zeroPoint : 0, dstType);
            appendSteps(r.ops, t.post);
            if (!fold && outUnit != 1.f)
                r.ops.append_eltwise(1.f, algorithm::eltwise_linear, outUnit, 0.f);
        } else {
            // Binary post-op over the residual's float form, in real units.
            appendSteps(r.ops, t.pre);
            ensureFloat(c, t.residual);
            const memory::desc src1 = withType(dstMd, dt::f32);
            r.binary.push_back({r.ops.len(), c.slotAs(c.slotOfValue(t.residual), src1)});
            r.ops.append_binary(algorithm::binary_add, src1);
            appendSteps(r.ops, t.post);
            if (outUnit != 1.f)
                r.ops.append_eltwise(1.f, algorithm::eltwise_linear, outUnit, 0.f);
        }
    } else {
        const bool fold = homogeneous(t.pre);
        k = fold ? outUnit : 1.f;
        appendSteps(r.ops, t.pre);
        if (!fold && outUnit != 1.f)
            r.ops.append_eltwise(1.f, algorithm::eltwise_linear, outUnit, 0.f);
    }
    // s8 results on the symmetric grid [-127, 127], as the simulation has them (the
    // conversion alone saturates to -128). In dst units, before the (zero) zero point.
    if (out && out->isSigned)
        r.ops.append_eltwise(1.f, algorithm::eltwise_clip, -127.f, 127.f);
    for (float w : wScales)
        r.scales.push_back(inScale * w * k);
    return r;
}

dnnl::primitive_attr makeAttr(const Requant& r, int channelMask, const Int8Value& in, const Int8Value* out)
{
    dnnl::primitive_attr attr;
    attr.set_output_scales(r.scales.size() > 1 ? channelMask : 0, r.scales);
    if (in.zeroPoint)
        attr.set_zero_points(DNNL_ARG_SRC, 0, {in.zeroPoint});
    if (out && out->zeroPoint)
        attr.set_zero_points(DNNL_ARG_DST, 0, {out->zeroPoint});
    attr.set_post_ops(r.ops);
    return attr;
}

// Constant s8 weights reordered into the primitive's layout; s32 bias.
void bindConstants(const Int8Layer& L, const memory::desc& plainW, const memory::desc& wantW,
                   const memory::desc* biasMd, std::unordered_map<int, memory>& fixed, std::vector<Buffer>& owned)
{
    fixed[DNNL_ARG_WEIGHTS] = reorderedConstant(wantW, plainW, L.weight.data(), owned);
    if (biasMd)
        fixed[DNNL_ARG_BIAS] = copiedConstant(*biasMd, L.bias.data(), owned);
}

// The primitive's output: 8-bit when its value is an INT8 layer's input (plus the float
// form when something else reads it), float otherwise.
int defineOutput(NodeContext& c, const std::string& value, const Int8Value* out, const Shape& shape,
                 const memory::desc& md)
{
    if (!out)
        return c.outputNamed(value, DType::Float, shape, &md);
    const int dst = c.outputNamed(value + kQ, qDType(*out), shape, &md);
    c.declare(value, DType::Float, shape);
    return dst;
}

void finishOutput(NodeContext& c, const std::string& value, const Int8Value* out, int dst)
{
    if (out && needsFloat(c, value, c.slot(dst).shape))
        dequantizeInto(c, dst, *out, value);
    // A residual Add this layer did not absorb (needsFloat() of its other operand
    // expected it to) runs in float: its operands need their float form.
    for (int idx : c.graph().consumersOf(value)) {
        const Node& n = c.graph().nodes[std::size_t(idx)];
        if (n.opType != "Add" || n.inputs.size() != 2)
            continue;
        const std::string& other = n.inputs[0] == value ? n.inputs[1] : n.inputs[0];
        if (!absorbedAdd(c, n, value) || other == value)
            for (const auto& in : n.inputs)
                ensureFloat(c, in);
    }
}

const Int8Value& inputQuant(NodeContext& c, const std::string& value)
{
    const Int8Value* q = int8Value(c, value);
    if (!q)
        c.fail("INT8 layer input ", quoted(value), " has no quantization parameters");
    if (q->isSigned && q->zeroPoint != 0)
        c.fail("INT8 input ", quoted(value), ": signed 8-bit values need zero point 0, got ", q->zeroPoint);
    return *q;
}

void checkLayer(NodeContext& c, const Int8Layer& L, int64_t weights, int64_t outChannels)
{
    if (int64_t(L.weight.size()) != weights)
        c.fail("INT8 weight has ", L.weight.size(), " elements, the layer's weight ", weights);
    if (L.weightScales.size() != 1 && int64_t(L.weightScales.size()) != outChannels)
        c.fail("INT8 weight scales: ", L.weightScales.size(), " given, expected 1 or ", outChannels);
    if (!L.bias.empty() && int64_t(L.bias.size()) != outChannels)
        c.fail("INT8 bias has ", L.bias.size(), " elements, expected ", outChannels);
}

template <typename PD> PD createOrNull(const std::function<PD()>& make, bool& ok)
{
    try {
        ok = true;
        return make();
    } catch (const dnnl::error&) {
        ok = false;
        return PD();
    }
}

// Without VNNI or AMX, oneDNN's fast int8 kernels multiply u8 x s8 with vpmaddubsw,
// whose pairwise int16 sums saturate when |x0 w0 + x1 w1| > 32767; its reference
// kernels are exact and hundreds of times slower. 7-bit weights cannot saturate
// (2 x 255 x 64 = 32640 < 32767), so every s8 weight w is split exactly into
// lo = floor(w / 2) and hi = w - lo, both in [-64, 64], and the layer runs as
// [x, x] x [W_lo; W_hi] over an inner dimension of 2K: the same int32 sums (zero-point
// compensation included: the weights still sum to W's), on the fast kernels, at twice
// the multiply-adds (convolutions: [x, x] over 2C input channels). Signed inputs go in
// as u8 with zero point 128 (the copy adds 128): without VNNI oneDNN halves the weights
// of s8 x s8 itself, an inexact rescale. splitWeights gives
// a weight seen as [outer][K][inner] (K: the summed dimension) as [outer][2][K][inner].
std::vector<int8_t> splitWeights(const std::vector<int8_t>& w, int64_t outer, int64_t K, int64_t inner)
{
    std::vector<int8_t> out(std::size_t(2 * outer * K * inner));
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t j = 0; j < inner; ++j) {
                const int v = w[std::size_t((o * K + k) * inner + j)];
                const int lo = v >= 0 ? v / 2 : -((-v + 1) / 2); // floor(v / 2)
                out[std::size_t(((o * 2) * K + k) * inner + j)] = int8_t(lo);
                out[std::size_t(((o * 2 + 1) * K + k) * inner + j)] = int8_t(v - lo);
            }
    return out;
}

// s8 values (zero point 0) as the u8 values 128 above them.
Int8Value unsignedForm(const Int8Value& q) { return q.isSigned ? Int8Value{q.scale, 128, false} : q; }

// The copy [x, x] of an 8-bit value x (slot `from`, seen as rows of K with K innermost:
// [M, K] row-major or channels-last) as rows of 2K in `whole`, u8: s8 values shifted by
// 128 (oneDNN's reorders ignore a destination zero point between s8 and u8; every s8
// producer already keeps to the symmetric grid [-127, 127]). Made once per value and
// shared by the split layers that read it.
int doubledInput(NodeContext& c, const std::string& value, int from, int64_t K, const memory::desc& whole)
{
    const std::string name = value + "x2";
    if (c.defined(name))
        return c.slotOfValue(name);
    Shape shape = c.slot(from).shape;
    shape[1] *= 2;
    const int dst = c.outputNamed(name, DType::UInt8, shape, &whole);
    const bool shift = c.slot(from).dtype == DType::Int8;
    const int64_t rows = numelOf(c.slot(from).shape) / K;
    c.addFn({from}, {dst}, [from, dst, rows, K, shift](Program& p) {
        const uint8_t* x = p.slot(from).as<uint8_t>();
        uint8_t* y = p.slot(dst).as<uint8_t>();
        for (int64_t r = 0; r < rows; ++r) {
            const uint8_t* in = x + r * K;
            uint8_t* out = y + r * 2 * K;
            for (int64_t k = 0; k < K; ++k) // s8 v + 128 is its byte with the top bit flipped
                out[k] = out[K + k] = shift ? uint8_t(in[k] ^ 0x80) : in[k];
        }
    });
    return dst;
}

bool buildInt8Conv(NodeContext& c)
{
    const Int8Layer* L = int8Layer(c, c.node);
    if (!L)
        return false;
    const Shape x = inputShape(c, 0), w = c.shape(1);
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size())
        c.fail("INT8: expected input rank 3 to 5 with weights of the same rank, got ", shapeString(x), " and ",
               shapeString(w));
    const int64_t groups = c.node.attrInt("group", 1), oc = w[0];
    if (groups < 1 || x[1] != w[1] * groups || oc % groups != 0)
        c.fail("channels do not match: input ", shapeString(x), ", weights ", shapeString(w), ", group ", groups);
    checkLayer(c, *L, numelOf(w), oc);
    if (c.has(2) && L->bias.empty())
        c.fail("INT8: the layer has a bias but no int32 bias was given");
    const Int8Value& in = inputQuant(c, c.node.inputs[0]);
    const Geometry g = convGeometry(c, x, w, oc);
    const memory::dims wDims = weightDims(groups, oc, w[1], g.kernel);
    const memory::desc plainW(wDims, dt::s8, groups > 1 ? (x.size() == 4 ? tag::goihw : x.size() == 3 ? tag::goiw : tag::goidhw)
                                                     : (x.size() == 4 ? tag::oihw : x.size() == 3 ? tag::oiw : tag::oidhw));
    const memory::desc biasMd({oc}, dt::s32, tag::a);
    const bool hasBias = !L->bias.empty();

    // Without VNNI: the 7-bit weight split over [x, x] (2C channels, channels-last so
    // the second copy starts at an element offset), ungrouped convolutions only.
    Shape x2 = x;
    x2[1] *= 2;
    const bool trySplit = int8UsesReferenceKernels() && groups == 1;
    const Int8Value in2 = unsignedForm(in);
    bool split = false;
    auto tryBuild = [&](const Tail& t, bool allowSum, Requant& r, const Int8Value*& out) {
        out = outputQuant(c, t.output, g.out); // s8 with a zero point: float
        const memory::desc dstMd = channelsLast(g.out, out ? qType(*out) : dt::f32);
        r = requantize(c, t, in.scale, L->weightScales, out, dstMd, allowSum);
        dnnl::primitive_attr attr = makeAttr(r, 1 << 1, in, out);
        const dnnl::primitive_attr attr2 = makeAttr(r, 1 << 1, in2, out);
        auto make = [&](bool doubled, bool& ok) {
            const memory::desc src = doubled ? channelsLast(x2, dt::u8) : memory::desc(toDims(x), qType(in), tag::any);
            const memory::desc wts(doubled ? weightDims(1, oc, 2 * w[1], g.kernel) : wDims, dt::s8, tag::any);
            auto desc = hasBias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                                  algorithm::convolution_direct, src, wts, biasMd,
                                                                  dstMd, g.strides, g.dilates, g.padL, g.padR)
                                : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                                  algorithm::convolution_direct, src, wts, dstMd,
                                                                  g.strides, g.dilates, g.padL, g.padR);
            auto pd = createOrNull<dnnl::convolution_forward::primitive_desc>(
                [&] { return dnnl::convolution_forward::primitive_desc(desc, doubled ? attr2 : attr, cpuEngine()); },
                ok);
            // (pd iterates over implementations while desc lives: here)
            if (ok && doubled)
                ok = implName(pd).rfind("ref", 0) != 0;
            else if (ok && int8UsesReferenceKernels())
                ok = takeReferenceImpl(pd);
            else if (ok && implName(pd).rfind("ref", 0) == 0)
                ok = false; // a reference kernel: a different fusion is faster
            return pd;
        };
        bool ok = false;
        if (trySplit) {
            auto pd = make(true, ok);
            split = ok;
            if (split)
                return std::make_pair(true, pd);
        }
        auto pd = make(false, ok);
        return std::make_pair(ok, pd);
    };

    // Residual as a sum post-op, else as a binary one, else none (the Add stays float).
    Tail tail = planInt8Tail(c, c.node.outputs[0], g.out, true);
    Requant r;
    const Int8Value* out = nullptr;
    std::pair<bool, dnnl::convolution_forward::primitive_desc> built{false, {}};
    for (int attempt = 0; attempt < 3 && !built.first; ++attempt) {
        if (attempt == 2 || tail.residual.empty()) {
            if (!tail.residual.empty())
                ensureFloat(c, tail.residual); // the Add now runs in float
            tail = planInt8Tail(c, c.node.outputs[0], g.out, false);
            built = tryBuild(tail, false, r, out);
            if (!built.first)
                c.fail("oneDNN has no INT8 convolution for this configuration (src ", dtypeName(qDType(in)),
                       ", input ", shapeString(x), ", weights ", shapeString(w), ")");
            break;
        }
        built = tryBuild(tail, attempt == 0, r, out);
    }
    const auto& pd = built.second;
    for (const Node* n : tail.nodes)
        c.absorb(*n);

    const memory::desc dstMd = pd.dst_desc();
    int src = quantizedInput(c, c.node.inputs[0], in, split ? channelsLast(x, qType(in)) : pd.src_desc());
    if (split)
        src = doubledInput(c, c.node.inputs[0] + kQ, src, x[1], pd.src_desc());
    const int dst = defineOutput(c, tail.output, out, g.out, dstMd);
    std::unordered_map<int, memory> fixed;
    std::vector<Buffer> owned;
    if (split) {
        const int64_t spatial = numelOf(w) / (oc * w[1]);
        const std::vector<int8_t> halves = splitWeights(L->weight, oc, w[1], spatial);
        const memory::desc plain2(weightDims(1, oc, 2 * w[1], g.kernel), dt::s8,
                                  x.size() == 4 ? tag::oihw : x.size() == 3 ? tag::oiw : tag::oidhw);
        fixed[DNNL_ARG_WEIGHTS] = reorderedConstant(pd.weights_desc(), plain2, halves.data(), owned);
        if (hasBias)
            fixed[DNNL_ARG_BIAS] = copiedConstant(biasMd, L->bias.data(), owned);
    } else {
        bindConstants(*L, plainW, pd.weights_desc(), hasBias ? &biasMd : nullptr, fixed, owned);
    }
    const std::string impl = "int8 " + implName(pd) + (split ? " (7-bit split)" : "");
    if (r.sumSlot >= 0) {
        auto k = std::make_unique<SumPrimitiveKernel>();
        k->prim = dnnl::convolution_forward(pd);
        k->impl = impl + " +sum";
        k->args = fixed;
        k->args[DNNL_ARG_SRC] = c.slot(src).mem;
        k->args[DNNL_ARG_DST] = c.slot(dst).mem;
        k->reads = {src, r.sumSlot};
        k->writes = {dst};
        k->sumFrom = r.sumSlot;
        k->dst = dst;
        k->owned = std::move(owned);
        c.add(std::move(k));
    } else {
        std::map<int, int> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
        for (const auto& [index, slot] : r.binary)
            args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] = slot;
        auto* k = static_cast<PrimitiveKernel*>(c.addPrimitive(dnnl::convolution_forward(pd), impl, args, fixed));
        k->owned = std::move(owned);
    }
    finishOutput(c, tail.output, out, dst);
    return true;
}

// A MatMul of two INT8 values (attention's Q x K^T and P x V: an Int8Layer without a
// weight, both inputs in int8Values): u8/s8 A with its zero point, s8 B (zero point 0),
// int32 accumulation, a float output scaled by sA x sB. oneDNN's matmul takes the batch
// dimensions of [.., M, K] x [.., K, N] (equal rank, each equal or 1).
bool buildInt8OperandMatmul(NodeContext& c)
{
    const Node& n = c.node;
    const Shape a = inputShape(c, 0), b = inputShape(c, 1);
    if (a.size() < 2 || a.size() != b.size() || a.back() != b[b.size() - 2])
        c.fail("INT8 MatMul of two activations needs operands of equal rank >= 2 and matching inner dimensions, got ",
            shapeString(a), " and ", shapeString(b));
    Shape outShape = a;
    outShape.back() = b.back();
    for (std::size_t i = 0; i + 2 < a.size(); ++i) {
        if (a[i] != b[i] && a[i] != 1 && b[i] != 1)
            c.fail("INT8 MatMul: batch dimensions of ", shapeString(a), " and ", shapeString(b), " do not broadcast");
        outShape[i] = std::max(a[i], b[i]);
    }
    const Int8Value& qa = inputQuant(c, n.inputs[0]);
    const Int8Value& qb = inputQuant(c, n.inputs[1]);
    if (qb.zeroPoint != 0)
        c.fail("INT8 MatMul: the second operand ", quoted(n.inputs[1]), " needs zero point 0 (symmetric), got ",
            qb.zeroPoint);
    const memory::desc srcMd = plainDesc(a, qDType(qa)), wMd = plainDesc(b, qDType(qb));
    const memory::desc dstMd = plainDesc(outShape, DType::Float);
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {qa.scale * qb.scale});
    if (qa.zeroPoint)
        attr.set_zero_points(DNNL_ARG_SRC, 0, {qa.zeroPoint});
    const dnnl::matmul::desc desc(srcMd, wMd, dstMd); // alive while pd iterates implementations
    dnnl::matmul::primitive_desc pd(desc, attr, cpuEngine());
    if (int8UsesReferenceKernels() && !takeReferenceImpl(pd))
        c.fail("INT8: oneDNN has no exact (int32-accumulating) matmul for these operands on this CPU without VNNI");
    const int src = quantizedInput(c, n.inputs[0], qa, srcMd);
    const int wts = quantizedInput(c, n.inputs[1], qb, wMd);
    const int dst = c.outputNamed(n.outputs[0], DType::Float, outShape, &dstMd);
    c.addPrimitive(dnnl::matmul(pd), "int8 operands " + implName(pd),
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wts}, {DNNL_ARG_DST, dst}});
    return true;
}

// Gemm (transA = 0, constant B) and MatMul ([.., K] x constant [K, N]) as an int8 matmul
// over the rows: [M, K] x [K, N].
bool buildInt8Matmul(NodeContext& c)
{
    const Int8Layer* L = int8Layer(c, c.node);
    if (!L)
        return false;
    const Node& n = c.node;
    if (n.opType == "MatMul" && L->weight.empty() && !c.constant(1))
        return buildInt8OperandMatmul(c);
    const bool gemm = n.opType == "Gemm";
    const Shape a = inputShape(c, 0), b = c.shape(1);
    if (!c.constant(1) || b.size() != 2 || a.size() < 2 || (gemm && a.size() != 2))
        c.fail("INT8 needs a constant 2-D weight and an input of rank >= 2 (rank 2 for Gemm), got ",
               shapeString(a), " and ", shapeString(b));
    if (gemm && n.attrInt("transA", 0) != 0)
        c.fail("INT8 Gemm with transA = 1 is not supported");
    const bool transB = gemm && n.attrInt("transB", 0) != 0;
    const float alpha = gemm ? n.attrFloat("alpha", 1.f) : 1.f;
    const int64_t K = a.back(), N = transB ? b[0] : b[1];
    if ((transB ? b[1] : b[0]) != K)
        c.fail("inner dimensions differ: ", shapeString(a), " and ", shapeString(b));
    if (gemm && c.has(2) && !c.constant(2))
        c.fail("INT8 Gemm needs a constant C (it becomes the int32 bias)");
    checkLayer(c, *L, numelOf(b), N);
    if (gemm && c.has(2) && L->bias.empty())
        c.fail("INT8: the layer has C but no int32 bias was given");
    const Int8Value& in = inputQuant(c, n.inputs[0]);
    const int64_t M = numelOf(a) / K;
    Shape outShape(a.begin(), a.end() - 1);
    outShape.push_back(N);
    const memory::desc plainW({K, N}, dt::s8, transB ? memory::dims{1, K} : memory::dims{N, 1});
    const memory::desc biasMd({1, N}, dt::s32, tag::ab);
    const bool hasBias = !L->bias.empty();

    Tail tail = planInt8Tail(c, n.outputs[0], outShape, false);
    const Int8Value* out = outputQuant(c, tail.output, outShape);
    const dt dstType = out ? qType(*out) : dt::f32;
    const memory::desc dst2({M, N}, dstType, tag::ab);
    std::vector<float> wScales = L->weightScales;
    for (float& s : wScales)
        s *= alpha;
    Requant r = requantize(c, tail, in.scale, wScales, out, dst2, false);
    // Over an inner dimension of K, or of 2K with the weights split to 7 bits (u8); false
    // when that one has no suitable kernel. (pd iterates while desc lives: here.)
    auto make = [&](int64_t inner, dnnl::matmul::primitive_desc& pd) {
        const Int8Value src = inner == K ? in : unsignedForm(in);
        const memory::desc src2({M, inner}, qType(src), tag::ab), wts({inner, N}, dt::s8, tag::any);
        const dnnl::matmul::desc desc =
            hasBias ? dnnl::matmul::desc(src2, wts, biasMd, dst2) : dnnl::matmul::desc(src2, wts, dst2);
        pd = dnnl::matmul::primitive_desc(desc, makeAttr(r, 1 << 1, src, out), cpuEngine());
        if (inner != K)
            return implName(pd).rfind("ref", 0) != 0;
        return !int8UsesReferenceKernels() || takeReferenceImpl(pd);
    };
    dnnl::matmul::primitive_desc pd;
    const bool split = int8UsesReferenceKernels() && make(2 * K, pd);
    if (!split && !make(K, pd))
        c.fail("INT8: oneDNN has no exact (int32-accumulating) matmul for this layer on this CPU without VNNI");
    for (const Node* t : tail.nodes)
        c.absorb(*t);
    int src = quantizedInput(c, n.inputs[0], in, plainDesc(a, qDType(in)));
    if (split)
        src = doubledInput(c, n.inputs[0] + kQ, src, K, pd.src_desc());
    const memory::desc dstFull = plainDesc(outShape, out ? qDType(*out) : DType::Float);
    const int dst = defineOutput(c, tail.output, out, outShape, dstFull);
    std::unordered_map<int, memory> fixed;
    std::vector<Buffer> owned;
    if (split) {
        // [K, N] -> [2][K][N], that is [2K, N]; [N, K] -> [N][2][K], that is [2K, N] transposed.
        const std::vector<int8_t> w = transB ? splitWeights(L->weight, N, K, 1) : splitWeights(L->weight, 1, K, N);
        const memory::desc plain2({2 * K, N}, dt::s8, transB ? memory::dims{1, 2 * K} : memory::dims{N, 1});
        fixed[DNNL_ARG_WEIGHTS] = reorderedConstant(pd.weights_desc(), plain2, w.data(), owned);
        if (hasBias)
            fixed[DNNL_ARG_BIAS] = copiedConstant(biasMd, L->bias.data(), owned);
    } else {
        bindConstants(*L, plainW, pd.weights_desc(), hasBias ? &biasMd : nullptr, fixed, owned);
    }
    fixed[DNNL_ARG_SRC] = c.view(src, pd.src_desc());
    const std::string impl = "int8 " + implName(pd) + (split ? " (7-bit split)" : "");
    auto* k = static_cast<PrimitiveKernel*>(c.addPrimitive(dnnl::matmul(pd), impl, {{DNNL_ARG_DST, dst}}, fixed));
    k->args[DNNL_ARG_DST] = c.view(dst, dst2); // the [M, N] view of the output
    k->owned = std::move(owned);
    k->reads.push_back(src);
    finishOutput(c, tail.output, out, dst);
    return true;
}

bool buildInt8MaxPool(NodeContext& c)
{
    const std::string& x = c.node.inputs.empty() ? std::string() : c.node.inputs[0];
    if (x.empty() || !c.defined(x + kQ))
        return false;
    const int from = c.slotOfValue(x + kQ);
    const Shape shape = c.slot(from).shape;
    auto g = int8MaxPool(c, c.node, shape);
    if (!g) {
        ensureFloat(c, x); // the float MaxPool takes it
        return false;
    }
    // The stored integers carry the quantization of whoever produced them: the MaxPool's
    // output has the same grid (outputQuant() chose it).
    const DType t = c.slot(from).dtype;
    const memory::desc srcMd = c.slot(from).md;
    const memory::desc dstAny(toDims(g->out), dnnlType(t), tag::any);
    dnnl::pooling_v2_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, algorithm::pooling_max, srcMd,
                                                 dstAny, g->strides, g->kernel, memory::dims{0, 0}, g->padL, g->padR},
                                                cpuEngine());
    const std::string& y = c.node.outputs[0];
    const memory::desc dstMd = pd.dst_desc();
    const int dst = c.outputNamed(y + kQ, t, g->out, &dstMd);
    c.declare(y, DType::Float, g->out);
    c.addPrimitive(dnnl::pooling_v2_forward(pd), "int8 " + implName(pd), {{DNNL_ARG_SRC, from}, {DNNL_ARG_DST, dst}});
    finishOutput(c, y, int8Value(c, y), dst);
    return true;
}

const bool int8Registered = [] {
    registerOp("MaxPool", buildInt8MaxPool, 10);
    // Above the float builders: they take every node not listed in int8Layers.
    registerOp("Conv", buildInt8Conv, 10);
    registerOp("Gemm", buildInt8Matmul, 10);
    registerOp("MatMul", buildInt8Matmul, 10);
    return true;
}();

} // namespace
} // namespace qs::rt
