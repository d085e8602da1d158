#include "data/dataset.h"

#include "data/idx.h"
#include "data/npy.h"
#include "data/text.h"
#include "util/error.h"
#include "util/hash.h"

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

namespace fs = std::filesystem;

namespace qs {

namespace {
Tensor rows(const Tensor& all, int64_t start, int64_t n, const std::string& path)
{
    const int64_t count = all.shape.empty() ? 0 : all.shape[0];
    if (start < 0 || n < 0 || start + n > count)
        fail("dataset ", quoted(path), ": batch [", start, ", ", start + n, ") is outside 0..", count);
    Shape shape = all.shape;
    shape[0] = n;
    Tensor out(all.dtype, shape);
    const std::size_t per = count > 0 ? all.bytes.size() / std::size_t(count) : 0;
    if (n > 0)
        std::memcpy(out.bytes.data(), all.bytes.data() + std::size_t(start) * per, std::size_t(n) * per);
    return out;
}
} // namespace

Tensor Dataset::batch(int64_t start, int64_t n) const { return rows(inputs, start, n, path); }

Tensor Dataset::targetBatch(int64_t start, int64_t n) const
{
    if (!targets)
        fail("dataset ", quoted(path), ": has no targets (only text:FILE data has)");
    return rows(*targets, start, n, path);
}

std::optional<std::vector<float>> metadataFloats(const Graph& model, const std::string& key)
{
    auto it = model.metadata.find(key);
    if (it == model.metadata.end())
        return std::nullopt;
    std::vector<float> out;
    std::stringstream ss(it->second);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        float v = std::strtof(item.c_str(), &end);
        if (item.empty() || *end != 0)
            fail(model.sourcePath, ": metadata ", key, " = ", quoted(it->second), " is not a comma list of numbers");
        out.push_back(v);
    }
    return out;
}

std::string findIdxLabels(const std::string& imagesPath)
{
    fs::path p(imagesPath);
    std::string name = p.filename().string();
    auto pos = name.find("images-idx3");
    if (pos == std::string::npos)
        return {};
    name.replace(pos, std::strlen("images-idx3"), "labels-idx1");
    fs::path candidate = p.parent_path() / name;
    if (fs::exists(candidate))
        return candidate.string();
    // gzipped images next to plain labels, or the other way round
    std::string alt = name.size() > 3 && name.ends_with(".gz") ? name.substr(0, name.size() - 3) : name + ".gz";
    candidate = p.parent_path() / alt;
    return fs::exists(candidate) ? candidate.string() : std::string();
}

namespace {

Shape sampleShapeOf(const Graph& model)
{
    if (model.inputs.empty())
        fail(model.sourcePath, ": the model has no inputs");
    const ValueInfo& in = model.inputs.front();
    Shape s = in.shape();
    if (s.empty())
        fail(model.sourcePath, ": input ", quoted(in.name), " has no known shape");
    s.erase(s.begin());
    for (int64_t d : s)
        if (d < 0)
            fail(model.sourcePath, ": input ", quoted(in.name), " has unknown non-batch dimensions ", shapeString(in.shape()));
    return s;
}

std::vector<int64_t> readLabels(const std::string& path, int64_t want)
{
    Tensor t = path.ends_with(".npy") ? readNpy(path) : readIdx(path);
    if (t.shape.size() != 1 && !(t.shape.size() == 2 && t.shape[1] == 1))
        fail(path, ": labels must be one-dimensional, got shape ", shapeString(t.shape));
    std::vector<int64_t> labels = t.toInt64();
    if (int64_t(labels.size()) != want)
        fail(path, ": has ", labels.size(), " labels for ", want, " samples");
    return labels;
}

} // namespace

Dataset loadDataset(const DataOptions& options, const Graph& model)
{
    if (options.spec.rfind("text:", 0) == 0) {
        const std::string path = options.spec.substr(5);
        if (path.empty())
            fail("data ", quoted(options.spec), ": expected text:FILE");
        if (options.mean || options.std || options.labelsPath)
            fail("data ", quoted(options.spec), ": --mean, --std and --labels do not apply to text data");
        Dataset ds = loadTextDataset(path, textContextFor(model, options.context), options.limit);
        ds.path = options.spec;
        // The window length changes the tensors fed, so it is part of the data's identity.
        ds.hash =
            sha256Hex(ds.hash + "#context=" + std::to_string(ds.inputs.shape.size() == 2 ? ds.inputs.shape[1] : 0));
        return ds;
    }
    Dataset ds;
    ds.path = options.spec;
    Shape sample = sampleShapeOf(model);
    const int64_t perSample = numelOf(sample);
    Tensor raw;
    bool scale255 = false;

    if (options.spec.rfind("random:", 0) == 0) {
        ds.kind = "random";
        const std::string count = options.spec.substr(7);
        int64_t n = 0;
        const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
        if (count.empty() || ec == std::errc::invalid_argument || end != count.data() + count.size())
            fail("data ", quoted(options.spec), ": expected random:N with N > 0");
        // Bounded so that N samples of the input shape cannot wrap around (2^31 values, 8 GiB).
        const int64_t maxValues = int64_t(1) << 31;
        if (perSample <= 0)
            fail("data ", quoted(options.spec), ": the model input shape ", shapeString(sample),
                " has no fixed sample size");
        if (ec == std::errc::result_out_of_range || n <= 0 || n > maxValues / perSample)
            fail("data ", quoted(options.spec), ": random:N needs N in 1..", maxValues / perSample, " (samples of ",
                shapeString(sample), ")");
        raw = Tensor(DType::Float, {n * perSample});
        std::mt19937_64 rng(options.seed);
        std::uniform_real_distribution<float> uni(0.f, 1.f);
        for (float& v : raw.data<float>())
            v = uni(rng);
        ds.hash = sha256Hex(options.spec + "#" + std::to_string(options.seed));
    } else {
        if (!fs::exists(options.spec))
            fail(options.spec, ": no such data file");
        if (options.spec.ends_with(".npy")) {
            ds.kind = "npy";
            raw = readNpy(options.spec);
        } else {
            ds.kind = "idx";
            raw = readIdx(options.spec);
        }
        scale255 = raw.dtype == DType::UInt8;
        ds.hash = sha256File(options.spec);
    }

    int64_t total = raw.numel();
    if (perSample <= 0 || total % perSample != 0)
        fail(options.spec, ": ", total, " values do not split into samples of the model input shape ",
             shapeString(sample), " (", perSample, " values each)");
    int64_t n = total / perSample;
    if (!raw.shape.empty() && ds.kind != "random" && raw.shape[0] != n)
        fail(options.spec, ": sample shape ", shapeString(Shape(raw.shape.begin() + 1, raw.shape.end())),
             " does not match the model input ", shapeString(sample));

    // Labels: explicit, or beside an IDX file by the standard name.
    std::string labelsPath = options.labelsPath.value_or(ds.kind == "idx" ? findIdxLabels(options.spec) : "");
    if (!labelsPath.empty()) {
        ds.labels = readLabels(labelsPath, n);
        ds.labelsPath = labelsPath;
        ds.hash = sha256Hex(ds.hash + sha256File(labelsPath));
    }

    int64_t keep = options.limit >= 0 ? std::min(options.limit, n) : n;
    if (ds.labels)
        ds.labels->resize(std::size_t(keep));
    Shape shape = sample;
    shape.insert(shape.begin(), keep);
    ds.inputs = Tensor(DType::Float, shape);
    std::vector<float> values = raw.toFloat();
    auto out = ds.inputs.data<float>();
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = scale255 ? values[i] / 255.f : values[i];

    ds.mean = options.mean.value_or(metadataFloats(model, "quantstudio.mean").value_or(std::vector<float>{}));
    ds.std = options.std.value_or(metadataFloats(model, "quantstudio.std").value_or(std::vector<float>{}));
    int64_t channels = sample.size() >= 2 ? sample[0] : 1;
    auto checkLen = [&](const std::vector<float>& v, const char* what) {
        if (!v.empty() && v.size() != 1 && int64_t(v.size()) != channels)
            fail("--", what, ": ", v.size(), " values for ", channels, " channels");
    };
    checkLen(ds.mean, "mean");
    checkLen(ds.std, "std");
    for (float s : ds.std)
        if (!(s > 0))
            fail("--std: values must be positive");
    if (!ds.mean.empty() || !ds.std.empty()) {
        int64_t inner = sample.size() >= 2 ? perSample / channels : perSample;
        for (int64_t s = 0; s < keep; ++s)
            for (int64_t c = 0; c < channels; ++c) {
                float m = ds.mean.empty() ? 0.f : ds.mean[ds.mean.size() == 1 ? 0 : std::size_t(c)];
                float d = ds.std.empty() ? 1.f : ds.std[ds.std.size() == 1 ? 0 : std::size_t(c)];
                float* p = out.data() + (s * perSample + c * inner);
                for (int64_t i = 0; i < inner; ++i)
                    p[i] = (p[i] - m) / d;
            }
        // Normalized tensors are other data than the file's: part of the identity too.
        auto joined = [](const std::vector<float>& v) {
            std::string out;
            char buf[32];
            for (float x : v) {
                std::snprintf(buf, sizeof buf, "%.9g,", double(x));
                out += buf;
            }
            return out;
        };
        ds.hash = sha256Hex(ds.hash + "#mean=" + joined(ds.mean) + "#std=" + joined(ds.std));
    }
    return ds;
}

Dataset loadDataset(const std::string& spec, int64_t limit, const Graph& model)
{
    DataOptions d;
    d.spec = spec;
    d.limit = limit;
    return loadDataset(d, model);
}

} // namespace qs
