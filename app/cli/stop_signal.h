// Ctrl-C (or SIGTERM) cancels long work through its CancelToken while a StopOnSignal
// lives; a second signal ends the process the default way. CancelToken::cancel() is a
// lock-free atomic store, safe in a signal handler.
#pragma once

#include "jobs/progress.h"

#include <csignal>

namespace qs::cli {

inline const CancelToken* gStopCancel = nullptr;

extern "C" inline void onStopSignal(int sig)
{
    if (gStopCancel)
        gStopCancel->cancel();
    std::signal(sig, SIG_DFL);
}

class StopOnSignal {
public:
    explicit StopOnSignal(const CancelToken& cancel) : cancel_(cancel)
    {
        gStopCancel = &cancel_;
        std::signal(SIGINT, onStopSignal);
        std::signal(SIGTERM, onStopSignal);
    }
    ~StopOnSignal()
    {
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
        gStopCancel = nullptr;
    }
    StopOnSignal(const StopOnSignal&) = delete;
    StopOnSignal& operator=(const StopOnSignal&) = delete;

private:
    CancelToken cancel_;
};

} // namespace qs::cli
