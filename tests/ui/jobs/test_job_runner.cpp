// JobRunner: results reach the GUI thread, progress is forwarded, errors carry core's
// message, and cancel stops a worker within a second.
#include "ui/jobs/job_runner.h"

#include "util/error.h"

#include <QElapsedTimer>
#include <QSignalSpy>
#include <QThread>
#include <QtTest>

#include <atomic>

using namespace qs;
using namespace qs::ui;

class TestJobRunner : public QObject {
    Q_OBJECT

private slots:
    void deliversOnGuiThread()
    {
        JobRunner jobs;
        QThread* worker = nullptr;
        QThread* deliveredOn = nullptr;
        int value = 0;
        QSignalSpy finished(&jobs, &JobRunner::jobFinished);
        jobs.start("t", "compute", [&](Progress& p, const CancelToken&) -> JobRunner::Deliver {
            worker = QThread::currentThread();
            p.report(0.5, "half");
            return [&, result = 42] {
                deliveredOn = QThread::currentThread();
                value = result;
            };
        });
        QVERIFY(finished.wait(5000));
        QCOMPARE(value, 42);
        QVERIFY(worker != QThread::currentThread());
        QCOMPARE(deliveredOn, QThread::currentThread());
        QCOMPARE(finished.front().at(2).value<JobOutcome>(), JobOutcome::Done);
        QVERIFY(!jobs.isBusy());
    }

    void forwardsProgress()
    {
        JobRunner jobs;
        QSignalSpy progress(&jobs, &JobRunner::jobProgress);
        QSignalSpy finished(&jobs, &JobRunner::jobFinished);
        jobs.start("t", "steps", [](Progress& p, const CancelToken&) -> JobRunner::Deliver {
            for (int i = 1; i <= 5; ++i) {
                p.report(i / 5.0, "step " + std::to_string(i));
                QThread::msleep(60);
            }
            return {};
        });
        QVERIFY(finished.wait(5000));
        QVERIFY(progress.size() >= 2);
        QCOMPARE(progress.back().at(2).toString(), QStringLiteral("step 5"));
        QCOMPARE(progress.back().at(1).toDouble(), 1.0);
    }

    void reportsErrorMessage()
    {
        JobRunner jobs;
        QSignalSpy finished(&jobs, &JobRunner::jobFinished);
        jobs.start("t", "fail", [](Progress&, const CancelToken&) -> JobRunner::Deliver {
            fail("model.onnx: node \"conv_3\" (Conv): weight has 3 dims, expected 4");
        });
        QVERIFY(finished.wait(5000));
        QCOMPARE(finished.front().at(2).value<JobOutcome>(), JobOutcome::Failed);
        QCOMPARE(finished.front().at(3).toString(),
                 QStringLiteral("model.onnx: node \"conv_3\" (Conv): weight has 3 dims, expected 4"));
    }

    void cancelStopsWorkerWithinASecond()
    {
        JobRunner jobs;
        std::atomic<bool> delivered{false};
        std::atomic<bool> started{false};
        QSignalSpy finished(&jobs, &JobRunner::jobFinished);
        const int id = jobs.start("t", "long", [&](Progress& p, const CancelToken& cancel) -> JobRunner::Deliver {
            started = true;
            for (int i = 0; i < 1000; ++i) { // 100 s unless cancelled
                cancel.check();
                p.report(i / 1000.0);
                QThread::msleep(100);
            }
            return [&] { delivered = true; };
        });
        QTRY_VERIFY_WITH_TIMEOUT(started.load(), 5000);
        QElapsedTimer clock;
        clock.start();
        jobs.cancel(id);
        QCOMPARE(finished.size(), 1); // reported at once
        QCOMPARE(finished.front().at(2).value<JobOutcome>(), JobOutcome::Cancelled);
        QVERIFY(jobs.waitForWorkers(1000));
        qInfo("worker stopped %lld ms after cancel", static_cast<long long>(clock.elapsed()));
        QTest::qWait(50);
        QVERIFY(!delivered);
    }

    void sameKindReplacesRunningJob()
    {
        JobRunner jobs;
        QSignalSpy finished(&jobs, &JobRunner::jobFinished);
        int result = 0;
        jobs.start("model", "first", [&](Progress&, const CancelToken& cancel) -> JobRunner::Deliver {
            for (int i = 0; i < 100; ++i) {
                cancel.check();
                QThread::msleep(20);
            }
            return [&] { result = 1; };
        });
        jobs.start("model", "second", [&](Progress&, const CancelToken&) -> JobRunner::Deliver {
            return [&] { result = 2; };
        });
        QVERIFY(jobs.waitForIdle(5000));
        QCOMPARE(result, 2);
        QCOMPARE(finished.size(), 2);
        QCOMPARE(finished.front().at(2).value<JobOutcome>(), JobOutcome::Cancelled);
    }
};

QTEST_MAIN(TestJobRunner)
#include "test_job_runner.moc"
