// The table of quantstudio-cli commands. Each cmd_*.cpp registers one or more:
//   static const bool registered = qs::cli::registerCommand({"inspect", "MODEL [--json]", "...", runInspect});
#pragma once

#include <string>
#include <vector>

namespace qs::cli {

struct Command {
    std::string name;
    std::string usage;   // arguments after the command name
    std::string summary; // one line for `quantstudio-cli help`
    int (*run)(const std::vector<std::string>& args); // returns the exit code; throws qs::Error on bad input
};

bool registerCommand(Command command);
const std::vector<Command>& commands();

} // namespace qs::cli
