// The layer table's attention operand rows (after the layers) on the transformer
// fixture: what they show, which cells edit, and the configuration each edit makes.
#include "quant/transformer_fixture.h"

#include "measure/layers.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/layers/layer_table_model.h"

#include <QUndoStack>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestLayerTableOperands : public QObject {
    Q_OBJECT

private slots:
    // Attention operands follow the layers, one row each, and edit the configuration's
    // attention points (A bits, granularity, calibrator) as one undo step each.
    void attentionOperandRowsEditTheConfig()
    {
        ModelDocument tdoc;
        QuantConfigDocument cfg(&tdoc);
        LayerTableModel m(&tdoc);
        m.setConfigDocument(&cfg);
        Progress progress;
        tdoc.setModel(buildModelData(test::tinyTransformer(), progress, CancelToken()), nullptr);
        const int layers = tdoc.layerCount();
        QCOMPARE(m.operandCount(), 4);
        QCOMPARE(m.rowCount(), layers + 4);
        const int k = layers + 1;
        QCOMPARE(m.index(k, LayerTableModel::Name).data().toString(), QString("scores:K"));
        QCOMPARE(m.index(k, LayerTableModel::Op).data().toString(), QString("MatMul:K"));
        QCOMPARE(m.index(k, LayerTableModel::Index).data().toInt(), k + 1);
        QCOMPARE(m.index(k, 0).data(LayerTableModel::LayerRowRole).toInt(), -1);
        QCOMPARE(m.index(k, 0).data(LayerTableModel::OperandRole).toString(), QString("scores:K"));
        QCOMPARE(m.index(k, LayerTableModel::ActBits).data().toString(), QString("FP32"));
        QVERIFY(m.flags(m.index(k, LayerTableModel::ActBits)) & Qt::ItemIsEditable);
        QVERIFY(!(m.flags(m.index(k, LayerTableModel::WeightBits)) & Qt::ItemIsEditable));

        QVERIFY(m.setData(m.index(k, LayerTableModel::ActBits), 4));
        QVERIFY(m.setData(m.index(k, LayerTableModel::Granularity), QString("channel")));
        QVERIFY(!m.setData(m.index(k, LayerTableModel::Granularity), QString("group:32")));
        QVERIFY(!m.setData(m.index(k, LayerTableModel::ActBits), 12));
        QVERIFY(m.setData(m.index(k, LayerTableModel::Calibrator), QString("percentile:99.9")));
        const OperandSpec& s = cfg.config().attention.points.at("scores:K");
        QCOMPARE(s.bits, 4);
        QCOMPARE(s.granularity, OperandGranularity::Channel);
        QCOMPARE(s.calibrator, std::string("percentile"));
        QCOMPARE(m.index(k, LayerTableModel::ActBits).data().toString(), QString("4"));
        QCOMPARE(m.index(k, LayerTableModel::Granularity).data().toString(), QString("channel"));
        QVERIFY(cfg.config().layers.empty()); // the layers' configuration is untouched
        cfg.undoStack()->undo();
        QCOMPARE(cfg.config().attention.points.at("scores:K").calibrator, std::string("minmax"));
        QCOMPARE(m.index(layers, LayerTableModel::Name).data().toString(), QString("scores:Q"));
        QCOMPARE(m.index(layers, LayerTableModel::ActBits).data().toString(), QString("FP32"));
    }
};

QTEST_GUILESS_MAIN(TestLayerTableOperands)
#include "test_layer_table_operands.moc"
