#include "cli/args.h"

#include "util/error.h"

#include <charconv>
#include <climits>
#include <cmath>
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
            repeated_[name].push_back(val);
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

std::vector<std::string> Args::values(const std::string& name) const
{
    auto it = repeated_.find(name);
    return it == repeated_.end() ? std::vector<std::string> {} : it->second;
}

std::string Args::value(const std::string& name, const std::string& fallback) const
{
    return value(name).value_or(fallback);
}

namespace {

// Ranges of integer options by name, the same in every command that has them; others
// only need to fit an int. -1 means "all" for the limits.
std::pair<int64_t, int64_t> intRange(const std::string& name)
{
    static const std::map<std::string, std::pair<int64_t, int64_t>> ranges = {{"batch", {1, 1 << 20}},
        {"threads", {0, 4096}}, {"limit", {-1, INT_MAX}}, {"eval-limit", {-1, INT_MAX}}, {"calib-limit", {1, INT_MAX}},
        {"eval-from", {0, INT_MAX}}, {"context", {0, 1 << 24}}, {"wbits", {1, 64}}, {"abits", {1, 64}},
        {"bits", {1, 64}}, {"min-bits", {1, 64}}, {"max-bits", {1, 64}}, {"group", {1, INT_MAX}}, {"top", {1, INT_MAX}},
        {"repeats", {1, 1 << 20}}, {"warmup", {0, 1 << 20}}, {"bootstrap", {1, 1 << 20}}, {"hutchinson", {1, 1 << 20}},
        {"seed", {0, INT_MAX}}, {"verify", {0, 1 << 20}}, {"kv-context", {1, 1 << 24}}};
    auto it = ranges.find(name);
    return it != ranges.end() ? it->second : std::pair<int64_t, int64_t> {INT_MIN, INT_MAX};
}

} // namespace

int64_t parseInteger(const std::string& text, const std::string& option, int64_t min, int64_t max)
{
    int64_t n = 0;
    const char* first = text.data();
    const char* last = first + text.size();
    const auto [end, ec] = std::from_chars(first, last, n); // whole string, no spaces or '+'
    if (text.empty() || ec == std::errc::invalid_argument || end != last)
        fail(option, ": expected an integer, got ", quoted(text));
    if (ec == std::errc::result_out_of_range || n < min || n > max)
        fail(option, ": ", text, " is out of range ", min, "..", max);
    return n;
}

double parseNumber(const std::string& text, const std::string& option)
{
    double d = 0;
    const char* first = text.data();
    const char* last = first + text.size();
    const auto [end, ec] = std::from_chars(first, last, d);
    if (text.empty() || ec == std::errc::invalid_argument || end != last)
        fail(option, ": expected a number, got ", quoted(text));
    if (ec == std::errc::result_out_of_range || !std::isfinite(d))
        fail(option, ": ", text, " is not a finite number in double range");
    return d;
}

int Args::intValue(const std::string& name, int fallback) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    const auto [min, max] = intRange(name);
    return int(parseInteger(*v, "option --" + name, min, max));
}

double Args::doubleValue(const std::string& name, double fallback) const
{
    auto v = value(name);
    if (!v)
        return fallback;
    return parseNumber(*v, "option --" + name);
}

std::vector<double> parseNumberList(const std::string& text, const std::string& option)
{
    std::vector<double> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ','))
        out.push_back(parseNumber(item, "option " + option));
    if (out.empty())
        fail("option ", option, ": empty list");
    return out;
}

int64_t parseRunId(const std::string& text)
{
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || id <= 0)
        fail("RUN must be a run id (a positive number), got ", quoted(text));
    return id;
}

} // namespace qs::cli
