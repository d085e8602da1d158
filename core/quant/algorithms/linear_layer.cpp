// Matrix views of Conv/Gemm/MatMul layers, im2col, Gram matrices and channel
// rescaling shared by the research PTQ algorithms.
#include "quant/algorithms/linear_layer.h"

#include "util/error.h"
#include "util/linalg.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs::algo {

int64_t LinearLayer::groupsPerRow() const
{
    const QuantSpec& q = info.spec.weight;
    if (q.granularity != Granularity::Group)
        return 1;
    const int64_t in = inputChannels();
    const int64_t g = std::max<int64_t>(1, std::min<int64_t>(q.groupSize, in));
    return (in + g - 1) / g;
}

int64_t LinearLayer::blocks() const
{
    switch (info.spec.weight.granularity) {
    case Granularity::Tensor:
        return 1;
    case Granularity::Channel:
        return rows;
    case Granularity::Group:
        return rows * groupsPerRow();
    }
    return 1;
}

int64_t LinearLayer::blockOf(int64_t row, int64_t col) const
{
    const QuantSpec& q = info.spec.weight;
    switch (q.granularity) {
    case Granularity::Tensor:
        return 0;
    case Granularity::Channel:
        return row;
    case Granularity::Group: {
        const int64_t g = std::max<int64_t>(1, std::min<int64_t>(q.groupSize, inputChannels()));
        return row * groupsPerRow() + (col / spatial()) / g;
    }
    }
    return 0;
}

std::optional<LinearLayer> linearLayer(const QuantSession& s, const SessionLayer& l)
{
    const Graph& g = s.graph();
    const int idx = g.findNode(l.name);
    if (idx < 0)
        return std::nullopt;
    const Node& n = g.nodes[std::size_t(idx)];
    const Tensor* w = g.constant(l.weight);
    if (!w || !isFloating(w->dtype))
        return std::nullopt;
    LinearLayer L;
    L.info = l;
    L.weightShape = w->shape;
    if (n.opType == "Conv") {
        const std::string pad = n.attrString("auto_pad", "NOTSET");
        if (w->shape.size() != 4 || n.attrInt("group", 1) != 1 || (pad != "NOTSET" && pad != "VALID"))
            return std::nullopt;
        L.kind = LinearLayer::Kind::Conv;
        L.rows = w->shape[0];
        L.channels = w->shape[1];
        L.kh = w->shape[2];
        L.kw = w->shape[3];
        L.cols = L.channels * L.kh * L.kw;
        auto st = n.attrInts("strides", {1, 1});
        auto pd = n.attrInts("pads", {0, 0, 0, 0});
        auto dl = n.attrInts("dilations", {1, 1});
        if (st.size() != 2 || pd.size() != 4 || dl.size() != 2)
            return std::nullopt;
        L.strideH = st[0], L.strideW = st[1];
        L.padT = pd[0], L.padL = pd[1], L.padB = pd[2], L.padR = pd[3];
        L.dilH = dl[0], L.dilW = dl[1];
    } else if (n.opType == "Gemm") {
        if (w->shape.size() != 2 || n.attrInt("transA", 0) != 0 || l.weight != n.input(1))
            return std::nullopt;
        L.kind = LinearLayer::Kind::Gemm;
        L.transposed = n.attrInt("transB", 0) == 0;
        L.rows = L.transposed ? w->shape[1] : w->shape[0];
        L.cols = L.transposed ? w->shape[0] : w->shape[1];
    } else if (n.opType == "MatMul") {
        if (w->shape.size() != 2 || l.weight != n.input(1))
            return std::nullopt;
        L.kind = LinearLayer::Kind::MatMul;
        L.transposed = true;
        L.rows = w->shape[1];
        L.cols = w->shape[0];
    } else {
        return std::nullopt;
    }
    return L;
}

std::vector<LinearLayer> linearLayers(const QuantSession& s)
{
    std::vector<LinearLayer> out;
    for (const auto& l : s.layers())
        if (!l.spec.weight.isFloat())
            if (auto L = linearLayer(s, l))
                out.push_back(*L);
    return out;
}

std::vector<float> toMatrix(const LinearLayer& L, std::span<const float> w)
{
    if (!L.transposed)
        return std::vector<float>(w.begin(), w.end());
    std::vector<float> m(static_cast<std::size_t>(L.rows * L.cols));
    for (int64_t k = 0; k < L.cols; ++k)
        for (int64_t r = 0; r < L.rows; ++r)
            m[std::size_t(r * L.cols + k)] = w[std::size_t(k * L.rows + r)];
    return m;
}

std::vector<float> fromMatrix(const LinearLayer& L, const std::vector<float>& m)
{
    if (!L.transposed)
        return m;
    std::vector<float> w(m.size());
    for (int64_t k = 0; k < L.cols; ++k)
        for (int64_t r = 0; r < L.rows; ++r)
            w[std::size_t(k * L.rows + r)] = m[std::size_t(r * L.cols + k)];
    return w;
}

void appendInputRows(const LinearLayer& L, const Tensor& x, std::vector<float>& rows)
{
    auto v = x.data<float>();
    if (L.kind != LinearLayer::Kind::Conv) {
        if (x.shape.empty() || x.shape.back() != L.cols)
            fail("layer ", quoted(L.info.name), ": input ", quoted(L.info.input), " has last dim ",
                x.shape.empty() ? 0 : x.shape.back(), ", expected ", L.cols);
        rows.insert(rows.end(), v.begin(), v.end());
        return;
    }
    if (x.shape.size() != 4 || x.shape[1] != L.channels)
        fail("layer ", quoted(L.info.name), ": input ", quoted(L.info.input), " is not [N, ", L.channels, ", H, W]");
    const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const int64_t OH = (H + L.padT + L.padB - L.dilH * (L.kh - 1) - 1) / L.strideH + 1;
    const int64_t OW = (W + L.padL + L.padR - L.dilW * (L.kw - 1) - 1) / L.strideW + 1;
    std::size_t at = rows.size();
    rows.resize(at + std::size_t(N * OH * OW * L.cols), 0.f);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow, at += std::size_t(L.cols))
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t i = 0; i < L.kh; ++i) {
                        const int64_t ih = oh * L.strideH - L.padT + i * L.dilH;
                        if (ih < 0 || ih >= H)
                            continue;
                        for (int64_t j = 0; j < L.kw; ++j) {
                            const int64_t iw = ow * L.strideW - L.padL + j * L.dilW;
                            if (iw >= 0 && iw < W)
                                rows[at + std::size_t((c * L.kh + i) * L.kw + j)] =
                                    v[std::size_t(((n * C + c) * H + ih) * W + iw)];
                        }
                    }
}

void streamLayerInputs(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers, int64_t limit,
    const std::function<void(std::size_t, const Tensor&)>& sink, Progress& progress, const CancelToken& cancel)
{
    const int64_t total = limit >= 0 ? std::min(limit, calib.count()) : calib.count();
    if (total <= 0)
        fail("calibration dataset ", quoted(calib.path), " has no samples");
    s.runBatches(
        calib, total, false,
        [&](Plan& plan) {
            for (std::size_t i = 0; i < layers.size(); ++i)
                plan.addTap(layers[i].info.input, [&sink, i](const std::string&, const Tensor& t) { sink(i, t); });
        },
        cancel,
        [&](int64_t done) {
            progress.report(double(done) / double(total), str("observing layer inputs: ", done, " samples"));
        });
}

std::vector<float> currentMatrix(const QuantSession& s, const LinearLayer& L)
{
    const Graph& g = s.graph();
    const Node& node = g.nodes[std::size_t(g.findNode(L.info.name))];
    return toMatrix(L, g.constant(node.input(1))->toFloat());
}

std::vector<LayerGram> layerGrams(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers,
    int64_t limit, Progress& progress, const CancelToken& cancel,
    const std::function<void(std::size_t, const Tensor&)>& also)
{
    std::vector<LayerGram> grams(layers.size());
    std::vector<float> rows;
    streamLayerInputs(
        s, calib, layers, limit,
        [&](std::size_t i, const Tensor& x) {
            rows.clear();
            appendInputRows(layers[i], x, rows);
            addGram(rows, layers[i].cols, grams[i].h);
            grams[i].rows += int64_t(rows.size()) / layers[i].cols;
            if (also)
                also(i, x);
        },
        progress, cancel);
    return grams;
}

void RowSample::add(const std::vector<float>& rows)
{
    const int64_t n = int64_t(rows.size()) / k_;
    for (int64_t r = 0; r < n; ++r, ++seen_) {
        int64_t slot = seen_;
        if (seen_ >= capacity_) {
            slot = std::uniform_int_distribution<int64_t>(0, seen_)(rng_);
            if (slot >= capacity_)
                continue;
        } else {
            data_.resize(data_.size() + std::size_t(k_));
        }
        std::copy_n(rows.begin() + r * k_, k_, data_.begin() + slot * k_);
    }
}

void addGram(const std::vector<float>& rows, int64_t k, std::vector<double>& h)
{
    h.resize(std::size_t(k * k), 0.0);
    const int64_t n = int64_t(rows.size()) / k;
    // Accumulate in float per chunk of rows (oneDNN's blocked, threaded sgemm: X^T X),
    // then into double.
    constexpr int64_t chunk = 256;
    std::vector<float> acc(static_cast<std::size_t>(k * k));
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        const int64_t r1 = std::min(n, r0 + chunk);
        if (dnnl_sgemm('T', 'N', k, k, r1 - r0, 1.f, rows.data() + r0 * k, k, rows.data() + r0 * k, k, 0.f,
                acc.data(), k)
            != dnnl_success)
            fail("Gram matrix: oneDNN sgemm failed (K = ", k, ")");
        for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j <= i; ++j)
                h[std::size_t(i * k + j)] += acc[std::size_t(i * k + j)];
    }
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = i + 1; j < k; ++j)
            h[std::size_t(i * k + j)] = h[std::size_t(j * k + i)];
}

std::vector<QParams> blockParams(const LinearLayer& L, const std::vector<float>& m, const QuantSpec& spec)
{
    const std::size_t blocks = std::size_t(L.blocks());
    std::vector<float> lo(blocks, INFINITY), hi(blocks, -INFINITY);
    for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t c = 0; c < L.cols; ++c) {
            const auto b = std::size_t(L.blockOf(r, c));
            const float v = m[std::size_t(r * L.cols + c)];
            lo[b] = std::min(lo[b], v);
            hi[b] = std::max(hi[b], v);
        }
    std::vector<QParams> p(blocks);
    for (std::size_t b = 0; b < blocks; ++b) {
        const float l = spec.range ? spec.range->first : std::isfinite(lo[b]) ? lo[b] : 0.f;
        const float h = spec.range ? spec.range->second : std::isfinite(hi[b]) ? hi[b] : 0.f;
        p[b] = qparamsFor(l, h, spec.bits, spec.symmetric);
    }
    return p;
}

std::vector<float> roundToNearest(const LinearLayer& L, const std::vector<float>& m, const std::vector<QParams>& p)
{
    std::vector<float> q(m.size());
    for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t c = 0; c < L.cols; ++c)
            q[std::size_t(r * L.cols + c)] = fakeQuant(m[std::size_t(r * L.cols + c)], p[std::size_t(L.blockOf(r, c))]);
    return q;
}

double outputError(
    const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t k, const std::vector<double>& h)
{
    // sum over rows of d^T H d, chunks of rows on the threads: T = D H (blocked product),
    // then the rows' dot products with D.
    constexpr int64_t chunk = 32;
    const int64_t chunks = (rows + chunk - 1) / chunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel if (rows * k * k > (int64_t(1) << 22))
    {
        std::vector<double> d(static_cast<std::size_t>(chunk * k)), t(static_cast<std::size_t>(chunk * k));
#pragma omp for schedule(dynamic)
        for (int64_t c = 0; c < chunks; ++c) {
            const int64_t r0 = c * chunk, m = std::min(chunk, rows - r0);
            for (int64_t i = 0; i < m * k; ++i)
                d[std::size_t(i)] = double(a[std::size_t(r0 * k + i)]) - b[std::size_t(r0 * k + i)];
            std::fill(t.begin(), t.begin() + m * k, 0.0);
            linalg::gemm(m, k, k, 1.0, d.data(), k, h.data(), k, false, t.data(), k);
            double sum = 0;
            for (int64_t i = 0; i < m * k; ++i)
                sum += d[std::size_t(i)] * t[std::size_t(i)];
            partial[std::size_t(c)] = sum;
        }
    }
    return std::accumulate(partial.begin(), partial.end(), 0.0);
}

Tensor& ownInitializer(Graph& g, Node& n, std::size_t index, const std::string& name)
{
    const std::string current = n.input(index);
    if (current != name) {
        const Tensor* src = g.constant(current);
        if (!src)
            fail("node ", quoted(n.name), ": input ", index, " ", quoted(current), " is not a constant");
        Tensor t = Tensor::fromVector(src->shape, src->toFloat());
        t.name = name;
        g.initializers[name] = std::move(t);
        n.inputs[index] = name;
    }
    return g.initializers.at(name);
}

namespace {

// The node that can absorb a per-channel 1/s on its output: a Conv (group 1) or Gemm
// whose output feeds only `consumer`, directly or through one ReLU. -1 when none.
int foldableProducer(const Graph& g, const std::string& value, int consumer)
{
    auto onlyFeeds = [&](const std::string& v, int node) {
        for (const auto& o : g.outputs)
            if (o.name == v)
                return false;
        const auto& c = g.consumersOf(v);
        return c.size() == 1 && c[0] == node;
    };
    if (!onlyFeeds(value, consumer))
        return -1;
    int p = g.producerOf(value);
    if (p < 0)
        return -1;
    if (g.nodes[std::size_t(p)].opType == "Relu") {
        const std::string in = g.nodes[std::size_t(p)].input(0);
        if (!onlyFeeds(in, p))
            return -1;
        p = g.producerOf(in);
        if (p < 0)
            return -1;
    }
    const Node& n = g.nodes[std::size_t(p)];
    const Tensor* w = g.constant(n.input(1));
    if (!w || w->shape.size() < 2)
        return -1;
    if (n.opType == "Conv" && n.attrInt("group", 1) == 1)
        return p;
    if (n.opType == "Gemm" && w->shape.size() == 2 && n.attrInt("transA", 0) == 0)
        return p;
    return -1;
}

} // namespace

std::string scaleInputChannels(
    QuantSession& s, const LinearLayer& L, const std::vector<double>& scale, const std::string& tag)
{
    Graph& g = s.graph();
    g.index();
    const int idx = g.findNode(L.info.name);
    const int64_t ch = L.inputChannels();
    if (idx < 0 || int64_t(scale.size()) != ch)
        fail("layer ", quoted(L.info.name), ": ", scale.size(), " channel scales for ", ch, " input channels");
    {
        Node& n = g.nodes[std::size_t(idx)];
        Tensor& w = ownInitializer(g, n, 1, n.name + ".weight_" + tag);
        std::vector<float> m = toMatrix(L, w.data<float>());
        for (int64_t r = 0; r < L.rows; ++r)
            for (int64_t c = 0; c < L.cols; ++c)
                m[std::size_t(r * L.cols + c)] *= float(scale[std::size_t(c / L.spatial())]);
        std::vector<float> back = fromMatrix(L, m);
        std::copy(back.begin(), back.end(), w.data<float>().begin());
    }
    std::string what;
    if (int p = foldableProducer(g, L.info.input, idx); p >= 0) {
        Node& prod = g.nodes[std::size_t(p)];
        Tensor& w = ownInitializer(g, prod, 1, prod.name + ".weight_" + tag);
        const bool gemmKN = prod.opType == "Gemm" && prod.attrInt("transB", 0) == 0; // [K, out]
        const int64_t outCh = gemmKN ? w.shape[1] : w.shape[0];
        if (outCh != ch)
            fail("layer ", quoted(L.info.name), ": producer ", quoted(prod.name), " has ", outCh,
                " output channels, the layer ", ch, " input channels");
        auto wv = w.data<float>();
        const int64_t per = w.numel() / outCh;
        for (int64_t c = 0; c < ch; ++c)
            for (int64_t k = 0; k < per; ++k)
                wv[std::size_t(gemmKN ? k * outCh + c : c * per + k)] /= float(scale[std::size_t(c)]);
        if (!prod.input(2).empty()) {
            Tensor& b = ownInitializer(g, prod, 2, prod.name + ".bias_" + tag);
            auto bv = b.data<float>();
            if (b.numel() == ch)
                for (int64_t c = 0; c < ch; ++c)
                    bv[std::size_t(c)] /= float(scale[std::size_t(c)]);
            else if (b.numel() == 1 && ch > 1)
                fail("node ", quoted(prod.name), ": broadcast bias cannot absorb per-channel scales");
            else if (b.numel() == 1)
                bv[0] /= float(scale[0]);
        }
        what = "folded into " + prod.name;
    } else {
        // An explicit Mul right before the layer, on a value of its own.
        Node mul;
        mul.name = L.info.name + "." + tag + "_mul";
        mul.opType = "Mul";
        const std::string factor = mul.name + ".factor";
        std::vector<float> inv(static_cast<std::size_t>(ch));
        for (int64_t c = 0; c < ch; ++c)
            inv[std::size_t(c)] = float(1.0 / scale[std::size_t(c)]);
        Shape shape = L.kind == LinearLayer::Kind::Conv ? Shape {1, ch, 1, 1} : Shape {ch};
        Tensor t = Tensor::fromVector(shape, inv);
        t.name = factor;
        g.initializers[factor] = std::move(t);
        const std::string out = L.info.input + "." + tag + "_for_" + L.info.name;
        mul.inputs = {L.info.input, factor};
        mul.outputs = {out};
        if (const ValueInfo* vi = g.info(L.info.input)) {
            ValueInfo copy = *vi;
            copy.name = out;
            g.valueInfo[out] = copy;
        }
        g.nodes[std::size_t(idx)].inputs[0] = out;
        g.nodes.insert(g.nodes.begin() + idx, std::move(mul));
        what = "Mul " + L.info.name + "." + tag + "_mul";
    }
    g.index();
    return what;
}

void ChannelAbs::add(const LinearLayer& L, const Tensor& x)
{
    const int64_t ch = L.inputChannels();
    if (max.empty()) {
        max.assign(std::size_t(ch), 0.0);
        sum.assign(std::size_t(ch), 0.0);
    }
    auto v = x.data<float>();
    // Conv: [N, C, H, W] (channel axis 1); Gemm/MatMul: [..., K] (last axis).
    const int64_t inner = L.kind == LinearLayer::Kind::Conv && x.shape.size() == 4 ? x.shape[2] * x.shape[3] : 1;
    const int64_t outer = x.numel() / (ch * inner);
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < ch; ++c)
            for (int64_t i = 0; i < inner; ++i) {
                const double a = std::abs(double(v[std::size_t((o * ch + c) * inner + i)]));
                max[std::size_t(c)] = std::max(max[std::size_t(c)], a);
                sum[std::size_t(c)] += a;
            }
    count += outer * inner;
}

std::vector<double> ChannelAbs::mean() const
{
    std::vector<double> m(sum.size());
    for (std::size_t c = 0; c < sum.size(); ++c)
        m[c] = sum[c] / double(std::max<int64_t>(count, 1));
    return m;
}

} // namespace qs::algo
