// `quantstudio-cli run MODEL --data text:FILE --context N`: perplexity of the bundled
// byte GPT on its validation slice equals torch's (resources/demo/byte_gpt_ref.json,
// computed by the training script) within 1e-3 relative; --limit and one-line errors.
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"

namespace {

using qs::test::cli;

const QString kDir = QS_SOURCE_DIR "/resources/demo/";
const QString kModel = kDir + "byte_gpt.onnx";
const QString kVal = "text:" + kDir + "byte_gpt_val.txt";

QJsonObject torchReference(int context)
{
    QFile f(kDir + "byte_gpt_ref.json");
    if (!f.open(QIODevice::ReadOnly))
        return {};
    return QJsonDocument::fromJson(f.readAll()).object()["perplexity"].toObject()[QString::number(context)].toObject();
}

} // namespace

class TestCliPerplexity : public QObject {
    Q_OBJECT

private slots:
    void matchesTorch_data()
    {
        QTest::addColumn<int>("context");
        QTest::addColumn<QString>("batch");
        QTest::newRow("context 128, batch 32") << 128 << "32";
        QTest::newRow("context 64, batch 7 (a remainder batch)") << 64 << "7";
    }

    void matchesTorch()
    {
        QFETCH(int, context);
        QFETCH(QString, batch);
        const QJsonObject ref = torchReference(context);
        QVERIFY2(ref.contains("perplexity"), "byte_gpt_ref.json lacks the reference");
        auto r = cli({"run", kModel, "--data", kVal, "--context", QString::number(context), "--batch", batch, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["tokens"].toInt(), ref["tokens"].toInt());
        QCOMPARE(j["context"].toInt(), context);
        const double got = j["perplexity"].toDouble(), want = ref["perplexity"].toDouble();
        qInfo("perplexity %.6f, torch %.6f", got, want);
        QVERIFY2(std::abs(got - want) <= 1e-3 * want, qPrintable(QString("%1 vs torch %2").arg(got).arg(want)));
        QVERIFY(j["tokens_per_second"].toDouble() > 0);
    }

    // Default context from the model's metadata (quantstudio.context = 128), --limit
    // windows, and the text summary line.
    void limitAndDefaultContext()
    {
        auto r = cli({"run", kModel, "--data", kVal, "--limit", "3", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["context"].toInt(), 128);
        QCOMPARE(j["tokens"].toInt(), 3 * 128);
        QVERIFY(j["perplexity"].toDouble() > 1 && j["perplexity"].toDouble() < 256);
        auto t = cli({"run", kModel, "--data", kVal, "--limit", "2", "--context", "32"});
        QVERIFY2(t.exitCode == 0, t.err.constData());
        QVERIFY2(t.out.contains("over 64 tokens (context 32"), t.out.constData());
    }

    // --precision bf16: perplexity within 1% of torch's float32 one (bf16 keeps 8 bits of
    // mantissa; the products accumulate in float32) and recorded in the JSON; below
    // AVX-512 (no bf16 kernel in oneDNN) a one-line refusal instead.
    void bf16Perplexity()
    {
        const QJsonObject ref = torchReference(128);
        auto r = cli({"run", kModel, "--data", kVal, "--context", "128", "--precision", "bf16", "--json"});
        if (r.exitCode != 0) {
            QVERIFY2(QString(r.err).contains("bf16 needs a CPU with AVX-512"), r.err.constData());
            QCOMPARE(r.err.count('\n'), 1);
            qInfo("bf16 refused on this CPU: %s", r.err.constData());
            return;
        }
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["precision"].toString(), QString("bf16"));
        const double got = j["perplexity"].toDouble(), want = ref["perplexity"].toDouble();
        qInfo("bf16 perplexity %.6f, torch float32 %.6f", got, want);
        QVERIFY2(std::abs(got - want) <= 1e-2 * want, qPrintable(QString("%1 vs torch %2").arg(got).arg(want)));
        QVERIFY2(got != want, "bf16 gave torch's float32 perplexity exactly");
    }

    void errors_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("missing file") << QStringList{"run", kModel, "--data", "text:/nonexistent.txt"}
                                      << "/nonexistent.txt: no such text file";
        QTest::newRow("context beyond the file") << QStringList{"run", kModel, "--data", kVal, "--context", "30000"}
                                                 << "make no window of 30000 tokens";
        QTest::newRow("image model") << QStringList{"run", kDir + "fashion_cnn.onnx", "--data", kVal}
                                     << "text data needs a token input [batch, sequence]";
        QTest::newRow("mean on text") << QStringList{"run", kModel, "--data", kVal, "--mean", "0.5"}
                                      << "do not apply to text data";
        QTest::newRow("unknown precision") << QStringList{"run", kModel, "--data", kVal, "--precision", "fp16"}
                                           << "--precision fp16: expected fp32 or bf16";
    }

    void errors()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        auto r = cli(args);
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(QString(r.err).contains(message), r.err.constData());
        QCOMPARE(r.err.count('\n'), 1);
    }
};

QTEST_GUILESS_MAIN(TestCliPerplexity)
#include "test_cli_perplexity.moc"
