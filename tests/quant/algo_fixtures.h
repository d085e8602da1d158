// Small layers and chains built in code for the PTQ algorithm tests, with inputs that
// have outlier channels (as real activations do), and a plain reference evaluator.
#pragma once

#include "naive_reference.h"

#include "data/dataset.h"
#include "graph/graph.h"
#include "quant/session.h"
#include "util/error.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace qs::test {

inline Tensor randomTensor(Shape shape, uint64_t seed, float stddev = 1.f)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> nd(0.f, stddev);
    std::vector<float> v(std::size_t(numelOf(shape)));
    for (float& x : v)
        x = nd(rng);
    return Tensor::fromVector(shape, v);
}

struct GraphBuilder {
    Graph g;
    std::string last;
    uint64_t seed = 7;

    explicit GraphBuilder(Shape inputShape)
    {
        g.name = "test";
        g.opsets[""] = 13;
        ValueInfo in;
        in.name = "input";
        in.dtype = DType::Float;
        std::vector<Dim> dims;
        for (std::size_t i = 0; i < inputShape.size(); ++i)
            dims.push_back(Dim {i == 0 ? -1 : inputShape[i], i == 0 ? "N" : ""});
        in.dims = dims;
        g.inputs.push_back(in);
        last = "input";
    }
    void init(const std::string& name, Tensor t)
    {
        t.name = name;
        g.initializers[name] = std::move(t);
    }
    Node& add(const std::string& op, std::vector<std::string> inputs)
    {
        Node n;
        n.name = op + std::to_string(g.nodes.size());
        n.opType = op;
        n.inputs = std::move(inputs);
        n.outputs = {n.name + "_out"};
        g.nodes.push_back(n);
        last = n.outputs[0];
        return g.nodes.back();
    }
    // Gemm with transB=1 ([out, in] weight) or transB=0 ([in, out]).
    void gemm(int64_t in, int64_t out, bool transB = true, float wstd = 0.3f)
    {
        const std::string w = "w" + std::to_string(g.nodes.size()), b = "b" + std::to_string(g.nodes.size());
        init(w, randomTensor(transB ? Shape {out, in} : Shape {in, out}, seed++, wstd));
        init(b, randomTensor({out}, seed++, 0.1f));
        Node& n = add("Gemm", {last, w, b});
        if (transB) {
            Attribute a;
            a.kind = Attribute::Kind::Int;
            a.i = 1;
            n.attrs["transB"] = a;
        }
    }
    void conv(int64_t cin, int64_t cout, int64_t k, int64_t pad, float wstd = 0.3f)
    {
        const std::string w = "w" + std::to_string(g.nodes.size()), b = "b" + std::to_string(g.nodes.size());
        init(w, randomTensor({cout, cin, k, k}, seed++, wstd));
        init(b, randomTensor({cout}, seed++, 0.1f));
        Node& n = add("Conv", {last, w, b});
        Attribute p;
        p.kind = Attribute::Kind::Ints;
        p.ints = {pad, pad, pad, pad};
        n.attrs["pads"] = p;
    }
    void relu() { add("Relu", {last}); }
    // Scales output channels (rows of the last layer's weight and bias) by `factor`
    // every `every` channels: outlier channels in the next layer's input.
    void outlierChannels(int every, float factor)
    {
        Node& n = g.nodes.back();
        Tensor& w = g.initializers.at(n.input(1));
        Tensor& b = g.initializers.at(n.input(2));
        const bool kn = n.opType == "Gemm" && n.attrInt("transB", 0) == 0;
        const int64_t out = kn ? w.shape[1] : w.shape[0], per = w.numel() / out;
        for (int64_t c = 0; c < out; c += every) {
            for (int64_t k = 0; k < per; ++k)
                w.data<float>()[std::size_t(kn ? k * out + c : c * per + k)] *= factor;
            b.data<float>()[std::size_t(c)] *= factor;
        }
    }
    Graph finish()
    {
        ValueInfo o;
        o.name = last;
        o.dtype = DType::Float;
        g.outputs = {o};
        g.index();
        return g;
    }
};

// Samples with outlier channels along axis 1: channel c scaled by `factor` when c % every == 0.
inline Dataset channelOutlierData(Shape sampleShape, int64_t n, uint64_t seed, int every = 5, float factor = 8.f)
{
    Shape shape = sampleShape;
    shape.insert(shape.begin(), n);
    Dataset d;
    d.kind = "random";
    d.path = "test:channel-outliers";
    d.inputs = {{"", d.path, randomTensor(shape, seed)}};
    const int64_t ch = shape[1], inner = numelOf(Shape(shape.begin() + 2, shape.end()));
    auto v = d.inputs.front().samples.data<float>();
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < ch; c += every)
            for (int64_t k = 0; k < inner; ++k)
                v[std::size_t((i * ch + c) * inner + k)] *= factor;
    return d;
}

// Correlated samples, as real activations are: along axis 1, a few strong shared
// factors mixed into every channel plus independent noise; spatial maps ([C, H, W]
// samples) are box-blurred so neighbouring pixels correlate too.
inline Dataset correlatedData(Shape sampleShape, int64_t n, uint64_t seed, int factors = 4)
{
    Dataset d = channelOutlierData(sampleShape, n, seed, 1 << 30, 1.f);
    d.path = "test:correlated";
    const int64_t ch = sampleShape[0], inner = numelOf(Shape(sampleShape.begin() + 1, sampleShape.end()));
    Tensor mixing = randomTensor({ch, factors}, 99, 1.5f);
    Tensor f = randomTensor({n, factors, inner}, seed + 1000);
    auto v = d.inputs.front().samples.data<float>();
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < ch; ++c)
            for (int64_t k = 0; k < inner; ++k) {
                float acc = 0;
                for (int j = 0; j < factors; ++j)
                    acc += mixing.data<float>()[std::size_t(c * factors + j)] *
                        f.data<float>()[std::size_t((i * factors + j) * inner + k)];
                v[std::size_t((i * ch + c) * inner + k)] = 0.5f * v[std::size_t((i * ch + c) * inner + k)] + acc;
            }
    if (sampleShape.size() == 3) {
        const int64_t H = sampleShape[1], W = sampleShape[2];
        std::vector<float> src(v.begin(), v.end());
        for (int64_t m = 0; m < n * ch; ++m)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t w = 0; w < W; ++w) {
                    float acc = 0;
                    int cnt = 0;
                    for (int64_t dh = -1; dh <= 1; ++dh)
                        for (int64_t dw = -1; dw <= 1; ++dw)
                            if (h + dh >= 0 && h + dh < H && w + dw >= 0 && w + dw < W) {
                                acc += src[std::size_t((m * H + h + dh) * W + w + dw)];
                                ++cnt;
                            }
                    v[std::size_t((m * H + h) * W + w)] = acc / float(cnt);
                }
    }
    return d;
}

// One layer on correlated data: "gemm" (48 -> 24, [out, in] weight), "gemm-kn"
// ([in, out] weight) or "conv" (6 -> 8 channels, 3x3, pad 1, 8x8 maps); calibration
// and held-out samples drawn separately.
struct LayerCase {
    Graph graph;
    Dataset calib, held;
};

inline LayerCase singleLayer(const std::string& kind, uint64_t seed)
{
    const bool conv = kind == "conv";
    GraphBuilder b(conv ? Shape {1, 6, 8, 8} : Shape {1, 48});
    if (conv)
        b.conv(6, 8, 3, 1);
    else
        b.gemm(48, 24, kind == "gemm");
    const Shape sample = conv ? Shape {6, 8, 8} : Shape {48};
    return {
        b.finish(), correlatedData(sample, conv ? 64 : 512, seed), correlatedData(sample, conv ? 32 : 256, seed + 1)};
}

// The naive interpreter extended by the ops algorithms insert (Mul by a constant).
inline Tensor referenceRun(
    const Graph& g, const Tensor& x, const std::map<std::string, Tensor>& overrides = {}, const std::string& value = "")
{
    std::map<std::string, Tensor> v;
    v["input"] = x;
    auto get = [&](const std::string& name) -> Tensor {
        if (auto it = overrides.find(name); it != overrides.end())
            return it->second;
        if (auto it = v.find(name); it != v.end())
            return it->second;
        return *g.constant(name);
    };
    for (const Node& n : g.nodes) {
        Tensor out;
        if (n.opType == "Mul") {
            out = get(n.input(0));
            Tensor f = get(n.input(1));
            const int64_t ch = f.numel();
            const int64_t inner = out.shape.size() == 4 ? out.shape[2] * out.shape[3] : 1;
            auto o = out.data<float>();
            for (std::size_t i = 0; i < o.size(); ++i)
                o[i] *= f.data<float>()[std::size_t((int64_t(i) / inner) % ch)];
        } else {
            Graph one;
            one.opsets = g.opsets;
            ValueInfo in;
            in.name = n.input(0);
            one.inputs = {in};
            ValueInfo o;
            o.name = n.outputs[0];
            one.outputs = {o};
            one.nodes = {n};
            for (std::size_t i = 1; i < n.inputs.size(); ++i)
                if (!n.inputs[i].empty())
                    one.initializers[n.inputs[i]] = get(n.inputs[i]);
            one.index();
            out = naiveRun(one, get(n.input(0)));
        }
        v[n.outputs[0]] = out;
    }
    return v.at(value.empty() ? g.outputs.front().name : value);
}

inline double mse(const Tensor& a, const Tensor& b)
{
    auto x = a.data<float>();
    auto y = b.data<float>();
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    return s / double(x.size());
}

inline double maxRelDiff(const Tensor& a, const Tensor& b)
{
    auto x = a.data<float>();
    auto y = b.data<float>();
    double scale = 0, diff = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        scale = std::max(scale, double(std::abs(x[i])));
        diff = std::max(diff, double(std::abs(x[i] - y[i])));
    }
    return diff / std::max(scale, 1e-12);
}

// max |x| / std(x) of a tensor: how far the largest value sticks out.
inline double maxOverStd(const Tensor& t)
{
    auto x = t.data<float>();
    double s1 = 0, s2 = 0, m = 0;
    for (float v : x) {
        s1 += v;
        s2 += double(v) * v;
        m = std::max(m, double(std::abs(v)));
    }
    const double n = double(x.size()), mean = s1 / n;
    return m / std::sqrt(std::max(s2 / n - mean * mean, 1e-30));
}

inline QuantizeOptions weightOnly(int bits, const std::string& granularity)
{
    QuantizeOptions o;
    o.config.defaults.weight.bits = bits;
    parseGranularity(granularity, o.config.defaults.weight);
    o.config.defaults.activation.bits = 32;
    o.batch = 64;
    return o;
}

} // namespace qs::test
