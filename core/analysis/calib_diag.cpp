// Calibration diagnostics: one FP32 pass over the calibration set in chunks that end
// at each tested size, every layer input streamed into an observer, and every
// calibrator's range read off the observers at each chunk end.
#include "analysis/calib_diag.h"

#include "data/input_binding.h"
#include "measure/observer.h"
#include "quant/calibrator.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace qs {

double ksStatistic(std::vector<float> a, std::vector<float> b)
{
    if (a.empty() || b.empty())
        return 0;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    const double na = double(a.size()), nb = double(b.size());
    std::size_t i = 0, j = 0;
    double d = 0;
    while (i < a.size() && j < b.size()) {
        const float x = std::min(a[i], b[j]);
        while (i < a.size() && a[i] <= x)
            ++i;
        while (j < b.size() && b[j] <= x)
            ++j;
        d = std::max(d, std::abs(double(i) / na - double(j) / nb));
    }
    return d;
}

namespace {

// Every k-th value of one tensor over all batches, k chosen for about `maxValues`.
class Subsample {
public:
    Subsample(int64_t totalValues, int64_t maxValues)
        : stride_(std::max<int64_t>(1, (totalValues + maxValues - 1) / std::max<int64_t>(maxValues, 1)))
    {
    }
    void add(const Tensor& t)
    {
        for (float v : t.data<float>()) {
            if (seen_++ % stride_ == 0 && std::isfinite(v))
                values.push_back(v);
        }
    }
    std::vector<float> values;

private:
    int64_t stride_, seen_ = 0;
};

struct Moments {
    double mean = 0, std = 0;
};

// Per channel (axis 1 of the samples [N, C, ...]) over the first `count` samples of an
// input, read in chunks: streamed images are decoded as they are summed, never all kept.
std::vector<Moments> channelMoments(const DataInput& input, int64_t count, const CancelToken& cancel)
{
    const Shape& s = input.samples.shape;
    const int64_t channels = s.size() >= 2 ? s[1] : 1;
    const int64_t inner = s.size() >= 2 ? numelOf(Shape(s.begin() + 2, s.end())) : 1;
    const int64_t perSample = channels * inner;
    std::vector<double> sum(std::size_t(channels), 0), sq(std::size_t(channels), 0);
    constexpr int64_t kChunk = 64;
    for (int64_t start = 0; start < count; start += kChunk) {
        cancel.check();
        const int64_t n = std::min(kChunk, count - start);
        const Tensor chunk = samplesFirst(input.batch(start, n), input.batchAxis);
        auto x = chunk.data<float>();
        for (int64_t c = 0; c < channels; ++c)
            for (int64_t k = 0; k < n; ++k)
                for (int64_t i = 0; i < inner; ++i) {
                    const double v = x[std::size_t(k * perSample + c * inner + i)];
                    sum[std::size_t(c)] += v;
                    sq[std::size_t(c)] += v * v;
                }
    }
    std::vector<Moments> out(static_cast<std::size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) {
        Moments& mo = out[std::size_t(c)];
        const double m = double(count * inner);
        mo.mean = m > 0 ? sum[std::size_t(c)] / m : 0;
        mo.std = m > 0 ? std::sqrt(std::max(0.0, sq[std::size_t(c)] / m - mo.mean * mo.mean)) : 0;
    }
    return out;
}

// Runs `total` samples of `data` from `start` in batches, plans compiled per batch size.
void runChunk(const QuantSession& session, const Dataset& data, int64_t start, int64_t end, int64_t batch,
    std::map<int64_t, std::unique_ptr<Plan>>& plans, const std::function<void(Plan&)>& attach,
    const CancelToken& cancel)
{
    for (int64_t s = start; s < end; s += batch) {
        cancel.check();
        const int64_t n = std::min(batch, end - s);
        auto& plan = plans[n];
        if (!plan) {
            const std::map<std::string, Shape> shape = data.inputShapes(n);
            plan = session.compile(false, shape);
            attach(*plan);
        }
        plan->run(data.batch(s, n));
    }
}

} // namespace

CalibDiagnostics diagnoseCalibration(const Graph& graph, const Dataset& calib, const Dataset* eval,
    const CalibDiagOptions& options, Progress& progress, const CancelToken& cancel)
{
    if (!(options.tolerance > 0))
        fail("calib-diag: the tolerance must be positive, got ", options.tolerance);
    const int64_t total = options.limit >= 0 ? std::min(options.limit, calib.count()) : calib.count();
    if (total <= 0)
        fail("calibration data ", quoted(calib.path), " has no samples");
    if (eval && eval->count() <= 0)
        fail("evaluation data ", quoted(eval->path), " has no samples");
    if (eval && eval->sampleShapes() != calib.sampleShapes())
        fail("evaluation data ", quoted(eval->path), " has samples of shape ", shapeString(eval->inputs.front().samples.shape),
            ", the calibration data ", shapeString(calib.inputs.front().samples.shape));
    const int64_t batch = std::max<int64_t>(1, batchFor(graph, options.batch));

    QuantizeOptions qo;
    qo.threads = options.threads;
    QuantSession session(graph, qo);
    CalibDiagnostics out;
    out.tolerance = options.tolerance;
    for (const auto& l : session.layers()) {
        out.layers.push_back(l.name);
        out.values.push_back(l.input);
    }
    if (out.layers.empty())
        fail(graph.sourcePath, ": no quantizable layers to calibrate");

    std::vector<int64_t> sizes = options.sizes;
    if (sizes.empty())
        for (int64_t s = 8; s < total; s *= 2)
            sizes.push_back(s);
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    sizes.erase(std::remove_if(sizes.begin(), sizes.end(), [&](int64_t s) { return s <= 0 || s >= total; }),
        sizes.end());
    sizes.push_back(total);
    out.sizes = sizes;

    std::map<std::string, ActivationObserver> observers;
    for (const auto& v : out.values)
        observers.emplace(v, ActivationObserver());
    // The first layer's output, for the KS statistic.
    const std::string firstOut = session.graph().nodes[std::size_t(session.graph().findNode(out.layers.front()))]
                                     .outputs.front();
    std::optional<Subsample> calSub, evalSub;
    std::map<int64_t, std::unique_ptr<Plan>> plans;
    auto attach = [&](Plan& plan) {
        for (auto& [name, obs] : observers) {
            ActivationObserver* o = &obs;
            plan.addTap(name, [o](const std::string&, const Tensor& t) { o->observe(t); });
        }
        if (eval)
            plan.addTap(firstOut, [&](const std::string&, const Tensor& t) {
                if (!calSub) {
                    const int64_t perSample = t.numel() / std::max<int64_t>(1, t.shape.empty() ? 1 : t.shape[0]);
                    calSub.emplace(perSample * total, options.ksMaxValues);
                }
                calSub->add(t);
            });
    };

    // snapshot[size][calibrator][layer]
    const auto& cals = calibrators();
    std::vector<std::vector<std::vector<ClipRange>>> snap;
    int64_t done = 0;
    for (int64_t s : sizes) {
        runChunk(session, calib, done, s, batch, plans, attach, cancel);
        done = s;
        progress.report(0.8 * double(done) / double(total), str("calibration diagnostics: ", done, " samples"));
        std::vector<std::vector<ClipRange>> perCal;
        for (const auto& c : cals) {
            std::vector<ClipRange> r;
            for (const auto& v : out.values) {
                cancel.check(); // a search (entropy, MSE) per layer is the longest step between batches
                r.push_back(c.choose(observers.at(v).calibration(), options.bits, options.symmetric, c.defaultParam));
            }
            perCal.push_back(std::move(r));
        }
        snap.push_back(std::move(perCal));
    }

    for (std::size_t ci = 0; ci < cals.size(); ++ci) {
        CalibratorConvergence conv;
        conv.calibrator = cals[ci].name;
        conv.recommended = sizes.front();
        int64_t worst = 0;
        for (std::size_t li = 0; li < out.layers.size(); ++li) {
            const ClipRange full = snap.back()[ci][li];
            const double span = std::max(double(full.hi) - double(full.lo), 1e-12);
            std::vector<RangeAtSize> row;
            int64_t from = sizes.front(); // smallest size from which this layer stays within tolerance
            for (std::size_t si = 0; si < sizes.size(); ++si) {
                const ClipRange r = snap[si][ci][li];
                const double rel =
                    std::max(std::abs(double(r.lo) - full.lo), std::abs(double(r.hi) - full.hi)) / span;
                row.push_back({sizes[si], r.lo, r.hi, rel});
                if (rel > options.tolerance)
                    from = si + 1 < sizes.size() ? sizes[si + 1] : sizes.back();
            }
            if (from > worst) {
                worst = from;
                conv.worstLayer = out.layers[li];
            }
            conv.ranges.push_back(std::move(row));
        }
        conv.recommended = std::max(worst, sizes.front());
        if (conv.worstLayer.empty())
            conv.worstLayer = out.layers.front();
        out.recommended = std::max(out.recommended, conv.recommended);
        out.calibrators.push_back(std::move(conv));
    }

    if (eval) {
        DistributionShift shift;
        shift.ksValue = firstOut;
        // The first layer's outputs on the evaluation data, with the same subsampling budget.
        std::map<int64_t, std::unique_ptr<Plan>> evalPlans;
        runChunk(session, *eval, 0, eval->count(), batch, evalPlans,
            [&](Plan& plan) {
                plan.addTap(firstOut, [&](const std::string&, const Tensor& t) {
                    if (!evalSub) {
                        const int64_t perSample = t.numel() / std::max<int64_t>(1, t.shape.empty() ? 1 : t.shape[0]);
                        evalSub.emplace(perSample * eval->count(), options.ksMaxValues);
                    }
                    evalSub->add(t);
                });
            },
            cancel);
        progress.report(0.95, "calibration diagnostics: comparing distributions");
        shift.ksCalValues = calSub ? int64_t(calSub->values.size()) : 0;
        shift.ksEvalValues = evalSub ? int64_t(evalSub->values.size()) : 0;
        shift.ks = ksStatistic(calSub ? calSub->values : std::vector<float>{},
            evalSub ? evalSub->values : std::vector<float>{});
        if (shift.ks > options.ksThreshold)
            shift.reasons.push_back(str("the first layer's outputs (", quoted(firstOut), ") differ: KS statistic ",
                shift.ks, " > ", options.ksThreshold));
        const auto cm = channelMoments(calib.inputs.front(), total, cancel),
                   em = channelMoments(eval->inputs.front(), eval->count(), cancel);
        for (std::size_t c = 0; c < cm.size(); ++c) {
            ChannelShift ch;
            ch.channel = int(c);
            ch.calMean = cm[c].mean;
            ch.calStd = cm[c].std;
            ch.evalMean = em[c].mean;
            ch.evalStd = em[c].std;
            const double pooled = std::sqrt(0.5 * (ch.calStd * ch.calStd + ch.evalStd * ch.evalStd));
            ch.meanShift = pooled > 0 ? std::abs(ch.calMean - ch.evalMean) / pooled : 0;
            ch.stdRatio = ch.calStd > 0 && ch.evalStd > 0 ? std::max(ch.evalStd / ch.calStd, ch.calStd / ch.evalStd)
                                                          : (ch.calStd == ch.evalStd ? 1.0 : INFINITY);
            if (ch.meanShift > options.meanShiftThreshold)
                shift.reasons.push_back(str("input channel ", c, ": means differ by ", ch.meanShift,
                    " pooled standard deviations (calibration ", ch.calMean, ", evaluation ", ch.evalMean, ") > ",
                    options.meanShiftThreshold));
            if (ch.stdRatio > options.stdRatioThreshold)
                shift.reasons.push_back(str("input channel ", c, ": standard deviations differ by a factor ",
                    ch.stdRatio, " (calibration ", ch.calStd, ", evaluation ", ch.evalStd, ") > ",
                    options.stdRatioThreshold));
            shift.channels.push_back(ch);
        }
        shift.warning = !shift.reasons.empty();
        out.shift = std::move(shift);
    }
    progress.report(1, "calibration diagnostics: done");
    return out;
}

} // namespace qs
