// quantstudio: the desktop studio. Opens MODEL.onnx, or the bundled demo on first start,
// and the experiment database used last (or --db PATH).
#include "ui/calibration/data_dialog.h"
#include "ui/compare/compare_panel.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_panel.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"
#include "ui/sensitivity/cluster_sweep_dialog.h"
#include "ui/settings/settings_dialog.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/theme.h"
#include "util/memory_budget.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QCommandLineParser>
#include <QDockWidget>
#include <QFileInfo>
#include <QScreen>
#include <QTimer>

#include <QElapsedTimer>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <unistd.h>

namespace {

double threadCpuMs()
{
    timespec t {};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

// The process's peak resident memory (VmHWM), in MiB; 0 when /proc is not there.
double peakRssMiB()
{
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    double kib = 0;
    while (std::fgets(line, sizeof line, f))
        if (!std::strncmp(line, "VmHWM:", 6))
            kib = std::atof(line + 6);
    std::fclose(f);
    return kib / 1024.0;
}

// CPU time of the whole process (every thread, user + system) so far, in ms: on a
// shared machine the wall time to shown includes other processes' turns, this does not.
double processCpuMs()
{
    timespec t {};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

// --measure-open: the longest gap between ticks of a 10 ms timer on the GUI thread, as
// wall time and as the GUI thread's own CPU time (what the studio causes, without the
// time other processes of a shared machine take), from the event loop's first tick
// (the window built: "startup") until the model is shown and every job it started
// (weight statistics, stored results) has finished.
class OpenMeter : public QObject {
public:
    OpenMeter()
    {
        clock_.start();
        lastMs_ = 0;
        lastCpuMs_ = threadCpuMs();
        timer_.setInterval(10);
        timer_.setTimerType(Qt::PreciseTimer);
        QObject::connect(&timer_, &QTimer::timeout, this, [this] { tick(); });
        timer_.start();
    }
    void tick()
    {
        const double now = double(clock_.nsecsElapsed()) * 1e-6, cpu = threadCpuMs();
        if (startupMs_ < 0) { // the first tick: the window built and the event loop running
            startupMs_ = now;
            lastMs_ = now;
            lastCpuMs_ = cpu;
            return;
        }
        worstMs_ = std::max(worstMs_, now - lastMs_);
        if (cpu - lastCpuMs_ > worstCpuMs_) {
            worstCpuMs_ = cpu - lastCpuMs_;
            worstCpuAtMs_ = now;
        }
        lastMs_ = now;
        lastCpuMs_ = cpu;
    }
    double elapsedMs() const { return double(clock_.nsecsElapsed()) * 1e-6; }
    double worstMs() const { return worstMs_; }
    double worstCpuMs() const { return worstCpuMs_; }
    double worstCpuAtMs() const { return worstCpuAtMs_; } // when that stall ended
    double startupMs() const { return startupMs_; }

private:
    QTimer timer_;
    QElapsedTimer clock_;
    double lastMs_ = 0, lastCpuMs_ = 0, worstMs_ = 0, worstCpuMs_ = 0, worstCpuAtMs_ = 0, startupMs_ = -1;
};

} // namespace

int main(int argc, char** argv)
{
    // Idle OpenMP workers must sleep, not spin: a spinning worker takes the core the
    // GUI thread needs to stay responsive while a job runs (measured: a 2-thread
    // batch-32 demo inference took 140 ms spinning on a loaded 2-core machine, 2.3 ms
    // passive). libgomp reads the variable when it loads, before main(), so the process
    // restarts itself once with it set; a user's own setting is kept.
    if (!std::getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        execv("/proc/self/exe", argv); // returns only on failure: then run as we are
    }

    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("QuantStudio"));
    QApplication::setApplicationName(QStringLiteral("QuantStudio"));
    QApplication::setApplicationVersion(QStringLiteral(QS_VERSION));
    qs::ui::theme::apply(app);

    QCommandLineParser args;
    args.setApplicationDescription(QStringLiteral("A studio for neural-network quantization experiments."));
    args.addHelpOption();
    args.addVersionOption();
    args.addPositionalArgument(QStringLiteral("model"), QStringLiteral("ONNX model to open"), QStringLiteral("[MODEL.onnx]"));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save a PNG of the window once the model is shown, then quit."),
                                        QStringLiteral("path"));
    const QCommandLineOption select(QStringLiteral("select"), QStringLiteral("Select the layer with this name (substring)."),
                                    QStringLiteral("layer"));
    const QCommandLineOption calibrate(QStringLiteral("calibrate"), QStringLiteral("Collect activation statistics after opening."));
    const QCommandLineOption size(QStringLiteral("size"), QStringLiteral("Window size, e.g. 1600x1000."), QStringLiteral("WxH"));
    const QCommandLineOption db(QStringLiteral("db"), QStringLiteral("Experiment database to open (default: the last one)."),
                                QStringLiteral("path"));
    const QCommandLineOption colorBy(QStringLiteral("color-by"),
                                     QStringLiteral("Colour the graph by this column, e.g. \"act. kurtosis\"."),
                                     QStringLiteral("column"));
    const QCommandLineOption data(QStringLiteral("data"),
        QStringLiteral("Calibration data: an IDX/NPY file, images:DIR, imagelist:FILE or random:N."), QStringLiteral("spec"));
    const QCommandLineOption preprocess(QStringLiteral("preprocess"),
        QStringLiteral("Preprocessing of images:/imagelist: data (torchvision, paddleocr-rec, yolo or items)."),
        QStringLiteral("spec"));
    const QCommandLineOption dataDialog(QStringLiteral("data-dialog"),
        QStringLiteral("Open File > Calibration Data once the model is shown; with --screenshot, save the dialog "
                       "once its preview is shown."));
    const QCommandLineOption compare(QStringLiteral("compare"),
        QStringLiteral("Compare these runs of the database (e.g. 3,5) once the model is shown; with --screenshot, "
                       "save the window with the comparison."),
        QStringLiteral("ids"));
    const QCommandLineOption clusterDialog(QStringLiteral("cluster-dialog"),
        QStringLiteral("Open Analyze > Run Sweep on Cluster once the model is shown; with --screenshot, save the "
                       "dialog."));
    const QCommandLineOption optimizerOverlay(QStringLiteral("optimizer-overlay"),
        QStringLiteral("Turn on the graph's optimizer overlay once the model is shown; with --screenshot, save the "
                       "window when its badges are on."));
    const QCommandLineOption settingsDialog(QStringLiteral("settings-dialog"),
        QStringLiteral("Open Edit > Settings once the model is shown; with --screenshot, save the dialog."));
    const QCommandLineOption cacheBudget(QStringLiteral("cache-budget"),
        QStringLiteral("Memory budget of the analyses' caches for this session, e.g. 2G (default: the saved "
                       "setting, QS_CACHE_BUDGET or a quarter of RAM)."),
        QStringLiteral("size"));
    const QCommandLineOption measureOpen(QStringLiteral("measure-open"),
        QStringLiteral("Print the time until the model is shown and until every job it started has finished, the "
                       "longest event-loop stall and the peak memory, then quit (bench/ui/run_open_bench.py)."));
    for (const auto& o : {screenshot, select, calibrate, size, db, colorBy, data, preprocess, dataDialog, compare,
             clusterDialog, optimizerOverlay, settingsDialog, cacheBudget, measureOpen})
        args.addOption(o);
    args.process(app);

    std::unique_ptr<OpenMeter> meter;
    if (args.isSet(measureOpen))
        meter = std::make_unique<OpenMeter>();
    qs::ui::MainWindow window;
    if (args.isSet(size)) {
        const QStringList wh = args.value(size).split(QLatin1Char('x'));
        if (wh.size() == 2)
            window.resize(wh[0].toInt(), wh[1].toInt());
    }
    if (args.isSet(colorBy)) {
        QComboBox* combo = window.graphPanel()->colorCombo();
        for (int i = 0; i < combo->count(); ++i)
            if (combo->itemText(i).contains(args.value(colorBy), Qt::CaseInsensitive)) {
                combo->setCurrentIndex(i);
                break;
            }
    }
    window.show();

    const QString shotPath = args.value(screenshot);
    const QString selectName = args.value(select);
    const bool doCalibrate = args.isSet(calibrate);
    const bool showDataDialog = args.isSet(dataDialog);
    QList<qint64> compareRuns;
    for (const QString& id : args.value(compare).split(QLatin1Char(','), Qt::SkipEmptyParts))
        compareRuns << id.trimmed().toLongLong();
    const bool showClusterDialog = args.isSet(clusterDialog);
    if (args.isSet(cacheBudget)) {
        try {
            qs::setCacheBudgetBytes(qs::parseByteSize(args.value(cacheBudget).toStdString(), "--cache-budget"));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "quantstudio: %s\n", e.what());
            return 2;
        }
    }
    if (args.isSet(data))
        window.studio().setData(args.value(data), args.value(preprocess));
    auto takeShot = [&window, shotPath] {
        // Once the weight statistics (a job after opening) are in the table and the graph.
        auto* poll = new QTimer(&window);
        QObject::connect(poll, &QTimer::timeout, &window, [&window, shotPath, poll] {
            if (window.studio().jobs()->isBusy(QStringLiteral("weights")))
                return;
            poll->stop();
            QTimer::singleShot(400, &window, [&window, shotPath] {
                const bool ok = window.grab().save(shotPath);
                std::fprintf(stderr, "%s %s\n", ok ? "saved" : "could not save", qPrintable(shotPath));
                QApplication::exit(ok ? 0 : 1);
            });
        });
        poll->start(20);
    };
    QObject::connect(&window.studio(), &qs::ui::Studio::modelOpened, &window, [&, takeShot] {
        if (!selectName.isEmpty()) {
            const auto& m = window.studio().document()->model();
            for (int r = 0; r < int(m->layers.size()); ++r)
                if (QString::fromStdString(m->layers[std::size_t(r)].summary.name).contains(selectName)) {
                    window.studio().selection()->selectLayer(r);
                    break;
                }
        }
        if (showDataDialog) {
            qs::ui::CalibrationDataDialog* dialog = window.chooseData();
            if (!shotPath.isEmpty())
                QObject::connect(dialog, &qs::ui::CalibrationDataDialog::previewShown, dialog, [dialog, shotPath] {
                    QTimer::singleShot(300, dialog, [dialog, shotPath] {
                        const bool ok = dialog->grab().save(shotPath);
                        std::fprintf(stderr, "%s %s (%dx%d, at least %dx%d)\n", ok ? "saved" : "could not save",
                            qPrintable(shotPath), dialog->width(), dialog->height(), dialog->minimumSizeHint().width(),
                            dialog->minimumSizeHint().height());
                        QApplication::exit(ok ? 0 : 1);
                    });
                });
            return;
        }
        if (!compareRuns.isEmpty()) {
            qs::ui::RunsController* runs = window.feature<qs::ui::RunsFeature>()->controller();
            if (!shotPath.isEmpty())
                QObject::connect(runs, &qs::ui::RunsController::comparisonShown, &window, [takeShot] { takeShot(); });
            // After the database has opened (a job like the model's).
            QTimer::singleShot(500, &window, [runs, compareRuns] {
                if (runs->compare(compareRuns) < 0)
                    std::fprintf(stderr, "--compare: needs two or more runs and an open database\n");
            });
            return;
        }
        // A dialog opened by its action; with --screenshot, saved once shown.
        auto openDialog = [&window, shotPath](const QString& actionName, const std::function<QDialog*()>& find) {
            if (auto* action = window.findChild<QAction*>(actionName))
                action->trigger();
            QDialog* dialog = find(); // made by the action the first time
            if (dialog && !shotPath.isEmpty())
                QTimer::singleShot(500, dialog, [dialog, shotPath] {
                    const bool ok = dialog->grab().save(shotPath);
                    std::fprintf(stderr, "%s %s\n", ok ? "saved" : "could not save", qPrintable(shotPath));
                    QApplication::exit(ok ? 0 : 1);
                });
        };
        if (showClusterDialog) {
            openDialog(QStringLiteral("clusterSweepAction"),
                [&window] { return window.findChild<qs::ui::ClusterSweepDialog*>(); });
            return;
        }
        if (args.isSet(settingsDialog)) {
            openDialog(QStringLiteral("settingsAction"), [&window] { return window.findChild<qs::ui::SettingsDialog*>(); });
            return;
        }
        if (args.isSet(optimizerOverlay)) {
            qs::ui::GraphPanel* panel = window.graphPanel();
            if (!shotPath.isEmpty())
                QObject::connect(panel, &qs::ui::GraphPanel::optimizerOverlayShown, &window, [takeShot] { takeShot(); });
            panel->setOptimizerOverlay(true);
            return;
        }
        if (doCalibrate && window.studio().runCalibration() >= 0)
            return;
        if (!shotPath.isEmpty())
            takeShot();
    });
    if (meter) {
        // Shown: the model's first paint after modelOpened; done: no job left running.
        QObject::connect(&window.studio(), &qs::ui::Studio::modelOpened, &window, [&window, &meter] {
            window.repaint();
            const double shownMs = meter->elapsedMs(), shownCpuMs = processCpuMs();
            const double shownPeak = peakRssMiB();
            // Said at once too, for a run stopped before its jobs finish.
            std::fprintf(stderr, "measure-open: shown %.0f ms, process CPU %.0f ms, peak %.0f MiB\n", shownMs,
                shownCpuMs, shownPeak);
            auto* poll = new QTimer(&window);
            QObject::connect(poll, &QTimer::timeout, &window, [&window, &meter, shownMs, shownCpuMs, shownPeak, poll] {
                if (window.studio().jobs()->isBusy())
                    return;
                poll->stop();
                meter->tick();
                std::printf(
                    "measure-open: startup %.0f ms, shown %.0f ms, all jobs done %.0f ms, longest stall %.1f ms "
                    "wall, %.1f ms GUI CPU (ending at %.0f ms), peak %.0f MiB; process CPU %.0f ms at shown, %.0f "
                    "ms at done; peak %.0f MiB at shown\n",
                    meter->startupMs(), shownMs, meter->elapsedMs(), meter->worstMs(), meter->worstCpuMs(),
                    meter->worstCpuAtMs(), peakRssMiB(), shownCpuMs, processCpuMs(), shownPeak);
                std::fflush(stdout);
                QApplication::exit(0);
            });
            poll->start(20);
        });
    }
    if (!shotPath.isEmpty())
        QObject::connect(&window.studio(), &qs::ui::Studio::calibrationFinished, &window, [takeShot] { takeShot(); });
    QObject::connect(window.studio().errors(), &qs::ui::ErrorReporter::reported, &window,
        [&shotPath, &meter](const QString& title, const QString& message) {
            std::fprintf(stderr, "%s: %s\n", qPrintable(title), qPrintable(message));
            if (!shotPath.isEmpty() || meter)
                QTimer::singleShot(300, [] { QApplication::exit(1); });
        });

    if (args.isSet(db))
        window.studio().openStore(args.value(db));
    else
        window.studio().openStartupStore();
    const QStringList positional = args.positionalArguments();
    if (!positional.isEmpty())
        window.openFile(QFileInfo(positional.front()).absoluteFilePath());
    else
        window.studio().openStartupModel();
    return app.exec();
}
