// The rows and metrics record/ makes of parity checks and mixed-precision searches:
// what the store keeps of each, checked field by field against the results they come
// from (the studio reads a mixed run's weight and activation bits back as the layers'
// bits; `parity --json` prints the same layer JSON the rows hold).
#include "record/mixed_record.h"
#include "record/parity_record.h"

#include <QtTest>

#include <limits>

using namespace qs;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

} // namespace

class TestRunRecords : public QObject {
    Q_OBJECT

private slots:
    void mixedRowsCarryTheChosenBits()
    {
        FrontPoint p;
        p.bits = {{"conv1", 4}, {"fc", 8}};
        const std::vector<LayerResult> rows = mixedLayerRows(p, 6);
        QCOMPARE(rows.size(), std::size_t(2));
        QCOMPARE(rows[0].layer, std::string("conv1"));
        QCOMPARE(rows[0].weightBits, std::optional<int>(4));
        QCOMPARE(rows[1].layer, std::string("fc"));
        QCOMPARE(rows[1].weightBits, std::optional<int>(8));
        for (const auto& r : rows)
            QCOMPARE(r.actBits, std::optional<int>(6));
    }

    void mixedMetrics()
    {
        FrontPoint p;
        p.sizeBits = 12345;
        p.predictedSqnrDb = 21.5;
        p.averageBits = 5.25;
        RunMetrics m = mixedRunMetrics(p, nlohmann::json::array({{{"size_bits", 1}}, {{"size_bits", 2}}}));
        QCOMPARE(m.sizeBits, std::optional<double>(12345));
        QCOMPARE(m.extra["predicted_sqnr_db"].get<double>(), 21.5);
        QCOMPARE(m.extra["average_bits"].get<double>(), 5.25);
        QCOMPARE(m.extra["front"].size(), std::size_t(2));
        QCOMPARE(m.extra["front"][1]["size_bits"].get<int>(), 2);
        QVERIFY(!m.top1 && !m.sqnrDb); // not verified: nothing measured

        p.predictedSqnrDb = kInf; // JSON cannot hold it: null
        p.measured = MeasuredPoint {};
        p.measured->sqnrDb = 19.0;
        p.measured->top1 = 0.875;
        m = mixedRunMetrics(p, nlohmann::json::array());
        QVERIFY(m.extra["predicted_sqnr_db"].is_null());
        QCOMPARE(m.top1, std::optional<double>(0.875));
        QCOMPARE(m.sqnrDb, std::optional<double>(19.0));
    }

    void parityRowsAndMetrics()
    {
        ParityResult r;
        LayerParity exact;
        exact.layer = "conv1";
        exact.op = "Conv";
        exact.int8 = true; // sqnrDb stays infinite: INT8 and simulation agree exactly
        LayerParity drift;
        drift.layer = "fc";
        drift.op = "Gemm";
        drift.sqnrDb = 12.5;
        drift.notInt8 = "no INT8 kernel";
        drift.drifting = drift.introduced = true;
        drift.paramDiffs = {"fc.weight"};
        r.layers = {exact, drift};
        r.flagged = {"fc"};
        r.samples = 64;
        r.top1Agreement = 0.75;

        const std::vector<LayerResult> rows = parityLayerRows(r);
        QCOMPARE(rows.size(), std::size_t(2));
        QCOMPARE(rows[0].op, std::string("Conv"));
        QVERIFY(!rows[0].sqnrDb); // infinite: no number stored
        QCOMPARE(rows[0].extra["sqnr_db"].get<std::string>(), std::string("inf"));
        QCOMPARE(rows[0].extra["int8"].get<bool>(), true);
        QCOMPARE(rows[1].sqnrDb, std::optional<double>(12.5));
        QCOMPARE(rows[1].extra["sqnr_db"].get<double>(), 12.5);
        QCOMPARE(rows[1].extra["not_int8"].get<std::string>(), std::string("no INT8 kernel"));
        QCOMPARE(rows[1].extra["introduced"].get<bool>(), true);
        QCOMPARE(rows[1].extra["param_diffs"][0].get<std::string>(), std::string("fc.weight"));
        QVERIFY(rows[1].extra == parityLayerJson(drift));
        QCOMPARE(parityNumber(-kInf).get<std::string>(), std::string("-inf"));

        RunMetrics m = parityRunMetrics(r);
        QVERIFY(!m.sqnrDb); // outputSqnrDb infinite
        QCOMPARE(m.top1Agreement, std::optional<double>(0.75));
        QCOMPARE(m.extra["parity_passed"].get<bool>(), false);
        QCOMPARE(m.extra["flagged"][0].get<std::string>(), std::string("fc"));
        QCOMPARE(m.extra["samples"].get<int>(), 64);
        r.outputSqnrDb = 33.0;
        QCOMPARE(parityRunMetrics(r).sqnrDb, std::optional<double>(33.0));
    }
};

QTEST_GUILESS_MAIN(TestRunRecords)
#include "test_run_records.moc"
