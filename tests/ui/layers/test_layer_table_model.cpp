// LayerTableModel and LayerFilterProxy over a model built in the test: rows match
// the layers, raw values sort, unknown values read as a dash, filters narrow rows;
// weight statistics that arrive after the model (the studio's "weights" job) fill in.
#include "support/onnx_builder.h"

#include "analysis/weight_profile.h"
#include "graph/onnx_import.h"
#include "measure/layers.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/layers/layer_filter_proxy.h"
#include "ui/layers/layer_table_model.h"

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include <random>

using namespace qs;
using namespace qs::ui;
using qs::test::OnnxBuilder;

namespace {

std::vector<float> normal(std::size_t n, unsigned seed, float scale)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0, scale);
    std::vector<float> v(n);
    for (auto& x : v)
        x = d(rng);
    return v;
}

// Conv -> Flatten -> Gemm (one outlier weight) -> MatMul.
OnnxBuilder threeLayerBuilder()
{
    OnnxBuilder b;
    b.input("x", {-1, 2, 4, 4});
    b.initializer("w_conv", {3, 2, 3, 3}, normal(54, 1, 0.2f));
    auto gemm = normal(48 * 5, 2, 0.1f);
    gemm[17] = 5.0f; // 50 std away: heavy tail
    b.initializer("w_fc", {48, 5}, gemm);
    b.initializer("w_out", {5, 2}, normal(10, 3, 0.3f));
    auto* conv = b.node("Conv", {"x", "w_conv"}, {"c"}, "/features/conv/Conv");
    OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    b.node("Flatten", {"c"}, {"f"}, "/flatten/Flatten");
    b.node("Gemm", {"f", "w_fc"}, {"h"}, "/classifier/fc/Gemm");
    b.node("MatMul", {"h", "w_out"}, {"y"}, "/classifier/out/MatMul");
    b.output("y", {-1, 2});
    return b;
}

Graph threeLayerModel()
{
    return importOnnxBytes(threeLayerBuilder().bytes(), "three.onnx", "");
}

} // namespace

class TestLayerTableModel : public QObject {
    Q_OBJECT

    ModelDocument doc;
    LayerTableModel* model = nullptr;
    LayerFilterProxy* proxy = nullptr;

private slots:
    void initTestCase()
    {
        model = new LayerTableModel(&doc, this);
        proxy = new LayerFilterProxy(this);
        proxy->setSourceModel(model);
        Progress progress;
        doc.setModel(buildModelData(threeLayerModel(), progress, CancelToken()), nullptr);
    }

    void rowsMatchLayers()
    {
        const auto& g = *doc.model()->graph;
        const auto expected = summarizeLayers(g);
        QCOMPARE(model->rowCount(), int(expected.size()));
        QCOMPARE(model->rowCount(), 3);
        for (int r = 0; r < model->rowCount(); ++r) {
            QCOMPARE(model->index(r, LayerTableModel::Name).data(LayerTableModel::SortRole).toString().toStdString(),
                     expected[std::size_t(r)].name);
            QCOMPARE(model->index(r, LayerTableModel::Params).data(LayerTableModel::SortRole).toDouble(),
                     double(expected[std::size_t(r)].params));
            QCOMPARE(model->index(r, LayerTableModel::Kurtosis).data(LayerTableModel::SortRole).toDouble(),
                     expected[std::size_t(r)].stats.kurtosis);
        }
        QCOMPARE(model->index(0, LayerTableModel::Name).data().toString(), QStringLiteral("features/conv"));
        QCOMPARE(model->index(1, LayerTableModel::OutputShape).data().toString(), QStringLiteral("[N,5]"));
        QCOMPARE(model->index(1, LayerTableModel::Params).data().toString(), QStringLiteral("240"));
    }

    void sizeSharesSumToOne()
    {
        double sum = 0;
        for (int r = 0; r < model->rowCount(); ++r)
            sum += model->index(r, LayerTableModel::SizeShare).data(LayerTableModel::SortRole).toDouble();
        QCOMPARE(sum, 1.0);
        QCOMPARE(model->index(1, LayerTableModel::SizeShare).data().toString(), QStringLiteral("78.9 %"));
        QCOMPARE(model->index(1, LayerTableModel::SizeShare).data(LayerTableModel::BarRole).toDouble(), 1.0);
    }

    void laterColumnsShowDash_data()
    {
        QTest::addColumn<int>("column");
        QTest::newRow("input kurtosis") << int(LayerTableModel::InputKurtosis);
        QTest::newRow("sensitivity") << int(LayerTableModel::Sensitivity);
        QTest::newRow("bits") << int(LayerTableModel::Bits);
    }
    void laterColumnsShowDash()
    {
        QFETCH(int, column);
        for (int r = 0; r < model->rowCount(); ++r) {
            QCOMPARE(model->index(r, column).data().toString(), QStringLiteral("\u2014"));
            QVERIFY(!model->index(r, column).data(LayerTableModel::SortRole).isValid());
        }
        QVERIFY(!model->headerData(column, Qt::Horizontal, Qt::ToolTipRole).toString().isEmpty());
    }

    // A model shown before its weight statistics: their columns read as a dash until
    // the rows arrive, then equal the statistics computed with the model.
    void weightStatisticsArriveLater()
    {
        ModelDocument later;
        LayerTableModel table(&later);
        Progress progress;
        later.setModel(buildModelData(threeLayerModel(), progress, CancelToken(), false), nullptr);
        QVERIFY(!later.model()->weightsReady());
        for (int r = 0; r < table.rowCount(); ++r)
            for (int c :
                {int(LayerTableModel::Kurtosis), int(LayerTableModel::Outliers), int(LayerTableModel::ChannelRange)})
                QCOMPARE(table.index(r, c).data().toString(), QStringLiteral("\u2014"));
        QSignalSpy arrived(&later, &ModelDocument::weightsChanged);
        QSignalSpy changed(&table, &QAbstractItemModel::dataChanged);
        later.setLayerWeights({layerWeights(*later.model(), 2), layerWeights(*later.model(), 0)});
        QCOMPARE(arrived.count(), 1);
        QVERIFY(changed.count() >= 1);
        QVERIFY(later.layer(0)->weightsReady && !later.layer(1)->weightsReady && later.layer(2)->weightsReady);
        QCOMPARE(table.index(1, LayerTableModel::Kurtosis).data().toString(), QStringLiteral("\u2014"));
        later.setLayerWeights({layerWeights(*later.model(), 1)});
        QVERIFY(later.model()->weightsReady());
        const auto expected = summarizeLayers(*later.model()->graph);
        for (int r = 0; r < table.rowCount(); ++r) {
            QCOMPARE(table.index(r, LayerTableModel::Kurtosis).data(LayerTableModel::SortRole).toDouble(),
                expected[std::size_t(r)].stats.kurtosis);
            const WeightProfile p = profileWeight(*later.model()->graph, expected[std::size_t(r)]);
            QCOMPARE(later.layer(r)->weights.histogram.counts, p.histogram.counts);
            QCOMPARE(later.layer(r)->weights.channels.max, p.channels.max);
        }
    }

    // Studio::openModel shows the model first; its job then fills every row.
    void studioFillsWeightsAfterOpening()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("three.onnx"));
        threeLayerBuilder().save(path.toStdString());
        Studio studio;
        bool readyAtOpen = true;
        connect(&studio, &Studio::modelOpened, this, [&] { readyAtOpen = studio.document()->model()->weightsReady(); });
        QSignalSpy opened(&studio, &Studio::modelOpened);
        studio.openModel(path);
        QVERIFY(opened.wait(60000));
        QVERIFY(!readyAtOpen);
        QVERIFY(studio.jobs()->waitForIdle(60000));
        const auto& m = *studio.document()->model();
        QVERIFY(m.weightsReady());
        const auto expected = summarizeLayers(*m.graph);
        QCOMPARE(m.layers.size(), expected.size());
        for (std::size_t r = 0; r < expected.size(); ++r) {
            QCOMPARE(m.layers[r].summary.stats.kurtosis, expected[r].stats.kurtosis);
            QCOMPARE(m.layers[r].summary.stats.outlierFraction, expected[r].stats.outlierFraction);
        }
    }

    void sortsByRawValues()
    {
        proxy->sort(LayerTableModel::Kurtosis, Qt::DescendingOrder);
        QCOMPARE(proxy->index(0, LayerTableModel::Op).data().toString(), QStringLiteral("Gemm"));
        proxy->sort(LayerTableModel::Params, Qt::AscendingOrder);
        QCOMPARE(proxy->index(0, LayerTableModel::Op).data().toString(), QStringLiteral("MatMul"));
        proxy->sort(LayerTableModel::Sensitivity, Qt::AscendingOrder); // all unknown: stable, no crash
        QCOMPARE(proxy->rowCount(), 3);
        proxy->sort(LayerTableModel::Index, Qt::AscendingOrder);
        QCOMPARE(proxy->index(0, LayerTableModel::Op).data().toString(), QStringLiteral("Conv"));
    }

    void outlierIsFlagged()
    {
        const QModelIndex gemm = model->index(1, LayerTableModel::Outliers);
        QVERIFY(gemm.data(LayerTableModel::SortRole).toDouble() > 0);
        QVERIFY(gemm.data(Qt::BackgroundRole).isValid()); // conditional formatting
        QVERIFY(!model->index(0, LayerTableModel::Outliers).data(Qt::BackgroundRole).isValid());
        QVERIFY(gemm.data(Qt::ToolTipRole).toString().contains(QStringLiteral("6 standard deviations")));
    }

    void filters_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("op");
        QTest::addColumn<int>("rows");
        QTest::newRow("all") << QString() << QString() << 3;
        QTest::newRow("substring") << QStringLiteral("classifier") << QString() << 2;
        QTest::newRow("case-insensitive") << QStringLiteral("CONV") << QString() << 1;
        QTest::newRow("wildcard") << QStringLiteral("/classifier/*/Gemm") << QString() << 1;
        QTest::newRow("op") << QString() << QStringLiteral("MatMul") << 1;
        QTest::newRow("name and op") << QStringLiteral("classifier") << QStringLiteral("Conv") << 0;
        QTest::newRow("no match") << QStringLiteral("attention") << QString() << 0;
    }
    void filters()
    {
        QFETCH(QString, name);
        QFETCH(QString, op);
        QFETCH(int, rows);
        proxy->setNameFilter(name);
        proxy->setOpFilter(op);
        QCOMPARE(proxy->rowCount(), rows);
        proxy->setNameFilter({});
        proxy->setOpFilter({});
    }
};

QTEST_MAIN(TestLayerTableModel)
#include "test_layer_table_model.moc"
