#include "data/text.h"

#include "util/error.h"
#include "util/file.h"
#include "util/hash.h"

#include <filesystem>
#include <fstream>

namespace qs {

Dataset loadTextDataset(const std::string& path, int64_t context, int64_t limit)
{
    if (context < 1)
        fail("text data ", quoted(path), ": context must be at least 1, got ", context);
    if (!std::filesystem::exists(path))
        fail(path, ": no such text file");
    const std::string bytes = readRegularFile(path, kMaxDataFileBytes);
    const int64_t available = bytes.size() > 0 ? int64_t(bytes.size() - 1) / context : 0;
    if (available == 0)
        fail(path, ": ", bytes.size(), " bytes make no window of ", context, " tokens (need ", context + 1, ")");
    const int64_t windows = limit >= 0 ? std::min(limit, available) : available;

    Dataset ds;
    ds.kind = "text";
    ds.path = path;
    ds.hash = sha256Hex(bytes);
    Tensor inputs(DType::Int64, {windows, context});
    Tensor targets(DType::Int64, {windows, context});
    auto x = inputs.data<int64_t>();
    auto y = targets.data<int64_t>();
    for (int64_t i = 0; i < windows * context; ++i) {
        x[std::size_t(i)] = static_cast<unsigned char>(bytes[std::size_t(i)]);
        y[std::size_t(i)] = static_cast<unsigned char>(bytes[std::size_t(i + 1)]);
    }
    ds.inputs.push_back({"", path, std::move(inputs)}); // named by loadDataset after the model's input
    ds.targets = std::move(targets);
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
            fail(model.sourcePath, ": input ", quoted(in.name), " has a fixed sequence length ", s[1], ", --context is ",
                 requested);
        return requested;
    }
    if (s[1] > 0)
        return s[1];
    auto it = model.metadata.find("quantstudio.context");
    if (it != model.metadata.end()) {
        char* end = nullptr;
        const long long n = std::strtoll(it->second.c_str(), &end, 10);
        if (n < 1 || *end != 0)
            fail(model.sourcePath, ": metadata quantstudio.context = ", quoted(it->second), " is not a positive integer");
        return n;
    }
    fail(model.sourcePath, ": the sequence length of input ", quoted(in.name),
         " is dynamic and the model has no quantstudio.context metadata: give --context N");
}

} // namespace qs
