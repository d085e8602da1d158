// A deliberately plain interpreter for the ops of the demo CNN (Conv, Relu, Add,
// GlobalAveragePool, Flatten, Gemm, BatchNormalization): the independent reference
// the runtime and the simulated quantization are checked against.
#pragma once

#include "graph/graph.h"

#include <cmath>
#include <functional>
#include <map>
#include <string>

namespace qs::test {

using ValueHook = std::function<void(const std::string& value, Tensor& t)>;

inline Tensor naiveRun(const Graph& g, const Tensor& input, const std::map<std::string, Tensor>& overrides = {},
                       const ValueHook& hook = {})
{
    std::map<std::string, Tensor> v;
    auto get = [&](const std::string& name) -> const Tensor& {
        if (auto it = overrides.find(name); it != overrides.end())
            return it->second;
        if (auto it = v.find(name); it != v.end())
            return it->second;
        return *g.constant(name);
    };
    v[g.inputs.front().name] = input;
    if (hook)
        hook(g.inputs.front().name, v[g.inputs.front().name]);
    for (const Node& n : g.nodes) {
        Tensor out;
        if (n.opType == "Conv") {
            const Tensor& x = get(n.input(0));
            const Tensor& w = get(n.input(1));
            const Tensor* b = n.input(2).empty() ? nullptr : &get(n.input(2));
            auto pads = n.attrInts("pads", {0, 0, 0, 0});
            auto strides = n.attrInts("strides", {1, 1});
            int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
            int64_t O = w.shape[0], KH = w.shape[2], KW = w.shape[3];
            int64_t OH = (H + pads[0] + pads[2] - KH) / strides[0] + 1;
            int64_t OW = (W + pads[1] + pads[3] - KW) / strides[1] + 1;
            out = Tensor(DType::Float, {N, O, OH, OW});
            auto xs = x.data<float>();
            auto ws = w.data<float>();
            auto os = out.data<float>();
            for (int64_t nn = 0; nn < N; ++nn)
                for (int64_t o = 0; o < O; ++o)
                    for (int64_t oh = 0; oh < OH; ++oh)
                        for (int64_t ow = 0; ow < OW; ++ow) {
                            double acc = b ? b->data<float>()[std::size_t(o)] : 0.0;
                            for (int64_t c = 0; c < C; ++c)
                                for (int64_t kh = 0; kh < KH; ++kh)
                                    for (int64_t kw = 0; kw < KW; ++kw) {
                                        int64_t ih = oh * strides[0] - pads[0] + kh;
                                        int64_t iw = ow * strides[1] - pads[1] + kw;
                                        if (ih < 0 || iw < 0 || ih >= H || iw >= W)
                                            continue;
                                        acc += double(xs[std::size_t(((nn * C + c) * H + ih) * W + iw)]) *
                                               ws[std::size_t(((o * C + c) * KH + kh) * KW + kw)];
                                    }
                            os[std::size_t(((nn * O + o) * OH + oh) * OW + ow)] = float(acc);
                        }
        } else if (n.opType == "BatchNormalization") {
            out = get(n.input(0));
            auto s = get(n.input(1)).toFloat(), bb = get(n.input(2)).toFloat(), m = get(n.input(3)).toFloat(),
                 var = get(n.input(4)).toFloat();
            float eps = n.attrFloat("epsilon", 1e-5f);
            int64_t C = out.shape[1], inner = out.numel() / (out.shape[0] * C);
            auto os = out.data<float>();
            for (int64_t i = 0; i < out.numel(); ++i) {
                int64_t c = (i / inner) % C;
                os[std::size_t(i)] = float((os[std::size_t(i)] - m[std::size_t(c)]) /
                                               std::sqrt(double(var[std::size_t(c)]) + eps) * s[std::size_t(c)] +
                                           bb[std::size_t(c)]);
            }
        } else if (n.opType == "Relu") {
            out = get(n.input(0));
            for (float& x : out.data<float>())
                x = x > 0 ? x : 0;
        } else if (n.opType == "Add") {
            out = get(n.input(0));
            auto b = get(n.input(1)).data<float>();
            auto os = out.data<float>();
            for (std::size_t i = 0; i < os.size(); ++i)
                os[i] += b[i];
        } else if (n.opType == "GlobalAveragePool") {
            const Tensor& x = get(n.input(0));
            int64_t N = x.shape[0], C = x.shape[1], inner = x.numel() / (N * C);
            out = Tensor(DType::Float, {N, C, 1, 1});
            auto xs = x.data<float>();
            for (int64_t i = 0; i < N * C; ++i) {
                double s = 0;
                for (int64_t k = 0; k < inner; ++k)
                    s += xs[std::size_t(i * inner + k)];
                out.data<float>()[std::size_t(i)] = float(s / double(inner));
            }
        } else if (n.opType == "Flatten") {
            out = get(n.input(0));
            out.shape = {out.shape[0], out.numel() / out.shape[0]};
        } else if (n.opType == "Gemm") {
            const Tensor& a = get(n.input(0));
            const Tensor& w = get(n.input(1));
            const bool tb = n.attrInt("transB", 0) != 0;
            int64_t M = a.shape[0], K = a.shape[1], N = tb ? w.shape[0] : w.shape[1];
            out = Tensor(DType::Float, {M, N});
            auto as = a.data<float>();
            auto ws = w.data<float>();
            const float alpha = n.attrFloat("alpha", 1.f), beta = n.attrFloat("beta", 1.f);
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                    double acc = 0;
                    for (int64_t k = 0; k < K; ++k)
                        acc += double(as[std::size_t(i * K + k)]) * ws[std::size_t(tb ? j * K + k : k * N + j)];
                    if (!n.input(2).empty())
                        acc = alpha * acc + beta * get(n.input(2)).data<float>()[std::size_t(j)];
                    out.data<float>()[std::size_t(i * N + j)] = float(acc);
                }
        } else {
            throw std::runtime_error("naive reference: unsupported op " + n.opType);
        }
        out.name = n.outputs[0];
        if (hook)
            hook(n.outputs[0], out);
        v[n.outputs[0]] = std::move(out);
    }
    return v.at(g.outputs.front().name);
}

} // namespace qs::test
