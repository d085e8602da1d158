// The graph view on a 697-operator model (24 transformer-like blocks): blocks are found and
// drawn collapsed, expand and collapse; Fit keeps boxes legible; search, the table's
// selection and the minimap move the view to what they point at.
#include "block_stack_model.h"
#include "graph/onnx_import.h"
#include "support/studio_window.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_minimap.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/widgets/theme.h"

#include <QLabel>
#include <QLineEdit>
#include <QScrollBar>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

constexpr int blocks = 24, opsPerBlock = 29, layersPerBlock = 6;

// Legible: a box's title (the op type, 9 pt bold) at least 7.5 px high on screen and the
// box itself at least 20 px high.
void checkLegible(GraphView* view)
{
    const double titlePx = QFontMetricsF(theme::graphTitleFont()).height() * view->zoom();
    QVERIFY2(titlePx >= 7.5, qPrintable(QStringLiteral("title %1 px at zoom %2").arg(titlePx).arg(view->zoom())));
    for (const NodeItem* item : view->nodeItems())
        QVERIFY(item->box().rect.height() * view->zoom() >= 20);
}

// Where the view's centre can go: the scene less half a view on each side.
QPointF reachable(GraphView* view, QPointF p)
{
    const QRectF v = view->visibleSceneRect();
    const QRectF r = view->sceneRect().adjusted(v.width() / 2, v.height() / 2, -v.width() / 2, -v.height() / 2);
    return {std::clamp(p.x(), std::min(r.left(), r.right()), std::max(r.left(), r.right())),
        std::clamp(p.y(), std::min(r.top(), r.bottom()), std::max(r.top(), r.bottom()))};
}

// Screen pixels between the view's centre and where it would be with `item` centred.
double distanceToCentre(GraphView* view, const QGraphicsItem* item)
{
    const QPointF want = reachable(view, item->sceneBoundingRect().center());
    return QLineF(want, view->visibleSceneRect().center()).length() * view->zoom();
}

} // namespace

class TestGraphView : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    QString modelPath;
    Graph graph;
    std::unique_ptr<Studio> studio;
    std::unique_ptr<GraphPanel> panel;

    GraphView* view() { return panel->view(); }
    const GraphLayout& layout() { return *studio->document()->layout(); }
    bool settled()
    {
        QTest::qWait(0);
        for (int i = 0; i < 600 && view()->relayoutPending(); ++i)
            QTest::qWait(20);
        return !view()->relayoutPending();
    }
    int firstLayerOfBlock(int block)
    {
        for (int n : layout().blocks[std::size_t(block)].nodes)
            if (auto it = studio->document()->model()->layerOfNode.find(n);
                it != studio->document()->model()->layerOfNode.end())
                return it->second;
        return -1;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        modelPath = dir.filePath(QStringLiteral("block_stack.onnx"));
        test::blockStackModel(blocks).save(modelPath.toStdString());
        if (const QString shots = qEnvironmentVariable("QS_SCREENSHOT_DIR"); !shots.isEmpty())
            QFile::copy(modelPath, shots + QStringLiteral("/block_stack.onnx")); // for the studio's own screenshot
        graph = importOnnx(modelPath.toStdString());
        QCOMPARE(int(graph.nodes.size()), blocks * opsPerBlock + 1);

        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_graph_view"));
        QSettings().clear();
        studio = std::make_unique<Studio>();
        QSignalSpy opened(studio.get(), &Studio::modelOpened);
        studio->openModel(modelPath);
        QVERIFY(opened.wait(60000));
        panel = std::make_unique<GraphPanel>(*studio);
        QVERIFY(test::showPanel(panel.get(), QSize(1200, 800)));
    }

    // Blocks by name: one per "/model/layers.N/", every operator of it, in graph order.
    void blocksByName()
    {
        const auto found = detectBlocks(graph);
        QCOMPARE(int(found.size()), blocks);
        for (int l = 0; l < blocks; ++l) {
            const GraphBlock& b = found[std::size_t(l)];
            QCOMPARE(b.name, QStringLiteral("model/layers.%1").arg(l));
            QCOMPARE(int(b.nodes.size()), opsPerBlock);
            QCOMPARE(b.layers, layersPerBlock);
            for (int n : b.nodes)
                QVERIFY(QString::fromStdString(graph.nodes[std::size_t(n)].name)
                            .startsWith(QStringLiteral("/model/layers.%1/").arg(l)));
        }
    }

    // Without path names the repeated op sequence gives the same blocks.
    void blocksBySequence()
    {
        const Graph plain = importOnnxBytes(test::blockStackModel(blocks, false).bytes(), "plain.onnx", "");
        const auto found = detectBlocks(plain);
        QCOMPARE(int(found.size()), blocks);
        for (const GraphBlock& b : found) {
            QCOMPARE(int(b.nodes.size()), opsPerBlock);
            QCOMPARE(b.layers, layersPerBlock);
        }
        // A graph with nothing repeated has no blocks.
        const Graph tiny = importOnnxBytes(test::tinyConvModel().bytes(), "tiny.onnx", "");
        QVERIFY(detectBlocks(tiny).empty());
    }

    // A graph this big opens with every block collapsed: 24 blocks, the head, input and output.
    void opensCollapsed()
    {
        QVERIFY(settled());
        QCOMPARE(int(layout().blocks.size()), blocks);
        for (int b = 0; b < blocks; ++b)
            QVERIFY(layout().isCollapsed(b));
        QCOMPARE(int(view()->nodeItems().size()), blocks + 3);
        const NodeItem* item = view()->itemForNode(layout().blocks[5].nodes[3]);
        QVERIFY(item);
        QCOMPARE(item->block(), 5);
        QCOMPARE(item->box().kind, GraphLayout::BoxKind::Block);
    }

    // Fit: the collapsed graph whole and legible; expanded, still legible, with the minimap
    // for the rest. Also wrapped: the flow runs in several rows instead of one strip.
    void fitStaysLegible()
    {
        view()->fitGraph();
        test::screenshot(panel.get(), QStringLiteral("graph_fit_collapsed.png"));
        qInfo("collapsed: %d rows, %.0fx%.0f, fit at %.0f %%", layout().rows, layout().bounds.width(),
            layout().bounds.height(), view()->zoom() * 100);
        checkLegible(view());
        QVERIFY(view()->visibleSceneRect().adjusted(-1, -1, 1, 1).contains(layout().bounds));
        QVERIFY(!view()->minimap()->isVisible());
        QVERIFY(layout().rows > 1);

        view()->setAllBlocksCollapsed(false);
        QVERIFY(settled());
        QCOMPARE(int(view()->nodeItems().size()), blocks * opsPerBlock + 3);
        QCOMPARE(int(view()->blockFrames().size()), blocks);
        view()->fitGraph();
        test::screenshot(panel.get(), QStringLiteral("graph_fit_expanded.png"));
        qInfo("expanded: %d rows, %.0fx%.0f, fit at %.0f %%", layout().rows, layout().bounds.width(),
            layout().bounds.height(), view()->zoom() * 100);
        checkLegible(view());
        QVERIFY(view()->minimap()->isVisible());
        view()->setAllBlocksCollapsed(true);
        QVERIFY(settled());
        QCOMPARE(int(view()->nodeItems().size()), blocks + 3);
    }

    // Clicking a block's box expands it; clicking its frame's header collapses it again.
    void blocksExpandAndCollapse()
    {
        view()->fitGraph();
        NodeItem* box = view()->itemForNode(layout().blocks[3].nodes[0]);
        QCOMPARE(box->block(), 3);
        view()->centerOn(box);
        QTest::mouseClick(
            view()->viewport(), Qt::LeftButton, {}, view()->mapFromScene(box->sceneBoundingRect().center()));
        QVERIFY(settled());
        QVERIFY(!layout().isCollapsed(3));
        for (int b = 0; b < blocks; ++b)
            QCOMPARE(layout().isCollapsed(b), b != 3);
        for (int n : layout().blocks[3].nodes) {
            const NodeItem* item = view()->itemForNode(n);
            QCOMPARE(item->node(), n);
            QVERIFY(layout().blockFrame[3].contains(item->sceneBoundingRect().center()));
        }
        QCOMPARE(int(view()->blockFrames().size()), 1);
        BlockFrameItem* frame = view()->blockFrames().front();
        QCOMPARE(frame->block(), 3);
        QVERIFY(view()->visibleSceneRect().intersects(frame->sceneBoundingRect())); // the view kept it in sight
        const QRectF r = frame->sceneBoundingRect();
        view()->centerOn(r.topLeft() + QPointF(r.width() / 2, 12));
        QTest::mouseClick(view()->viewport(), Qt::LeftButton, {}, view()->mapFromScene(r.topLeft() + QPointF(30, 12)));
        QVERIFY(settled());
        QVERIFY(layout().isCollapsed(3));
        QVERIFY(view()->blockFrames().empty());
    }

    // Selecting a layer in the table opens its block and brings it into view, legibly; the
    // next selection elsewhere closes that block again.
    void selectionFollows()
    {
        view()->zoomBy(0.2 / view()->zoom()); // far out: following must zoom in
        const int row = firstLayerOfBlock(10) + 2;
        const int node = studio->document()->layer(row)->node;
        studio->selection()->selectLayer(row);
        QVERIFY(settled());
        QVERIFY(!layout().isCollapsed(10));
        NodeItem* item = view()->itemForNode(node);
        QCOMPARE(item->node(), node);
        QVERIFY(item->isCurrent());
        QVERIFY(view()->zoom() >= GraphView::minFitZoom);
        QVERIFY(view()->visibleSceneRect().contains(item->sceneBoundingRect()));

        const int other = firstLayerOfBlock(17);
        studio->selection()->selectLayer(other);
        QVERIFY(settled());
        QVERIFY(layout().isCollapsed(10));
        QVERIFY(!layout().isCollapsed(17));
        item = view()->itemForNode(studio->document()->layer(other)->node);
        QVERIFY(item->isCurrent());
        QVERIFY(view()->visibleSceneRect().contains(item->sceneBoundingRect()));
    }

    // A request made while another relayout is on its way builds on it, not on the layout
    // still shown: expanding all and then selecting inside a (still drawn) collapsed block
    // leaves every block expanded.
    void requestsBuildOnPendingOnes()
    {
        view()->setAllBlocksCollapsed(true);
        QVERIFY(settled());
        view()->setAllBlocksCollapsed(false);
        QVERIFY(view()->relayoutPending());
        studio->selection()->selectLayer(firstLayerOfBlock(5));
        QVERIFY(settled());
        for (int b = 0; b < blocks; ++b)
            QVERIFY(!layout().isCollapsed(b));
        view()->setAllBlocksCollapsed(true);
        QVERIFY(settled());
    }

    // Search by name or op type: matches counted, next and previous, each centred.
    void searchFindsAndCentres()
    {
        view()->fitGraph();
        // The first match is the first after the current node, in graph order.
        const int before = studio->selection()->currentNode();
        int expected = 0;
        for (int n = 0; n < before; ++n)
            expected += graph.nodes[std::size_t(n)].opType == "Softmax" ? 1 : 0;
        QLineEdit* field = panel->searchField();
        field->setText(QStringLiteral("softmax"));
        QTest::keyClick(field, Qt::Key_Return);
        QVERIFY(settled());
        QCOMPARE(view()->matchCount(), blocks);
        QCOMPARE(panel->infoLabel()->toolTip(), QStringLiteral("match %1 of %2").arg(expected + 1).arg(blocks));
        const int first = studio->selection()->currentNode();
        QCOMPARE(QString::fromStdString(graph.nodes[std::size_t(first)].opType), QStringLiteral("Softmax"));
        QVERIFY(first > before);
        NodeItem* item = view()->itemForNode(first);
        QCOMPARE(item->node(), first); // its block opened
        QVERIFY(distanceToCentre(view(), item) < 40);

        const int at = view()->findNode(QStringLiteral("layers.20/mlp/fc2/MatMul"));
        QCOMPARE(at, 0);
        QCOMPARE(view()->matchCount(), 1);
        QVERIFY(settled());
        const int node = graph.findNode("/model/layers.20/mlp/fc2/MatMul");
        QCOMPARE(studio->selection()->currentNode(), node);
        item = view()->itemForNode(node);
        QCOMPARE(item->node(), node);
        QVERIFY(item->isCurrent());
        QVERIFY(distanceToCentre(view(), item) < 40);

        QCOMPARE(view()->findNode(QStringLiteral("Softmax")), 21 % blocks); // the first after layers.20's MLP
        QCOMPARE(view()->findNode(QStringLiteral("Softmax"), true), 20);
        QCOMPARE(view()->findNode(QStringLiteral("no such node")), -1);
        QCOMPARE(view()->matchCount(), 0);
        QVERIFY(settled());
    }

    // The minimap sits in a column beside the canvas, never over a box: its rectangle and
    // the canvas (the viewport) do not meet at any zoom; with the whole graph in view, or
    // turned off, the column is gone and the canvas takes the full width.
    void minimapNeverCoversBoxes()
    {
        // The collapsed graph fits whole: no minimap, the canvas is the full width.
        view()->setAllBlocksCollapsed(true);
        QVERIFY(settled());
        view()->fitGraph();
        QVERIFY(!view()->minimap()->isVisible());
        // The canvas's width, a scroll bar beside it counted in (it comes and goes with the zoom).
        auto canvasWidth = [this] {
            QScrollBar* bar = view()->verticalScrollBar();
            return view()->viewport()->width() + (bar->isVisible() ? bar->width() : 0);
        };
        const int fullWidth = canvasWidth();
        view()->setAllBlocksCollapsed(false);
        QVERIFY(settled());
        for (double zoom : {view()->minFitZoom, 1.0, 2.0}) {
            view()->fitGraph();
            view()->zoomBy(zoom / view()->zoom());
            GraphMinimap* map = view()->minimap();
            QVERIFY(map->isVisible());
            const QRect canvas = view()->viewport()->geometry();
            QVERIFY2(!map->geometry().intersects(canvas),
                qPrintable(QStringLiteral("zoom %1: map %2,%3 %4x%5 over the canvas ending at x=%6")
                               .arg(zoom)
                               .arg(map->x())
                               .arg(map->y())
                               .arg(map->width())
                               .arg(map->height())
                               .arg(canvas.right())));
            QVERIFY(view()->rect().contains(map->geometry()));
            // Every box drawn in view lies in the canvas, left of the map.
            for (const NodeItem* n : view()->nodeItems()) {
                const QRect onView = view()->mapFromScene(n->sceneBoundingRect()).boundingRect();
                if (onView.intersects(view()->viewport()->rect()))
                    QVERIFY(onView.translated(canvas.topLeft()).left() < map->geometry().left());
            }
        }
        QVERIFY(canvasWidth() < fullWidth); // the column took its share
        view()->setMinimapEnabled(false);
        QVERIFY(!view()->minimap()->isVisible());
        QCOMPARE(canvasWidth(), fullWidth);
        view()->setMinimapEnabled(true);
        view()->setAllBlocksCollapsed(true);
        QVERIFY(settled());
        view()->fitGraph();
        QVERIFY(!view()->minimap()->isVisible());
        QCOMPARE(canvasWidth(), fullWidth);
    }

    // A click and a drag on the minimap move the view to the points under the mouse.
    void minimapNavigates()
    {
        view()->setAllBlocksCollapsed(false);
        QVERIFY(settled());
        view()->fitGraph();
        GraphMinimap* map = view()->minimap();
        QVERIFY(map->isVisible());
        const QRectF area = map->toMap(layout().bounds);
        const QPoint target = area.topLeft().toPoint() + QPoint(int(area.width() * 0.8), int(area.height() * 0.7));
        QTest::mouseClick(map, Qt::LeftButton, {}, target);
        const QPointF centre = view()->visibleSceneRect().center();
        const double tolerance = 2 / view()->zoom() + 4;
        const QPointF clamped = reachable(view(), map->toScene(target));
        QVERIFY2(QLineF(centre, clamped).length() < tolerance,
            qPrintable(QStringLiteral("centre %1,%2 want %3,%4")
                           .arg(centre.x())
                           .arg(centre.y())
                           .arg(clamped.x())
                           .arg(clamped.y())));
        // Drag back towards the start.
        const QPoint start = target,
                     end = area.topLeft().toPoint() + QPoint(int(area.width() * 0.3), int(area.height() * 0.3));
        QTest::mousePress(map, Qt::LeftButton, {}, start);
        QMouseEvent move(QEvent::MouseMove, QPointF(end), map->mapToGlobal(QPointF(end)), Qt::NoButton, Qt::LeftButton,
            Qt::NoModifier);
        QApplication::sendEvent(map, &move);
        QTest::mouseRelease(map, Qt::LeftButton, {}, end);
        const QPointF centre2 = view()->visibleSceneRect().center();
        const QPointF clamped2 = reachable(view(), map->toScene(end));
        QVERIFY(QLineF(centre2, clamped2).length() < tolerance);
        QVERIFY(QLineF(centre, centre2).length() > 50);
        test::screenshot(panel.get(), QStringLiteral("graph_minimap.png"));
        view()->zoomBy(0.3 / view()->zoom()); // op types as badges
        test::screenshot(panel.get(), QStringLiteral("graph_zoom_30.png"));
        view()->zoomBy(0.12 / view()->zoom());
        test::screenshot(panel.get(), QStringLiteral("graph_zoom_12.png"));
    }

    // Zoomed out to 30 % (and 55 %), a box still shows its op type: dark text pixels inside
    // an operator's box, whose fill and border are light (before, text vanished below 40 %).
    void labelsStayAtLowZoom_data()
    {
        QTest::addColumn<double>("zoom");
        QTest::newRow("30 %") << 0.3;
        QTest::newRow("55 %") << 0.55;
        QTest::newRow("100 %") << 1.0;
    }
    void labelsStayAtLowZoom()
    {
        QFETCH(double, zoom);
        if (layout().isCollapsed(0)) {
            view()->setAllBlocksCollapsed(false);
            QVERIFY(settled());
        }
        const int node = graph.findNode("/model/layers.2/self_attn/Softmax");
        NodeItem* item = view()->itemForNode(node);
        QCOMPARE(item->node(), node);
        view()->zoomBy(zoom / view()->zoom());
        view()->centerOn(item);
        const QImage image = view()->viewport()->grab().toImage();
        const QRect box = view()
                              ->mapFromScene(item->sceneBoundingRect().adjusted(5, 5, -5, -5))
                              .boundingRect()
                              .adjusted(3, 3, -3, -3);
        QVERIFY(box.width() > 10 && box.height() > 5);
        int dark = 0;
        const double dpr = image.devicePixelRatio();
        for (int y = box.top(); y <= box.bottom(); ++y)
            for (int x = box.left(); x <= box.right(); ++x)
                dark += qGray(image.pixel(int(x * dpr), int(y * dpr))) < 110 ? 1 : 0;
        QVERIFY2(dark >= 10,
            qPrintable(QStringLiteral("%1 dark pixels in %2x%3").arg(dark).arg(box.width()).arg(box.height())));
    }

    // Long symbolic dimension names are shortened in the boxes (kept whole in tooltips).
    void symbolicShapesStayShort()
    {
        ValueInfo v;
        v.name = "x";
        v.dims = std::vector<Dim> {{-1, "p2o.DynamicDimension.0"}, {3, ""}, {48, ""}, {-1, "N"}};
        QCOMPARE(shapeLabel(v), QStringLiteral("[Dyna\u2026ion.0,3,48,N]"));
    }

    void cleanupTestCase()
    {
        panel.reset();
        studio.reset();
    }
};

QTEST_MAIN(TestGraphView)
#include "test_graph_view.moc"
