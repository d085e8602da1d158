// The calibration-data preview: a few samples decoded and preprocessed, their statistics
// and the normalization heuristic. Runs on a worker thread; no widgets here.
#include "ui/calibration/data_preview.h"

#include "data/dataset.h"
#include "data/image.h"
#include "data/image_dataset.h"
#include "data/preprocess.h"
#include "graph/graph.h"
#include "util/error.h"

#include <QFileInfo>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>

namespace qs::ui {

namespace {

QImage toQImage(const Image& im)
{
    const QImage view(im.rgb.data(), int(im.width), int(im.height), int(im.width * 3), QImage::Format_RGB888);
    return view.copy();
}

QImage fitted(const QImage& image, int side)
{
    return image.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation);
}

QString num(double v)
{
    return QString::number(v, 'g', 3);
}

// Indices 0..count-1 spread evenly, `n` of them (all when count <= n).
std::vector<int64_t> spread(int64_t count, int64_t n)
{
    std::vector<int64_t> out;
    n = std::min(n, count);
    for (int64_t i = 0; i < n; ++i)
        out.push_back(i * count / n);
    return out;
}

void countLabels(const std::vector<int64_t>& labels, DataPreview& out)
{
    for (const int64_t l : labels) {
        if (l < 0)
            continue;
        if (l >= out.classCounts.size())
            out.classCounts.resize(int(l + 1));
        ++out.classCounts[int(l)];
    }
}

void previewImages(const PreviewRequest& request, const Graph* model, const CancelToken& cancel, DataPreview& out)
{
    const bool list = request.spec.rfind("imagelist:", 0) == 0;
    const std::string path = request.spec.substr(request.spec.find(':') + 1);
    if (path.empty())
        fail("data ", quoted(request.spec), ": expected images:DIR or imagelist:FILE");
    if (request.preprocess.empty())
        fail("data ", quoted(request.spec), ": images need a preprocessing pipeline (a preset or items)");
    const ImageListing listing = list ? readImageList(path, std::nullopt) : listImageFolder(path, std::nullopt);
    out.count = int64_t(listing.files.size());
    for (const std::string& c : listing.classes)
        out.classes << QString::fromStdString(c);
    if (listing.labels)
        countLabels(*listing.labels, out);

    const Preprocess given = parsePreprocess(request.preprocess);
    Shape modelSample(3, -1);
    std::string what = "the preview";
    if (model && !model->inputs.empty()) {
        const ValueInfo& in = model->inputs.front();
        what = str("input ", quoted(in.name), " ", in.text());
        modelSample = imageSampleShape(in, request.inputShapes); // as loadImageDataset
    }
    const Preprocess p = resolvePreprocess(given, modelSample, what);
    out.pipeline = QString::fromStdString(p.text());
    out.sampleShape = p.sampleShape();
    const int64_t per = numelOf(out.sampleShape);

    const std::vector<int64_t> statsAt = spread(out.count, request.statsSamples);
    const std::vector<int64_t> thumbsAt = spread(out.count, request.thumbs);
    std::set<int64_t> all(statsAt.begin(), statsAt.end());
    all.insert(thumbsAt.begin(), thumbsAt.end());
    Shape batchShape = out.sampleShape;
    batchShape.insert(batchShape.begin(), int64_t(statsAt.size()));
    Tensor batch(DType::Float, batchShape);
    std::vector<float> sample(std::size_t(per), 0.0f);
    const std::filesystem::path root = list ? std::filesystem::path(path).parent_path() : std::filesystem::path(path);
    for (const int64_t i : all) {
        cancel.check();
        const std::string& file = listing.files[std::size_t(i)];
        const Image im = readImage(file);
        preprocessImage(im, p, sample.data());
        if (const auto at = std::find(statsAt.begin(), statsAt.end(), i); at != statsAt.end())
            std::memcpy(batch.data<float>().data() + (at - statsAt.begin()) * per, sample.data(),
                std::size_t(per) * sizeof(float));
        if (std::find(thumbsAt.begin(), thumbsAt.end(), i) != thumbsAt.end()) {
            DataPreview::Thumb t;
            t.before = fitted(toQImage(im), request.thumbSide);
            t.after = fitted(sampleImage(sample.data(), out.sampleShape, p.nhwc, p.bgr), request.thumbSide);
            t.file = QString::fromStdString(std::filesystem::path(file).lexically_relative(root).generic_string());
            t.label = listing.labels ? (*listing.labels)[std::size_t(i)] : -1;
            out.thumbs << t;
        }
    }
    out.sampled = int64_t(statsAt.size());
    out.channels = channelStats(batch, p.nhwc ? 3 : 1);
    if (model && !p.nhwc)
        out.firstLayer = firstLayerFit(*model, batch);
    out.channelNames = p.bgr ? QStringList {QStringLiteral("B"), QStringLiteral("G"), QStringLiteral("R")}
                             : QStringList {QStringLiteral("R"), QStringLiteral("G"), QStringLiteral("B")};
}

void previewArrays(const PreviewRequest& request, const Graph* model, DataPreview& out)
{
    if (!model)
        fail("data ", quoted(request.spec), ": open a model to preview arrays (they are read for its inputs)");
    DataOptions o;
    o.spec = request.spec;
    o.inputShapes = request.inputShapes;
    const Dataset d = loadDataset(o, *model);
    out.count = d.count();
    if (d.labels)
        countLabels(*d.labels, out);
    const DataInput& in = d.inputs.front();
    if (in.samples.dtype != DType::Float)
        fail("data ", quoted(request.spec), ": input ", quoted(in.name), " is ", dtypeName(in.samples.dtype),
            "; statistics are of float inputs");
    out.sampleShape = in.sampleShape();
    const int64_t n = std::min<int64_t>(out.count, request.statsSamples);
    const Tensor batch = in.batch(0, n);
    const Tensor first = samplesFirst(batch, in.batchAxis);
    const Shape& s = out.sampleShape;
    const bool chw = s.size() == 3 && (s[0] == 1 || s[0] == 3);
    out.channels = channelStats(first, chw ? 1 : -1);
    if (in.batchAxis == 0 && in.name == model->inputs.front().name)
        out.firstLayer = firstLayerFit(*model, first);
    if (chw && s[0] == 3)
        out.channelNames = {QStringLiteral("0"), QStringLiteral("1"), QStringLiteral("2")};
    else
        out.channelNames = {QStringLiteral("all")};
    out.sampled = n;
    if (chw || s.size() == 2) {
        const int64_t per = numelOf(s);
        const Shape shown = s.size() == 2 ? Shape {1, s[0], s[1]} : s;
        for (int64_t i = 0; i < std::min<int64_t>(n, request.thumbs); ++i) {
            DataPreview::Thumb t;
            t.after = fitted(sampleImage(first.data<float>().data() + i * per, shown, false, false), request.thumbSide);
            t.file = QStringLiteral("#%1").arg(i);
            t.label = d.labels && std::size_t(i) < d.labels->size() ? (*d.labels)[std::size_t(i)] : -1;
            out.thumbs << t;
        }
    }
}

} // namespace

std::optional<FirstLayerFit> firstLayerFit(const Graph& model, const Tensor& batch)
{
    if (model.inputs.empty() || batch.shape.size() != 4 || batch.dtype != DType::Float)
        return std::nullopt;
    const std::string& x = model.inputs.front().name;
    for (const int ci : model.consumersOf(x)) {
        const Node& conv = model.nodes[std::size_t(ci)];
        if (conv.opType != "Conv" || conv.input(0) != x || conv.outputs.empty())
            continue;
        const Tensor* w = model.constant(conv.input(1));
        const Tensor* b = conv.input(2).empty() ? nullptr : model.constant(conv.input(2));
        const auto& users = model.consumersOf(conv.outputs.front());
        if (!w || w->dtype != DType::Float || w->shape.size() != 4 || users.size() != 1)
            continue;
        const Node& bn = model.nodes[std::size_t(users.front())];
        if (bn.opType != "BatchNormalization" || bn.input(0) != conv.outputs.front())
            continue;
        const Tensor* runMean = model.constant(bn.input(3));
        const Tensor* runVar = model.constant(bn.input(4));
        const int64_t outC = w->shape[0], groupC = w->shape[1], kh = w->shape[2], kw = w->shape[3];
        const int64_t group = conv.attrInt("group", 1);
        const int64_t n = batch.shape[0], inC = batch.shape[1], h = batch.shape[2], wd = batch.shape[3];
        if (!runMean || !runVar || runMean->numel() != outC || runVar->numel() != outC ||
            conv.attrString("auto_pad", "NOTSET") != "NOTSET" || group < 1 || inC != groupC * group ||
            outC % group != 0 || (b && b->numel() != outC))
            return std::nullopt;
        const auto strides = conv.attrInts("strides", {1, 1}), dil = conv.attrInts("dilations", {1, 1});
        const auto pads = conv.attrInts("pads", {0, 0, 0, 0});
        if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4)
            return std::nullopt;
        const int64_t oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0] + 1;
        const int64_t ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1] + 1;
        if (oh <= 0 || ow <= 0)
            return std::nullopt;
        const std::vector<float> wv = w->toFloat(), bv = b ? b->toFloat() : std::vector<float>(std::size_t(outC), 0);
        const std::vector<float> mu = runMean->toFloat(), var = runVar->toFloat();
        const float eps = bn.attrFloat("epsilon", 1e-5f);
        const auto xv = batch.data<float>();
        // Up to 8 samples, 256 output positions each on a regular grid: enough for a median.
        const int64_t samples = std::min<int64_t>(n, 8);
        const int64_t step = std::max<int64_t>(1, int64_t(std::sqrt(double(oh * ow) / 256.0)));
        std::vector<double> sum(std::size_t(outC), 0), sq(std::size_t(outC), 0);
        int64_t positions = 0;
        for (int64_t s = 0; s < samples; ++s)
            for (int64_t oy = step / 2; oy < oh; oy += step)
                for (int64_t ox = step / 2; ox < ow; ox += step) {
                    if (s == 0)
                        ++positions;
                    for (int64_t o = 0; o < outC; ++o) {
                        const int64_t g = o / (outC / group);
                        double acc = bv[std::size_t(o)];
                        for (int64_t c = 0; c < groupC; ++c)
                            for (int64_t ky = 0; ky < kh; ++ky) {
                                const int64_t iy = oy * strides[0] - pads[0] + ky * dil[0];
                                if (iy < 0 || iy >= h)
                                    continue;
                                for (int64_t kx = 0; kx < kw; ++kx) {
                                    const int64_t ix = ox * strides[1] - pads[1] + kx * dil[1];
                                    if (ix < 0 || ix >= wd)
                                        continue;
                                    acc += double(wv[std::size_t(((o * groupC + c) * kh + ky) * kw + kx)]) *
                                        xv[std::size_t(((s * inC + g * groupC + c) * h + iy) * wd + ix)];
                                }
                            }
                        sum[std::size_t(o)] += acc;
                        sq[std::size_t(o)] += acc * acc;
                    }
                }
        const double count = double(samples * positions);
        std::vector<double> spread, shift;
        for (int64_t o = 0; o < outC; ++o) {
            const double sd = std::sqrt(double(var[std::size_t(o)]) + eps);
            const double m = sum[std::size_t(o)] / count;
            spread.push_back(std::sqrt(std::max(0.0, sq[std::size_t(o)] / count - m * m)) / sd);
            shift.push_back(std::abs(m - mu[std::size_t(o)]) / sd);
        }
        auto median = [](std::vector<double> v) {
            std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
            return v[v.size() / 2];
        };
        FirstLayerFit fit;
        fit.layer = QString::fromStdString(conv.name);
        fit.spreadRatio = median(spread);
        fit.meanShift = median(shift);
        fit.samples = samples;
        fit.positions = positions;
        return fit;
    }
    return std::nullopt;
}

QString firstLayerWarning(const FirstLayerFit& fit)
{
    const bool spread = fit.spreadRatio > kFirstLayerSpreadLimit || fit.spreadRatio < 1 / kFirstLayerSpreadLimit;
    if (!spread && fit.meanShift <= kFirstLayerShiftLimit)
        return {};
    return QStringLiteral("The first layer (%1) sees this data unlike its training data: its outputs spread %2\u00D7 "
                          "and sit %3 std from what its BatchNormalization recorded (median over channels). Check the "
                          "scale, mean and std.")
        .arg(fit.layer, num(fit.spreadRatio), num(fit.meanShift));
}

InputExpectation expectedInput(const Graph* model, const std::string& presetName)
{
    InputExpectation e;
    if (model) {
        const auto means = metadataFloats(*model, "quantstudio.mean");
        const auto stds = metadataFloats(*model, "quantstudio.std");
        const bool shifts = means && std::any_of(means->begin(), means->end(), [](float v) { return v != 0; });
        const bool scales = stds && std::any_of(stds->begin(), stds->end(), [](float v) { return v != 1; });
        if (shifts || scales) {
            e.normalized = true;
            e.source = QStringLiteral("the model's metadata (quantstudio.mean/std)");
            return e;
        }
    }
    if (!presetName.empty()) {
        const Preprocess p = parsePreprocess(presetName);
        if (!p.mean.empty() || !p.std.empty()) {
            e.normalized = true;
            e.source = QStringLiteral("the %1 preset").arg(QString::fromStdString(presetName));
        }
    }
    return e;
}

QStringList inputWarnings(
    const std::vector<ChannelStats>& channels, const QStringList& names, const InputExpectation& expectation)
{
    QStringList out;
    if (channels.empty())
        return out;
    auto name = [&](std::size_t c) { return int(c) < names.size() ? names[int(c)] : QString::number(c); };
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const ChannelStats& c : channels) {
        lo = std::min(lo, c.min);
        hi = std::max(hi, c.max);
    }
    if (lo >= 0 && hi > 2) {
        out << QStringLiteral("Values reach %1 with none below 0: the pixels look unscaled (0..255). Set scale=1/255 "
                              "and the mean/std the model was trained with.")
                   .arg(num(hi));
        return out;
    }
    if (!expectation.normalized)
        return out;
    if (lo >= 0 && hi <= 1.0001) {
        out << QStringLiteral("Values lie in 0..1 (channel %1 mean %2), but %3 expects normalized input (per-channel "
                              "mean about 0, std about 1): set the mean and std.")
                   .arg(name(0), num(channels[0].mean), expectation.source);
        return out;
    }
    for (std::size_t c = 0; c < channels.size(); ++c)
        if (std::fabs(channels[c].mean) > 1.5 || channels[c].std < 0.1 || channels[c].std > 3)
            out << QStringLiteral("Channel %1 has mean %2 and std %3; %4 expects normalized input (mean within "
                                  "\u00B11.5, std 0.1..3): check the mean, std and scale.")
                       .arg(name(c), num(channels[c].mean), num(channels[c].std), expectation.source);
    return out;
}

std::vector<ChannelStats> channelStats(const Tensor& batch, int channelAxis)
{
    const auto x = batch.data<float>();
    const Shape& s = batch.shape;
    int64_t channels = 1, inner = int64_t(x.size()), outer = 1;
    if (channelAxis >= 0 && channelAxis < int(s.size())) {
        channels = s[std::size_t(channelAxis)];
        outer = numelOf(Shape(s.begin(), s.begin() + channelAxis));
        inner = numelOf(Shape(s.begin() + channelAxis + 1, s.end()));
    }
    std::vector<ChannelStats> out(std::size_t(std::max<int64_t>(channels, 0)));
    std::vector<double> sum(out.size(), 0), sq(out.size(), 0);
    std::vector<int64_t> n(out.size(), 0);
    for (auto& c : out) {
        c.min = std::numeric_limits<double>::infinity();
        c.max = -c.min;
    }
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            ChannelStats& st = out[std::size_t(c)];
            const float* p = x.data() + (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; ++i) {
                const double v = p[i];
                sum[std::size_t(c)] += v;
                sq[std::size_t(c)] += v * v;
                st.min = std::min(st.min, v);
                st.max = std::max(st.max, v);
            }
            n[std::size_t(c)] += inner;
        }
    for (std::size_t c = 0; c < out.size(); ++c) {
        if (n[c] == 0) {
            out[c] = ChannelStats {};
            continue;
        }
        out[c].mean = sum[c] / double(n[c]);
        out[c].std = std::sqrt(std::max(0.0, sq[c] / double(n[c]) - out[c].mean * out[c].mean));
    }
    return out;
}

QImage sampleImage(const float* sample, const Shape& shape, bool hwc, bool bgr)
{
    if (shape.size() != 3)
        return {};
    const int64_t c = hwc ? shape[2] : shape[0], h = hwc ? shape[0] : shape[1], w = hwc ? shape[1] : shape[2];
    if ((c != 1 && c != 3) || h <= 0 || w <= 0)
        return {};
    const int64_t n = c * h * w;
    const auto [lo, hi] = std::minmax_element(sample, sample + n);
    const float range = *hi > *lo ? *hi - *lo : 1.0f;
    QImage out(int(w), int(h), QImage::Format_RGB888);
    for (int64_t y = 0; y < h; ++y) {
        uchar* row = out.scanLine(int(y));
        for (int64_t x = 0; x < w; ++x)
            for (int k = 0; k < 3; ++k) {
                const int64_t ch = c == 1 ? 0 : bgr ? 2 - k : k;
                const float v = hwc ? sample[(y * w + x) * c + ch] : sample[(ch * h + y) * w + x];
                row[x * 3 + k] = uchar(std::clamp(std::lround((v - *lo) / range * 255.0f), 0L, 255L));
            }
    }
    return out;
}

DataPreview previewData(const PreviewRequest& request, const Graph* model, const CancelToken& cancel)
{
    DataPreview out;
    out.spec = QString::fromStdString(request.spec);
    if (isImageDataSpec(request.spec))
        previewImages(request, model, cancel, out);
    else
        previewArrays(request, model, out);
    out.expectation = expectedInput(model, isImageDataSpec(request.spec) ? request.presetName : std::string());
    out.warnings = inputWarnings(out.channels, out.channelNames, out.expectation);
    if (out.firstLayer)
        if (const QString w = firstLayerWarning(*out.firstLayer); !w.isEmpty())
            out.warnings << w;
    return out;
}

} // namespace qs::ui
