// quantstudio-cli: the headless twin of the studio. Errors become one line on
// stderr and exit code 1; a cancelled job exits with 130.
#include "cli/command.h"

#include "util/error.h"
#include "util/memory_budget.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

namespace qs::cli {

static std::vector<Command>& table()
{
    static std::vector<Command> t;
    return t;
}

bool registerCommand(Command command)
{
    table().push_back(std::move(command));
    return true;
}

const std::vector<Command>& commands()
{
    return table();
}

} // namespace qs::cli

static void printUsage(std::FILE* to)
{
    auto cmds = qs::cli::commands();
    std::sort(cmds.begin(), cmds.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    std::fprintf(to, "usage: quantstudio-cli COMMAND [ARGS] [--cache-budget SIZE]\n\n"
                     "--cache-budget SIZE (any command; or QS_CACHE_BUDGET): memory the analyses' caches may\n"
                     "hold, e.g. 512M or 2G (default: a quarter of physical memory)\n\ncommands:\n");
    for (const auto& c : cmds)
        std::fprintf(to, "  %-12s %s\n      %s\n", c.name.c_str(), c.usage.c_str(), c.summary.c_str());
}

int main(int argc, char** argv)
{
    if (argc < 2) {
        printUsage(stderr);
        return 2;
    }
    std::string name = argv[1];
    if (name == "help" || name == "--help" || name == "-h") {
        printUsage(stdout);
        return 0;
    }
    std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& c : qs::cli::commands()) {
        if (c.name != name)
            continue;
        try {
            // --cache-budget SIZE or --cache-budget=SIZE, for every command: taken out here.
            for (std::size_t i = 0; i < args.size(); ++i) {
                std::string value;
                if (args[i] == "--cache-budget") {
                    if (i + 1 >= args.size())
                        qs::fail("--cache-budget: expected a memory size such as 512M or 2G");
                    value = args[i + 1];
                    args.erase(args.begin() + std::ptrdiff_t(i), args.begin() + std::ptrdiff_t(i) + 2);
                } else if (args[i].rfind("--cache-budget=", 0) == 0) {
                    value = args[i].substr(15);
                    args.erase(args.begin() + std::ptrdiff_t(i));
                } else {
                    continue;
                }
                qs::setCacheBudgetBytes(qs::parseByteSize(value, "--cache-budget"));
                --i;
            }
            (void)qs::cacheBudgetBytes(); // a malformed QS_CACHE_BUDGET fails now, naming it
            return c.run(args);
        } catch (const qs::Cancelled&) {
            std::fprintf(stderr, "quantstudio-cli %s: cancelled\n", name.c_str());
            return 130;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "quantstudio-cli %s: error: %s\n", name.c_str(), e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "quantstudio-cli: unknown command \"%s\" (try: quantstudio-cli help)\n", name.c_str());
    return 2;
}
