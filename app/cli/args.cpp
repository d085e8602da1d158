#include "cli/args.h"

#include "util/error.h"

#include <cstdlib>
#include <sstream>

namespace qs::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& valued, const std::set<std::string>& flags)
{
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.size() < 3 || a.rfind("--", 0) != 0) {
            positional_.push_back(a);
            continue;
        }
        std::string name = a.substr(2), val;
        bool hasValue = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            val = name.substr(eq + 1);
            name = name.substr(0, eq);
            hasValue = true;
        }
        if (valued.count(name)) {
            if (!hasValue) {
                if (i + 1 >= argv.size())
                    fail("option --", name, " needs a value");
                val = argv[++i];
            }
            values_[name] = val;
        } else if (flags.count(name)) {
            if (hasValue)
                fail("option --", name, " takes no value");
            flags_.insert(name);
        } else {
            fail("unknown option --", name);
        }
    }
}

const std::string& Args::required(std::size_t i, const std::string& what) const
{
    if (i >= positional_.size())
        fail("missing argument: ", what);
    return positional_[i];
}

std::optional<std::string> Args::value(const std::string& name) const
{
    auto it = values_.find(name);
    if (it == values_.end())
        return std::nullopt;
    return it->second;
}

std::string Args::value(const std::string& name, const std::string& fallback) const
{
    return value(name).value_or(fallback);
}

int Args::intValue(const std::string& name, int fallback) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    char* end = nullptr;
    long n = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != 0)
        fail("option --", name, ": expected an integer, got ", quoted(*v));
    return int(n);
}

double Args::doubleValue(const std::string& name, double fallback) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (v->empty() || *end != 0)
        fail("option --", name, ": expected a number, got ", quoted(*v));
    return d;
}

std::vector<double> parseNumberList(const std::string& text, const std::string& option)
{
    std::vector<double> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        double d = std::strtod(item.c_str(), &end);
        if (item.empty() || *end != 0)
            fail("option ", option, ": ", quoted(item), " is not a number");
        out.push_back(d);
    }
    if (out.empty())
        fail("option ", option, ": empty list");
    return out;
}

int64_t parseRunId(const std::string& text)
{
    char* end = nullptr;
    long long id = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != 0 || id <= 0)
        fail("RUN must be a run id (a positive number), got ", quoted(text));
    return id;
}

} // namespace qs::cli
