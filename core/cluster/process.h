// Runs a program as a child process (posix_spawnp, no shell) and collects its exit
// code, standard output and standard error: how core/cluster calls sbatch, squeue,
// scontrol, sacct and scancel.
#pragma once

#include <string>
#include <vector>

namespace qs {

struct ProcessResult {
    int exitCode = -1; // 128 + signal when killed; -1 when it could not be started
    std::string out, err;
};

// argv[0] is looked up on PATH; `env` ("NAME=value") is added to (and overrides) this
// process's environment. Never throws for a failing program; an Error only when argv
// is empty.
ProcessResult runProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

// The first line of `text` without trailing spaces (for one-line error messages).
std::string firstLine(const std::string& text);

} // namespace qs
