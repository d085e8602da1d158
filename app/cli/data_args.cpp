#include "cli/data_args.h"

#include "data/image_dataset.h"
#include "data/input_binding.h"
#include "util/error.h"

namespace qs::cli {

const std::set<std::string>& dataOptionNames()
{
    static const std::set<std::string> names = {
        "data", "labels", "mean", "std", "context", "tokenizer", "input-value", "input-shape", "preprocess", "data-threads"};
    return names;
}

static std::vector<float> floats(const std::string& text, const std::string& option)
{
    std::vector<float> out;
    for (double d : parseNumberList(text, option))
        out.push_back(float(d));
    return out;
}

std::map<std::string, double> inputValues(const Args& args)
{
    std::map<std::string, double> out;
    const auto text = args.value("input-value");
    if (!text)
        return out;
    std::size_t at = 0;
    while (at <= text->size()) {
        const std::size_t comma = std::min(text->find(',', at), text->size());
        const std::string item = text->substr(at, comma - at);
        const std::size_t eq = item.find('=');
        if (eq == 0 || eq == std::string::npos)
            fail("--input-value ", quoted(item), ": expected NAME=VALUE (several separated by commas)");
        const std::vector<double> v = parseNumberList(item.substr(eq + 1), "--input-value " + item.substr(0, eq));
        if (v.size() != 1)
            fail("--input-value ", quoted(item), ": expected one number");
        if (!out.emplace(item.substr(0, eq), v.front()).second)
            fail("--input-value: input ", quoted(item.substr(0, eq)), " is given twice");
        at = comma + 1;
    }
    return out;
}

std::map<std::string, Shape> inputShapes(const Args& args)
{
    std::map<std::string, Shape> out;
    for (const std::string& text : args.values("input-shape"))
        for (std::size_t at = 0; at <= text.size();) {
            const std::size_t comma = std::min(text.find(',', at), text.size());
            auto [name, shape] = parseInputShape(text.substr(at, comma - at));
            if (!out.emplace(name, shape).second)
                fail("--input-shape: input ", quoted(name), " is given twice");
            at = comma + 1;
        }
    return out;
}

DataOptions dataOptions(const Args& args, const std::string& limitOption, const std::string& defaultSpec)
{
    DataOptions d;
    auto data = args.value("data");
    if (!data && !defaultSpec.empty())
        data = defaultSpec;
    if (!data)
        fail("missing --data (an IDX, NPY or NPZ file, a folder of NPY files, random:N, text:FILE, tokens:FILE, ",
            "images:DIR or imagelist:FILE)");
    d.spec = *data;
    d.labelsPath = args.value("labels");
    if (auto m = args.value("mean"))
        d.mean = floats(*m, "--mean");
    if (auto s = args.value("std"))
        d.std = floats(*s, "--std");
    d.limit = args.intValue(limitOption, -1);
    d.context = args.intValue("context", 0);
    d.tokenizer = args.value("tokenizer").value_or("");
    d.inputValues = inputValues(args);
    d.inputShapes = inputShapes(args);
    d.preprocess = args.value("preprocess").value_or("");
    if (!d.preprocess.empty() && !isImageDataSpec(d.spec) && !isImageDataSpec(args.value("calib-data").value_or("")))
        fail("--preprocess applies to images:DIR and imagelist:FILE data, not ", quoted(d.spec));
    d.threads = int(args.intValue("data-threads", 0));
    if (d.threads < 0 || d.threads > 64)
        fail("--data-threads ", d.threads, ": expected 1..64 (0: the machine's cores)");
    return d;
}

Dataset calibrationData(const Args& args, const DataOptions& evalOpts, const Graph& model, int64_t limit)
{
    DataOptions cal = evalOpts;
    if (auto cd = args.value("calib-data")) {
        cal.spec = *cd;
        cal.labelsPath.reset();
    }
    cal.limit = limit;
    return loadDataset(cal, model);
}

} // namespace qs::cli
