#include "data/dataset.h"

#include "data/idx.h"
#include "data/image_dataset.h"
#include "data/input_binding.h"
#include "data/npy.h"
#include "data/npz.h"
#include "data/text.h"
#include "util/error.h"
#include "util/hash.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
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

// Moves the leading sample axis of `rows` ([n, s0, s1, ...]) to `axis` of the model's layout.
Tensor moveBatchAxis(const Tensor& rows, int axis)
{
    if (axis <= 0)
        return rows;
    const Shape& in = rows.shape;
    Shape shape(in.begin() + 1, in.end());
    shape.insert(shape.begin() + axis, in[0]);
    Tensor out(rows.dtype, shape);
    const std::size_t outer = std::size_t(numelOf(Shape(in.begin() + 1, in.begin() + 1 + axis)));
    const std::size_t inner = std::size_t(numelOf(Shape(in.begin() + 1 + axis, in.end()))) * elementSize(rows.dtype);
    const std::size_t n = std::size_t(in[0]);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t o = 0; o < outer; ++o)
            std::memcpy(out.bytes.data() + (o * n + i) * inner, rows.bytes.data() + (i * outer + o) * inner, inner);
    return out;
}

} // namespace

Tensor DataInput::batch(int64_t start, int64_t n) const
{
    Tensor out;
    if (stream) {
        const int64_t count = samples.shape.empty() ? 0 : samples.shape[0];
        if (start < 0 || n < 0 || start + n > count)
            fail("dataset ", quoted(source), ": batch [", start, ", ", start + n, ") is outside 0..", count);
        out = stream->read(streamStart + start, n);
    } else {
        out = rows(samples, start, n, source);
    }
    if (batchAxis < 0) {
        // One value for the whole batch: every sample of it must carry the same.
        const std::size_t per = n > 0 ? out.bytes.size() / std::size_t(n) : 0;
        for (int64_t i = 1; i < n; ++i)
            if (std::memcmp(out.bytes.data(), out.bytes.data() + std::size_t(i) * per, per) != 0)
                fail("input ", quoted(name), " has no batch dimension and samples ", start, " and ", start + i,
                    " differ; run with --batch 1");
        Tensor one(out.dtype, sampleShape());
        if (per > 0)
            std::memcpy(one.bytes.data(), out.bytes.data(), per);
        out = std::move(one);
    } else {
        out = moveBatchAxis(out, batchAxis);
    }
    out.name = name;
    return out;
}

Tensor DataInput::all() const
{
    if (!stream)
        return samples;
    Tensor out = stream->read(streamStart, samples.shape.empty() ? 0 : samples.shape[0]);
    out.name.clear();
    return out;
}

Shape DataInput::batchShape(int64_t n) const
{
    Shape shape = sampleShape();
    if (batchAxis >= 0)
        shape.insert(shape.begin() + batchAxis, n);
    return shape;
}

int64_t Dataset::count() const
{
    return inputs.empty() || inputs.front().samples.shape.empty() ? 0 : inputs.front().samples.shape[0];
}

int64_t Dataset::heldBytes() const
{
    int64_t bytes = labels ? int64_t(labels->size() * sizeof(int64_t)) : 0;
    for (const DataInput& in : inputs)
        bytes += int64_t(in.samples.bytes.size());
    if (targets)
        bytes += int64_t(targets->bytes.size());
    return bytes;
}

const Tensor& Dataset::first() const
{
    if (inputs.empty())
        fail("dataset ", quoted(path), ": has no inputs");
    if (!inputs.front().stream)
        return inputs.front().samples;
    if (!firstRead_)
        firstRead_ = std::make_shared<const Tensor>(inputs.front().all());
    return *firstRead_;
}

std::vector<Tensor> Dataset::batch(int64_t start, int64_t n) const
{
    std::vector<Tensor> out;
    for (const DataInput& in : inputs)
        out.push_back(in.batch(start, n));
    return out;
}

std::map<std::string, Shape> Dataset::inputShapes(int64_t n) const
{
    std::map<std::string, Shape> out;
    for (const DataInput& in : inputs)
        out[in.name] = in.batchShape(n);
    return out;
}

std::map<std::string, Shape> Dataset::sampleShapes() const
{
    std::map<std::string, Shape> out;
    for (const DataInput& in : inputs)
        out[in.name] = in.sampleShape();
    return out;
}

Tensor Dataset::targetBatch(int64_t start, int64_t n) const
{
    if (!targets)
        fail("dataset ", quoted(path), ": has no targets (only text:FILE data has)");
    if (targetStream) {
        if (start < 0 || n < 0 || start + n > targets->shape.at(0))
            fail("dataset ", quoted(path), ": targets [", start, ", ", start + n, ") are outside 0..",
                targets->shape[0]);
        return targetStream->read(targetStart + start, n);
    }
    return rows(*targets, start, n, path);
}

Dataset Dataset::slice(int64_t start, int64_t n) const
{
    Dataset d = *this;
    d.firstRead_.reset();
    for (DataInput& in : d.inputs) {
        if (!in.stream) {
            in.samples = rows(in.samples, start, n, path);
            continue;
        }
        if (start < 0 || n < 0 || start + n > in.samples.shape.at(0))
            fail("dataset ", quoted(path), ": samples [", start, ", ", start + n, ") are outside 0..",
                in.samples.shape[0]);
        in.streamStart += start;
        in.samples.shape[0] = n;
    }
    if (targets && targetStream) {
        if (start < 0 || n < 0 || start + n > targets->shape.at(0))
            fail("dataset ", quoted(path), ": targets [", start, ", ", start + n, ") are outside 0..",
                targets->shape[0]);
        d.targetStart += start;
        d.targets->shape[0] = n;
    } else if (targets) {
        d.targets = targetBatch(start, n);
    }
    if (labels) {
        if (start < 0 || n < 0 || start + n > int64_t(labels->size()))
            fail("dataset ", quoted(path), ": labels [", start, ", ", start + n, ") are outside 0..", labels->size());
        d.labels = std::vector<int64_t>(labels->begin() + start, labels->begin() + start + n);
    }
    return d;
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

const ValueInfo& firstInput(const Graph& model)
{
    if (model.inputs.empty())
        fail(model.sourcePath, ": the model has no inputs");
    return model.inputs.front();
}

// The model's shape of one sample of `in`: its shape without the batch axis.
Shape modelSampleShape(const ValueInfo& in, int axis)
{
    Shape s = in.shape();
    if (axis >= 0 && std::size_t(axis) < s.size())
        s.erase(s.begin() + axis);
    return s;
}

DType inputType(const ValueInfo& in)
{
    return in.dtype == DType::Undefined ? DType::Float : in.dtype;
}

bool isIntegral(DType t)
{
    switch (t) {
    case DType::UInt8:
    case DType::Int8:
    case DType::UInt16:
    case DType::Int16:
    case DType::Int32:
    case DType::UInt32:
    case DType::Int64:
    case DType::UInt64:
    case DType::Bool:
        return true;
    default:
        return false;
    }
}

// `values` (row-major) as a tensor of `type`.
template<typename V>
Tensor filled(DType type, const Shape& shape, const std::vector<V>& values, const std::string& what)
{
    Tensor t(type, shape);
    auto put = [&](auto tag) {
        using T = decltype(tag);
        auto d = t.data<T>();
        for (std::size_t i = 0; i < d.size(); ++i)
            d[i] = T(values[i]);
    };
    switch (type) {
    case DType::Float:
        put(float {});
        break;
    case DType::Double:
        put(double {});
        break;
    case DType::Int64:
        put(int64_t {});
        break;
    case DType::Int32:
        put(int32_t {});
        break;
    case DType::Int8:
        put(int8_t {});
        break;
    case DType::UInt8:
        put(uint8_t {});
        break;
    case DType::Bool:
        put(bool {});
        break;
    default:
        fail(what, ": inputs of type ", dtypeName(type), " are not supported by the data loader");
    }
    return t;
}

// An array's samples as the model input's type: floating inputs take any number
// (uint8 scaled to [0,1] as images are), integer inputs integers only.
Tensor converted(const Tensor& a, const ValueInfo& in, const std::string& what)
{
    const DType want = inputType(in);
    if (a.dtype == want)
        return a;
    if (isFloating(want)) {
        std::vector<float> v = a.toFloat();
        if (a.dtype == DType::UInt8)
            for (float& x : v)
                x /= 255.f;
        return filled(want, a.shape, v, what);
    }
    if (!isIntegral(a.dtype)) { // floats that hold whole numbers (token ids saved as float) are fine
        const std::vector<float> v = a.toFloat();
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v[i] != std::floor(v[i]))
                fail(what, " is ", dtypeName(a.dtype), " with value ", v[i], " at ", i, "; input ", quoted(in.name),
                    " takes ", dtypeName(want));
        return filled(want, a.shape, v, what);
    }
    return filled(want, a.shape, a.toInt64(), what);
}

DataInput fromArray(const Graph& model, const ValueInfo& in, Tensor a, const std::string& source,
    const std::map<std::string, Shape>& given)
{
    DataInput d;
    d.name = in.name;
    d.source = source;
    d.batchAxis = batchAxisOf(model, in);
    if (a.shape.empty())
        fail(source, ": a 0-d array holds no samples (input ", quoted(in.name), " takes [N, ...])");
    if (in.dims) {
        const Shape want = modelSampleShape(in, d.batchAxis);
        const Shape got(a.shape.begin() + 1, a.shape.end());
        bool fits = want.size() == got.size();
        for (std::size_t i = 0; fits && i < want.size(); ++i)
            fits = want[i] < 0 || want[i] == got[i];
        if (!fits)
            fail(source, ": samples of shape ", shapeString(got), " do not fit input ", quoted(in.name), " ", in.text(),
                d.batchAxis < 0 ? " (no batch dimension: one sample is the whole input)"
                                : " (a sample is the input without its batch dimension)");
    }
    const Shape got(a.shape.begin() + 1, a.shape.end());
    const Shape bound = bindSampleShape(model, in, d.batchAxis, given, got, source);
    if (bound != got)
        fail(source, ": samples of shape ", shapeString(got), " do not fit input ", quoted(in.name), " ", in.text(),
            " as --input-shape ", in.name, "=", inputShapeText(given.count(in.name) ? given.at(in.name) : Shape {}),
            " binds it");
    d.samples = converted(a, in, source);
    return d;
}

// The vocabulary size when `value` picks rows of a constant table: a Gather on an
// initializer, possibly through a cast or reshape.
int64_t vocabularyOf(const Graph& model, const std::string& value, int depth = 0)
{
    for (int c : model.consumersOf(value)) {
        const Node& n = model.nodes[std::size_t(c)];
        if (n.opType == "Gather" && n.input(1) == value && n.attrInt("axis", 0) == 0) {
            const Tensor* table = model.constant(n.input(0));
            if (table && !table->shape.empty() && table->shape[0] > 0)
                return table->shape[0];
        }
        static const std::set<std::string> passes = {"Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"};
        if (depth < 4 && passes.count(n.opType) && n.input(0) == value && !n.outputs.empty())
            if (int64_t v = vocabularyOf(model, n.outputs.front(), depth + 1))
                return v;
    }
    return 0;
}

// At most 2^31 random values (8 GiB as float32).
constexpr int64_t kMaxRandomValues = int64_t(1) << 31;

// random:N for one input within its type: floats uniform in [0,1), token ids within
// the embedding's rows, other integers (masks) ones. An input without a batch
// dimension gets one draw shared by all samples.
DataInput randomInput(
    const Graph& model, const ValueInfo& in, int64_t n, std::mt19937_64& rng, const std::map<std::string, Shape>& given)
{
    DataInput d;
    d.name = in.name;
    d.batchAxis = batchAxisOf(model, in);
    const Shape sample = bindSampleShape(model, in, d.batchAxis, given);
    Shape shape = sample;
    shape.insert(shape.begin(), n);
    const int64_t per = numelOf(sample);
    // Bounded so that N samples of the input shape cannot wrap around.
    if (per <= 0 || n > kMaxRandomValues / per)
        fail("data random:", n, ": input ", quoted(in.name), " takes ", shapeString(sample),
            " per sample; random:N needs N in 1..", per > 0 ? kMaxRandomValues / per : 0);
    const int64_t draws = d.batchAxis < 0 ? per : n * per;
    const DType type = inputType(in);
    std::vector<double> v(std::size_t(n * per));
    if (isFloating(type)) {
        std::uniform_real_distribution<float> uni(0.f, 1.f);
        for (int64_t i = 0; i < draws; ++i)
            v[std::size_t(i)] = uni(rng);
        d.source = "random uniform [0,1)";
    } else if (const int64_t vocab = vocabularyOf(model, in.name)) {
        std::uniform_int_distribution<int64_t> ids(0, vocab - 1);
        for (int64_t i = 0; i < draws; ++i)
            v[std::size_t(i)] = double(ids(rng));
        d.source = str("random ids < ", vocab);
    } else {
        if (d.batchAxis < 0)
            fail("input ", quoted(in.name), " (", dtypeName(type), " ", in.text(),
                ") takes one value per run: give it with --input-value ", in.name, "=VALUE");
        std::fill(v.begin(), v.end(), 1.0);
        d.source = "ones";
    }
    for (int64_t i = draws; i < n * per; ++i) // no batch dimension: every sample the same
        v[std::size_t(i)] = v[std::size_t(i % per)];
    d.samples = filled(type, shape, v, "input " + quoted(in.name));
    return d;
}

DataInput valueInput(
    const Graph& model, const ValueInfo& in, double value, int64_t n, const std::map<std::string, Shape>& given)
{
    DataInput d;
    d.name = in.name;
    d.source = str("--input-value ", value);
    d.batchAxis = batchAxisOf(model, in);
    Shape shape = bindSampleShape(model, in, d.batchAxis, given);
    shape.insert(shape.begin(), n);
    const DType type = inputType(in);
    if (!isFloating(type) && value != std::floor(value))
        fail("--input-value ", in.name, "=", value, ": input ", quoted(in.name), " takes ", dtypeName(type));
    d.samples =
        filled(type, shape, std::vector<double>(std::size_t(numelOf(shape)), value), "input " + quoted(in.name));
    return d;
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

std::string nameList(const std::vector<std::string>& names)
{
    std::string out;
    for (const auto& n : names)
        out += (out.empty() ? "" : ", ") + quoted(n);
    return out;
}

// The arrays of an NPZ or a folder of NPY files, by name. `names` only: no array is read.
NamedTensors namedArrays(const std::string& spec, bool names)
{
    NamedTensors out;
    if (fs::is_directory(spec)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(spec))
            if (e.path().extension() == ".npy")
                files.push_back(e.path());
        std::sort(files.begin(), files.end());
        if (files.empty())
            fail(spec, ": the folder has no .npy files (one per model input, named after it)");
        for (const auto& f : files)
            out.emplace_back(f.stem().string(), names ? Tensor() : readNpy(f.string()));
        return out;
    }
    if (names) {
        for (const auto& n : npzNames(spec))
            out.emplace_back(n, Tensor());
        return out;
    }
    return readNpz(spec);
}

bool isNamedData(const std::string& spec)
{
    return spec.ends_with(".npz") || fs::is_directory(spec);
}

// Which array of `arrays` feeds each model input; extra and missing arrays are errors
// (missing ones may come from --input-value).
std::vector<int> matchArrays(const std::string& spec, const Graph& model, const NamedTensors& arrays,
    const std::map<std::string, double>& inputValues)
{
    std::vector<int> which(model.inputs.size(), -1);
    std::vector<std::string> extra, missing;
    for (std::size_t a = 0; a < arrays.size(); ++a) {
        auto it = std::find_if(
            model.inputs.begin(), model.inputs.end(), [&](const ValueInfo& in) { return in.name == arrays[a].first; });
        if (it == model.inputs.end())
            extra.push_back(arrays[a].first);
        else
            which[std::size_t(it - model.inputs.begin())] = int(a);
    }
    if (!extra.empty())
        fail(spec, ": no model input for array", extra.size() > 1 ? "s " : " ", nameList(extra), " (the inputs are ",
            nameList([&] {
                std::vector<std::string> n;
                for (const auto& in : model.inputs)
                    n.push_back(in.name);
                return n;
            }()),
            ")");
    for (std::size_t i = 0; i < which.size(); ++i) {
        const std::string& name = model.inputs[i].name;
        if (which[i] >= 0 && inputValues.count(name))
            fail(spec, ": input ", quoted(name), " has an array and a --input-value; give one");
        if (which[i] < 0 && !inputValues.count(name))
            missing.push_back(name);
    }
    if (!missing.empty())
        fail(spec, ": no array for input", missing.size() > 1 ? "s " : " ", nameList(missing),
            " (name one array per input, or give --input-value NAME=V)");
    return which;
}

std::string describeFile(const std::string& spec, const std::string& name)
{
    return fs::is_directory(spec) ? (fs::path(spec) / (name + ".npy")).string() : spec + ":" + name + ".npy";
}

// The first input from an IDX or NPY file: its values reshaped to the model's sample
// shape, whose open dimensions an array of the same rank binds.
DataInput singleFileInput(const DataOptions& options, const Graph& model, Dataset& ds)
{
    const ValueInfo& in = firstInput(model);
    if (in.dims && in.dims->empty())
        fail(model.sourcePath, ": input ", quoted(in.name), " is a scalar; give it with --input-value");
    Tensor raw;
    if (options.spec.ends_with(".npy")) {
        ds.kind = "npy";
        raw = readNpy(options.spec);
    } else {
        ds.kind = "idx";
        raw = readIdx(options.spec);
    }
    ds.hash = sha256File(options.spec);
    std::optional<Shape> fromData;
    if (!raw.shape.empty())
        fromData = Shape(raw.shape.begin() + 1, raw.shape.end());
    Shape sample = bindSampleShape(model, in, 0, options.inputShapes, fromData, options.spec);
    const int64_t perSample = numelOf(sample);
    const int64_t total = raw.numel();
    if (perSample <= 0 || total % perSample != 0)
        fail(options.spec, ": ", total, " values do not split into samples of the model input shape ",
            shapeString(sample), " (", perSample, " values each)");
    const int64_t n = total / perSample;
    if (!raw.shape.empty() && raw.shape[0] != n)
        fail(options.spec, ": sample shape ", shapeString(Shape(raw.shape.begin() + 1, raw.shape.end())),
            " does not match the model input ", shapeString(sample));
    sample.insert(sample.begin(), n);
    raw.shape = sample;
    return fromArray(model, in, std::move(raw), options.spec, options.inputShapes);
}

void normalizeFirst(const DataOptions& options, const Graph& model, Dataset& ds)
{
    ds.mean = options.mean.value_or(metadataFloats(model, "quantstudio.mean").value_or(std::vector<float> {}));
    ds.std = options.std.value_or(metadataFloats(model, "quantstudio.std").value_or(std::vector<float> {}));
    if (ds.mean.empty() && ds.std.empty())
        return;
    Tensor& x = ds.inputs.front().samples;
    if (x.dtype != DType::Float)
        fail("--mean/--std: input ", quoted(ds.inputs.front().name), " is ", dtypeName(x.dtype), ", not float32");
    const Shape sample = ds.inputs.front().sampleShape();
    const int64_t perSample = numelOf(sample);
    const int64_t channels = sample.size() >= 2 ? sample[0] : 1;
    auto checkLen = [&](const std::vector<float>& v, const char* what) {
        if (!v.empty() && v.size() != 1 && int64_t(v.size()) != channels)
            fail("--", what, ": ", v.size(), " values for ", channels, " channels");
    };
    checkLen(ds.mean, "mean");
    checkLen(ds.std, "std");
    for (float s : ds.std)
        if (!(s > 0))
            fail("--std: values must be positive");
    auto out = x.data<float>();
    const int64_t inner = sample.size() >= 2 ? perSample / channels : perSample;
    for (int64_t s = 0; s < ds.count(); ++s)
        for (int64_t c = 0; c < channels; ++c) {
            float m = ds.mean.empty() ? 0.f : ds.mean[ds.mean.size() == 1 ? 0 : std::size_t(c)];
            float d = ds.std.empty() ? 1.f : ds.std[ds.std.size() == 1 ? 0 : std::size_t(c)];
            float* p = out.data() + (s * perSample + c * inner);
            for (int64_t i = 0; i < inner; ++i)
                p[i] = (p[i] - m) / d;
        }
}

void checkInputValues(const DataOptions& options, const Graph& model)
{
    for (const auto& value : options.inputValues) {
        const std::string& name = value.first; // a named reference: clang 14 cannot capture a binding
        if (std::none_of(
                model.inputs.begin(), model.inputs.end(), [&](const ValueInfo& in) { return in.name == name; }))
            fail("--input-value ", name, ": the model has no input of that name");
    }
}

} // namespace

int batchAxisOf(const Graph& model, const ValueInfo& in)
{
    if (!in.dims)
        return 0;
    if (in.dims->empty())
        return -1;
    const ValueInfo& lead = firstInput(model);
    if (&in == &lead || !lead.dims || lead.dims->empty())
        return 0;
    const Dim& batch = lead.dims->front();
    if (!batch.param.empty())
        for (std::size_t i = 0; i < in.dims->size(); ++i)
            if ((*in.dims)[i].param == batch.param)
                return int(i);
    if (in.dims->front().value < 0)
        return 0;
    return batch.value < 0 ? -1 : 0;
}

Tensor samplesFirst(const Tensor& batch, int axis)
{
    if (axis <= 0)
        return batch;
    const Shape& in = batch.shape;
    Shape shape = in;
    shape.erase(shape.begin() + axis);
    shape.insert(shape.begin(), in[std::size_t(axis)]);
    Tensor out(batch.dtype, shape);
    const std::size_t outer = std::size_t(numelOf(Shape(in.begin(), in.begin() + axis)));
    const std::size_t inner = std::size_t(numelOf(Shape(in.begin() + axis + 1, in.end()))) * elementSize(batch.dtype);
    const std::size_t n = std::size_t(in[std::size_t(axis)]);
    for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t i = 0; i < n; ++i)
            std::memcpy(out.bytes.data() + (i * outer + o) * inner, batch.bytes.data() + (o * n + i) * inner, inner);
    return out;
}

Dataset loadDataset(const DataOptions& options, const Graph& model)
{
    if (!options.tokenizer.empty() && options.spec.rfind("text:", 0) != 0)
        fail("--tokenizer applies to text:FILE data, not ", quoted(options.spec));
    checkInputValues(options, model);
    checkInputShapeNames(model, options.inputShapes);
    Dataset ds;
    ds.path = options.spec;
    std::vector<std::optional<DataInput>> fed(model.inputs.size());
    int64_t n = -1;
    const bool images = isImageDataSpec(options.spec);
    if (images) {
        ds = loadImageDataset(options, model);
        fed[0] = std::move(ds.inputs.front());
        ds.inputs.clear();
        n = fed[0]->samples.shape[0];
    } else if (options.spec.rfind("text:", 0) == 0 || options.spec.rfind("tokens:", 0) == 0) {
        const bool tokens = options.spec.rfind("tokens:", 0) == 0;
        const std::string path = options.spec.substr(tokens ? 7 : 5);
        if (path.empty())
            fail("data ", quoted(options.spec), tokens ? ": expected tokens:FILE" : ": expected text:FILE");
        if (options.mean || options.std || options.labelsPath)
            fail("data ", quoted(options.spec), ": --mean, --std and --labels do not apply to text data");
        TextOptions text;
        text.context = textContextFor(model, options.context);
        text.limit = options.limit;
        text.vocabSize = modelVocabularySize(model);
        text.tokenizer = options.tokenizer;
        ds = tokens ? loadTokenDataset(path, text) : loadTextDataset(path, text);
        ds.path = options.spec;
        ds.inputs.front().name = firstInput(model).name;
        fed[0] = std::move(ds.inputs.front());
        ds.inputs.clear();
        n = fed[0]->samples.shape[0];
        // The window length changes the tensors fed, so it is part of the data's identity.
        ds.hash = sha256Hex(ds.hash + "#context=" + std::to_string(text.context));
    } else if (options.spec.rfind("random:", 0) == 0) {
        ds.kind = "random";
        const std::string count = options.spec.substr(7);
        const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), n);
        if (count.empty() || ec == std::errc::invalid_argument || end != count.data() + count.size())
            fail("data ", quoted(options.spec), ": expected random:N with N > 0");
        if (ec == std::errc::result_out_of_range || n <= 0) // the upper bound depends on each input's size
            fail("data ", quoted(options.spec), ": random:N needs N in 1..", kMaxRandomValues);
        std::mt19937_64 rng(options.seed);
        firstInput(model);
        for (std::size_t i = 0; i < model.inputs.size(); ++i)
            if (!options.inputValues.count(model.inputs[i].name))
                fed[i] = randomInput(model, model.inputs[i], n, rng, options.inputShapes);
        ds.hash = sha256Hex(options.spec + "#" + std::to_string(options.seed));
    } else {
        if (!fs::exists(options.spec))
            fail(options.spec, ": no such data file");
        if (isNamedData(options.spec)) {
            ds.kind = fs::is_directory(options.spec) ? "folder" : "npz";
            NamedTensors arrays = namedArrays(options.spec, false);
            const std::vector<int> which = matchArrays(options.spec, model, arrays, options.inputValues);
            std::string hashes;
            for (std::size_t i = 0; i < which.size(); ++i) {
                if (which[i] < 0)
                    continue;
                auto& [name, a] = arrays[std::size_t(which[i])];
                const std::string what = describeFile(options.spec, name);
                fed[i] = fromArray(model, model.inputs[i], std::move(a), what, options.inputShapes);
                const int64_t rows = fed[i]->samples.shape[0];
                if (n >= 0 && rows != n)
                    fail(options.spec, ": arrays hold different sample counts (", quoted(name), " has ", rows,
                        ", the others ", n, ")");
                n = rows;
            }
            if (ds.kind == "folder") {
                for (const auto& [name, a] : arrays)
                    hashes += name + "=" + sha256File(describeFile(options.spec, name)) + ";";
                ds.hash = sha256Hex(hashes);
            } else {
                ds.hash = sha256File(options.spec);
            }
        } else {
            fed[0] = singleFileInput(options, model, ds);
            n = fed[0]->samples.shape[0];
        }
    }
    if (n < 0) // every input from --input-value
        fail("data ", quoted(options.spec), ": gives no samples");
    for (std::size_t i = 0; i < fed.size(); ++i) {
        auto v = options.inputValues.find(model.inputs[i].name);
        if (v != options.inputValues.end())
            fed[i] = valueInput(model, model.inputs[i], v->second, n, options.inputShapes);
    }
    std::vector<std::string> missing;
    for (std::size_t i = 0; i < fed.size(); ++i)
        if (!fed[i])
            missing.push_back(model.inputs[i].name);
    if (!missing.empty())
        fail(options.spec, ": feeds only input ", quoted(model.inputs.front().name), "; the model also takes ",
            nameList(missing),
            " (give an NPZ or a folder of NPY files named after the inputs, or --input-value NAME=V)");
    for (auto& f : fed)
        ds.inputs.push_back(std::move(*f));
    for (std::size_t i = 0; i < fed.size(); ++i)
        if (ds.kind != "text" && hasOpenDimensions(model.inputs[i], ds.inputs[i].batchAxis))
            ds.boundShapes[model.inputs[i].name] = ds.inputs[i].batchShape(1);

    // Labels: explicit, or beside an IDX file by the standard name (images: from their folders or list).
    std::string labelsPath =
        images ? "" : options.labelsPath.value_or(ds.kind == "idx" ? findIdxLabels(options.spec) : "");
    if (!labelsPath.empty()) {
        ds.labels = readLabels(labelsPath, n);
        ds.labelsPath = labelsPath;
        ds.hash = sha256Hex(ds.hash + sha256File(labelsPath));
    }
    if (ds.kind != "text" && !images && options.limit >= 0 && options.limit < n) {
        Dataset kept = ds.slice(0, options.limit);
        ds = std::move(kept);
    }
    if (ds.kind != "text" && !images) // images: the pipeline normalizes
        normalizeFirst(options, model, ds);
    if (!ds.mean.empty() || !ds.std.empty()) {
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
    ds.inputValues = options.inputValues;
    if (!options.inputValues.empty()) {
        std::string values;
        for (const auto& [name, v] : options.inputValues)
            values += str(name, "=", v, ";");
        ds.hash = sha256Hex(ds.hash + values);
    }
    // random:N and --input-value inputs take their shape from these (the others from the arrays).
    if (!options.inputShapes.empty() && (ds.kind == "random" || !options.inputValues.empty())) {
        std::string shapes;
        for (const auto& [name, shape] : options.inputShapes)
            shapes += str(name, "=", inputShapeText(shape), ";");
        ds.hash = sha256Hex(ds.hash + "#shapes=" + shapes);
    }
    return ds;
}

std::vector<std::pair<std::string, std::string>> dataInputSources(
    const std::string& spec, const Graph& model, const std::map<std::string, double>& inputValues)
{
    std::vector<std::pair<std::string, std::string>> out;
    std::vector<int> which(model.inputs.size(), -1);
    NamedTensors arrays;
    const bool named =
        spec.rfind("random:", 0) != 0 && spec.rfind("text:", 0) != 0 && spec.rfind("tokens:", 0) != 0 &&
        fs::exists(spec) && isNamedData(spec);
    if (named) {
        arrays = namedArrays(spec, true);
        which = matchArrays(spec, model, arrays, inputValues);
    }
    for (std::size_t i = 0; i < model.inputs.size(); ++i) {
        const std::string& name = model.inputs[i].name;
        std::string source;
        if (inputValues.count(name))
            source = str("--input-value ", inputValues.at(name));
        else if (which[i] >= 0)
            source = describeFile(spec, arrays[std::size_t(which[i])].first);
        else if (spec.rfind("random:", 0) == 0)
            source = "random";
        else if (i == 0 && !named)
            source = spec;
        else
            source = "(missing)";
        out.emplace_back(name, source);
    }
    return out;
}

Dataset loadDataset(const std::string& spec, int64_t limit, const Graph& model)
{
    DataOptions d;
    d.spec = spec;
    d.limit = limit;
    return loadDataset(d, model);
}

} // namespace qs
