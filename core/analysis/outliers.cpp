#include "analysis/outliers.h"

#include "data/input_binding.h"
#include "measure/activations.h"
#include "measure/stats.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace qs {

namespace {

double medianOf(std::vector<float> v)
{
    if (v.empty())
        return 0;
    auto mid = v.begin() + std::ptrdiff_t(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
}

// Running statistics of one observed value ([..., channels], rows = tokens).
struct ValueAccumulator {
    LinearInputOutliers r;
    std::vector<double> sum;
    std::vector<float> rowMax; // every token's max |x|

    void add(const std::string& layer, const Tensor& x, int64_t samples)
    {
        if (x.dtype != DType::Float || x.shape.empty())
            fail("layer ", quoted(layer), ": input ", quoted(r.input), " is not a float tensor with a feature axis");
        const int64_t ch = x.shape.back();
        if (ch <= 0 || samples <= 0)
            return;
        const int64_t rows = x.numel() / ch;
        if (r.channels == 0) {
            r.channels = ch;
            r.channelMaxAbs.assign(std::size_t(ch), 0.f);
            sum.assign(std::size_t(ch), 0.0);
        } else if (r.channels != ch) {
            fail("layer ", quoted(layer), ": input ", quoted(r.input), " has ", ch, " features, earlier batches ",
                r.channels);
        }
        const int64_t positions = std::max<int64_t>(1, rows / samples);
        if (int64_t(r.positionMaxAbs.size()) < positions)
            r.positionMaxAbs.resize(std::size_t(positions), 0.f);
        r.positions = std::max(r.positions, positions);
        auto v = x.data<float>();
        for (int64_t row = 0; row < rows; ++row) {
            const float* p = v.data() + row * ch;
            float m = 0;
            int64_t at = 0;
            for (int64_t c = 0; c < ch; ++c) {
                const float a = std::abs(p[c]);
                sum[std::size_t(c)] += a;
                if (a > r.channelMaxAbs[std::size_t(c)])
                    r.channelMaxAbs[std::size_t(c)] = a;
                if (a > m) {
                    m = a;
                    at = c;
                }
            }
            rowMax.push_back(m);
            const int64_t pos = row % positions;
            r.positionMaxAbs[std::size_t(pos)] = std::max(r.positionMaxAbs[std::size_t(pos)], m);
            if (m > r.tokenMaxAbs) {
                r.tokenMaxAbs = m;
                r.peakPosition = pos;
                r.peakChannel = at;
            }
        }
        r.tokens += rows;
    }

    void finish()
    {
        r.channelMeanAbs.resize(sum.size());
        for (std::size_t c = 0; c < sum.size(); ++c)
            r.channelMeanAbs[c] = float(sum[c] / double(std::max<int64_t>(r.tokens, 1)));
        r.tokenMedianMaxAbs = float(medianOf(rowMax));
    }
};

} // namespace

double LinearInputOutliers::channelOutlierRatio() const
{
    const double med = medianOf(channelMaxAbs);
    const float mx = channelMaxAbs.empty() ? 0.f : *std::max_element(channelMaxAbs.begin(), channelMaxAbs.end());
    return med > 0 ? double(mx) / med : 0;
}

double LinearInputOutliers::massiveRatio() const
{
    return tokenMedianMaxAbs > 0 ? double(tokenMaxAbs) / double(tokenMedianMaxAbs) : 0;
}

std::vector<int64_t> LinearInputOutliers::topChannels(int k) const
{
    std::vector<int64_t> idx(channelMaxAbs.size());
    std::iota(idx.begin(), idx.end(), 0);
    const auto n = std::min<std::size_t>(std::size_t(std::max(k, 0)), idx.size());
    std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(n), idx.end(), [&](int64_t a, int64_t b) {
        return channelMaxAbs[std::size_t(a)] > channelMaxAbs[std::size_t(b)];
    });
    idx.resize(n);
    return idx;
}

std::vector<LinearInputOutliers> profileLinearOutliers(const Graph& graph, const Dataset& data,
    const OutlierOptions& options, Progress& progress, const CancelToken& cancel)
{
    if (graph.inputs.empty())
        fail(graph.sourcePath, ": the model has no inputs");
    struct Target {
        std::string layer, op, input, weight;
    };
    std::vector<Target> targets;
    for (int idx : graph.quantizableLayers()) {
        const Node& n = graph.nodes[std::size_t(idx)];
        const LayerKind k = graph.layerKind(n);
        if (k == LayerKind::Gemm || k == LayerKind::MatMul)
            targets.push_back({n.name, n.opType, layerInputOf(graph, n), graph.weightOf(n)});
    }
    if (targets.empty())
        fail(graph.sourcePath, ": no Gemm or MatMul layer with a constant weight to profile");
    const int64_t total = options.limit >= 0 ? std::min(options.limit, data.count()) : data.count();
    if (total <= 0)
        fail("dataset ", quoted(data.path), " has no samples");
    std::map<std::string, ValueAccumulator> acc; // by input value: q/k/v share one
    std::map<std::string, std::string> firstLayer;
    for (const auto& t : targets) {
        acc[t.input].r.input = t.input;
        firstLayer.emplace(t.input, t.layer);
    }
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(graph, options.batch), total));
    progress.report(0, "profiling linear-layer inputs");
    runFp32Batches(
        graph, data, total, batch, options.threads,
        [&](Plan& plan, int64_t n) {
            for (auto& [value, a] : acc) {
                ValueAccumulator* p = &a;
                const std::string layer = firstLayer.at(value);
                plan.addTap(value, [p, layer, n](const std::string&, const Tensor& t) { p->add(layer, t, n); });
            }
        },
        cancel,
        [&](int64_t done) {
            progress.report(double(done) / double(total),
                str("profiling linear-layer inputs: ", done, " of ", total, " samples"));
        });
    std::vector<LinearInputOutliers> out;
    for (auto& [value, a] : acc)
        a.finish();
    for (const auto& t : targets) {
        LinearInputOutliers r = acc.at(t.input).r;
        r.layer = t.layer;
        r.op = t.op;
        const std::vector<float> w = graph.constant(t.weight)->toFloat();
        const TensorStats s = computeStats(w);
        r.weightKurtosis = s.kurtosis;
        r.weightMaxOverStd = s.std > 0 ? std::max(std::abs(s.min), std::abs(s.max)) / s.std : 0;
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace qs
