// Gemm and MatMul (batched, broadcast) as oneDNN matmul. Constant weights are
// reordered once into oneDNN's packed layout (alpha folded in); a constant C or a
// following constant bias Add becomes the bias; activations become post-ops.
#include "runtime/ops/ops.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace qs::rt {
namespace {

using dnnl::algorithm;
using tag = memory::format_tag;

memory::desc f32(const memory::dims& d, const memory::dims& strides) { return memory::desc(d, memory::data_type::f32, strides); }

memory::dims rowMajor(const memory::dims& d)
{
    memory::dims s(d.size());
    int64_t acc = 1;
    for (std::size_t i = d.size(); i-- > 0;) {
        s[i] = acc;
        acc *= std::max<int64_t>(d[i], 1);
    }
    return s;
}

// dims with the last two swapped in strides: a [.., K, N] view of a row-major [.., N, K].
memory::desc transposedView(const memory::dims& d)
{
    memory::dims stored = d;
    std::swap(stored[d.size() - 1], stored[d.size() - 2]);
    memory::dims s = rowMajor(stored);
    std::swap(s[d.size() - 1], s[d.size() - 2]);
    return f32(d, s);
}

struct MatmulSpec {
    memory::dims src, wts, dst;     // equal ranks
    bool transA = false, transB = false;
    float alpha = 1.f;
    const Tensor* constB = nullptr;
    std::optional<std::vector<float>> bias; // dims biasDims
    memory::dims biasDims;
    std::string cValue;             // run-time C added as a post-op
    float beta = 1.f;
    memory::dims cDims;
    std::string firstValue;         // the matmul's own output value
};

// In parts mode (Compiler::choosePartsPerThread) a product of one row by constant
// weights with no run-time C (a classifier head at batch 1) runs as column parts on
// our pool: part j computes columns [n0, n1), a contiguous range of the output, as a
// single-threaded primitive with its own reordered weights. Each part must get the
// whole product's implementation, else it stays whole.

bool buildMatmulParts(NodeContext& c, const MatmulSpec& s, const dnnl::matmul::primitive_desc& whole,
                      const dnnl::post_ops& ops, const std::vector<float>& w, int srcSlot, int dstSlot)
{
    if (c.partsPerThread() == 0 || s.dst.size() != 2 || s.dst[0] != 1 || !s.constB || !s.cValue.empty())
        return false;
    const int64_t m = s.dst[0], n = s.dst[1], k = s.src[1];
    const int parts = int(std::min<int64_t>(n / 16, int64_t(c.planThreads()) * c.partsPerThread()));
    if (m * n * k < kPartsMinMacs || parts < 2)
        return false;
    const std::string wholeImpl = implName(whole);
    auto k2 = std::make_unique<PartsKernel>();
    auto* dst = c.slot(dstSlot).as<float>();
    try {
        for (int j = 0; j < parts; ++j) {
            const int64_t n0 = 16 * (j * (n / 16) / parts), n1 = j + 1 == parts ? n : 16 * ((j + 1) * (n / 16) / parts);
            const int64_t np = n1 - n0;
            // Column slices of the plain weights ([K, N], or [N, K] stored when transposed),
            // the output and the bias, as strided views.
            const memory::desc plainW = s.transB ? f32({k, np}, {1, k}) : f32({k, np}, {n, 1});
            const float* wFrom = w.data() + (s.transB ? n0 * k : n0);
            const memory::desc dstMd = f32({m, np}, {np, 1});
            const memory::desc srcMd = s.transA ? transposedView(s.src) : f32(s.src, rowMajor(s.src));
            dnnl::primitive_attr attr;
            attr.set_post_ops(ops);
            const memory::desc wAny({k, np}, memory::data_type::f32, tag::any);
            dnnl::matmul::primitive_desc pd(s.bias ? dnnl::matmul::desc(srcMd, wAny, f32({1, np}, {np, 1}), dstMd)
                                                   : dnnl::matmul::desc(srcMd, wAny, dstMd),
                                            attr, cpuEngine());
            while (implName(pd) != wholeImpl && pd.next_impl()) {
            }
            if (implName(pd) != wholeImpl)
                throw std::runtime_error("a part gets " + implName(pd));
            PartsKernel::Part part;
            part.prim = dnnl::matmul(pd);
            part.args[DNNL_ARG_WEIGHTS] = reorderedConstant(pd.weights_desc(), plainW, wFrom, k2->owned);
            part.args[DNNL_ARG_SRC] = memory(srcMd, cpuEngine(), c.slot(srcSlot).data());
            part.args[DNNL_ARG_DST] = memory(dstMd, cpuEngine(), dst + n0);
            if (s.bias) // one row (m is 1): its columns [n0, n1)
                part.args[DNNL_ARG_BIAS] = copiedConstant(f32({1, np}, {np, 1}), s.bias->data() + n0, k2->owned);
            k2->parts.push_back(std::move(part));
        }
    } catch (const std::exception& e) { // dnnl::error included
        if (std::getenv("QS_RUNTIME_DEBUG"))
            std::fprintf(stderr, "%s: kept whole: %s\n", c.where().c_str(), e.what());
        return false;
    }
    k2->impl = str(wholeImpl, " x", parts, " column parts");
    k2->dst = dstSlot;
    k2->maxThreads = c.planThreads();
    k2->reads = {srcSlot};
    k2->writes = {dstSlot};
    c.add(std::move(k2));
    return true;
}

bool buildMatmul(NodeContext& c, MatmulSpec& s)
{
    const Shape outShape(s.dst.begin(), s.dst.end());
    dnnl::post_ops ops;
    std::vector<std::pair<int, int>> binarySlots;
    const bool foldAlpha = s.constB != nullptr;
    std::vector<int> extraReads;
    std::unordered_map<int, memory> fixed;
    if (!foldAlpha && s.alpha != 1.f)
        ops.append_eltwise(1.f, algorithm::eltwise_linear, s.alpha, 0.f);
    if (!s.cValue.empty()) {
        int cs = c.plainInput(2);
        if (s.beta != 1.f) {
            // beta * C into a scratch value (a post-op cannot scale its operand).
            const int from = cs;
            const float beta = s.beta;
            cs = c.outputNamed(s.cValue + "#beta", DType::Float, c.shape(2));
            c.addFn({from}, {cs}, [from, cs, beta](Program& p) {
                const float* x = p.slot(from).as<float>();
                float* y = p.slot(cs).as<float>();
                for (int64_t i = 0, n = p.slot(cs).numel(); i < n; ++i)
                    y[i] = beta * x[i];
            });
        }
        const memory::desc cmd = f32(s.cDims, rowMajor(s.cDims));
        fixed[DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len()) | DNNL_ARG_SRC_1] = c.view(cs, cmd);
        extraReads.push_back(cs);
        ops.append_binary(algorithm::binary_add, cmd);
    }
    FusedTail tail = planTail(c, s.firstValue, outShape, nullptr);
    for (int i = 0; i < tail.ops.len(); ++i) {
        float scale, alpha, beta;
        algorithm alg;
        tail.ops.get_params_eltwise(i, scale, alg, alpha, beta);
        ops.append_eltwise(scale, alg, alpha, beta);
    }
    // BF16 target precision (CompileOptions::bf16): the input is rounded to bf16 by a
    // reorder (shared by the products reading it), the constant weights once at compile time.
    const bool bf16 = c.bf16() && s.constB && !s.transA;
    const memory::data_type inType = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    int srcSlot = c.plainInput(0);
    if (bf16) { // the slot's own dims: s.src may pad or broadcast them
        const Shape& shape = c.slot(srcSlot).shape;
        const memory::dims d(shape.begin(), shape.end());
        srcSlot = c.slotAs(srcSlot, memory::desc(d, inType, rowMajor(d)));
    }
    const memory::desc srcMd = s.transA ? transposedView(s.src) : memory::desc(s.src, inType, rowMajor(s.src));
    const memory::desc wMd = s.constB ? memory::desc(s.wts, inType, tag::any)
                                      : (s.transB ? transposedView(s.wts) : f32(s.wts, rowMajor(s.wts)));
    const memory::desc dstMd = f32(s.dst, rowMajor(s.dst));
    const memory::desc biasMd = s.bias ? f32(s.biasDims, rowMajor(s.biasDims)) : memory::desc();
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::matmul::primitive_desc pd(
        s.bias ? dnnl::matmul::desc(srcMd, wMd, biasMd, dstMd) : dnnl::matmul::desc(srcMd, wMd, dstMd), attr,
        cpuEngine());
    absorbTail(c, tail);
    const memory::desc outMd = plainDesc(outShape, DType::Float);
    const int dst = c.outputNamed(tail.output, DType::Float, outShape, &outMd);
    fixed[DNNL_ARG_SRC] = c.view(srcSlot, srcMd);
    extraReads.push_back(srcSlot);
    std::vector<Buffer> owned;
    if (s.constB) {
        const memory::desc plainW = s.transB ? transposedView(s.wts) : f32(s.wts, rowMajor(s.wts));
        const bool oneRow = s.dst.size() == 2 && s.dst[0] == 1; // may run as column parts
        if (!bf16 && !oneRow && s.constB->dtype == DType::Float && !(foldAlpha && s.alpha != 1.f) &&
            pd.weights_desc() == plainW) {
            // oneDNN reads the weights as they are (its gemm kernels on AVX2): read in the
            // graph's tensor, which the constant slot keeps alive with the program; no copy.
            fixed[DNNL_ARG_WEIGHTS] = memory(plainW, cpuEngine(), const_cast<std::byte*>(s.constB->bytes.data()));
        } else {
            std::vector<float> w = s.constB->toFloat();
            if (foldAlpha && s.alpha != 1.f)
                for (float& v : w)
                    v *= s.alpha;
            if (!bf16 && buildMatmulParts(c, s, pd, ops, w, srcSlot, dst))
                return true;
            fixed[DNNL_ARG_WEIGHTS] = reorderedConstant(pd.weights_desc(), plainW, w.data(), owned);
        }
    } else {
        const int ws = c.plainInput(1);
        fixed[DNNL_ARG_WEIGHTS] = c.view(ws, wMd);
        extraReads.push_back(ws);
    }
    if (s.bias)
        fixed[DNNL_ARG_BIAS] = copiedConstant(biasMd, s.bias->data(), owned);
    auto* k = static_cast<PrimitiveKernel*>(c.addPrimitive(dnnl::matmul(pd), implName(pd), {{DNNL_ARG_DST, dst}}, fixed));
    k->owned = std::move(owned);
    k->reads.insert(k->reads.end(), extraReads.begin(), extraReads.end());
    return true;
}

// C (or a bias) broadcast to [M, N] as a dense bias, scaled.
std::vector<float> expandTo(const Tensor& t, int64_t m, int64_t n, float scale, memory::dims& dims)
{
    std::vector<float> v = t.toFloat();
    const Shape& s = t.shape;
    const bool perColumn = t.numel() == n && (s.size() <= 1 || (s.size() == 2 && s[0] == 1));
    if (perColumn) {
        dims = {1, n};
        for (float& x : v)
            x *= scale;
        return v;
    }
    dims = {m, n};
    std::vector<float> out(std::size_t(m * n));
    const int64_t rows = s.size() == 2 ? s[0] : 1, cols = s.empty() ? 1 : s.back();
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j)
            out[std::size_t(i * n + j)] =
                scale * v[std::size_t((rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j))];
    return out;
}

bool buildGemm(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float || c.dtype(1) != DType::Float)
        c.fail("input types must be float32");
    const Shape a = c.shape(0), b = c.shape(1);
    if (a.size() != 2 || b.size() != 2)
        c.fail("A and B must be 2-D, got ", shapeString(a), " and ", shapeString(b));
    MatmulSpec s;
    s.transA = n.attrInt("transA", 0) != 0;
    s.transB = n.attrInt("transB", 0) != 0;
    s.alpha = n.attrFloat("alpha", 1.f);
    s.beta = n.attrFloat("beta", 1.f);
    const int64_t M = s.transA ? a[1] : a[0], K = s.transA ? a[0] : a[1];
    const int64_t KB = s.transB ? b[1] : b[0], N = s.transB ? b[0] : b[1];
    if (K != KB)
        c.fail("inner dimensions differ: A ", shapeString(a), ", B ", shapeString(b));
    s.src = {M, K};
    s.wts = {K, N};
    s.dst = {M, N};
    s.constB = c.constant(1);
    s.firstValue = n.outputs[0];
    if (c.has(2) && s.beta != 0.f) {
        const Shape cs = c.shape(2);
        if (cs.size() > 2 || broadcastShapes({M, N}, cs, c) != Shape {M, N})
            c.fail("C ", quoted(n.inputs[2]), " has shape ", shapeString(cs),
                ", which does not broadcast to the output [", M, ", ", N, "]");
        if (const Tensor* C = c.constant(2); C && (s.constB || s.alpha == 1.f)) {
            s.bias = expandTo(*C, M, N, s.beta, s.biasDims);
        } else {
            s.cValue = n.inputs[2];
            s.cDims = cs.size() == 2 ? memory::dims{cs[0], cs[1]}
                                     : memory::dims{1, cs.empty() ? 1 : cs[0]};
        }
    }
    return buildMatmul(c, s);
}

// MatMul operands as oneDNN sees them: 1-D operands padded to matrices (ONNX
// matmul semantics), batch dims broadcast, every operand at the same rank. `out`
// is ONNX's output shape, with the padded dims dropped again.
struct MatMulOperands {
    MatmulSpec spec;
    Shape out;
};

MatMulOperands matMulOperands(NodeContext& c)
{
    if (c.dtype(0) != DType::Float || c.dtype(1) != DType::Float)
        c.fail("input types must be float32, got ", dtypeName(c.dtype(0)), " and ", dtypeName(c.dtype(1)));
    Shape a = c.shape(0), b = c.shape(1);
    if (a.empty() || b.empty())
        c.fail("inputs must have rank >= 1");
    const bool vecA = a.size() == 1, vecB = b.size() == 1;
    if (vecA)
        a.insert(a.begin(), 1);
    if (vecB)
        b.push_back(1);
    if (a.back() != b[b.size() - 2])
        c.fail("inner dimensions differ: ", shapeString(c.shape(0)), " and ", shapeString(c.shape(1)));
    const Shape batch = broadcastShapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), c);
    const std::size_t rank = batch.size() + 2;
    auto expand = [&](const Shape& d) {
        memory::dims e(rank - d.size(), 1);
        e.insert(e.end(), d.begin(), d.end());
        return e;
    };
    MatMulOperands m;
    m.spec.src = expand(a);
    m.spec.wts = expand(b);
    m.spec.dst = memory::dims(batch.begin(), batch.end());
    m.spec.dst.push_back(a[a.size() - 2]);
    m.spec.dst.push_back(b.back());
    m.spec.constB = c.constant(1);
    m.out = batch;
    if (!vecA)
        m.out.push_back(a[a.size() - 2]);
    if (!vecB)
        m.out.push_back(b.back());
    return m;
}

bool buildMatMul(NodeContext& c)
{
    auto [s, out] = matMulOperands(c);
    if (out != Shape(s.dst.begin(), s.dst.end()))
        return false; // 1-D operands: buildMatMulVector
    s.firstValue = c.node.outputs[0];
    // A following Add of a constant [N] becomes the bias.
    const int64_t N = s.dst.back();
    if (const Node* add = c.fusableConsumer(s.firstValue); add && add->opType == "Add" && add->inputs.size() == 2) {
        const std::string& other = add->inputs[0] == s.firstValue ? add->inputs[1] : add->inputs[0];
        const Tensor* bias = c.constantValue(other);
        if (bias && bias->dtype == DType::Float && bias->numel() == N && (bias->shape.empty() || bias->shape.back() == N) &&
            bias->shape.size() <= out.size()) {
            s.bias = bias->toFloat();
            s.biasDims = memory::dims(s.dst.size(), 1);
            s.biasDims.back() = N;
            c.absorb(*add);
            s.firstValue = add->outputs[0];
        }
    }
    return buildMatmul(c, s);
}

// MatMul with 1-D operands: ONNX drops the padded dims from the output.
bool buildMatMulVector(NodeContext& c)
{
    auto [s, out] = matMulOperands(c);
    const std::string tmp = c.node.outputs[0] + "#full";
    s.firstValue = tmp;
    buildMatmul(c, s);
    const int from = c.slotOfValue(tmp);
    const int to = c.output(0, DType::Float, out);
    c.addFn({from}, {to}, [from, to](Program& p) {
        std::memcpy(p.slot(to).data(), p.slot(from).data(), p.slot(to).buffer.bytes);
    });
    return true;
}

const bool matmulRegistered = [] {
    registerOp("Gemm", buildGemm);
    registerOp("MatMul", buildMatMul, 1);
    registerOp("MatMul", buildMatMulVector, 0);
    return true;
}();

} // namespace
} // namespace qs::rt
