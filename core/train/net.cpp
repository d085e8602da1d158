// The training kernels of Net: one NetOp per node (oneDNN primitives bound to the
// value buffers at construction), plus the fake quantization ops of quantized values.
#include "train/net.h"

#include "runtime/plan.h"
#include "train/fake_quant.h"
#include "util/error.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <unordered_map>

namespace qs::train {

using dnnl::memory;
using tag = memory::format_tag;

struct NetValue {
    std::string name;
    Shape shape;
    std::vector<float> v, g;
    bool needGrad = true; // false for graph inputs and constants
    int64_t numel() const { return numelOf(shape); }
};

struct Net::Dnnl {
    dnnl::engine eng {dnnl::engine::kind::cpu, 0};
    dnnl::stream stream {eng};
};

struct NetOp {
    std::string node;
    virtual ~NetOp() = default;
    virtual void forward(Net& net) = 0;
    virtual void backward(Net& net) = 0;
};

int ParamStore::find(const std::string& name) const
{
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
}

int ParamStore::add(const std::string& name, const Tensor& value, bool trainable, bool isScale, bool borrowable)
{
    if (int i = find(name); i >= 0)
        return i;
    if (value.dtype != DType::Float)
        fail("training: parameter ", quoted(name), " is ", dtypeName(value.dtype), ", expected float32");
    Param p;
    p.name = name;
    p.shape = value.shape;
    if (borrowable && borrowWeights && !isScale) { // the graph's tensor, read and trained in place
        // A mutable access: a tensor sharing its bytes (sealed copies: the import, a
        // teacher graph) gets storage of its own first, so training never writes the others'.
        Tensor& graphTensor = const_cast<Tensor&>(value);
        p.value.borrow(graphTensor.data<float>().data(), std::size_t(value.numel()));
    }
    else
        p.value.own(value.toFloat());
    if (trainable)
        p.grad.assign(p.value.size(), 0.f);
    p.trainable = trainable;
    p.isScale = isScale;
    params.push_back(std::move(p));
    index[name] = int(params.size()) - 1;
    return int(params.size()) - 1;
}

void ParamValues::assign(std::span<const float> v)
{
    if (v.size() != size())
        fail("training: ", v.size(), " values for a param of ", size());
    std::copy(v.begin(), v.end(), data());
}

void ParamStore::zeroGrad()
{
    for (Param& p : params)
        std::fill(p.grad.begin(), p.grad.end(), 0.f);
}

void ParamStore::setTrainable(int i, bool trainable)
{
    Param& p = params.at(std::size_t(i));
    p.trainable = trainable;
    if (trainable)
        p.grad.assign(p.value.size(), 0.f);
    else
        std::vector<float>().swap(p.grad);
}

namespace {

memory::dims dimsOf(const Shape& s)
{
    return s.empty() ? memory::dims {1} : memory::dims(s.begin(), s.end());
}

memory::desc plainMd(const Shape& s)
{
    static const tag tags[] = {tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
    const memory::dims d = dimsOf(s);
    if (d.size() > 6)
        fail("training: rank ", d.size(), " is above 6");
    return memory::desc(d, memory::data_type::f32, tags[d.size() - 1]);
}

memory::desc stridedMd(memory::dims dims, memory::dims strides)
{
    return memory::desc(dims, memory::data_type::f32, strides);
}

void addInto(std::vector<float>& dst, const std::vector<float>& src)
{
    for (std::size_t i = 0; i < dst.size(); ++i)
        dst[i] += src[i];
}

// A layer's weight: the param, and what the kernels read: the fake-quantized copy, or
// the param's own values when the weight stays float. In a forward-only net the copy
// (and its grid) lives only while the op runs (release()).
struct WeightRef {
    int param = -1;
    std::optional<WeightQuantSpec> quant;
    std::vector<float> wq, dwq;
    const float* wdata = nullptr;
    std::size_t numel = 0;
    bool transient = false;
    WeightQuantization plan;

    void init(Net& net, const std::string& name, const Node& n)
    {
        const Tensor* t = net.constant(name);
        if (!t)
            fail(n.name, ": the weight ", quoted(name), " is not an initializer (training needs a constant weight)");
        param = net.addParam(name, *t, net.options().learnWeights);
        auto q = net.options().weights.find(name);
        if (q != net.options().weights.end() && !q->second.spec.isFloat()) {
            if (q->second.spec.rounding != Rounding::Nearest)
                fail(n.name, ": training rounds weights to nearest; the spec asks for stochastic rounding");
            quant = q->second;
        }
        numel = std::size_t(t->numel());
        transient = net.options().forwardOnly;
    }
    // The weight as the kernels read it (after forward()).
    float* data() const { return const_cast<float*>(wdata); }
    // dL/d(fake-quantized weight), allocated by the first backward.
    float* gradBuffer()
    {
        dwq.resize(numel);
        return dwq.data();
    }
    void forward(Net& net)
    {
        Param& p = net.params().params[std::size_t(param)];
        if (!quant) {
            wdata = p.value.data();
            return;
        }
        plan = planWeightQuantization(p.value, p.shape, quant->outAxis, quant->inAxis, quant->spec);
        wq = fakeQuantWeight(p.value, plan, Rounding::Nearest);
        wdata = wq.data();
    }
    // After the op's forward: a forward-only net forgets the fake-quantized copy.
    void release()
    {
        if (!transient)
            return;
        std::vector<float>().swap(wq);
        plan = WeightQuantization {};
        wdata = nullptr;
    }
    // dwq -> the param's gradient: straight through inside each block's grid, 0 outside.
    void backward(Net& net)
    {
        Param& p = net.params().params[std::size_t(param)];
        if (!p.trainable)
            return;
        if (!quant) {
            addInto(p.grad, dwq);
            return;
        }
        for (std::size_t i = 0; i < dwq.size(); ++i) {
            const QParams& q = plan.params[std::size_t(plan.blockOf[i])];
            const float code = std::nearbyint(p.value[i] / q.scale) + float(q.zeroPoint);
            if (code >= float(q.qmin) && code <= float(q.qmax))
                p.grad[i] += dwq[i];
        }
    }
};

// Bias or normalization parameter: a param, or zeros when the node has none.
struct VectorRef {
    int param = -1;
    std::vector<float> zeros;
    void init(Net& net, const Node& n, std::size_t input, int64_t length, const std::string& what)
    {
        if (input < n.inputs.size() && !n.inputs[input].empty()) {
            const Tensor* t = net.constant(n.inputs[input]);
            if (!t)
                fail(n.name, ": the ", what, " ", quoted(n.inputs[input]), " is not an initializer");
            if (t->numel() != length)
                fail(n.name, ": the ", what, " has ", t->numel(), " values, expected ", length);
            param = net.addParam(n.inputs[input], *t, net.options().learnWeights);
        } else {
            zeros.assign(std::size_t(length), 0.f);
        }
    }
    float* data(Net& net) { return param >= 0 ? net.params().params[std::size_t(param)].value.data() : zeros.data(); }
    void addGrad(Net& net, const std::vector<float>& g)
    {
        if (param >= 0 && net.params().params[std::size_t(param)].trainable)
            addInto(net.params().params[std::size_t(param)].grad, g);
    }
};

std::vector<int64_t> intsOr(const Node& n, const char* attr, std::size_t count, int64_t fallback)
{
    std::vector<int64_t> v = n.attrInts(attr, std::vector<int64_t>(count, fallback));
    if (v.size() != count)
        fail(n.name, ": ", attr, " has ", v.size(), " values, expected ", count);
    return v;
}

// Pads [begin..., end...] of a node with `spatial` dims; auto_pad NOTSET or VALID only.
std::pair<memory::dims, memory::dims> padsOf(const Node& n, std::size_t spatial)
{
    const std::string autoPad = n.attrString("auto_pad", "NOTSET");
    if (autoPad != "NOTSET" && autoPad != "VALID")
        fail(n.name, ": auto_pad ", autoPad, " is not supported in training (NOTSET or VALID)");
    std::vector<int64_t> pads =
        autoPad == "VALID" ? std::vector<int64_t>(2 * spatial, 0) : intsOr(n, "pads", 2 * spatial, 0);
    return {memory::dims(pads.begin(), pads.begin() + long(spatial)),
        memory::dims(pads.begin() + long(spatial), pads.end())};
}

// A layer with a (fake-quantized) weight and a bias: the forward primitive, and the
// gradients a backward leaves in dx, w.dwq and db passed on.
struct WeightedOp : NetOp {
    int x = -1, y = -1;
    WeightRef w;
    VectorRef b;
    dnnl::primitive fwd;
    memory::desc xMd, wMd, bMd, yMd;
    std::vector<float> dx, db;

    void forward(Net& net) override
    {
        w.forward(net);
        auto& e = net.dnnl().eng;
        fwd.execute(net.dnnl().stream,
            {{DNNL_ARG_SRC, memory(xMd, e, net.val(x).v.data())}, {DNNL_ARG_WEIGHTS, memory(wMd, e, w.data())},
                {DNNL_ARG_BIAS, memory(bMd, e, b.data(net))}, {DNNL_ARG_DST, memory(yMd, e, net.val(y).v.data())}});
        net.dnnl().stream.wait();
        w.release();
    }
    void passGradients(Net& net)
    {
        if (net.val(x).needGrad)
            addInto(net.val(x).g, dx);
        w.backward(net);
        b.addGrad(net, db);
    }
};

// A primitive whose descriptor chose its own (blocked) layouts: arguments come and go in
// plain layout, reordered through buffers of the chosen layouts where they differ.
struct StagedPrimitive {
    dnnl::primitive prim;
    std::map<int, memory::desc> want;
    std::map<int, memory> scratch;
    std::set<int> outputs;

    void init(const dnnl::primitive_desc& pd, dnnl::primitive p, std::initializer_list<std::pair<int, bool>> args,
        const dnnl::engine& eng)
    {
        prim = std::move(p);
        for (const auto& [arg, isOutput] : args) {
            want[arg] = pd.query_md(dnnl::query::exec_arg_md, arg);
            scratch[arg] = memory(want[arg], eng);
            if (isOutput)
                outputs.insert(arg);
        }
    }
    // `plain`: every argument as (plain layout, data).
    void run(Net& net, const std::map<int, std::pair<memory::desc, float*>>& plain)
    {
        auto& e = net.dnnl().eng;
        auto& s = net.dnnl().stream;
        std::unordered_map<int, memory> args;
        std::vector<std::pair<memory, memory>> back;
        for (const auto& [arg, pd] : plain) {
            memory m(pd.first, e, pd.second);
            auto w = want.find(arg);
            if (w == want.end() || w->second == pd.first) {
                args[arg] = m;
                continue;
            }
            memory& staged = scratch.at(arg);
            if (outputs.count(arg))
                back.emplace_back(staged, m);
            else
                dnnl::reorder(m, staged).execute(s, m, staged);
            args[arg] = staged;
        }
        prim.execute(s, args);
        for (auto& [from, to] : back)
            dnnl::reorder(from, to).execute(s, from, to);
        s.wait();
    }
};

struct ConvOp : WeightedOp {
    StagedPrimitive sFwd, sBwdData, sBwdWeights;

    ConvOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape xs = net.val(x).shape;
        const Tensor* wt = net.constant(n.input(1));
        if (!wt)
            fail(n.name, ": the weight ", quoted(n.input(1)), " is not an initializer");
        const Shape ws = wt->shape;
        if (xs.size() < 3 || xs.size() > 5 || ws.size() != xs.size())
            fail(n.name, ": input rank ", xs.size(), " and weight rank ", ws.size(), " (expected equal, 3..5)");
        const std::size_t sp = xs.size() - 2;
        const int64_t group = n.attrInt("group", 1);
        if (group < 1 || xs[1] % group != 0 || ws[0] % group != 0 || ws[1] * group != xs[1])
            fail(n.name, ": group ", group, " does not fit input channels ", xs[1], " and weight ", shapeString(ws));
        const auto strides = intsOr(n, "strides", sp, 1), dil = intsOr(n, "dilations", sp, 1);
        auto [pl, pr] = padsOf(n, sp);
        Shape ys = {xs[0], ws[0]};
        memory::dims dnnlDil;
        for (std::size_t i = 0; i < sp; ++i) {
            const int64_t k = (ws[2 + i] - 1) * dil[i] + 1;
            const int64_t o = (xs[2 + i] + pl[i] + pr[i] - k) / strides[i] + 1;
            if (o < 1 || strides[i] < 1 || dil[i] < 1)
                fail(n.name, ": spatial dimension ", i, " gives output ", o);
            ys.push_back(o);
            dnnlDil.push_back(dil[i] - 1);
        }
        w.init(net, n.input(1), n);
        b.init(net, n, 2, ws[0], "bias");
        y = net.newValue(n.outputs[0], ys);
        xMd = plainMd(xs);
        yMd = plainMd(ys);
        bMd = plainMd({ws[0]});
        if (group == 1) {
            wMd = plainMd(ws);
        } else {
            memory::dims gd = {group, ws[0] / group};
            gd.insert(gd.end(), ws.begin() + 1, ws.end());
            static const tag gtags[] = {tag::abcd, tag::abcde, tag::abcdef};
            wMd = memory::desc(gd, memory::data_type::f32, gtags[sp - 1]);
        }
        const memory::dims st(strides.begin(), strides.end());
        auto& eng = net.dnnl().eng;
        const auto alg = dnnl::algorithm::convolution_direct;
        auto any = [](const memory::desc& md) { return memory::desc(md.dims(), memory::data_type::f32, tag::any); };
        const memory::desc xAny = any(xMd), wAny = any(wMd), yAny = any(yMd);
        dnnl::convolution_forward::primitive_desc fpd(
            {dnnl::prop_kind::forward_training, alg, xAny, wAny, bMd, yAny, st, dnnlDil, pl, pr}, eng);
        sFwd.init(fpd, dnnl::convolution_forward(fpd),
            {{DNNL_ARG_SRC, false}, {DNNL_ARG_WEIGHTS, false}, {DNNL_ARG_DST, true}}, eng);
        if (net.val(x).needGrad) {
            dnnl::convolution_backward_data::primitive_desc dpd({alg, xAny, wAny, yAny, st, dnnlDil, pl, pr}, eng, fpd);
            sBwdData.init(dpd, dnnl::convolution_backward_data(dpd),
                {{DNNL_ARG_DIFF_DST, false}, {DNNL_ARG_WEIGHTS, false}, {DNNL_ARG_DIFF_SRC, true}}, eng);
            dx.resize(std::size_t(numelOf(xs)));
        }
        dnnl::convolution_backward_weights::primitive_desc wpd(
            {alg, xAny, wAny, bMd, yAny, st, dnnlDil, pl, pr}, eng, fpd);
        sBwdWeights.init(wpd, dnnl::convolution_backward_weights(wpd),
            {{DNNL_ARG_SRC, false}, {DNNL_ARG_DIFF_DST, false}, {DNNL_ARG_DIFF_WEIGHTS, true}}, eng);
        db.resize(std::size_t(ws[0]));
    }
    void forward(Net& net) override
    {
        w.forward(net);
        sFwd.run(net,
            {{DNNL_ARG_SRC, {xMd, net.val(x).v.data()}}, {DNNL_ARG_WEIGHTS, {wMd, w.data()}},
                {DNNL_ARG_BIAS, {bMd, b.data(net)}}, {DNNL_ARG_DST, {yMd, net.val(y).v.data()}}});
        w.release();
    }
    void backward(Net& net) override
    {
        float* dy = net.val(y).g.data();
        if (net.val(x).needGrad)
            sBwdData.run(net,
                {{DNNL_ARG_DIFF_DST, {yMd, dy}}, {DNNL_ARG_WEIGHTS, {wMd, w.data()}},
                    {DNNL_ARG_DIFF_SRC, {xMd, dx.data()}}});
        sBwdWeights.run(net,
            {{DNNL_ARG_SRC, {xMd, net.val(x).v.data()}}, {DNNL_ARG_DIFF_DST, {yMd, dy}},
                {DNNL_ARG_DIFF_WEIGHTS, {wMd, w.gradBuffer()}}, {DNNL_ARG_DIFF_BIAS, {bMd, db.data()}}});
        passGradients(net);
    }
};

// Gemm (transA 0, alpha = beta = 1) and MatMul with a constant 2-D weight: rows of the
// input times the weight (plus bias), on oneDNN matmul; the backward is matmuls of
// transposed views.
struct LinearOp : WeightedOp {
    int64_t m = 0, k = 0, n = 0;
    bool transB = false;
    dnnl::matmul bwdData, bwdWeights;
    memory::desc wtMd, dwSrcMd, dwWeiMd, dwMd;

    LinearOp(Net& net, const Node& nd)
    {
        node = nd.name;
        x = net.lookup(nd, 0);
        const Shape xs = net.val(x).shape;
        const Tensor* wt = nd.inputs.size() > 1 ? net.constant(nd.inputs[1]) : nullptr;
        if (!wt || wt->shape.size() != 2)
            fail(nd.name, ": training needs a constant 2-D weight as input 1");
        if (nd.opType == "Gemm") {
            if (nd.attrInt("transA", 0) != 0 || nd.attrFloat("alpha", 1.f) != 1.f || nd.attrFloat("beta", 1.f) != 1.f)
                fail(nd.name, ": training does Gemm with transA 0, alpha 1 and beta 1 only");
            if (xs.size() != 2)
                fail(nd.name, ": Gemm input ", shapeString(xs), " is not 2-D");
            transB = nd.attrInt("transB", 0) != 0;
        } else if (xs.size() < 2) {
            fail(nd.name, ": MatMul input ", shapeString(xs), " has rank below 2");
        }
        k = xs.back();
        m = numelOf(xs) / std::max<int64_t>(k, 1);
        n = transB ? wt->shape[0] : wt->shape[1];
        if ((transB ? wt->shape[1] : wt->shape[0]) != k)
            fail(nd.name, ": weight ", shapeString(wt->shape), " does not fit input ", shapeString(xs));
        w.init(net, nd.input(1), nd);
        b.init(net, nd, nd.opType == "Gemm" ? 2 : 99, n, "bias");
        Shape ys = xs;
        ys.back() = n;
        y = net.newValue(nd.outputs[0], ys);
        xMd = plainMd({m, k});
        yMd = plainMd({m, n});
        bMd = plainMd({1, n});
        wMd = transB ? stridedMd({k, n}, {1, k}) : stridedMd({k, n}, {n, 1});
        wtMd = transB ? stridedMd({n, k}, {k, 1}) : stridedMd({n, k}, {1, n});
        auto& eng = net.dnnl().eng;
        fwd = dnnl::matmul(dnnl::matmul::primitive_desc({xMd, wMd, bMd, yMd}, eng));
        if (net.val(x).needGrad) {
            bwdData = dnnl::matmul(dnnl::matmul::primitive_desc({yMd, wtMd, plainMd({m, k})}, eng));
            dx.resize(std::size_t(m * k));
        }
        if (transB) { // dW [n, k] = dY^T [n, m] . X [m, k]
            dwSrcMd = stridedMd({n, m}, {1, n});
            dwWeiMd = xMd;
            dwMd = plainMd({n, k});
        } else { // dW [k, n] = X^T [k, m] . dY [m, n]
            dwSrcMd = stridedMd({k, m}, {1, k});
            dwWeiMd = yMd;
            dwMd = plainMd({k, n});
        }
        bwdWeights = dnnl::matmul(dnnl::matmul::primitive_desc({dwSrcMd, dwWeiMd, dwMd}, eng));
        db.resize(std::size_t(n));
    }
    void backward(Net& net) override
    {
        auto& e = net.dnnl().eng;
        auto& s = net.dnnl().stream;
        float* dy = net.val(y).g.data();
        if (net.val(x).needGrad)
            bwdData.execute(s,
                {{DNNL_ARG_SRC, memory(yMd, e, dy)}, {DNNL_ARG_WEIGHTS, memory(wtMd, e, w.data())},
                    {DNNL_ARG_DST, memory(plainMd({m, k}), e, dx.data())}});
        if (transB)
            bwdWeights.execute(s,
                {{DNNL_ARG_SRC, memory(dwSrcMd, e, dy)}, {DNNL_ARG_WEIGHTS, memory(dwWeiMd, e, net.val(x).v.data())},
                    {DNNL_ARG_DST, memory(dwMd, e, w.gradBuffer())}});
        else
            bwdWeights.execute(s,
                {{DNNL_ARG_SRC, memory(dwSrcMd, e, net.val(x).v.data())}, {DNNL_ARG_WEIGHTS, memory(dwWeiMd, e, dy)},
                    {DNNL_ARG_DST, memory(dwMd, e, w.gradBuffer())}});
        s.wait();
        std::fill(db.begin(), db.end(), 0.f);
        for (int64_t r = 0; r < m; ++r)
            for (int64_t c = 0; c < n; ++c)
                db[std::size_t(c)] += dy[r * n + c];
        passGradients(net);
    }
};

// An op of one input and one output on a forward and backward primitive of plain
// layout `md`; the backward reads the forward's input (eltwise) or output (softmax).
template<class Fwd, class Bwd, int BackwardReads> struct UnaryPrimitiveOp : NetOp {
    int x = -1, y = -1;
    Fwd fwd;
    Bwd bwd;
    memory::desc md;
    std::vector<float> dx;

    void forward(Net& net) override
    {
        auto& e = net.dnnl().eng;
        fwd.execute(net.dnnl().stream,
            {{DNNL_ARG_SRC, memory(md, e, net.val(x).v.data())}, {DNNL_ARG_DST, memory(md, e, net.val(y).v.data())}});
        net.dnnl().stream.wait();
    }
    void backward(Net& net) override
    {
        if (!net.val(x).needGrad)
            return;
        auto& e = net.dnnl().eng;
        float* data = BackwardReads == DNNL_ARG_SRC ? net.val(x).v.data() : net.val(y).v.data();
        bwd.execute(net.dnnl().stream,
            {{BackwardReads, memory(md, e, data)}, {DNNL_ARG_DIFF_DST, memory(md, e, net.val(y).g.data())},
                {DNNL_ARG_DIFF_SRC, memory(md, e, dx.data())}});
        net.dnnl().stream.wait();
        addInto(net.val(x).g, dx);
    }
};

struct EltwiseOp : UnaryPrimitiveOp<dnnl::eltwise_forward, dnnl::eltwise_backward, DNNL_ARG_SRC> {

    EltwiseOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape s = net.val(x).shape;
        y = net.newValue(n.outputs[0], s);
        dnnl::algorithm alg;
        float alpha = 0;
        if (n.opType == "Relu") {
            alg = dnnl::algorithm::eltwise_relu;
        } else if (n.opType == "LeakyRelu") {
            alg = dnnl::algorithm::eltwise_relu;
            alpha = n.attrFloat("alpha", 0.01f);
        } else if (n.opType == "Sigmoid") {
            alg = dnnl::algorithm::eltwise_logistic;
        } else if (n.opType == "Tanh") {
            alg = dnnl::algorithm::eltwise_tanh;
        } else { // Gelu (opset 20)
            alg = n.attrString("approximate", "none") == "tanh" ? dnnl::algorithm::eltwise_gelu_tanh
                                                                : dnnl::algorithm::eltwise_gelu_erf;
        }
        md = plainMd({numelOf(s)});
        auto& eng = net.dnnl().eng;
        dnnl::eltwise_forward::primitive_desc fpd({dnnl::prop_kind::forward_training, alg, md, alpha, 0.f}, eng);
        fwd = dnnl::eltwise_forward(fpd);
        bwd = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc({alg, md, md, alpha, 0.f}, eng, fpd));
        dx.resize(std::size_t(numelOf(s)));
    }
};

struct PoolOp : NetOp {
    int x = -1, y = -1;
    dnnl::pooling_forward fwd;
    dnnl::pooling_backward bwd;
    memory::desc xMd, yMd;
    std::optional<memory> workspace;
    std::vector<float> dx;

    PoolOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape xs = net.val(x).shape;
        if (xs.size() < 3 || xs.size() > 5)
            fail(n.name, ": pooling input ", shapeString(xs), " is not 3-D to 5-D");
        const std::size_t sp = xs.size() - 2;
        const bool global = n.opType.starts_with("Global");
        const bool isMax = n.opType.find("Max") != std::string::npos;
        memory::dims kernel, strides, pl(sp, 0), pr(sp, 0);
        if (global) {
            kernel.assign(xs.begin() + 2, xs.end());
            strides.assign(sp, 1);
        } else {
            auto k = n.attrInts("kernel_shape");
            if (k.size() != sp)
                fail(n.name, ": kernel_shape has ", k.size(), " values, expected ", sp);
            kernel.assign(k.begin(), k.end());
            auto s = intsOr(n, "strides", sp, 1);
            strides.assign(s.begin(), s.end());
            std::tie(pl, pr) = padsOf(n, sp);
            if (n.attrInt("ceil_mode", 0) != 0)
                fail(n.name, ": ceil_mode 1 is not supported in training");
            for (int64_t d : n.attrInts("dilations"))
                if (d != 1)
                    fail(n.name, ": pooling dilations other than 1 are not supported in training");
        }
        Shape ys = {xs[0], xs[1]};
        for (std::size_t i = 0; i < sp; ++i) {
            const int64_t o = (xs[2 + i] + pl[i] + pr[i] - kernel[i]) / strides[i] + 1;
            if (o < 1 || strides[i] < 1)
                fail(n.name, ": spatial dimension ", i, " gives output ", o);
            ys.push_back(o);
        }
        y = net.newValue(n.outputs[0], ys);
        xMd = plainMd(xs);
        yMd = plainMd(ys);
        const auto alg = isMax                  ? dnnl::algorithm::pooling_max
            : n.attrInt("count_include_pad", 0) ? dnnl::algorithm::pooling_avg_include_padding
                                                : dnnl::algorithm::pooling_avg_exclude_padding;
        auto& eng = net.dnnl().eng;
        dnnl::pooling_forward::primitive_desc fpd(
            {dnnl::prop_kind::forward_training, alg, xMd, yMd, strides, kernel, pl, pr}, eng);
        fwd = dnnl::pooling_forward(fpd);
        if (isMax)
            workspace = memory(fpd.workspace_desc(), eng);
        bwd = dnnl::pooling_backward(
            dnnl::pooling_backward::primitive_desc({alg, xMd, yMd, strides, kernel, pl, pr}, eng, fpd));
        dx.resize(std::size_t(numelOf(xs)));
    }
    void forward(Net& net) override
    {
        auto& e = net.dnnl().eng;
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_SRC, memory(xMd, e, net.val(x).v.data())}, {DNNL_ARG_DST, memory(yMd, e, net.val(y).v.data())}};
        if (workspace)
            args[DNNL_ARG_WORKSPACE] = *workspace;
        fwd.execute(net.dnnl().stream, args);
        net.dnnl().stream.wait();
    }
    void backward(Net& net) override
    {
        if (!net.val(x).needGrad)
            return;
        auto& e = net.dnnl().eng;
        std::unordered_map<int, memory> args = {
            {DNNL_ARG_DIFF_DST, memory(yMd, e, net.val(y).g.data())}, {DNNL_ARG_DIFF_SRC, memory(xMd, e, dx.data())}};
        if (workspace)
            args[DNNL_ARG_WORKSPACE] = *workspace;
        bwd.execute(net.dnnl().stream, args);
        net.dnnl().stream.wait();
        addInto(net.val(x).g, dx);
    }
};

struct SoftmaxOp : UnaryPrimitiveOp<dnnl::softmax_forward, dnnl::softmax_backward, DNNL_ARG_DST> {

    SoftmaxOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape s = net.val(x).shape;
        const int rank = int(s.size());
        int64_t axis = n.attrInt("axis", net.graph->opset() >= 13 ? -1 : 1);
        if (axis < 0)
            axis += rank;
        if (axis < 0 || axis >= rank || (net.graph->opset() < 13 && axis != rank - 1))
            fail(n.name, ": softmax axis ", n.attrInt("axis", -1), " is not supported for ", shapeString(s),
                " in training (a single axis, opset 13, or the last axis)");
        y = net.newValue(n.outputs[0], s);
        md = plainMd(s);
        auto& eng = net.dnnl().eng;
        dnnl::softmax_forward::primitive_desc fpd({dnnl::prop_kind::forward_training, md, int(axis)}, eng);
        fwd = dnnl::softmax_forward(fpd);
        bwd = dnnl::softmax_backward(dnnl::softmax_backward::primitive_desc({md, md, int(axis)}, eng, fpd));
        dx.resize(std::size_t(numelOf(s)));
    }
};

// LayerNormalization over the last axis with constant scale (and bias).
struct LayerNormOp : NetOp {
    int x = -1, y = -1;
    VectorRef scale, shift;
    dnnl::layer_normalization_forward fwd;
    dnnl::layer_normalization_backward bwd;
    memory::desc md, statMd, pMd;
    std::vector<float> mean, var, dx, dScale, dShift;

    LayerNormOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape s = net.val(x).shape;
        const int rank = int(s.size());
        int64_t axis = n.attrInt("axis", -1);
        if (axis < 0)
            axis += rank;
        if (axis != rank - 1)
            fail(n.name, ": LayerNormalization over axis ", n.attrInt("axis", -1), " of ", shapeString(s),
                " is not supported in training (the last axis only)");
        for (std::size_t i = 1; i < n.outputs.size(); ++i)
            if (!n.outputs[i].empty() && !net.graph->consumersOf(n.outputs[i]).empty())
                fail(n.name, ": training does not produce LayerNormalization's mean and inverse deviation outputs");
        const int64_t c = s.back(), rows = numelOf(s) / std::max<int64_t>(c, 1);
        scale.init(net, n, 1, c, "scale");
        if (scale.param < 0)
            fail(n.name, ": LayerNormalization needs its scale input");
        shift.init(net, n, 2, c, "bias");
        y = net.newValue(n.outputs[0], s);
        md = plainMd({rows, c});
        statMd = plainMd({rows});
        pMd = plainMd({c});
        const float eps = n.attrFloat("epsilon", 1e-5f);
        const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
        auto& eng = net.dnnl().eng;
        dnnl::layer_normalization_forward::primitive_desc fpd(
            {dnnl::prop_kind::forward_training, md, statMd, eps, flags}, eng);
        fwd = dnnl::layer_normalization_forward(fpd);
        bwd = dnnl::layer_normalization_backward(dnnl::layer_normalization_backward::primitive_desc(
            {dnnl::prop_kind::backward, md, md, statMd, eps, flags}, eng, fpd));
        mean.resize(std::size_t(rows));
        var.resize(std::size_t(rows));
        dx.resize(std::size_t(rows * c));
        dScale.resize(std::size_t(c));
        dShift.resize(std::size_t(c));
    }
    void forward(Net& net) override
    {
        auto& e = net.dnnl().eng;
        fwd.execute(net.dnnl().stream,
            {{DNNL_ARG_SRC, memory(md, e, net.val(x).v.data())}, {DNNL_ARG_DST, memory(md, e, net.val(y).v.data())},
                {DNNL_ARG_SCALE, memory(pMd, e, scale.data(net))}, {DNNL_ARG_SHIFT, memory(pMd, e, shift.data(net))},
                {DNNL_ARG_MEAN, memory(statMd, e, mean.data())}, {DNNL_ARG_VARIANCE, memory(statMd, e, var.data())}});
        net.dnnl().stream.wait();
    }
    void backward(Net& net) override
    {
        auto& e = net.dnnl().eng;
        bwd.execute(net.dnnl().stream,
            {{DNNL_ARG_SRC, memory(md, e, net.val(x).v.data())},
                {DNNL_ARG_DIFF_DST, memory(md, e, net.val(y).g.data())},
                {DNNL_ARG_SCALE, memory(pMd, e, scale.data(net))}, {DNNL_ARG_SHIFT, memory(pMd, e, shift.data(net))},
                {DNNL_ARG_MEAN, memory(statMd, e, mean.data())}, {DNNL_ARG_VARIANCE, memory(statMd, e, var.data())},
                {DNNL_ARG_DIFF_SRC, memory(md, e, dx.data())}, {DNNL_ARG_DIFF_SCALE, memory(pMd, e, dScale.data())},
                {DNNL_ARG_DIFF_SHIFT, memory(pMd, e, dShift.data())}});
        net.dnnl().stream.wait();
        if (net.val(x).needGrad)
            addInto(net.val(x).g, dx);
        scale.addGrad(net, dScale);
        shift.addGrad(net, dShift);
    }
};

// Add, Sub, Mul with numpy broadcasting, as plain loops over precomputed indices.
// For element i of the broadcast output, the element an operand reads: i % modulus when
// the operand is the output's trailing dimensions (the same shape, a bias, a scalar, a
// mask over the last axes), else a table (a value per output element).
struct BroadcastMap {
    std::size_t count = 0;
    int64_t modulus = 0; // > 0: no table
    std::vector<int64_t> table;
    int64_t operator[](std::size_t i) const { return modulus > 0 ? int64_t(i) % modulus : table[i]; }
    std::size_t size() const { return count; }
};

// For each element of the broadcast (numpy rules) output of `shapes`, the element each
// operand reads; `out` is the output shape. Fails naming `n` when they do not broadcast.
std::vector<BroadcastMap> broadcastIndices(const Node& n, const std::vector<Shape>& shapes, Shape& out)
{
    std::size_t rank = 0;
    for (const Shape& s : shapes)
        rank = std::max(rank, s.size());
    std::vector<Shape> padded;
    out.assign(rank, 1);
    for (const Shape& s : shapes) {
        Shape p(rank, 1);
        std::copy(s.begin(), s.end(), p.begin() + long(rank - s.size()));
        for (std::size_t i = 0; i < rank; ++i) {
            if (p[i] != out[i] && p[i] != 1 && out[i] != 1) {
                std::string all;
                for (const Shape& t : shapes)
                    all += (all.empty() ? "" : " and ") + shapeString(t);
                fail(n.name, ": shapes ", all, " do not broadcast");
            }
            out[i] = std::max(out[i], p[i]);
        }
        padded.push_back(p);
    }
    const int64_t total = numelOf(out);
    std::vector<BroadcastMap> result(shapes.size());
    std::vector<std::size_t> tables;
    for (std::size_t k = 0; k < padded.size(); ++k) {
        result[k].count = std::size_t(total);
        std::size_t lead = 0; // leading 1s, then the output's own dimensions
        while (lead < rank && padded[k][lead] == 1)
            ++lead;
        if (std::equal(padded[k].begin() + long(lead), padded[k].end(), out.begin() + long(lead))) {
            result[k].modulus = std::max<int64_t>(numelOf(padded[k]), 1);
        } else {
            result[k].table.resize(std::size_t(total));
            tables.push_back(k);
        }
    }
    std::vector<int64_t> idx(rank, 0);
    for (int64_t i = 0; i < total && !tables.empty(); ++i) {
        for (std::size_t k : tables) {
            int64_t o = 0;
            for (std::size_t d = 0; d < rank; ++d)
                o = o * padded[k][d] + (padded[k][d] == 1 ? 0 : idx[d]);
            result[k].table[std::size_t(i)] = o;
        }
        for (std::size_t d = rank; d-- > 0;)
            if (++idx[d] < out[d])
                break;
            else
                idx[d] = 0;
    }
    return result;
}

// Where(condition, x, y) with broadcasting (attention's causal mask): the gradient goes
// to x where the condition holds, to y elsewhere; the condition has none.
struct WhereOp : NetOp {
    int c = -1, a = -1, b = -1, y = -1;
    BroadcastMap ic, ia, ib;
    WhereOp(Net& net, const Node& n)
    {
        node = n.name;
        c = net.lookup(n, 0);
        a = net.lookup(n, 1);
        b = net.lookup(n, 2);
        Shape ys;
        auto idx = broadcastIndices(n, {net.val(c).shape, net.val(a).shape, net.val(b).shape}, ys);
        ic = std::move(idx[0]);
        ia = std::move(idx[1]);
        ib = std::move(idx[2]);
        y = net.newValue(n.outputs[0], ys);
    }
    void forward(Net& net) override
    {
        const float *vc = net.val(c).v.data(), *va = net.val(a).v.data(), *vb = net.val(b).v.data();
        float* vy = net.val(y).v.data();
        for (std::size_t i = 0; i < ic.size(); ++i)
            vy[i] = vc[ic[i]] != 0 ? va[ia[i]] : vb[ib[i]];
    }
    void backward(Net& net) override
    {
        const float* vc = net.val(c).v.data();
        const float* gy = net.val(y).g.data();
        NetValue &na = net.val(a), &nb = net.val(b);
        for (std::size_t i = 0; i < ic.size(); ++i) {
            NetValue& to = vc[ic[i]] != 0 ? na : nb;
            if (to.needGrad)
                to.g[std::size_t(vc[ic[i]] != 0 ? ia[i] : ib[i])] += gy[i];
        }
    }
};

struct BinaryOp : NetOp {
    int a = -1, b = -1, y = -1;
    char kind = '+';
    BroadcastMap ia, ib;

    BinaryOp(Net& net, const Node& n)
    {
        node = n.name;
        kind = n.opType == "Add" ? '+' : n.opType == "Sub" ? '-' : n.opType == "Div" ? '/' : '*';
        a = net.lookup(n, 0);
        b = net.lookup(n, 1);
        Shape ys;
        auto idx = broadcastIndices(n, {net.val(a).shape, net.val(b).shape}, ys);
        ia = std::move(idx[0]);
        ib = std::move(idx[1]);
        y = net.newValue(n.outputs[0], ys);
    }
    void forward(Net& net) override
    {
        const float* va = net.val(a).v.data();
        const float* vb = net.val(b).v.data();
        float* vy = net.val(y).v.data();
        for (std::size_t i = 0; i < ia.size(); ++i) {
            const float p = va[ia[i]], q = vb[ib[i]];
            vy[i] = kind == '+' ? p + q : kind == '-' ? p - q : kind == '/' ? p / q : p * q;
        }
    }
    void backward(Net& net) override
    {
        const float* gy = net.val(y).g.data();
        const float* va = net.val(a).v.data();
        const float* vb = net.val(b).v.data();
        if (net.val(a).needGrad) {
            float* ga = net.val(a).g.data();
            for (std::size_t i = 0; i < ia.size(); ++i)
                ga[ia[i]] += kind == '*' ? gy[i] * vb[ib[i]] : kind == '/' ? gy[i] / vb[ib[i]] : gy[i];
        }
        if (net.val(b).needGrad) {
            float* gb = net.val(b).g.data();
            for (std::size_t i = 0; i < ib.size(); ++i)
                gb[ib[i]] += kind == '*' ? gy[i] * va[ia[i]]
                    : kind == '/'        ? -gy[i] * va[ia[i]] / (vb[ib[i]] * vb[ib[i]])
                    : kind == '-'        ? -gy[i]
                                         : gy[i];
        }
    }
};

// Erf, Sqrt and Pow by a constant exponent (decomposed GELU and LayerNormalization), as
// plain loops: y = f(x), dL/dx = f'(x) dL/dy.
struct PlainUnaryOp : NetOp {
    int x = -1, y = -1;
    char kind = 'e'; // e: Erf, s: Sqrt, p: Pow
    float exponent = 1;
    PlainUnaryOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        kind = n.opType == "Erf" ? 'e' : n.opType == "Sqrt" ? 's' : 'p';
        if (kind == 'p') {
            const Tensor* e = n.inputs.size() > 1 ? net.constant(n.inputs[1]) : nullptr;
            if (!e || e->numel() != 1)
                fail(n.name, ": Pow trains with a constant scalar exponent, got ",
                    e ? shapeString(e->shape) : std::string("a computed one"));
            exponent = e->toFloat().front();
        }
        y = net.newValue(n.outputs[0], net.val(x).shape);
    }
    void forward(Net& net) override
    {
        const std::vector<float>& vx = net.val(x).v;
        std::vector<float>& vy = net.val(y).v;
        for (std::size_t i = 0; i < vx.size(); ++i)
            vy[i] = kind == 'e' ? std::erf(vx[i]) : kind == 's' ? std::sqrt(vx[i]) : std::pow(vx[i], exponent);
    }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        if (!in.needGrad)
            return;
        const std::vector<float>& gy = net.val(y).g;
        const std::vector<float>& vy = net.val(y).v;
        const float twoOverSqrtPi = 1.1283791670955126f;
        for (std::size_t i = 0; i < gy.size(); ++i) {
            const float v = in.v[i];
            const float d = kind == 'e' ? twoOverSqrtPi * std::exp(-v * v)
                : kind == 's'           ? 0.5f / vy[i]
                : exponent == 2         ? 2 * v
                                        : exponent * std::pow(v, exponent - 1);
            in.g[i] += d * gy[i];
        }
    }
};

// ReduceMean over constant axes (attribute, or input 1 from opset 18), keepdims or not:
// each output the mean of its slice; the backward spreads dL/dy / count over it.
struct ReduceMeanOp : NetOp {
    int x = -1, y = -1;
    BroadcastMap to; // input element -> its output element
    float inverseCount = 1;
    ReduceMeanOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape s = net.val(x).shape;
        std::vector<int64_t> axes = n.attrInts("axes");
        if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
            const Tensor* a = net.constant(n.inputs[1]);
            if (!a)
                fail(n.name, ": ReduceMean trains with constant axes");
            axes = a->toInt64();
        }
        const int rank = int(s.size());
        std::vector<bool> reduced(std::size_t(rank), axes.empty() && n.attrInt("noop_with_empty_axes", 0) == 0);
        for (int64_t a : axes) {
            if (a < -rank || a >= rank)
                fail(n.name, ": axis ", a, " is outside rank ", rank);
            reduced[std::size_t(a < 0 ? a + rank : a)] = true;
        }
        Shape kept = s, ys;
        int64_t count = 1;
        for (int d = 0; d < rank; ++d)
            if (reduced[std::size_t(d)]) {
                count *= s[std::size_t(d)];
                kept[std::size_t(d)] = 1;
                if (n.attrInt("keepdims", 1) != 0)
                    ys.push_back(1);
            } else {
                ys.push_back(s[std::size_t(d)]);
            }
        inverseCount = 1.f / float(std::max<int64_t>(count, 1));
        Shape both;
        to = std::move(broadcastIndices(n, {s, kept}, both)[1]);
        y = net.newValue(n.outputs[0], ys);
    }
    void forward(Net& net) override
    {
        const std::vector<float>& vx = net.val(x).v;
        std::vector<double> sum(net.val(y).v.size(), 0.0);
        for (std::size_t i = 0; i < vx.size(); ++i)
            sum[std::size_t(to[i])] += vx[i];
        std::vector<float>& vy = net.val(y).v;
        for (std::size_t i = 0; i < vy.size(); ++i)
            vy[i] = float(sum[i] * inverseCount);
    }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        if (!in.needGrad)
            return;
        const std::vector<float>& gy = net.val(y).g;
        for (std::size_t i = 0; i < in.g.size(); ++i)
            in.g[i] += gy[std::size_t(to[i])] * inverseCount;
    }
};

// Flatten, Reshape, Identity: the same values in another shape.
struct ReshapeOp : NetOp {
    int x = -1, y = -1;
    ReshapeOp(Net& net, const Node& n)
    {
        node = n.name;
        x = net.lookup(n, 0);
        const Shape xs = net.val(x).shape;
        Shape ys;
        if (n.opType == "Flatten") {
            int64_t axis = n.attrInt("axis", 1);
            if (axis < 0)
                axis += int64_t(xs.size());
            if (axis < 0 || axis > int64_t(xs.size()))
                fail(n.name, ": Flatten axis ", n.attrInt("axis", 1), " is outside rank ", xs.size());
            const int64_t lead = numelOf(Shape(xs.begin(), xs.begin() + axis));
            ys = {lead, numelOf(xs) / std::max<int64_t>(lead, 1)};
        } else if (n.opType == "Reshape") {
            const Tensor* s = n.inputs.size() > 1 ? net.constant(n.inputs[1]) : nullptr;
            if (!s)
                fail(n.name, ": training needs Reshape's shape as an initializer");
            const std::vector<int64_t> want = s->toInt64();
            int64_t known = 1, infer = -1;
            for (std::size_t i = 0; i < want.size(); ++i) {
                int64_t d = want[i];
                if (d == 0 && n.attrInt("allowzero", 0) == 0) {
                    if (i >= xs.size())
                        fail(n.name, ": shape entry ", i, " copies a dimension the input ", shapeString(xs), " lacks");
                    d = xs[i];
                }
                if (d == -1) {
                    if (infer >= 0)
                        fail(n.name, ": the shape has two -1 entries");
                    infer = int64_t(i);
                } else {
                    known *= d;
                }
                ys.push_back(d);
            }
            if (infer >= 0)
                ys[std::size_t(infer)] = known > 0 ? numelOf(xs) / known : 0;
            if (numelOf(ys) != numelOf(xs))
                fail(n.name, ": cannot reshape ", shapeString(xs), " to ", shapeString(ys));
        } else {
            ys = xs;
        }
        y = net.newValue(n.outputs[0], ys);
    }
    void forward(Net& net) override { net.val(y).v = net.val(x).v; }
    void backward(Net& net) override
    {
        if (net.val(x).needGrad)
            addInto(net.val(x).g, net.val(y).g);
    }
};

// MatMul of two computed values ([..., M, K] x [..., K, N], as attention's Q x K^T and
// P x V): equal leading dimensions, or one side's leading dimensions all 1 (broadcast,
// its gradient summed over the batch). Plain loops: attention matrices are small.
struct ActMatMulOp : NetOp {
    int a = -1, b = -1, y = -1;
    int64_t batch = 1, m = 0, k = 0, n = 0;
    bool batchA = true, batchB = true; // false: that side is broadcast
    ActMatMulOp(Net& net, const Node& nd)
    {
        node = nd.name;
        a = net.lookup(nd, 0);
        b = net.lookup(nd, 1);
        const Shape as = net.val(a).shape, bs = net.val(b).shape;
        if (as.size() < 2 || bs.size() < 2)
            fail(nd.name, ": MatMul of ", shapeString(as), " and ", shapeString(bs), ": training needs rank 2 or more");
        m = as[as.size() - 2];
        k = as.back();
        n = bs.back();
        if (bs[bs.size() - 2] != k)
            fail(nd.name, ": MatMul of ", shapeString(as), " and ", shapeString(bs), ": inner dimensions differ");
        const Shape la(as.begin(), as.end() - 2), lb(bs.begin(), bs.end() - 2);
        const int64_t na = numelOf(la), nb = numelOf(lb);
        Shape lead;
        if (la == lb) {
            lead = la;
        } else if (nb == 1 && la.size() >= lb.size()) {
            lead = la;
            batchB = false;
        } else if (na == 1 && lb.size() >= la.size()) {
            lead = lb;
            batchA = false;
        } else {
            fail(nd.name, ": MatMul of ", shapeString(as), " and ", shapeString(bs),
                ": training broadcasts only equal leading dimensions or all-1 ones");
        }
        batch = numelOf(lead);
        Shape ys = lead;
        ys.push_back(m);
        ys.push_back(n);
        y = net.newValue(nd.outputs[0], ys);
    }
    void forward(Net& net) override
    {
        const float* av = net.val(a).v.data();
        const float* bv = net.val(b).v.data();
        float* yv = net.val(y).v.data();
        for (int64_t t = 0; t < batch; ++t) {
            const float* A = av + (batchA ? t : 0) * m * k;
            const float* B = bv + (batchB ? t : 0) * k * n;
            float* Y = yv + t * m * n;
            std::fill(Y, Y + m * n, 0.f);
            for (int64_t i = 0; i < m; ++i)
                for (int64_t p = 0; p < k; ++p) {
                    const float x = A[i * k + p];
                    for (int64_t j = 0; j < n; ++j)
                        Y[i * n + j] += x * B[p * n + j];
                }
        }
    }
    void backward(Net& net) override
    {
        NetValue &va = net.val(a), &vb = net.val(b);
        const float* dy = net.val(y).g.data();
        for (int64_t t = 0; t < batch; ++t) {
            const float* A = va.v.data() + (batchA ? t : 0) * m * k;
            const float* B = vb.v.data() + (batchB ? t : 0) * k * n;
            const float* dY = dy + t * m * n;
            if (va.needGrad) { // dA = dY B^T
                float* dA = va.g.data() + (batchA ? t : 0) * m * k;
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t p = 0; p < k; ++p) {
                        float s = 0;
                        for (int64_t j = 0; j < n; ++j)
                            s += dY[i * n + j] * B[p * n + j];
                        dA[i * k + p] += s;
                    }
            }
            if (vb.needGrad) { // dB = A^T dY
                float* dB = vb.g.data() + (batchB ? t : 0) * k * n;
                for (int64_t i = 0; i < m; ++i)
                    for (int64_t p = 0; p < k; ++p) {
                        const float x = A[i * k + p];
                        for (int64_t j = 0; j < n; ++j)
                            dB[p * n + j] += x * dY[i * n + j];
                    }
            }
        }
    }
};

// Transpose by `perm` (default: reversed axes); the backward scatters through the same map.
struct TransposeOp : NetOp {
    int x = -1, y = -1;
    std::vector<int64_t> source; // output element -> input element
    TransposeOp(Net& net, const Node& nd)
    {
        node = nd.name;
        x = net.lookup(nd, 0);
        const Shape xs = net.val(x).shape;
        const int64_t rank = int64_t(xs.size());
        std::vector<int64_t> perm = nd.attrInts("perm");
        if (perm.empty())
            for (int64_t i = rank - 1; i >= 0; --i)
                perm.push_back(i);
        std::vector<bool> seen(std::size_t(rank), false);
        if (int64_t(perm.size()) != rank)
            fail(nd.name, ": perm has ", perm.size(), " entries, the input ", shapeString(xs), " rank ", rank);
        for (int64_t& p : perm) {
            if (p < 0)
                p += rank;
            if (p < 0 || p >= rank || seen[std::size_t(p)])
                fail(nd.name, ": perm is not a permutation of the input's ", rank, " axes");
            seen[std::size_t(p)] = true;
        }
        Shape ys(static_cast<std::size_t>(rank), 0);
        for (int64_t i = 0; i < rank; ++i)
            ys[std::size_t(i)] = xs[std::size_t(perm[std::size_t(i)])];
        std::vector<int64_t> xStride(std::size_t(rank), 1);
        for (int64_t i = rank - 2; i >= 0; --i)
            xStride[std::size_t(i)] = xStride[std::size_t(i + 1)] * xs[std::size_t(i + 1)];
        source.resize(std::size_t(numelOf(ys)));
        std::vector<int64_t> idx(std::size_t(rank), 0);
        for (std::size_t o = 0; o < source.size(); ++o) {
            int64_t off = 0;
            for (int64_t i = 0; i < rank; ++i)
                off += idx[std::size_t(i)] * xStride[std::size_t(perm[std::size_t(i)])];
            source[o] = off;
            for (int64_t i = rank - 1; i >= 0; --i) { // next output index, last axis fastest
                if (++idx[std::size_t(i)] < ys[std::size_t(i)])
                    break;
                idx[std::size_t(i)] = 0;
            }
        }
        y = net.newValue(nd.outputs[0], ys);
    }
    void forward(Net& net) override
    {
        const auto& xv = net.val(x).v;
        auto& yv = net.val(y).v;
        for (std::size_t o = 0; o < source.size(); ++o)
            yv[o] = xv[std::size_t(source[o])];
    }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        if (!in.needGrad)
            return;
        const auto& dy = net.val(y).g;
        for (std::size_t o = 0; o < source.size(); ++o)
            in.g[std::size_t(source[o])] += dy[o];
    }
};

// Gather on axis 0: rows of a table by integer indices (token embeddings). A constant
// table is a (fake-quantized) weight whose gradient is the rows' gradients summed per
// index; a computed table passes them back. Indices are held as floats (exact below 2^24).
struct GatherOp : NetOp {
    int data = -1, indices = -1, y = -1;
    bool table = false; // the data is an initializer: a weight
    WeightRef w;
    int64_t rows = 0, width = 0;
    GatherOp(Net& net, const Node& nd)
    {
        node = nd.name;
        if (nd.attrInt("axis", 0) != 0)
            fail(nd.name, ": training gathers on axis 0 only (axis ", nd.attrInt("axis", 0), ")");
        if (nd.inputs.size() < 2)
            fail(nd.name, ": Gather needs data and indices");
        table = net.constant(nd.inputs[0]) != nullptr;
        Shape ds;
        if (table) {
            w.init(net, nd.inputs[0], nd);
            ds = net.constant(nd.inputs[0])->shape;
        } else {
            data = net.lookup(nd, 0);
            ds = net.val(data).shape;
        }
        if (ds.empty())
            fail(nd.name, ": Gather data is a scalar");
        indices = net.lookup(nd, 1);
        rows = ds[0];
        width = numelOf(ds) / std::max<int64_t>(rows, 1);
        Shape ys = net.val(indices).shape;
        ys.insert(ys.end(), ds.begin() + 1, ds.end());
        y = net.newValue(nd.outputs[0], ys);
    }
    int64_t row(Net& net, std::size_t i) const
    {
        const float f = net.val(indices).v[i];
        int64_t r = int64_t(f);
        if (float(r) != f || r < -rows || r >= rows)
            fail(node, ": index ", f, " is outside the ", rows, " rows");
        return r < 0 ? r + rows : r;
    }
    void forward(Net& net) override
    {
        if (table)
            w.forward(net);
        const float* src = table ? w.data() : net.val(data).v.data();
        auto& yv = net.val(y).v;
        const std::size_t count = net.val(indices).v.size();
        for (std::size_t i = 0; i < count; ++i)
            std::copy_n(src + row(net, i) * width, width, yv.begin() + int64_t(i) * width);
        if (table)
            w.release();
    }
    void backward(Net& net) override
    {
        float* dst = nullptr;
        if (table) {
            std::fill(w.dwq.begin(), w.dwq.end(), 0.f);
            dst = w.gradBuffer();
        } else if (net.val(data).needGrad) {
            dst = net.val(data).g.data();
        }
        if (!dst)
            return;
        const auto& dy = net.val(y).g;
        const std::size_t count = net.val(indices).v.size();
        for (std::size_t i = 0; i < count; ++i) {
            float* d = dst + row(net, i) * width;
            for (int64_t j = 0; j < width; ++j)
                d[j] += dy[i * std::size_t(width) + std::size_t(j)];
        }
        if (table)
            w.backward(net);
    }
};

// Split along an axis into the sizes of input 1 (a constant), of the `split` attribute
// (before opset 13), or equal parts (num_outputs, or the outputs' count); each output is
// a value of its own (the query, key and value of attention), the backward adds each
// part's gradient back into its place.
struct SplitOp : NetOp {
    int x = -1;
    std::vector<int> ys;
    std::vector<int64_t> sizes;
    int64_t outer = 1, inner = 1, along = 0; // [outer, along, inner] view of x
    SplitOp(Net& net, const Node& nd)
    {
        node = nd.name;
        x = net.lookup(nd, 0);
        const Shape xs = net.val(x).shape;
        int64_t axis = nd.attrInt("axis", 0);
        if (axis < 0)
            axis += int64_t(xs.size());
        if (axis < 0 || axis >= int64_t(xs.size()))
            fail(nd.name, ": Split axis ", nd.attrInt("axis", 0), " is outside rank ", xs.size());
        along = xs[std::size_t(axis)];
        for (int64_t i = 0; i < axis; ++i)
            outer *= xs[std::size_t(i)];
        inner = numelOf(xs) / std::max<int64_t>(outer * along, 1);
        const int64_t parts = int64_t(nd.outputs.size());
        if (nd.inputs.size() > 1 && !nd.inputs[1].empty()) {
            const Tensor* t = net.constant(nd.inputs[1]);
            if (!t)
                fail(nd.name, ": training needs Split's sizes as an initializer");
            sizes = t->toInt64();
        } else {
            sizes = nd.attrInts("split");
        }
        if (sizes.empty()) {
            if (along % parts != 0)
                fail(nd.name, ": ", along, " does not split into ", parts, " equal parts");
            sizes.assign(std::size_t(parts), along / parts);
        }
        int64_t sum = 0;
        for (int64_t v : sizes)
            sum += v < 0 ? along + 1 : v;
        if (int64_t(sizes.size()) != parts || sum != along)
            fail(nd.name, ": split sizes of ", sizes.size(), " parts summing to ", sum, " for ", parts, " outputs of ",
                along);
        for (std::size_t k = 0; k < sizes.size(); ++k) {
            Shape s = xs;
            s[std::size_t(axis)] = sizes[k];
            ys.push_back(net.newValue(nd.outputs[k], s));
        }
    }
    template<class F> void each(F&& f) // f(part, offset in x, offset in the part, length)
    {
        int64_t start = 0;
        for (std::size_t k = 0; k < ys.size(); ++k) {
            const int64_t len = sizes[k] * inner;
            for (int64_t o = 0; o < outer; ++o)
                f(k, (o * along) * inner + start, o * len, len);
            start += len;
        }
    }
    void forward(Net& net) override
    {
        const float* xv = net.val(x).v.data();
        each([&](std::size_t k, int64_t from, int64_t to, int64_t len) {
            std::copy_n(xv + from, len, net.val(ys[k]).v.data() + to);
        });
    }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        if (!in.needGrad)
            return;
        each([&](std::size_t k, int64_t from, int64_t to, int64_t len) {
            const float* g = net.val(ys[k]).g.data() + to;
            for (int64_t i = 0; i < len; ++i)
                in.g[std::size_t(from + i)] += g[i];
        });
    }
};

// The fake quantization of a value with a learned (LSQ) scale.
struct FakeQuantOp : NetOp {
    int x = -1, y = -1, scale = -1;
    QParams grid;
    float gradScale = 1;
    QParams current(Net& net) const
    {
        QParams q = grid;
        q.scale = net.params().params[std::size_t(scale)].value[0];
        return q;
    }
    void forward(Net& net) override { fakeQuantForward(net.val(x).v, current(net), net.val(y).v); }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        const double ds = fakeQuantBackward(
            in.v, current(net), net.val(y).g, in.needGrad ? std::span<float>(in.g) : std::span<float>());
        Param& p = net.params().params[std::size_t(scale)];
        if (p.trainable)
            p.grad[0] += float(ds * gradScale);
    }
};

// The fake quantization of an attention operand (Q, K^T, V or P as its MatMul reads
// it): a static grid per slice of the granularity's axis with learned (LSQ) scales, or
// each token's min-max grid (dynamic, straight through).
struct OperandFakeQuantOp : NetOp {
    int x = -1, y = -1, scale = -1; // scale: -1 per token
    OperandQuant quant;
    int64_t outer = 1, dim = 1, inner = 1; // the slice axis (per tensor: one slice)
    float gradScale = 1;
    OperandFakeQuantOp(Net& net, const OperandQuant& q, int raw)
        : x(raw), quant(q)
    {
        node = q.point.name + " (fake quant)";
        const Shape s = net.val(raw).shape;
        y = net.newValue(q.point.name, s);
        if (q.spec.granularity == OperandGranularity::Token) {
            const OperandAxes a = operandAxes(q.point.role, int(s.size()));
            if (a.channel < 0)
                fail("attention operand ", quoted(q.point.name), ": per-token needs a matrix operand, got shape ",
                    shapeString(s));
            return;
        }
        if (q.params.empty())
            fail("attention operand ", quoted(q.point.name), " has no calibrated range");
        const int axis = q.spec.granularity == OperandGranularity::Tensor
            ? -1
            : staticSliceAxis(q.point, q.spec.granularity, s);
        if (axis >= 0) {
            outer = std::accumulate(s.begin(), s.begin() + axis, int64_t(1), std::multiplies<>());
            dim = s[std::size_t(axis)];
            inner = std::accumulate(s.begin() + axis + 1, s.end(), int64_t(1), std::multiplies<>());
        } else {
            inner = numelOf(s);
        }
        if (dim != int64_t(q.params.size()))
            fail("attention operand ", quoted(q.point.name), ": ", operandGranularityName(q.spec.granularity),
                " slices of shape ", shapeString(s), ": ", dim, ", calibrated with ", q.params.size());
        std::vector<float> init;
        for (const QParams& p : q.params)
            init.push_back(p.scale);
        scale = net.addParam(q.point.name + ".scale", Tensor::fromVector<float>({dim}, init),
            net.options().learnScales, true);
        // LSQ: 1 / sqrt(values of one slice in one sample * qmax).
        const int64_t batch = s.empty() ? 1 : std::max<int64_t>(s[0], 1);
        gradScale = lsqGradScale(std::max<int64_t>(outer * inner / batch, 1), q.params.front().qmax);
    }
    QParams grid(Net& net, int64_t c) const
    {
        QParams q = quant.params[std::size_t(c)];
        q.scale = net.params().params[std::size_t(scale)].value[std::size_t(c)];
        return q;
    }
    void forward(Net& net) override
    {
        const std::vector<float>& in = net.val(x).v;
        std::vector<float>& out = net.val(y).v;
        if (scale < 0) {
            Tensor t = Tensor::fromVector<float>(net.val(x).shape, in);
            fakeQuantOperand(t, quant);
            const auto d = t.data<float>();
            std::copy(d.begin(), d.end(), out.begin());
            return;
        }
        for (int64_t c = 0; c < dim; ++c) {
            const QParams q = grid(net, c);
            for (int64_t o = 0; o < outer; ++o) {
                const std::size_t at = std::size_t((o * dim + c) * inner);
                fakeQuantForward(std::span<const float>(in).subspan(at, std::size_t(inner)), q,
                    std::span<float>(out).subspan(at, std::size_t(inner)));
            }
        }
    }
    void backward(Net& net) override
    {
        NetValue& in = net.val(x);
        const std::vector<float>& dy = net.val(y).g;
        if (scale < 0) { // each token's own range holds all its values: straight through
            if (in.needGrad)
                addInto(in.g, dy);
            return;
        }
        Param& p = net.params().params[std::size_t(scale)];
        for (int64_t c = 0; c < dim; ++c) {
            const QParams q = grid(net, c);
            double ds = 0;
            for (int64_t o = 0; o < outer; ++o) {
                const std::size_t at = std::size_t((o * dim + c) * inner), len = std::size_t(inner);
                ds += fakeQuantBackward(std::span<const float>(in.v).subspan(at, len), q,
                    std::span<const float>(dy).subspan(at, len),
                    in.needGrad ? std::span<float>(in.g).subspan(at, len) : std::span<float>());
            }
            if (p.trainable)
                p.grad[std::size_t(c)] += float(ds * gradScale);
        }
    }
};

} // namespace

const std::vector<std::string>& trainableOps()
{
    static const std::vector<std::string> ops = {"Conv", "Gemm", "MatMul", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
        "Gelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Softmax", "LayerNormalization", "Add",
        "Sub", "Mul", "Div", "Erf", "Sqrt", "Pow", "ReduceMean", "Flatten", "Reshape", "Identity", "Transpose",
        "Gather", "Split", "Where"};
    return ops;
}

int Net::addParam(const std::string& name, const Tensor& value, bool trainable, bool isScale)
{
    auto init = graph->initializers.find(name); // borrowable: the graph's own tensor (not one folded here)
    const bool borrowable = init != graph->initializers.end() && &init->second == &value;
    const int i = params_->add(name, value, trainable, isScale, borrowable);
    paramIds_.insert(i);
    return i;
}

int Net::newValue(const std::string& name, const Shape& shape)
{
    auto v = std::make_unique<NetValue>();
    v->name = name;
    v->shape = shape;
    v->v.assign(std::size_t(numelOf(shape)), 0.f); // g: by the first backward
    values_.push_back(std::move(v));
    return int(values_.size()) - 1;
}

int Net::lookup(const Node& n, std::size_t input) const
{
    if (input >= n.inputs.size() || n.inputs[input].empty())
        fail(n.name, ": input ", input, " is missing");
    const std::string& name = n.inputs[input];
    auto it = valueOf_.find(name);
    if (it != valueOf_.end())
        return it->second;
    const Tensor* c = constant(name);
    if (!c)
        fail(n.name, ": input ", quoted(name), " is computed by no node training supports");
    auto& self = const_cast<Net&>(*this);
    const int i = self.newValue(name, c->shape);
    self.val(i).v = c->toFloat();
    self.val(i).needGrad = false;
    self.valueOf_[name] = i;
    return i;
}

const Tensor* Net::constant(const std::string& name) const
{
    auto f = folded_.find(name);
    return f != folded_.end() ? &f->second : graph->constant(name);
}

// A node whose inputs are all constants (or, for Shape and Size, values of the fixed
// shapes the net is built for) is evaluated once by the runtime's kernels on a graph of
// that node and its outputs become constants; layers keep their weights trainable.
bool Net::fold(const Node& n)
{
    static const std::set<std::string> layers = {"Conv", "Gemm", "MatMul", "Gather", "LayerNormalization"};
    if (n.inputs.empty() || (!n.domain.empty() && n.domain != "ai.onnx"))
        return false;
    if (layers.count(n.opType))
        for (const std::string& in : n.inputs)
            if (const Tensor* w = graph->constant(in); w && w->dtype == DType::Float)
                return false; // a weight: trained, not folded
    for (const auto& [name, a] : n.attrs)
        if (!a.graphs.empty())
            return false;
    Graph one;
    one.name = n.name;
    one.opsets = graph->opsets;
    std::vector<Tensor> feeds;
    std::map<std::string, Shape> shapes;
    for (const std::string& in : n.inputs) {
        if (in.empty() || one.initializers.count(in))
            continue;
        if (const Tensor* t = constant(in)) {
            one.initializers[in] = *t;
            continue;
        }
        auto v = valueOf_.find(in);
        if ((n.opType != "Shape" && n.opType != "Size") || v == valueOf_.end())
            return false;
        const Shape s = val(v->second).shape;
        ValueInfo vi {in, DType::Float, std::vector<Dim>(s.size())};
        for (std::size_t d = 0; d < s.size(); ++d)
            (*vi.dims)[d].value = s[d];
        one.inputs.push_back(vi);
        feeds.push_back(Tensor(DType::Float, s));
        shapes[in] = s;
    }
    one.nodes.push_back(n);
    for (const auto& o : n.outputs)
        if (!o.empty())
            one.outputs.push_back(ValueInfo {o, DType::Undefined, std::nullopt});
    one.index();
    CompileOptions co;
    co.threads = 1;
    co.inputShapes = shapes;
    std::vector<Tensor> out;
    try {
        out = compilePlan(one, co)->run(feeds);
    } catch (const Error& e) {
        fail(n.name, ": ", n.opType, " of constants does not evaluate (", e.what(), ")");
    }
    std::size_t k = 0;
    for (const auto& o : n.outputs)
        if (!o.empty())
            folded_[o] = out.at(k++);
    return true;
}

Net::Net(const Graph& g, const std::map<std::string, Shape>& inputShapes, std::shared_ptr<ParamStore> params,
    const NetOptions& options)
    : params_(std::move(params)), options_(options), dnnl_(std::make_unique<Dnnl>())
{
    graph = &g;
    // The value readers see: `raw`, or its fake-quantized copy.
    auto publish = [&](const std::string& name, int raw) {
        valueOf_[name] = raw;
        auto q = options_.activations.find(name);
        if (q == options_.activations.end())
            return;
        auto op = std::make_unique<FakeQuantOp>();
        op->node = name + " (fake quant)";
        op->x = raw;
        op->grid = q->second;
        const Shape s = val(raw).shape;
        op->y = newValue(name, s);
        Tensor sc = Tensor::fromVector<float>({1}, {q->second.scale});
        op->scale = addParam(name + ".scale", sc, options_.learnScales, true);
        op->gradScale = lsqGradScale(s.empty() ? 1 : numelOf(s) / std::max<int64_t>(s[0], 1), q->second.qmax);
        valueOf_[name] = op->y;
        ops_.push_back(std::move(op));
    };
    // ... then, when it is an attention operand, by the operand's grid (per point).
    auto publishOperands = [&](const std::string& name) {
        for (const OperandQuant& q : options_.operands)
            if (q.point.value == name && !q.spec.isFloat()) {
                auto op = std::make_unique<OperandFakeQuantOp>(*this, q, valueOf_.at(name));
                valueOf_[name] = op->y;
                ops_.push_back(std::move(op));
            }
    };
    for (const ValueInfo& in : g.inputs) {
        auto s = inputShapes.find(in.name);
        if (s == inputShapes.end())
            fail("training: no shape for the input ", quoted(in.name));
        const bool ids = in.dtype == DType::Int64 || in.dtype == DType::Int32; // token ids: no gradient
        if (in.dtype != DType::Float && !ids)
            fail("training: the input ", quoted(in.name), " is ", dtypeName(in.dtype),
                ", expected float32 or integer ids");
        const int i = newValue(in.name, s->second);
        val(i).needGrad = options_.inputGradients && !ids;
        inputs_.push_back(i);
        publish(in.name, i);
        publishOperands(in.name);
    }
    for (const Node& n : g.nodes) {
        if (fold(n))
            continue;
        std::unique_ptr<NetOp> op;
        const std::string& t = n.opType;
        if (!n.domain.empty() && n.domain != "ai.onnx")
            fail(n.name, ": op ", n.domain, ".", t, " has no training kernel");
        if (t == "Conv")
            op = std::make_unique<ConvOp>(*this, n);
        else if (t == "MatMul" && n.inputs.size() > 1 && !constant(n.inputs[1]))
            op = std::make_unique<ActMatMulOp>(*this, n); // two computed values (attention)
        else if (t == "Gemm" || t == "MatMul")
            op = std::make_unique<LinearOp>(*this, n);
        else if (t == "Transpose")
            op = std::make_unique<TransposeOp>(*this, n);
        else if (t == "Gather")
            op = std::make_unique<GatherOp>(*this, n);
        else if (t == "Where")
            op = std::make_unique<WhereOp>(*this, n);
        else if (t == "Split") {
            auto split = std::make_unique<SplitOp>(*this, n);
            const std::vector<int> parts = split->ys;
            ops_.push_back(std::move(split));
            for (std::size_t k = 0; k < parts.size(); ++k) {
                publish(n.outputs[k], parts[k]);
                publishOperands(n.outputs[k]);
            }
            continue;
        } else if (t == "Relu" || t == "LeakyRelu" || t == "Sigmoid" || t == "Tanh" || t == "Gelu")
            op = std::make_unique<EltwiseOp>(*this, n);
        else if (t == "MaxPool" || t == "AveragePool" || t == "GlobalAveragePool" || t == "GlobalMaxPool")
            op = std::make_unique<PoolOp>(*this, n);
        else if (t == "Softmax")
            op = std::make_unique<SoftmaxOp>(*this, n);
        else if (t == "LayerNormalization")
            op = std::make_unique<LayerNormOp>(*this, n);
        else if (t == "Add" || t == "Sub" || t == "Mul" || t == "Div")
            op = std::make_unique<BinaryOp>(*this, n);
        else if (t == "Erf" || t == "Sqrt" || t == "Pow")
            op = std::make_unique<PlainUnaryOp>(*this, n);
        else if (t == "ReduceMean")
            op = std::make_unique<ReduceMeanOp>(*this, n);
        else if (t == "Flatten" || t == "Reshape" || t == "Identity")
            op = std::make_unique<ReshapeOp>(*this, n);
        else
            fail(
                n.name, ": op ", t, " has no training kernel (training supports ",
                [] {
                    std::string s;
                    for (const auto& o : trainableOps())
                        s += (s.empty() ? "" : ", ") + o;
                    return s;
                }(),
                ")");
        for (std::size_t o = 1; o < n.outputs.size(); ++o)
            if (!n.outputs[o].empty() && t != "LayerNormalization")
                fail(n.name, ": training computes only the first output of ", t);
        const int out = int(values_.size()) - 1; // every builder defines its output last
        ops_.push_back(std::move(op));
        publish(n.outputs[0], out);
        publishOperands(n.outputs[0]);
    }
    if (g.outputs.empty())
        fail("training: the graph has no output");
    auto o = valueOf_.find(g.outputs.front().name);
    if (o == valueOf_.end())
        fail("training: the output ", quoted(g.outputs.front().name), " is computed by no node");
    output_ = o->second;
}

Net::~Net() = default;

const std::vector<float>& Net::forward(const std::vector<Tensor>& inputs)
{
    if (inputs.size() != inputs_.size())
        fail("training: ", inputs.size(), " inputs given, the graph has ", inputs_.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        NetValue& v = val(inputs_[i]);
        if (inputs[i].shape != v.shape)
            fail("training: input ", quoted(v.name), " is ", shapeString(inputs[i].shape), ", the net was built for ",
                shapeString(v.shape));
        if (inputs[i].dtype == DType::Float) {
            auto d = inputs[i].data<float>();
            std::copy(d.begin(), d.end(), v.v.begin());
        } else if (inputs[i].dtype == DType::Int64 || inputs[i].dtype == DType::Int32) {
            const std::vector<int64_t> ids = inputs[i].toInt64();
            for (std::size_t k = 0; k < ids.size(); ++k) {
                if (std::abs(ids[k]) >= (int64_t(1) << 24))
                    fail("training: input ", quoted(v.name), " holds the id ", ids[k], ", beyond 2^24");
                v.v[k] = float(ids[k]);
            }
        } else {
            fail("training: input ", quoted(v.name), " is ", dtypeName(inputs[i].dtype),
                ", expected float32 or integer ids");
        }
    }
    for (auto& op : ops_)
        op->forward(*this);
    return val(output_).v;
}

Shape Net::outputShape() const
{
    return values_[std::size_t(output_)]->shape;
}

void Net::backward(std::span<const float> dOutput)
{
    NetValue& out = val(output_);
    if (int64_t(dOutput.size()) != out.numel())
        fail("training: the output gradient has ", dOutput.size(), " values, the output ", out.numel());
    for (auto& v : values_)
        if (v->g.size() != std::size_t(v->numel()))
            v->g.assign(std::size_t(v->numel()), 0.f);
        else if (v->needGrad)
            std::fill(v->g.begin(), v->g.end(), 0.f);
    std::copy(dOutput.begin(), dOutput.end(), out.g.begin());
    for (const auto& [v, d] : pending_)
        addInto(val(v).g, d);
    pending_.clear();
    for (auto it = ops_.rbegin(); it != ops_.rend(); ++it)
        (*it)->backward(*this);
}

const std::vector<float>& Net::value(const std::string& name) const
{
    auto it = valueOf_.find(name);
    if (it == valueOf_.end())
        fail("training: no value ", quoted(name));
    return values_[std::size_t(it->second)]->v;
}

const std::vector<float>& Net::rawValue(const std::string& name) const
{
    for (const auto& v : values_) // the first value of that name: the one computed
        if (v->name == name)
            return v->v;
    fail("training: no value ", quoted(name));
}

void Net::addValueGradient(const std::string& name, std::span<const float> d)
{
    for (std::size_t i = 0; i < values_.size(); ++i)
        if (values_[i]->name == name) {
            if (int64_t(d.size()) != values_[i]->numel())
                fail("training: a gradient of ", d.size(), " values for ", quoted(name), " of ", values_[i]->numel());
            auto& p = pending_[int(i)];
            p.resize(d.size(), 0.f);
            for (std::size_t k = 0; k < d.size(); ++k)
                p[k] += d[k];
            return;
        }
    fail("training: no value ", quoted(name));
}

const std::vector<float>& Net::gradient(const std::string& name) const
{
    for (const auto& v : values_) // the raw value (before its fake quantization)
        if (v->name == name)
            return v->g;
    fail("training: no value ", quoted(name));
}

Shape Net::shapeOf(const std::string& name) const
{
    auto it = valueOf_.find(name);
    if (it == valueOf_.end())
        fail("training: no value ", quoted(name));
    return values_[std::size_t(it->second)]->shape;
}

void Net::clampScales()
{
    for (Param& p : params_->params)
        if (p.isScale)
            for (float& s : p.value)
                s = std::max(s, 1e-8f);
}

} // namespace qs::train
