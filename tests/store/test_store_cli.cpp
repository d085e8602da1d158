// quantstudio-cli runs / show / compare against a store filled here through the
// API: JSON keys and values, the aligned table, CSV/JSON export, one-line errors,
// and that reading leaves the file unchanged.
#include "store/store.h"

#include "store_test_util.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"

using namespace qs;
using namespace qs::test;

namespace {

using Cli = qs::test::CliResult;
using qs::test::cli;

QJsonDocument parse(const QByteArray& bytes)
{
    QJsonParseError err;
    QJsonDocument doc = QJsonDocument::fromJson(bytes, &err);
    if (err.error != QJsonParseError::NoError)
        qWarning() << "bad JSON:" << err.errorString() << bytes.left(400);
    return doc;
}

// Splits RFC 4180 CSV (quoted fields with "" escapes, CRLF rows).
QList<QStringList> parseCsv(const QString& text)
{
    QList<QStringList> rows;
    QStringList row;
    QString field;
    bool quoted = false;
    for (int i = 0; i < text.size(); ++i) {
        const QChar c = text[i];
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
                field += '"', ++i;
            else if (c == '"')
                quoted = false;
            else
                field += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            row << field, field.clear();
        } else if (c == '\r') {
        } else if (c == '\n') {
            row << field, field.clear();
            rows << row, row.clear();
        } else {
            field += c;
        }
    }
    return rows;
}

} // namespace

class TestStoreCli : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString db_;
    int64_t runA_ = 0, runB_ = 0;

private slots:
    void initTestCase()
    {
        db_ = dir_.filePath("studio.db");
        Store store = Store::open(db_.toStdString());
        const int64_t m1 = store.upsertModel(sampleModel("cnn_one")), m2 = store.upsertModel(sampleModel("cnn_two"));
        runA_ = store.beginRun({m1, store.upsertDataset(sampleDataset()), RunKind::Quantization,
                                {{"bits", 8}, {"calibration", "minmax"}}, {"baseline"}});
        store.addLayerResults(runA_, {sampleLayer("conv1", 8, 40), sampleLayer("conv2", 8, 38), sampleLayer("fc", 8, 44)});
        store.finishRun(runA_, RunState::Done, sampleMetrics(0.91));
        store.setNote(runA_, "8-bit, \"reference\", all layers");
        runB_ = store.beginRun({m2, {}, RunKind::MixedPrecisionSearch, {{"bits", 4}, {"calibration", "minmax"}}});
        store.addLayerResults(runB_, {sampleLayer("conv1", 4, 22), sampleLayer("conv2", 4, 20), sampleLayer("head", 4, 18)});
        RunMetrics mb = sampleMetrics(0.87);
        mb.sizeBits = 122880;
        store.finishRun(runB_, RunState::Done, mb);
    }

    void runsJson()
    {
        Cli r = cli({"runs", "--db", db_, "--json"});
        QCOMPARE(r.exitCode, 0);
        const QJsonArray runs = parse(r.out).array();
        QCOMPARE(runs.size(), 2);
        QCOMPARE(runs[0]["id"].toInteger(), runB_); // newest first
        QCOMPARE(runs[0]["kind"].toString(), QString("mixed-precision-search"));
        QCOMPARE(runs[1]["model"]["name"].toString(), QString("cnn_one"));
        QCOMPARE(runs[1]["state"].toString(), QString("done"));
        QCOMPARE(runs[1]["metrics"]["top1"].toDouble(), 0.91);
        QCOMPARE(runs[1]["metrics"]["size_bits"].toDouble(), 245760.0);
        QCOMPARE(runs[1]["tags"].toArray(), QJsonArray{"baseline"});
        QCOMPARE(runs[1]["layer_count"].toInt(), 3);
        QCOMPARE(runs[1]["config"]["bits"].toInt(), 8);
    }

    void runsFilteredByModel()
    {
        Cli r = cli({"runs", "--db", db_, "--model", "cnn_two", "--json"});
        QCOMPARE(r.exitCode, 0);
        const QJsonArray runs = parse(r.out).array();
        QCOMPARE(runs.size(), 1);
        QCOMPARE(runs[0]["id"].toInteger(), runB_);
    }

    void runsTableIsAligned()
    {
        Cli r = cli({"runs", "--db", db_});
        QCOMPARE(r.exitCode, 0);
        const QStringList lines = QString::fromUtf8(r.out).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 3);
        QVERIFY(lines[0].startsWith("ID"));
        // Every row's KIND and STATE columns start where the header's do.
        for (const char* column : {"KIND", "STATE", "STARTED"}) {
            const int at = int(lines[0].indexOf(column));
            QVERIFY(at > 0);
            for (int i = 1; i < lines.size(); ++i)
                QVERIFY2(lines[i][at - 1] == ' ' && lines[i][at] != ' ', qPrintable(lines[i]));
        }
        QVERIFY(lines[1].contains("cnn_two") && lines[1].contains("87.00%"));
        QVERIFY(lines[2].contains("cnn_one") && lines[2].contains("91.00%") && lines[2].contains("30.0 KiB"));
    }

    void showJson()
    {
        Cli r = cli({"show", QString::number(runA_), "--db", db_, "--json"});
        QCOMPARE(r.exitCode, 0);
        const QJsonObject run = parse(r.out).object();
        QCOMPARE(run["id"].toInteger(), runA_);
        QCOMPARE(run["note"].toString(), QString("8-bit, \"reference\", all layers"));
        QCOMPARE(run["dataset"]["path"].toString(), QString("/data/t10k-images-idx3-ubyte"));
        const QJsonArray layers = run["layers"].toArray();
        QCOMPARE(layers.size(), 3);
        QCOMPARE(layers[0]["layer"].toString(), QString("conv1"));
        QCOMPARE(layers[2]["layer"].toString(), QString("fc"));
        QCOMPARE(layers[1]["weight_bits"].toInt(), 8);
        QCOMPARE(layers[1]["sqnr_db"].toDouble(), 38.0);
        QCOMPARE(layers[0]["weight_hist"]["counts"].toArray().size(), 4);
        QCOMPARE(layers[0]["weight_hist"]["edges"].toArray().size(), 5);
        QCOMPARE(layers[0]["act_clip"].toArray(), (QJsonArray{0.0, 5.5}));
    }

    // `run --db` records an inference run: `running` while it works, then `done`
    // with the same top-1 and throughput the command printed.
    void runRecordsAnInferenceRun()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("inference.db");
        const QString model = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
        const QString data = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
        Cli r = cli({"run", model, "--data", data, "--limit", "96", "--batch", "32", "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject printed = parse(r.out).object();
        const qint64 id = printed["run_id"].toInteger();
        QVERIFY(id > 0);

        Cli shown = cli({"show", QString::number(id), "--db", db, "--json"});
        QCOMPARE(shown.exitCode, 0);
        const QJsonObject run = parse(shown.out).object();
        QCOMPARE(run["kind"].toString(), QString("inference"));
        QCOMPARE(run["state"].toString(), QString("done"));
        QCOMPARE(run["model"]["name"].toString(), QString("fashion_cnn"));
        QCOMPARE(run["config"]["batch"].toInt(), 32);
        QCOMPARE(run["config"]["limit"].toInt(), 96);
        QCOMPARE(run["metrics"]["top1"].toDouble(), printed["top1"].toDouble());
        QCOMPARE(run["metrics"]["extra"]["images"].toInt(), 96);
        QVERIFY(run["metrics"]["latency_ms"].toDouble() > 0);

        // A second run of the same model and data refers to the same model row.
        Cli again = cli({"run", model, "--data", data, "--limit", "32", "--db", db, "--json"});
        QCOMPARE(again.exitCode, 0);
        Cli runs = cli({"runs", "--db", db, "--json"});
        const QJsonArray all = parse(runs.out).array();
        QCOMPARE(all.size(), 2);
        QCOMPARE(all[0]["model"]["id"].toInteger(), all[1]["model"]["id"].toInteger());
    }

    void showText()
    {
        Cli r = cli({"show", QString::number(runB_), "--db", db_});
        QCOMPARE(r.exitCode, 0);
        const QString out = QString::fromUtf8(r.out);
        QVERIFY2(out.contains("mixed-precision-search") && out.contains("layers (3)") && out.contains("head"),
                 qPrintable(out));
    }

    void compareJson()
    {
        Cli r = cli({"compare", QString::number(runA_), QString::number(runB_), "--db", db_, "--json"});
        QCOMPARE(r.exitCode, 0);
        const QJsonObject c = parse(r.out).object();
        for (const char* key : {"a", "b", "metrics_delta", "layers", "unmatched"})
            QVERIFY2(c.contains(key), key);
        QCOMPARE(c["a"]["id"].toInteger(), runA_);
        QCOMPARE(c["b"]["config"]["bits"].toInt(), 4);
        QVERIFY(qFuzzyCompare(c["metrics_delta"]["top1"]["delta"].toDouble(), 0.87 - 0.91));
        QCOMPARE(c["metrics_delta"]["size_bits"]["delta"].toDouble(), 122880.0 - 245760.0);
        QCOMPARE(c["metrics_delta"]["cosine"]["delta"].toDouble(), 0.0);
        const QJsonArray layers = c["layers"].toArray();
        QCOMPARE(layers.size(), 2);
        QCOMPARE(layers[0]["layer"].toString(), QString("conv1"));
        QCOMPARE(layers[0]["a"]["weight_bits"].toInt(), 8);
        QCOMPARE(layers[0]["b"]["weight_bits"].toInt(), 4);
        QCOMPARE(layers[1]["delta"]["sqnr_db"].toDouble(), 20.0 - 38.0);
        QCOMPARE(c["unmatched"]["a"].toArray(), QJsonArray{"fc"});
        QCOMPARE(c["unmatched"]["b"].toArray(), QJsonArray{"head"});
        const QJsonArray diff = c["config_diff"].toArray();
        QCOMPARE(diff.size(), 1);
        QCOMPARE(diff[0]["key"].toString(), QString("/bits"));
    }

    void compareText()
    {
        Cli r = cli({"compare", QString::number(runA_), QString::number(runB_), "--db", db_});
        QCOMPARE(r.exitCode, 0);
        const QString out = QString::fromUtf8(r.out);
        QVERIFY2(out.contains("only in a (1): fc") && out.contains("only in b (1): head") && out.contains("/bits"),
                 qPrintable(out));
    }

    void exportCsv_data()
    {
        QTest::addColumn<bool>("toFile");
        QTest::newRow("stdout") << false;
        QTest::newRow("--out") << true;
    }

    void exportCsv()
    {
        QFETCH(bool, toFile);
        const QString out = dir_.filePath("runs.csv");
        QStringList args{"runs", "--db", db_, "--export", "csv"};
        if (toFile)
            args << "--out" << out;
        Cli r = cli(args);
        QCOMPARE(r.exitCode, 0);
        QByteArray text = r.out;
        if (toFile) {
            QVERIFY(r.out.isEmpty());
            QFile f(out);
            QVERIFY(f.open(QIODevice::ReadOnly));
            text = f.readAll();
        }
        const QList<QStringList> rows = parseCsv(QString::fromUtf8(text));
        QCOMPARE(rows.size(), 3);
        const QStringList header = rows[0];
        for (const auto& row : rows)
            QCOMPARE(row.size(), header.size());
        const int note = int(header.indexOf("note")), top1 = int(header.indexOf("top1")), id = int(header.indexOf("id"));
        QVERIFY(note >= 0 && top1 >= 0 && id >= 0);
        QCOMPARE(rows[2][id].toLongLong(), runA_);
        QCOMPARE(rows[2][note], QString("8-bit, \"reference\", all layers"));
        QCOMPARE(rows[2][top1].toDouble(), 0.91);
    }

    void exportJsonToFile()
    {
        const QString out = dir_.filePath("runs.json");
        Cli r = cli({"runs", "--db", db_, "--export", "json", "--out", out});
        QCOMPARE(r.exitCode, 0);
        QFile f(out);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(parse(f.readAll()).array().size(), 2);
    }

    void errors_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("no store") << QStringList{"runs", "--db", "/nonexistent/studio.db"}
                                  << "/nonexistent/studio.db: no store at this path";
        QTest::newRow("unknown run") << QStringList{"show", "999", "--db", "DB"} << "run 999 is not in the store";
        QTest::newRow("bad run id") << QStringList{"show", "abc", "--db", "DB"} << "RUN must be a run id";
        QTest::newRow("compare one run") << QStringList{"compare", "1", "--db", "DB"} << "missing argument: RUN_B";
        QTest::newRow("bad export") << QStringList{"runs", "--db", "DB", "--export", "xml"} << "expected csv or json";
        QTest::newRow("out without export") << QStringList{"runs", "--db", "DB", "--out", "x"} << "--out needs --export";
        QTest::newRow("bad kind") << QStringList{"runs", "--db", "DB", "--kind", "training"} << "unknown run kind";
    }

    void errors()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        args.replaceInStrings(QRegularExpression("^DB$"), db_);
        Cli r = cli(args);
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.out.isEmpty());
        const QString err = QString::fromUtf8(r.err);
        QCOMPARE(err.count('\n'), 1);
        QVERIFY2(err.contains(message), qPrintable(err));
    }

    // Reading through the CLI never changes the store file.
    void readingLeavesTheFileUnchanged()
    {
        const QByteArray before = fileHash(db_);
        QCOMPARE(cli({"runs", "--db", db_}).exitCode, 0);
        QCOMPARE(cli({"show", QString::number(runA_), "--db", db_}).exitCode, 0);
        QCOMPARE(cli({"compare", QString::number(runA_), QString::number(runB_), "--db", db_}).exitCode, 0);
        QCOMPARE(fileHash(db_), before);
    }
};

QTEST_GUILESS_MAIN(TestStoreCli)
#include "test_store_cli.moc"
