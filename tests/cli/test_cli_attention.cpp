// quantize, sensitivity and mixed with attention operands (--attn-bits, --kv-bits,
// --attn-granularity, --kivi) on the demo's small decomposed GPT export: the operand
// rows, the sweep's points, the configuration written, and one-line errors for what
// cannot be mapped or run.
#include "support/cli_runner.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using qs::test::cli;

namespace {

const QString kModel = QS_SOURCE_DIR "/resources/demo/byte_gpt_tiny_decomposed.onnx";
const QString kEncoder = QS_SOURCE_DIR "/resources/demo/byte_gpt_torch_encoder.onnx";
const QString kText = "text:" QS_SOURCE_DIR "/resources/demo/byte_gpt_val.txt";
const QStringList kSmall = {"--data", kText, "--context", "32", "--batch", "4"};

QJsonObject json(const qs::test::CliResult& r)
{
    return QJsonDocument::fromJson(r.out).object();
}

// One line on stderr naming `what`, exit code 1.
bool oneLineError(const qs::test::CliResult& r, const char* what)
{
    const QByteArray e = r.err.trimmed();
    if (r.exitCode != 1 || e.contains('\n') || !e.contains(what)) {
        qWarning("exit %d, stderr: %s", r.exitCode, r.err.constData());
        return false;
    }
    return true;
}

} // namespace

class TestCliAttention : public QObject {
    Q_OBJECT

private slots:
    void quantizeReportsTheKvCacheOperands()
    {
        QTemporaryDir dir;
        const QString cfg = dir.filePath("kv.json");
        auto r = cli(QStringList {"quantize", kModel} + kSmall +
            QStringList {"--calib-limit", "4", "--eval-limit", "4", "--wbits", "32", "--abits", "32", "--kv-bits", "4",
                "--kivi", "--save-config", cfg, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonArray ops = json(r)["attention_operands"].toArray();
        QCOMPARE(ops.size(), 2);
        QCOMPARE(ops[0].toObject()["name"].toString(), QString("/blocks.0/MatMul:K"));
        QCOMPARE(ops[0].toObject()["granularity"].toString(), QString("channel"));
        QCOMPARE(ops[1].toObject()["role"].toString(), QString("V"));
        QCOMPARE(ops[1].toObject()["granularity"].toString(), QString("token"));
        for (const auto& o : ops) {
            const double db = o.toObject()["sqnr_db"].toDouble();
            QVERIFY(std::isfinite(db) && db > 5 && db < 60);
        }
        QFile f(cfg);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject attention = QJsonDocument::fromJson(f.readAll()).object()["attention"].toObject();
        QCOMPARE(attention["k"].toObject()["bits"].toInt(), 4);
        QCOMPARE(attention["q"].toObject()["bits"].toInt(), 32);
    }

    // A stored run with operands replays (its operand rows checked) and exports as QDQ.
    void storedRunExportsWithItsOperands()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("runs.db"), out = dir.filePath("kv.onnx");
        auto r = cli(QStringList {"quantize", kModel} + kSmall +
            QStringList {"--calib-limit", "4", "--eval-limit", "4", "--kv-bits", "4", "--attn-granularity", "k=channel",
                "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QString run = QString::number(json(r)["run_id"].toInt());
        auto e = cli({"export", run, "--db", db, "--format", "qdq", "--out", out});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        QVERIFY(QFile(out).size() > 0);
    }

    void sensitivitySweepsEveryPoint()
    {
        auto r = cli(QStringList {"sensitivity", kModel} + kSmall +
            QStringList {"--bits", "3,8", "--limit", "4", "--attention", "--kivi", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QStringList points;
        for (const auto& l : json(r)["layers"].toArray()) {
            const QJsonObject o = l.toObject();
            if (!o["op"].toString().startsWith("MatMul:"))
                continue;
            points << o["name"].toString();
            const QJsonObject by = o["by_bits"].toObject();
            QVERIFY(by["3"].toObject()["sqnr_db"].toDouble() < by["8"].toObject()["sqnr_db"].toDouble());
        }
        QCOMPARE(points,
            QStringList({"/blocks.0/MatMul:Q", "/blocks.0/MatMul:K", "/blocks.0/MatMul_1:P", "/blocks.0/MatMul_1:V"}));
    }

    void mixedKeepsTheKvCacheInItsConfiguration()
    {
        QTemporaryDir dir;
        const QString out = dir.filePath("mixed.json");
        auto r = cli(QStringList {"mixed", kModel} + kSmall +
            QStringList {"--bits", "4,8", "--limit", "4", "--budget-bits", "6", "--kv-bits", "4", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QFile f(out);
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonObject attention = QJsonDocument::fromJson(f.readAll()).object()["attention"].toObject();
        QCOMPARE(attention["v"].toObject()["bits"].toInt(), 4);
    }

    // --attention: Q, K, V and P are choices of the search; sizes include the KV cache,
    // so the front goes from narrow to float KV caches, and each point's configuration
    // quantizes the operands it chose.
    void mixedSearchesTheOperands()
    {
        auto r = cli(QStringList {"mixed", kModel} + kSmall +
            QStringList {"--bits", "4,8", "--limit", "4", "--budget-bytes", "1000000", "--attention", "--kivi",
                "--verify", "2", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = json(r);
        const QJsonArray front = j["front"].toArray();
        QVERIFY(front.size() >= 3);
        const QString k = "/blocks.0/MatMul:K";
        QSet<int> kBits;
        int measured = 0;
        for (const auto& v : front) {
            const QJsonObject p = v.toObject();
            const QJsonObject ops = p["operand_bits"].toObject();
            QCOMPARE(ops.size(), 4);
            const int bits = ops[k].toInt();
            kBits.insert(bits);
            QVERIFY(p["kv_cache_bits"].toDouble() > 0);
            QVERIFY(p["kv_cache_bits"].toDouble() < p["size_bits"].toDouble());
            const QJsonObject points = p["config"].toObject()["attention"].toObject()["points"].toObject();
            QCOMPARE(points[k].toObject()["bits"].toInt(), bits >= 16 ? 32 : bits);
            if (bits < 16)
                QCOMPARE(points[k].toObject()["granularity"].toString(), QString("channel")); // --kivi
            measured += p["measured"].isObject();
        }
        QVERIFY(kBits.contains(32));
        QVERIFY(kBits.contains(4) || kBits.contains(8));
        QCOMPARE(measured, 2);
        // The largest budget takes the least-noise point: every KV cache in float.
        QCOMPARE(j["chosen"].toObject()["operand_bits"].toObject()[k].toInt(), 32);
    }

    void misuseIsOneLine()
    {
        const QStringList base = QStringList {"quantize", kModel} + kSmall + QStringList {"--eval-limit", "2"};
        QVERIFY(oneLineError(cli(base + QStringList {"--attn-granularity", "k=row"}), "--attn-granularity"));
        QVERIFY(oneLineError(cli(base + QStringList {"--attn-granularity", "x=head"}), "--attn-granularity"));
        QVERIFY(oneLineError(cli(base + QStringList {"--kv-bits", "12"}), "--kv-bits"));
        const QStringList mixed = QStringList {"mixed", kModel} + kSmall +
            QStringList {"--bits", "4,8", "--limit", "4", "--budget-bits", "6"};
        QVERIFY(oneLineError(cli(mixed + QStringList {"--kv-context", "64"}), "--kv-context"));
        QVERIFY(oneLineError(cli(mixed + QStringList {"--kv-context", "0", "--attention"}), "--kv-context"));
        QVERIFY(oneLineError(cli(QStringList {"mixed", kModel} + kSmall +
                                 QStringList {"--attention", "--cost", "latency", "--budget-ms", "1"}),
            "--attention"));
        QVERIFY(oneLineError(cli(base + QStringList {"--kv-bits", "4", "--int8"}), "MatMul:K"));
        // torch's MultiheadAttention export folds heads into the batch: no head axis to split.
        QVERIFY(oneLineError(cli(QStringList {"quantize", kEncoder} + kSmall +
                                 QStringList {"--eval-limit", "2", "--kv-bits", "8", "--attn-granularity", "k=head"}),
            "per-head needs a [batch, heads, tokens, dim] operand"));
    }
};

QTEST_GUILESS_MAIN(TestCliAttention)
#include "test_cli_attention.moc"
