#include "jobs/progress.h"

#include "util/error.h"

#include <algorithm>

namespace qs {

void CancelToken::check() const
{
    if (cancelled())
        throw Cancelled();
}

Progress::Progress(Sink sink) : root_(std::make_shared<Root>())
{
    root_->sink = std::move(sink);
}

void Progress::report(double fraction, const std::string& stage)
{
    fraction_ = std::clamp(fraction, 0.0, 1.0);
    if (!root_ || !root_->sink)
        return;
    if (!stage.empty())
        root_->stage = stage;
    auto now = std::chrono::steady_clock::now();
    double overall = from_ + (to_ - from_) * fraction_;
    // Rate-limit to ~20 updates a second; always send the end.
    if (overall < 1.0 && now - root_->lastSent < std::chrono::milliseconds(50) && stage.empty())
        return;
    root_->lastSent = now;
    ProgressState s;
    s.fraction = overall;
    s.stage = root_->stage;
    s.elapsedSeconds = std::chrono::duration<double>(now - root_->start).count();
    if (overall > 0.02 && s.elapsedSeconds > 0.2)
        s.etaSeconds = s.elapsedSeconds * (1 - overall) / overall;
    root_->sink(s);
}

Progress Progress::sub(double from, double to)
{
    Progress child;
    child.root_ = root_;
    child.from_ = from_ + (to_ - from_) * from;
    child.to_ = from_ + (to_ - from_) * to;
    return child;
}

} // namespace qs
