// Every command that takes --data feeds all inputs of a two-input model from an NPZ:
// quantize (recorded), export and parity (which replay the calibration data from the
// store), sensitivity, calib-diag and samples. Add a command as a row of commands_data().
#include "data/npz.h"

#include "support/cli_runner.h"
#include "support/multi_input_models.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using qs::test::cli;

class TestCliInputs : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString model_, data_, db_;

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        model_ = dir_.filePath("masked.onnx");
        test::maskedMatMulModel().save(model_.toStdString());
        const int64_t n = 32;
        std::vector<float> x;
        std::vector<int64_t> mask;
        for (int64_t i = 0; i < n * 4; ++i) {
            x.push_back(std::cos(0.37f * float(i)) * 2);
            mask.push_back((i % 4) <= (i / 4) % 4 ? 1 : 0);
        }
        data_ = dir_.filePath("data.npz");
        writeNpz({{"x", Tensor::fromVector<float>({n, 4}, x)},
                     {"attention_mask", Tensor::fromVector<int64_t>({n, 4}, mask)}},
            data_.toStdString());
        db_ = dir_.filePath("studio.db");
    }

    void commands_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::newRow("sensitivity") << QStringList {
            "sensitivity", model_, "--data", data_, "--bits", "4,8", "--limit", "16"};
        QTest::newRow("calib-diag") << QStringList {"calib-diag", model_, "--data", data_, "--sizes", "8,16"};
        QTest::newRow("samples") << QStringList {"samples", model_, "--data", data_, "--layer", "matmul", "--top", "3"};
    }

    void commands()
    {
        QFETCH(QStringList, args);
        const auto r = cli(args);
        QVERIFY2(r.exitCode == 0, r.err.constData());
    }

    void quantizeExportParity()
    {
        const auto q = cli(
            {"quantize", model_, "--data", data_, "--calib-limit", "16", "--eval-limit", "32", "--db", db_, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const QString run = QString::number(QJsonDocument::fromJson(q.out).object()["run_id"].toInt());
        const QString qdq = dir_.filePath("masked_qdq.onnx");
        const auto e = cli({"export", run, "--format", "qdq", "--out", qdq, "--db", db_});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        const auto p = cli({"parity", qdq, "--run", run, "--db", db_, "--data", data_});
        QVERIFY2(p.exitCode == 0 || p.exitCode == 3, p.err.constData()); // 3: a layer drifts, still ran
    }
};

QTEST_GUILESS_MAIN(TestCliInputs)
#include "test_cli_inputs.moc"
