// How long work reports and stops: every long core operation takes a Progress&
// (fraction, stage text, ETA) and a CancelToken it checks between batches or layers.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace qs {

// Shared flag: copies observe the same cancellation. Cheap to check.
class CancelToken {
public:
    CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
    void cancel() const { flag_->store(true, std::memory_order_relaxed); }
    bool cancelled() const { return flag_->load(std::memory_order_relaxed); }
    // Throws qs::Cancelled when cancelled; call between units of work.
    void check() const;

private:
    std::shared_ptr<std::atomic<bool>> flag_;
};

struct ProgressState {
    double fraction = 0;      // 0..1 of the whole operation
    std::string stage;        // what is being done now, for the status line
    double elapsedSeconds = 0;
    double etaSeconds = -1;   // < 0 while unknown
};

// Reports progress to an optional sink. A child Progress maps its own 0..1 onto a
// sub-range of its parent, so nested steps compose without knowing each other.
class Progress {
public:
    using Sink = std::function<void(const ProgressState&)>;

    Progress() = default;
    explicit Progress(Sink sink);

    void report(double fraction, const std::string& stage = {});
    // A view of [from, to] of this progress, for a sub-step.
    Progress sub(double from, double to);

    double fraction() const { return fraction_; }

private:
    struct Root {
        Sink sink;
        std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point lastSent{};
        std::string stage;
    };
    std::shared_ptr<Root> root_;
    double from_ = 0, to_ = 1;
    double fraction_ = 0;
};

} // namespace qs
