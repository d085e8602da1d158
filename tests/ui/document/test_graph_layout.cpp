// Graphviz layout of real graphs: every operator gets a box, boxes never overlap,
// edges join existing boxes, and the direction is respected.
#include "../graph/block_stack_model.h"
#include "graph/onnx_import.h"
#include "ui/document/graph_layout.h"
#include "ui/widgets/theme.h"
#include "util/error.h"

#include <QApplication>
#include <QDirIterator>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

LayoutStyle style(GraphDirection d)
{
    LayoutStyle s;
    s.direction = d;
    s.titleFont = theme::graphTitleFont();
    s.textFont = theme::graphTextFont();
    return s;
}

void checkLayout(const Graph& g, const GraphLayout& l)
{
    int constants = 0;
    for (const auto& n : g.nodes)
        constants += n.opType == "Constant" ? 1 : 0;
    QCOMPARE(int(l.boxes.size()), int(g.inputs.size() + g.nodes.size() + g.outputs.size()) - constants);
    QCOMPARE(l.hiddenConstants, constants);
    for (std::size_t i = 0; i < l.boxes.size(); ++i) {
        QVERIFY(l.bounds.adjusted(-1, -1, 1, 1).contains(l.boxes[i].rect));
        for (std::size_t j = i + 1; j < l.boxes.size(); ++j)
            QVERIFY2(!l.boxes[i].rect.adjusted(1, 1, -1, -1).intersects(l.boxes[j].rect.adjusted(1, 1, -1, -1)),
                     qPrintable(l.boxes[i].title + " overlaps " + l.boxes[j].title));
    }
    for (const auto& e : l.edges) {
        QVERIFY(e.from >= 0 && e.from < int(l.boxes.size()));
        QVERIFY(e.to >= 0 && e.to < int(l.boxes.size()));
        QVERIFY(!e.path.isEmpty());
    }
    for (std::size_t n = 0; n < g.nodes.size(); ++n)
        if (g.nodes[n].opType != "Constant")
            QCOMPARE(l.boxes[std::size_t(l.boxOfNode(int(n)))].node, int(n));
}

} // namespace

class TestGraphLayout : public QObject {
    Q_OBJECT

private slots:
    void demoModel_data()
    {
        QTest::addColumn<int>("direction");
        QTest::newRow("left to right") << int(GraphDirection::LeftToRight);
        QTest::newRow("top to bottom") << int(GraphDirection::TopToBottom);
    }
    void demoModel()
    {
        QFETCH(int, direction);
        const Graph g = importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
        const GraphLayout l = layoutGraph(g, style(GraphDirection(direction)));
        checkLayout(g, l);
        // The input comes first along the flow, the output last.
        const QRectF in = l.boxes.front().rect, out = l.boxes.back().rect;
        QCOMPARE(l.boxes.front().kind, GraphLayout::BoxKind::Input);
        QCOMPARE(l.boxes.back().kind, GraphLayout::BoxKind::Output);
        if (GraphDirection(direction) == GraphDirection::LeftToRight)
            QVERIFY(in.right() < out.left());
        else
            QVERIFY(in.bottom() < out.top());
        // Every connection of the model is drawn: residual Adds have two incoming edges.
        for (std::size_t n = 0; n < g.nodes.size(); ++n)
            if (g.nodes[n].opType == "Add") {
                const int box = l.boxOfNode(int(n));
                const auto incoming = std::count_if(l.edges.begin(), l.edges.end(), [box](const auto& e) { return e.to == box; });
                QCOMPARE(int(incoming), 2);
            }
        // Layer boxes carry the short name, the weight shape and the output shape.
        const auto& conv = l.boxes[std::size_t(l.boxOfNode(g.findNode("/stem/stem.0/Conv")))];
        QCOMPARE(conv.title, QStringLiteral("Conv"));
        QCOMPARE(conv.lines.value(0), QStringLiteral("stem/stem.0"));
        QCOMPARE(conv.lines.value(1), QStringLiteral("W 16\u00D71\u00D73\u00D73"));
        QCOMPARE(conv.lines.value(2), QStringLiteral("[N,16,28,28]"));
    }

    // A long flow (24 blocks) is wrapped into rows or columns, collapsed or expanded,
    // without boxes overlapping; blocks and their frames hold their operators.
    void wrappedBlocks_data()
    {
        QTest::addColumn<int>("direction");
        QTest::addColumn<bool>("collapsed");
        QTest::newRow("left to right, collapsed") << int(GraphDirection::LeftToRight) << true;
        QTest::newRow("left to right, expanded") << int(GraphDirection::LeftToRight) << false;
        QTest::newRow("top to bottom, collapsed") << int(GraphDirection::TopToBottom) << true;
        QTest::newRow("top to bottom, expanded") << int(GraphDirection::TopToBottom) << false;
    }
    void wrappedBlocks()
    {
        QFETCH(int, direction);
        QFETCH(bool, collapsed);
        const Graph g = importOnnxBytes(test::blockStackModel(24).bytes(), "stack.onnx", "");
        LayoutStyle s = style(GraphDirection(direction));
        if (!collapsed)
            s.collapsed = std::set<int>();
        const GraphLayout l = layoutGraph(g, s);
        QCOMPARE(int(l.blocks.size()), 24);
        // 27 collapsed boxes top to bottom are about 2300 pt long: under wrapLongerThan.
        const bool shortFlow = collapsed && GraphDirection(direction) == GraphDirection::TopToBottom;
        QCOMPARE(l.rows > 1, !shortFlow);
        const double aspect = l.bounds.width() / l.bounds.height();
        QVERIFY2(shortFlow || (aspect > 0.5 && aspect < 5), qPrintable(QString::number(aspect)));
        for (std::size_t i = 0; i < l.boxes.size(); ++i) {
            QVERIFY(l.bounds.adjusted(-1, -1, 1, 1).contains(l.boxes[i].rect));
            for (std::size_t j = i + 1; j < l.boxes.size(); ++j)
                QVERIFY(!l.boxes[i].rect.adjusted(1, 1, -1, -1).intersects(l.boxes[j].rect.adjusted(1, 1, -1, -1)));
        }
        for (std::size_t b = 0; b < l.blocks.size(); ++b) {
            QCOMPARE(l.isCollapsed(int(b)), collapsed);
            for (int n : l.blocks[b].nodes) {
                const auto& box = l.boxes[std::size_t(l.boxOfNode(n))];
                if (collapsed)
                    QCOMPARE(box.block, int(b));
                else {
                    QCOMPARE(box.node, n);
                    QVERIFY(l.blockFrame[b].contains(box.rect));
                }
            }
        }
        // Edges start and end at their boxes, across rows too.
        for (const auto& e : l.edges) {
            const QRectF from = l.boxes[std::size_t(e.from)].rect.adjusted(-3, -3, 3, 3);
            const QRectF to = l.boxes[std::size_t(e.to)].rect.adjusted(-12, -12, 12, 12);
            QVERIFY(from.contains(e.path.pointAtPercent(0)));
            QVERIFY(to.contains(e.arrowTip));
        }
    }

    // Rows never run past what the view shows whole at its lowest Fit zoom (rowLimit):
    // with half the width the unlimited layout takes, every row fits in that half.
    void rowsFitTheViewsLimit_data()
    {
        QTest::addColumn<int>("direction");
        QTest::newRow("left to right") << int(GraphDirection::LeftToRight);
        QTest::newRow("top to bottom") << int(GraphDirection::TopToBottom);
    }
    void rowsFitTheViewsLimit()
    {
        QFETCH(int, direction);
        const bool lr = GraphDirection(direction) == GraphDirection::LeftToRight;
        const Graph g = importOnnxBytes(test::blockStackModel(24).bytes(), "stack.onnx", "");
        LayoutStyle s = style(GraphDirection(direction));
        s.collapsed = std::set<int>();
        auto alongFlow = [lr](const GraphLayout& l) {
            double lo = 1e300, hi = -1e300;
            for (const auto& b : l.boxes) {
                lo = std::min(lo, lr ? b.rect.left() : b.rect.top());
                hi = std::max(hi, lr ? b.rect.right() : b.rect.bottom());
            }
            return hi - lo;
        };
        const double free = alongFlow(layoutGraph(g, s));
        s.rowLimit = free / 2;
        const GraphLayout l = layoutGraph(g, s);
        QVERIFY2(alongFlow(l) <= s.rowLimit,
            qPrintable(QStringLiteral("%1 pt along the flow, limit %2").arg(alongFlow(l)).arg(s.rowLimit)));
        for (std::size_t i = 0; i < l.boxes.size(); ++i)
            for (std::size_t j = i + 1; j < l.boxes.size(); ++j)
                QVERIFY(!l.boxes[i].rect.adjusted(1, 1, -1, -1).intersects(l.boxes[j].rect.adjusted(1, 1, -1, -1)));
    }

    // A layer's name in its box: the last path segments whole, the full name in the tooltip.
    void longNamesKeepTheirLastSegments_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("shown");
        QTest::newRow("short") << "/fc/MatMul"
                               << "fc";
        QTest::newRow("26 characters") << "/abcdefghij/klmnopqrstuvwxy/MatMul"
                                       << "abcdefghij/klmnopqrstuvwxy";
        QTest::newRow("exporter path") << "/model/layers.3/self_attn/q_proj/MatMul"
                                       << "\u2026/self_attn/q_proj";
        QTest::newRow("one long segment") << "transformer_block_eleven_query_projection_weight"
                                          << "transformer_\u2026ection_weight";
        QTest::newRow("long last segment") << "/model/transformer_block_eleven_query_projection/MatMul"
                                           << "transformer_\u2026ry_projection";
    }
    void longNamesKeepTheirLastSegments()
    {
        QFETCH(QString, name);
        QFETCH(QString, shown);
        Graph g;
        g.inputs.push_back({"x", DType::Float, std::vector<Dim> {{1, {}}, {8, {}}}});
        g.initializers.emplace("w", Tensor(DType::Float, {8, 8}));
        Node n;
        n.name = name.toStdString();
        n.opType = "MatMul";
        n.inputs = {"x", "w"};
        n.outputs = {"y"};
        g.nodes.push_back(n);
        g.outputs.push_back({"y", DType::Float, std::vector<Dim> {{1, {}}, {8, {}}}});
        g.index();
        const GraphLayout l = layoutGraph(g, style(GraphDirection::LeftToRight));
        const auto& box = l.boxes[std::size_t(l.boxOfNode(0))];
        QCOMPARE(box.lines.value(0), shown);
        QVERIFY(box.lines.value(0).size() <= 26);
    }

    void conformanceModels_data()
    {
        QTest::addColumn<QString>("path");
        for (const char* dir : {"/pytorch-converted", "/pytorch-operator", "/simple"}) {
            QDirIterator it(QStringLiteral(QS_TESTDATA_DIR) + QLatin1String(dir), {QStringLiteral("model.onnx")},
                            QDir::Files, QDirIterator::Subdirectories);
            while (it.hasNext()) {
                const QString p = it.next();
                QTest::newRow(qPrintable(QFileInfo(p).dir().dirName())) << p;
            }
        }
    }
    void conformanceModels()
    {
        QFETCH(QString, path);
        Graph g;
        try {
            g = importOnnx(path.toStdString());
        } catch (const Error& e) {
            QSKIP(e.what()); // the importer's own tests cover what it refuses
        }
        checkLayout(g, layoutGraph(g, style(GraphDirection::TopToBottom)));
    }

    void shortNames_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("op");
        QTest::addColumn<QString>("expected");
        QTest::newRow("exporter path") << "/res1/conv1/Conv" << "Conv" << "res1/conv1";
        QTest::newRow("plain") << "conv_3" << "Conv" << "conv_3";
        QTest::newRow("only op") << "/Conv" << "Conv" << "/Conv";
        QTest::newRow("other suffix") << "/fc/MatMul_1" << "MatMul" << "fc/MatMul_1";
    }
    void shortNames()
    {
        QFETCH(QString, name);
        QFETCH(QString, op);
        QFETCH(QString, expected);
        QCOMPARE(shortLayerName(name.toStdString(), op.toStdString()), expected);
    }
};

QTEST_MAIN(TestGraphLayout)
#include "test_graph_layout.moc"
