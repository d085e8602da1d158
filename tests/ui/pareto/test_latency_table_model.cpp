// The latency table model shows a profile as stored: milliseconds, the speed-up
// computed from them, a dash where a layer has no INT8 kernel, raw values for sorting.
#include "ui/pareto/latency_table_model.h"

#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

class TestLatencyTableModel : public QObject {
    Q_OBJECT

private slots:
    void showsTheProfile()
    {
        LatencyProfile p;
        p.isa = "avx512_core_vnni";
        p.repeats = 31;
        p.layers = {{"conv", "Conv", 0.5, 0.125, 0.01, 0.0}, {"mm", "MatMul", 0.2, std::nullopt, std::nullopt, std::nullopt}};
        LatencyTableModel m;
        QSignalSpy reset(&m, &QAbstractItemModel::modelReset);
        m.setProfile(p);
        QCOMPARE(reset.count(), 1);
        QCOMPARE(m.rowCount(), 2);
        QCOMPARE(m.columnCount(), int(LatencyTableModel::ColumnCount));
        auto at = [&](int r, int c, int role = Qt::DisplayRole) { return m.data(m.index(r, c), role); };
        QCOMPARE(at(0, LatencyTableModel::Layer).toString(), QString("conv"));
        QCOMPARE(at(0, LatencyTableModel::Fp32Ms).toString(), QString("0.5000"));
        QCOMPARE(at(0, LatencyTableModel::Speedup, LatencyTableModel::SortRole).toDouble(), 4.0);
        QCOMPARE(at(0, LatencyTableModel::Speedup).toString(), QString("4.00\u00D7"));
        QCOMPARE(at(1, LatencyTableModel::Int8Ms).toString(), QString("\u2013"));
        QVERIFY(std::isnan(at(1, LatencyTableModel::Speedup, LatencyTableModel::SortRole).toDouble()));
        QVERIFY(at(0, LatencyTableModel::Int8Ms, Qt::ToolTipRole).toString().contains("avx512_core_vnni"));
        QCOMPARE(m.headerData(LatencyTableModel::QuantizeMs, Qt::Horizontal, Qt::DisplayRole).toString(),
            QString("Quantize ms"));
        QVERIFY(!m.data(m.index(5, 0), Qt::DisplayRole).isValid());
    }
};

QTEST_GUILESS_MAIN(TestLatencyTableModel)
#include "test_latency_table_model.moc"
