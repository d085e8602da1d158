// How long selecting a layer takes in the studio for layers of ~10M parameters:
// table selection, graph highlight and the inspector's three plots redrawn from
// the cached histograms. Prints the median and worst of alternating selections.
// Usage: bench_inspector [--params N] [--repeats R] [--no-calibrate]   (offscreen by default)
#include "graph/graph.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/widgets/theme.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>

#include <time.h>

namespace {

// x [N,K] -> Gemm(W1 [K,M]) -> Relu -> Gemm(W2 [M,K]) -> y: two layers of K*M weights each,
// with a heavy-tailed weight distribution so histograms are not trivial.
std::shared_ptr<qs::Graph> syntheticGemmModel(int64_t paramsPerLayer)
{
    const int64_t k = 2560;
    const int64_t m = std::max<int64_t>(1, paramsPerLayer / k);
    auto g = std::make_shared<qs::Graph>();
    g->name = "synthetic-gemm";
    g->sourcePath = "synthetic-gemm (in memory)";
    auto info = [](const std::string& name, std::vector<int64_t> dims) {
        qs::ValueInfo v;
        v.name = name;
        v.dtype = qs::DType::Float;
        std::vector<qs::Dim> d;
        for (int64_t x : dims)
            d.push_back(x < 0 ? qs::Dim{-1, "N"} : qs::Dim{x, ""});
        v.dims = d;
        return v;
    };
    g->inputs.push_back(info("x", {-1, k}));
    g->outputs.push_back(info("y", {-1, k}));
    for (const auto& v : {info("x", {-1, k}), info("h", {-1, m}), info("r", {-1, m}), info("y", {-1, k})})
        g->valueInfo[v.name] = v;
    std::mt19937 rng(7);
    std::student_t_distribution<float> heavy(4.0f);
    auto weight = [&](const std::string& name, qs::Shape shape) {
        qs::Tensor t(qs::DType::Float, shape);
        t.name = name;
        for (float& v : t.data<float>())
            v = 0.02f * heavy(rng);
        g->initializers[name] = std::move(t);
    };
    weight("w1", {k, m});
    weight("w2", {m, k});
    auto node = [&](const std::string& name, const std::string& op, std::vector<std::string> in, std::string out) {
        qs::Node n;
        n.name = name;
        n.opType = op;
        n.inputs = std::move(in);
        n.outputs = {std::move(out)};
        g->nodes.push_back(std::move(n));
    };
    node("/fc1/Gemm", "Gemm", {"x", "w1"}, "h");
    node("/act/Relu", "Relu", {"h"}, "r");
    node("/fc2/Gemm", "Gemm", {"r", "w2"}, "y");
    g->opsets[""] = 13;
    g->index();
    return g;
}

// CPU time of the calling thread: what a redraw costs the GUI thread, without the
// time other processes on a shared machine take from it.
double threadCpuMs()
{
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("QuantStudioBench"));
    qs::ui::theme::apply(app);
    int64_t params = 10'000'000;
    int repeats = 40;
    bool calibrate = true;
    for (int i = 1; i + 1 < argc; ++i) {
        if (!std::strcmp(argv[i], "--params"))
            params = std::atoll(argv[i + 1]);
        if (!std::strcmp(argv[i], "--repeats"))
            repeats = std::atoi(argv[i + 1]);
    }
    for (int i = 1; i < argc; ++i)
        if (!std::strcmp(argv[i], "--no-calibrate"))
            calibrate = false;

    qs::ui::MainWindow window;
    window.resize(1600, 1000);
    window.show();
    QElapsedTimer clock;
    clock.start();
    auto graph = syntheticGemmModel(params);
    const double buildMs = double(clock.nsecsElapsed()) * 1e-6;
    clock.restart();
    QEventLoop wait;
    bool opened = false;
    QObject::connect(&window.studio(), &qs::ui::Studio::modelOpened, &wait, [&] {
        opened = true;
        wait.quit();
    });
    QObject::connect(window.studio().jobs(), &qs::ui::JobRunner::jobFinished, &wait, [&] { wait.quit(); });
    QTimer::singleShot(600000, &wait, &QEventLoop::quit);
    window.studio().openGraph(graph);
    wait.exec();
    if (!opened) {
        std::fprintf(stderr, "model did not open\n");
        return 1;
    }
    const double prepareMs = double(clock.nsecsElapsed()) * 1e-6;
    auto* doc = window.studio().document();
    std::printf("model: 2 Gemm layers of %lld and %lld parameters (synthetic, built in %.0f ms)\n",
                static_cast<long long>(doc->layer(0)->summary.params), static_cast<long long>(doc->layer(1)->summary.params),
                buildMs);
    std::printf("worker: statistics, histograms, channel ranges and layout in %.0f ms (off the GUI thread)\n", prepareMs);

    // With activation statistics the inspector draws its third plot and the clipping
    // lines of every calibrator too: the redraw a user sees after calibrating.
    if (calibrate) {
        clock.restart();
        bool calibrated = false;
        QEventLoop calibration;
        QObject::connect(&window.studio(), &qs::ui::Studio::calibrationFinished, &calibration, [&](bool ok) {
            calibrated = ok;
            calibration.quit();
        });
        QTimer::singleShot(600000, &calibration, &QEventLoop::quit);
        if (window.studio().runCalibration() < 0)
            return 1;
        calibration.exec();
        if (!calibrated) {
            std::fprintf(stderr, "calibration did not finish\n");
            return 1;
        }
        std::printf("worker: activation statistics on %s in %.0f ms\n", qPrintable(window.studio().calibrationDataLabel()),
                    double(clock.nsecsElapsed()) * 1e-6);
    }

    std::vector<double> times, cpuTimes;
    for (int i = 0; i < repeats; ++i) {
        QApplication::processEvents();
        clock.restart();
        const double cpu0 = threadCpuMs();
        window.studio().selection()->selectLayer(i % 2 == 0 ? 1 : 0); // alternate so every selection redraws
        cpuTimes.push_back(threadCpuMs() - cpu0);
        times.push_back(double(clock.nsecsElapsed()) * 1e-6);
    }
    const double wallMedian = median(times);
    const double cpuMedian = median(cpuTimes);
    std::printf("select layer + inspector redraw%s (%d runs): median %.2f ms wall (worst %.2f), median %.2f ms "
                "GUI-thread CPU; budget 50 ms -> %s\n",
                calibrate ? " with activations" : "", repeats, wallMedian,
                *std::max_element(times.begin(), times.end()), cpuMedian, wallMedian < 50 ? "ok" : "SLOW");
    window.studio().jobs()->cancelAll();
    return wallMedian < 50 ? 0 : 1;
}
