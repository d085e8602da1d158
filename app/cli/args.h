// Command-line arguments of one quantstudio-cli command: positionals, --options
// with values and --flags. Unknown or malformed arguments are errors, not ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs::cli {

class Args {
public:
    // `valued` are options that take a value (--db PATH or --db=PATH); `flags` take none.
    Args(const std::vector<std::string>& argv, const std::set<std::string>& valued, const std::set<std::string>& flags);

    const std::vector<std::string>& positional() const { return positional_; }
    // The i-th positional or an error naming `what`.
    const std::string& required(std::size_t i, const std::string& what) const;
    bool flag(const std::string& name) const { return flags_.count(name) != 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::string value(const std::string& name, const std::string& fallback) const;
    // Every value of a repeatable option, in command-line order (value() gives the last).
    std::vector<std::string> values(const std::string& name) const;
    // Strict: the whole value, within the option's range (see intRange in args.cpp).
    int intValue(const std::string& name, int fallback) const;
    double doubleValue(const std::string& name, double fallback) const;

private:
    std::vector<std::string> positional_;
    std::set<std::string> flags_;
    std::map<std::string, std::string> values_;
    std::map<std::string, std::vector<std::string>> repeated_;
};

// The whole of `text` as a decimal integer in [min, max], or a one-line error naming
// `option` ("option --wbits", "--pin"): no spaces, no wrap-around.
int64_t parseInteger(const std::string& text, const std::string& option, int64_t min, int64_t max);
// The whole of `text` as a finite number, or an error naming `option`.
double parseNumber(const std::string& text, const std::string& option);

// Splits "1,2,3" into numbers, with an error naming the option on bad input.
std::vector<double> parseNumberList(const std::string& text, const std::string& option);

// A RUN argument: a positive run id, or an error saying what was given.
int64_t parseRunId(const std::string& text);

} // namespace qs::cli
