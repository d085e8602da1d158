// The graph view on models of thousands of operators: the longest stall of the GUI event
// loop while the studio opens one (import, statistics and layout run in workers), while
// every block is expanded and laid out again, and while a layer inside a collapsed block
// is selected; and the time to paint the view at Fit. Budget: 100 ms for every stall.
// Usage: bench_graph_view [--blocks N ...]   (offscreen by default; 29 operators a block)
#include "support/stall_meter.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/widgets/theme.h"

#include "../../tests/ui/graph/block_stack_model.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QTemporaryDir>
#include <QTimer>

#include <cstdio>
#include <cstring>
#include <vector>

#include <time.h>

namespace {

double threadCpuMs()
{
    timespec t {};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

// The GUI thread's CPU time between ticks of a 2 ms timer, at its worst: the stall the
// studio itself causes, without the time other processes on a shared machine take.
class CpuStallMeter : public QObject {
public:
    CpuStallMeter()
    {
        timer_.setInterval(2);
        timer_.setTimerType(Qt::PreciseTimer);
        QObject::connect(&timer_, &QTimer::timeout, this, [this] {
            const double now = threadCpuMs();
            worstMs_ = std::max(worstMs_, now - lastMs_);
            lastMs_ = now;
        });
    }
    void start()
    {
        worstMs_ = 0;
        lastMs_ = threadCpuMs();
        timer_.start();
    }
    double stop()
    {
        timer_.stop();
        return worstMs_;
    }

private:
    QTimer timer_;
    double lastMs_ = 0, worstMs_ = 0;
};

// Runs the event loop until `done` holds (or a minute passed); false on timeout.
template <class F>
bool waitFor(F done)
{
    QElapsedTimer clock;
    clock.start();
    while (!done() && clock.elapsed() < 60000) {
        QEventLoop loop;
        QTimer::singleShot(5, &loop, &QEventLoop::quit);
        loop.exec();
    }
    return done();
}

} // namespace

int main(int argc, char** argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("QuantStudioBench"));
    qs::ui::theme::apply(app);
    std::vector<int> sizes;
    for (int i = 1; i + 1 < argc; ++i)
        if (!std::strcmp(argv[i], "--blocks"))
            sizes.push_back(std::atoi(argv[i + 1]));
    if (sizes.empty())
        sizes = {24, 100};
    QTemporaryDir dir;
    bool ok = true;
    for (int blocks : sizes) {
        const QString path = dir.filePath(QStringLiteral("stack%1.onnx").arg(blocks));
        qs::test::blockStackModel(blocks).save(path.toStdString());
        qs::ui::MainWindow window;
        window.resize(1600, 1000);
        window.show();
        qs::ui::GraphView* view = window.graphPanel()->view();
        auto* doc = window.studio().document();
        qs::test::StallMeter stall;
        CpuStallMeter cpu;
        QElapsedTimer settle; // the window's first paints (fonts, style) are not the model's
        settle.start();
        waitFor([&] { return settle.elapsed() > 500; });

        QElapsedTimer clock;
        clock.start();
        stall.start();
        cpu.start();
        bool opened = false;
        QObject::connect(&window.studio(), &qs::ui::Studio::modelOpened, [&] { opened = true; });
        window.studio().openModel(path);
        if (!waitFor([&] { return opened; }))
            return 1;
        window.repaint();
        const double openMs = double(clock.elapsed());
        const double openStall = stall.stop(), openCpu = cpu.stop();

        view->fitGraph();
        clock.restart();
        view->viewport()->repaint();
        const double paintFitMs = double(clock.nsecsElapsed()) * 1e-6;

        stall.start();
        cpu.start();
        clock.restart();
        view->setAllBlocksCollapsed(false);
        waitFor([&] { return !view->relayoutPending(); });
        view->fitGraph();
        window.repaint();
        const double expandMs = double(clock.elapsed());
        const double expandStall = stall.stop(), expandCpu = cpu.stop();
        clock.restart();
        view->viewport()->repaint();
        const double paintExpandedMs = double(clock.nsecsElapsed()) * 1e-6;
        clock.restart();
        doc->setLayout(doc->layout()); // the scene built again from the same layout, on the GUI thread
        const double rebuildMs = double(clock.nsecsElapsed()) * 1e-6;
        clock.restart();
        view->viewport()->repaint();
        const double firstPaintMs = double(clock.nsecsElapsed()) * 1e-6;
        view->zoomBy(0.1 / view->zoom());
        clock.restart();
        view->viewport()->repaint();
        const double paintAllMs = double(clock.nsecsElapsed()) * 1e-6;
        const std::size_t expandedBoxes = view->nodeItems().size(), expandedEdges = doc->layout()->edges.size();

        view->setAllBlocksCollapsed(true);
        waitFor([&] { return !view->relayoutPending(); });
        stall.start();
        cpu.start();
        window.studio().selection()->selectLayer(doc->layerCount() / 2);
        waitFor([&] { return !view->relayoutPending(); });
        window.repaint();
        const double selectStall = stall.stop(), selectCpu = cpu.stop();

        const auto& model = *doc->model();
        std::printf("%d blocks, %zu operators, %zu layers: open %.0f ms (stall %.1f ms wall, %.1f ms GUI CPU), %zu boxes at Fit painted in %.1f ms\n",
                    blocks, model.graph->nodes.size(), model.layers.size(), openMs, openStall, openCpu,
                    size_t(blocks + 3), paintFitMs);
        std::printf("  expand all: %.0f ms (stall %.1f ms wall, %.1f ms GUI CPU), Fit painted in %.1f ms, all %zu boxes at 10 %% in %.1f ms\n",
                    expandMs, expandStall, expandCpu, paintExpandedMs, expandedBoxes, paintAllMs);
        std::printf("  scene of %zu boxes and %zu edges rebuilt in %.1f ms, first paint %.1f ms\n", size_t(expandedBoxes),
                    size_t(expandedEdges), rebuildMs, firstPaintMs);
        std::printf("  select a layer in a collapsed block: stall %.1f ms wall, %.1f ms GUI CPU\n", selectStall, selectCpu);
        const double worst = std::max({openCpu, expandCpu, selectCpu});
        std::printf("  longest stall %.1f ms of GUI CPU; budget 100 ms -> %s\n", worst, worst < 100 ? "ok" : "SLOW");
        ok = ok && worst < 100;
        window.studio().jobs()->cancelAll();
    }
    return ok ? 0 : 1;
}
