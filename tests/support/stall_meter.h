// Longest gap between ticks of a 2 ms timer: how long the GUI event loop was blocked.
// For the studio's tests and the UI benchmarks.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

#include <algorithm>

namespace qs::test {

class StallMeter : public QObject {
public:
    StallMeter()
    {
        timer_.setInterval(2);
        timer_.setTimerType(Qt::PreciseTimer);
        QObject::connect(&timer_, &QTimer::timeout, this, [this] {
            const qint64 now = clock_.nsecsElapsed();
            worstNs_ = std::max(worstNs_, now - lastNs_);
            lastNs_ = now;
        });
    }
    void start()
    {
        worstNs_ = 0;
        clock_.start();
        lastNs_ = 0;
        timer_.start();
    }
    // The longest stall since start(), in milliseconds.
    double stop()
    {
        timer_.stop();
        return double(worstNs_) * 1e-6;
    }

private:
    QTimer timer_;
    QElapsedTimer clock_;
    qint64 lastNs_ = 0, worstNs_ = 0;
};

} // namespace qs::test
