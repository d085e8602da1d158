#include "cluster/sweep_command.h"

#include "util/error.h"

#include <filesystem>
#include <sstream>

namespace qs {
namespace {

template<class T> std::string joined(const std::vector<T>& v, const char* sep)
{
    std::ostringstream s;
    s.precision(9); // floats (mean, std) round-trip
    for (std::size_t i = 0; i < v.size(); ++i)
        s << (i ? sep : "") << v[i];
    return s.str();
}

} // namespace

std::vector<std::string> sensitivityCommand(const std::string& cliPath, const std::string& modelPath,
    const DataOptions& data, const SensitivityOptions& o, const std::string& baseConfigFile)
{
    namespace fs = std::filesystem;
    if (data.spec.empty())
        fail("sensitivity on a cluster: no data given");
    std::vector<std::string> cmd = {cliPath, "sensitivity", fs::absolute(modelPath).string(), "--data", data.spec};
    auto add = [&](const char* option, const std::string& value) {
        cmd.push_back(option);
        cmd.push_back(value);
    };
    if (data.labelsPath)
        add("--labels", *data.labelsPath);
    if (data.mean)
        add("--mean", joined(*data.mean, ","));
    if (data.std)
        add("--std", joined(*data.std, ","));
    if (data.context > 0)
        add("--context", std::to_string(data.context));
    if (!data.tokenizer.empty())
        add("--tokenizer", data.tokenizer);
    if (!data.preprocess.empty())
        add("--preprocess", data.preprocess);
    if (!data.inputValues.empty()) {
        std::ostringstream s;
        s.precision(17);
        for (const auto& [name, value] : data.inputValues)
            s << (s.tellp() > 0 ? "," : "") << name << "=" << value;
        add("--input-value", s.str());
    }
    for (const auto& [name, shape] : data.inputShapes)
        add("--input-shape", name + "=" + joined(shape, "x"));
    add("--bits", joined(o.bits, ","));
    add("--mode", sensitivityModeName(o.mode));
    add("--method", sensitivityMethodName(o.method));
    add("--limit", std::to_string(o.limit));
    add("--batch", std::to_string(o.batch));
    add("--base", baseConfigFile);
    return cmd;
}

} // namespace qs
