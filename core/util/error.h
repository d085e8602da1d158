// The one error mechanism of core/: an exception carrying a complete, user-facing
// message that names the file, node or field at fault. Caught at the boundary
// (CLI main, GUI job runner), never inside core to print and continue.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace qs {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when a CancelToken fires. Not an Error: cancelling is a normal outcome.
class Cancelled : public std::exception {
public:
    const char* what() const noexcept override { return "cancelled"; }
};

// Concatenates anything streamable: str("node \"", name, "\" has ", n, " inputs").
template <typename... Args>
std::string str(const Args&... args)
{
    std::ostringstream out;
    (out << ... << args);
    return out.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args)
{
    throw Error(str(args...));
}

// Quotes a name for messages: quoted("conv_3") -> "\"conv_3\"".
// (The non-const overload keeps std::quoted, found by argument-dependent lookup, out.)
std::string quoted(const std::string& name);
inline std::string quoted(std::string& name) { return quoted(static_cast<const std::string&>(name)); }

} // namespace qs
