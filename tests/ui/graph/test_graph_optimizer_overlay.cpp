// The graph panel's optimizer overlay: toggled on, a job runs the passes and each node
// they change gets a badge naming its fate and the pass (written out here by hand for
// a model built here: x -> Identity -> Pad -> Conv -> Relu); toggled off, the badges go.
#include "graph/graph.h"
#include "graph/onnx_import.h"
#include "support/onnx_builder.h"
#include "support/studio_window.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"

#include <QLabel>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestGraphOptimizerOverlay : public QObject {
    Q_OBJECT
private slots:
    void badgesNameFateAndPass()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        test::OnnxBuilder b(13);
        b.input("x", {1, 3, 8, 8});
        b.node("Identity", {"x"}, {"same"}, "identity");
        b.int64Initializer("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
        b.node("Pad", {"same", "pads"}, {"padded"}, "pad");
        b.initializer("w", {4, 3, 3, 3}, std::vector<float>(4 * 3 * 9, 0.05f));
        auto* conv = b.node("Conv", {"padded", "w"}, {"c"}, "conv");
        test::OnnxBuilder::intsAttr(conv, "kernel_shape", {3, 3});
        b.node("Relu", {"c"}, {"y"}, "relu");
        b.output("y", {1, 4, 8, 8});
        const QString path = dir.filePath(QStringLiteral("overlay.onnx"));
        b.save(path.toStdString());

        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_graph_optimizer_overlay"));
        QSettings().clear();
        Studio studio;
        QSignalSpy opened(&studio, &Studio::modelOpened);
        studio.openModel(path);
        QVERIFY(opened.wait(60000));
        GraphPanel panel(studio);
        QVERIFY(test::showPanel(&panel, QSize(1000, 500)));
        const Graph& g = *studio.document()->model()->graph;
        auto node = [&](const char* name) {
            for (std::size_t i = 0; i < g.nodes.size(); ++i)
                if (g.nodes[i].name == name)
                    return int(i);
            return -1;
        };

        QSignalSpy shown(&panel, &GraphPanel::optimizerOverlayShown);
        panel.optimizerButton()->click();
        QVERIFY(panel.optimizerButton()->isChecked());
        QVERIFY(shown.wait(30000));
        QCOMPARE(shown.front().front().toInt(), 3);
        QCOMPARE(panel.view()->nodeBadge(node("identity")), QStringLiteral("removed \u00B7 cleanup"));
        QCOMPARE(panel.view()->nodeBadge(node("pad")), QStringLiteral("fused \u00B7 pad_fold"));
        QCOMPARE(panel.view()->nodeBadge(node("conv")), QStringLiteral("rewritten \u00B7 pad_fold"));
        QCOMPARE(panel.view()->nodeBadge(node("relu")), QString()); // fused into the Conv at compile time, not by a pass
        QVERIFY2(panel.infoLabel()->toolTip().startsWith(QStringLiteral("optimizer: 4 \u2192 2 operators, 3 changed")),
                 qPrintable(panel.infoLabel()->toolTip()));
        QVERIFY(test::screenshot(&panel, QStringLiteral("graph_optimizer_overlay.png")));

        panel.optimizerButton()->click();
        QVERIFY(!panel.optimizerButton()->isChecked());
        QCOMPARE(panel.view()->nodeBadge(node("pad")), QString());
        QVERIFY(!panel.infoLabel()->toolTip().startsWith(QStringLiteral("optimizer")));
    }
};

QTEST_MAIN(TestGraphOptimizerOverlay)
#include "test_graph_optimizer_overlay.moc"
