#include "data/text.h"

#include "data/npy.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include "util/hash.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>

#include <unistd.h>

namespace qs {
namespace {

// The windows of TextOptions over a source of `total` tokens whose first n ids
// firstIds(n) gives; `unit` names the tokens in the error of a too short source.
Dataset tokenWindows(const std::string& path, const char* unit, int64_t total,
    const std::function<std::vector<int64_t>(int64_t)>& firstIds, const TextOptions& o)
{
    const int64_t context = o.context;
    const int64_t available = total > 0 ? (total - 1) / context : 0;
    if (available == 0)
        fail(path, ": ", total, " ", unit, " make no window of ", context, " tokens (need ", context + 1, ")");
    const int64_t windows = o.limit >= 0 ? std::min(o.limit, available) : available;
    const std::vector<int64_t> ids = firstIds(windows * context + 1);
    for (std::size_t i = 0; i < ids.size(); ++i)
        if (ids[i] < 0 || (o.vocabSize > 0 && ids[i] >= o.vocabSize))
            fail(path, ": token ", i, " is id ", ids[i], ", outside the model's vocabulary",
                o.vocabSize > 0 ? str(" of ", o.vocabSize, " (ids 0..", o.vocabSize - 1, ")")
                                : std::string(" (ids >= 0)"));

    Dataset ds;
    ds.kind = "text";
    ds.path = path;
    Tensor inputs(DType::Int64, {windows, context});
    Tensor targets(DType::Int64, {windows, context});
    auto x = inputs.data<int64_t>();
    auto y = targets.data<int64_t>();
    for (int64_t i = 0; i < windows * context; ++i) {
        x[std::size_t(i)] = ids[std::size_t(i)];
        y[std::size_t(i)] = ids[std::size_t(i + 1)];
    }
    ds.inputs.push_back({"", path, std::move(inputs)}); // named by loadDataset after the model's input
    ds.targets = std::move(targets);
    return ds;
}

void checkContext(const std::string& what, int64_t context)
{
    if (context < 1)
        fail(what, ": context must be at least 1, got ", context);
}

// Token windows read from a file when asked (bytes, or raw little-endian u16/u32 ids):
// window w of shift 0 is tokens [w*context, (w+1)*context), of shift 1 (targets) the
// tokens one later. Nothing of the file is kept: a read is one pread of its windows.
class TokenFileWindows : public SampleStream {
public:
    TokenFileWindows(std::string path, DType type, int64_t context, int64_t shift, int64_t vocab)
        : path_(std::move(path)), type_(type), context_(context), shift_(shift), vocab_(vocab)
    {
        const OpenedFile f = openRegularFile(path_, UINT64_MAX);
        fd_ = std::shared_ptr<int>(new int(f.fd), [](int* fd) {
            ::close(*fd);
            delete fd;
        });
    }
    Tensor read(int64_t start, int64_t n) const override
    {
        const std::size_t size = elementSize(type_);
        const int64_t first = start * context_ + shift_, count = n * context_;
        std::vector<uint8_t> raw(std::size_t(count) * size);
        readFileAt(*fd_, path_, raw.data(), raw.size(), uint64_t(first) * size);
        Tensor out(DType::Int64, {n, context_});
        auto ids = out.data<int64_t>();
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const uint8_t* p = raw.data() + i * size;
            int64_t v = 0;
            if (type_ == DType::UInt8) {
                v = p[0];
            } else if (type_ == DType::UInt16) {
                uint16_t x;
                std::memcpy(&x, p, sizeof x);
                v = x;
            } else {
                uint32_t x;
                std::memcpy(&x, p, sizeof x);
                v = x;
            }
            if (vocab_ > 0 && v >= vocab_)
                fail(path_, ": token ", first + int64_t(i), " is id ", v, ", outside the model's vocabulary of ", vocab_,
                    " (ids 0..", vocab_ - 1, ")");
            ids[i] = v;
        }
        return out;
    }

private:
    std::string path_;
    DType type_;
    int64_t context_, shift_, vocab_;
    std::shared_ptr<int> fd_;
};

// The windows of TextOptions over a token file of `total` ids of `type`, streamed: the
// ids are checked against the vocabulary now, a chunk at a time, so a bad id fails at
// load as with data held in memory; then only the windows asked for are read.
Dataset streamedTokenWindows(const std::string& path, DType type, const char* unit, int64_t total, const TextOptions& o)
{
    const int64_t context = o.context;
    const int64_t available = total > 0 ? (total - 1) / context : 0;
    if (available == 0)
        fail(path, ": ", total, " ", unit, " make no window of ", context, " tokens (need ", context + 1, ")");
    const int64_t windows = o.limit >= 0 ? std::min(o.limit, available) : available;
    const int64_t maxId = type == DType::UInt8 ? 0xff : type == DType::UInt16 ? 0xffff : int64_t(0xffffffff);
    auto inputs = std::make_shared<TokenFileWindows>(path, type, context, 0, o.vocabSize);
    if (o.vocabSize > 0 && o.vocabSize <= maxId) {
        // Whole windows per chunk (about 1 MiB), then the one target token after them.
        const int64_t step = std::max<int64_t>(1, (int64_t(1) << 20) / context / int64_t(elementSize(type)));
        for (int64_t w = 0; w < windows; w += step)
            (void)inputs->read(w, std::min(step, windows - w));
        TokenFileWindows(path, type, 1, windows * context, o.vocabSize).read(0, 1);
    }
    Dataset ds;
    ds.kind = "text";
    ds.path = path;
    DataInput in;
    in.source = path;
    in.samples = Tensor();
    in.samples.dtype = DType::Int64;
    in.samples.shape = {windows, context};
    in.stream = inputs;
    ds.inputs.push_back(std::move(in)); // named by loadDataset after the model's input
    ds.targets = Tensor();
    ds.targets->dtype = DType::Int64;
    ds.targets->shape = {windows, context};
    ds.targetStream = std::make_shared<TokenFileWindows>(path, type, context, 1, o.vocabSize);
    return ds;
}

// The first n little-endian ids of type T stored at `p`.
template<class T> std::vector<int64_t> widen(const uint8_t* p, int64_t n)
{
    std::vector<int64_t> out(std::size_t(std::max<int64_t>(n, 0)));
    for (std::size_t i = 0; i < out.size(); ++i) {
        T v;
        std::memcpy(&v, p + i * sizeof(T), sizeof(T));
        out[i] = int64_t(v);
    }
    return out;
}

std::vector<int64_t> widen(DType t, const uint8_t* p, int64_t n)
{
    switch (t) {
    case DType::UInt16:
        return widen<uint16_t>(p, n);
    case DType::UInt32:
        return widen<uint32_t>(p, n);
    case DType::Int32:
        return widen<int32_t>(p, n);
    case DType::Int64:
        return widen<int64_t>(p, n);
    default:
        fail("token ids of type ", dtypeName(t), " are not supported");
    }
}

} // namespace

Dataset loadTextDataset(const std::string& path, const TextOptions& o)
{
    checkContext(str("text data ", quoted(path)), o.context);
    if (!std::filesystem::exists(path))
        fail(path, ": no such text file");
    if (o.tokenizer.empty()) {
        // A byte is a token: windows read from the file when a batch asks (any size).
        const OpenedFile f = openRegularFile(path, UINT64_MAX);
        ::close(f.fd);
        Dataset ds = streamedTokenWindows(path, DType::UInt8, "bytes", int64_t(f.bytes), o);
        ds.hash = sha256File(path);
        return ds;
    }
    const std::string bytes = readRegularFile(path, kMaxDataFileBytes);
    const std::unique_ptr<Tokenizer> tokenizer = loadTokenizer(o.tokenizer);
    checkUtf8(bytes, path);
    const std::vector<int32_t> ids = tokenizer->encode(bytes);
    Dataset ds = tokenWindows(
        path, "tokens", int64_t(ids.size()),
        [&](int64_t n) { return std::vector<int64_t>(ids.begin(), ids.begin() + n); }, o);
    ds.tokenizer = canonicalTokenizerSpec(o.tokenizer);
    // The ids depend on the tokenizer file as much as on the text.
    ds.hash = sha256Hex(sha256Hex(bytes) + "#tokenizer=" + sha256File(tokenizerPath(o.tokenizer)));
    return ds;
}

Dataset loadTextDataset(const std::string& path, int64_t context, int64_t limit)
{
    TextOptions o;
    o.context = context;
    o.limit = limit;
    return loadTextDataset(path, o);
}

Dataset loadTokenDataset(const std::string& spec, const TextOptions& o)
{
    checkContext(str("token data ", quoted(spec)), o.context);
    std::string path = spec;
    DType type = DType::Undefined;
    for (auto [suffix, t] : {std::pair {":u16", DType::UInt16}, std::pair {":u32", DType::UInt32}})
        if (spec.ends_with(suffix)) {
            path = spec.substr(0, spec.size() - 4);
            type = t;
        }
    if (path.empty())
        fail("data ", quoted("tokens:" + spec), ": expected tokens:FILE.npy, tokens:FILE:u16 or tokens:FILE:u32");
    if (!std::filesystem::exists(path))
        fail(path, ": no such token file");
    if (type == DType::Undefined && !path.ends_with(".npy"))
        fail(path, ": raw token ids need their type: tokens:", path, ":u16 or tokens:", path,
            ":u32 (an .npy file carries its own)");
    Dataset ds;
    if (type == DType::Undefined) {
        const Tensor t = readNpy(path);
        static const std::set<DType> ok = {DType::Int32, DType::Int64, DType::UInt16, DType::UInt32};
        if (t.shape.size() != 1 || !ok.count(t.dtype))
            fail(path, ": token ids must be a 1-D int32, int64, uint16 or uint32 array; this one is ",
                dtypeName(t.dtype), " ", shapeString(t.shape));
        ds = tokenWindows(
            path, "tokens", t.shape[0],
            [&](int64_t n) { return widen(t.dtype, reinterpret_cast<const uint8_t*>(t.bytes.data()), n); }, o);
    } else {
        const OpenedFile f = openRegularFile(path, UINT64_MAX);
        ::close(f.fd);
        const std::size_t size = elementSize(type);
        if (f.bytes % size != 0)
            fail(path, ": ", f.bytes, " bytes are not a whole number of ", size * 8, "-bit token ids");
        ds = streamedTokenWindows(path, type, "tokens", int64_t(f.bytes / size), o);
    }
    ds.hash = sha256Hex(sha256File(path) + (type == DType::Undefined ? "" : spec.substr(path.size())));
    return ds;
}

int64_t textContextFor(const Graph& model, int64_t requested)
{
    if (model.inputs.empty())
        fail(model.sourcePath, ": the model has no inputs");
    const ValueInfo& in = model.inputs.front();
    const Shape s = in.shape();
    if (s.size() != 2)
        fail(model.sourcePath, ": text data needs a token input [batch, sequence]; input ", quoted(in.name),
            " has shape ", shapeString(s));
    if (requested > 0) {
        if (s[1] > 0 && requested != s[1])
            fail(model.sourcePath, ": input ", quoted(in.name), " has a fixed sequence length ", s[1],
                ", --context is ", requested);
        return requested;
    }
    if (s[1] > 0)
        return s[1];
    auto it = model.metadata.find("quantstudio.context");
    if (it != model.metadata.end()) {
        char* end = nullptr;
        const long long n = std::strtoll(it->second.c_str(), &end, 10);
        if (n < 1 || *end != 0)
            fail(model.sourcePath, ": metadata quantstudio.context = ", quoted(it->second),
                " is not a positive integer");
        return n;
    }
    fail(model.sourcePath, ": the sequence length of input ", quoted(in.name),
        " is dynamic and the model has no quantstudio.context metadata: give --context N");
}

int64_t modelVocabularySize(const Graph& model)
{
    if (model.inputs.empty())
        return 0;
    // The values that carry the ids unchanged but for their type or shape.
    std::set<std::string> ids = {model.inputs.front().name};
    static const std::set<std::string> passing = {"Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"};
    int64_t rows = 0;
    for (const Node& n : model.nodes) { // topological order
        if (n.opType == "Gather" && n.inputs.size() == 2 && ids.count(n.inputs[1])) {
            const Tensor* table = model.constant(n.inputs[0]);
            const int64_t axis = table ? n.attrInt("axis", 0) : -1;
            if (table && !table->shape.empty() && (axis == 0 || axis == -int64_t(table->shape.size())) &&
                table->shape[0] > 0)
                rows = rows > 0 ? std::min(rows, table->shape[0]) : table->shape[0];
        } else if (passing.count(n.opType) && !n.inputs.empty() && ids.count(n.inputs[0])) {
            ids.insert(n.outputs.begin(), n.outputs.end());
        }
    }
    if (rows > 0)
        return rows;
    if (!model.outputs.empty()) {
        const Shape logits = model.outputs.front().shape();
        if (logits.size() >= 2 && logits.back() > 0)
            return logits.back();
    }
    return 0;
}

} // namespace qs
