#include "util/error.h"

namespace qs {

std::string quoted(const std::string& name)
{
    return "\"" + name + "\"";
}

} // namespace qs
