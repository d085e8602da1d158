// The message of the qs::Error `f` throws, or "(no error)": for tests of one-line errors.
#pragma once

#include "util/error.h"

#include <functional>
#include <string>

namespace qs::test {

inline std::string errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace qs::test
