#include "cli/data_args.h"

#include "util/error.h"

namespace qs::cli {

const std::set<std::string>& dataOptionNames()
{
    static const std::set<std::string> names = {"data", "labels", "mean", "std", "context"};
    return names;
}

static std::vector<float> floats(const std::string& text, const std::string& option)
{
    std::vector<float> out;
    for (double d : parseNumberList(text, option))
        out.push_back(float(d));
    return out;
}

DataOptions dataOptions(const Args& args, const std::string& limitOption)
{
    DataOptions d;
    auto data = args.value("data");
    if (!data)
        fail("missing --data (an IDX or NPY file, random:N or text:FILE)");
    d.spec = *data;
    d.labelsPath = args.value("labels");
    if (auto m = args.value("mean"))
        d.mean = floats(*m, "--mean");
    if (auto s = args.value("std"))
        d.std = floats(*s, "--std");
    d.limit = args.intValue(limitOption, -1);
    d.context = args.intValue("context", 0);
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
