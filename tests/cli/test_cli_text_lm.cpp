// `run` and `quantize` of a small decoder (built here) on tokenized text: text:FILE with
// --tokenizer hf:/spm: scores exactly the windows of the reference ids (Hugging Face's
// and sentencepiece's, tests/data/tokenizers) given as tokens:FILE; the tokenizer is
// recorded with the run; ids outside the vocabulary and misuse are one-line errors.
#include "graph/onnx_export.h"
#include "quant/transformer_fixture.h"
#include "support/cli_runner.h"

#include "data/npy.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using qs::test::cli;

namespace {

const QString kDir = QS_SOURCE_DIR "/tests/data/tokenizers/";
const QString kText = "text:" + kDir + "sample.txt";

std::vector<int64_t> referenceIds(const QString& file, const QString& tokenizer)
{
    QFile f(kDir + file);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    std::vector<int64_t> out;
    for (const auto& v : QJsonDocument::fromJson(f.readAll()).object()["sample.txt"].toObject()[tokenizer].toArray())
        out.push_back(v.toInt());
    return out;
}

QJsonObject json(const qs::test::CliResult& r)
{
    return QJsonDocument::fromJson(r.out).object();
}

} // namespace

class TestCliTextLm : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString model(int64_t vocab)
    {
        const QString path = dir_.filePath(QString("lm%1.onnx").arg(vocab));
        if (!QFile::exists(path)) {
            qs::test::TransformerDims d;
            d.vocab = vocab;
            qs::Graph g = qs::test::tinyTransformer(d);
            g.inputs[0].dtype = qs::DType::Int64;
            qs::saveOnnx(g, path.toStdString());
        }
        return path;
    }

private slots:
    // The CLI's perplexity on text through the tokenizer equals its perplexity on the
    // reference ids written as a file (NPY, and raw uint16 as nanoGPT writes them).
    void tokenizedTextScoresTheReferenceIds_data()
    {
        QTest::addColumn<QString>("tokenizer");
        QTest::addColumn<QString>("reference");
        QTest::addColumn<QString>("key");
        QTest::addColumn<int>("vocab");
        QTest::newRow("tokenizer.json") << "hf:" + kDir + "bpe.json"
                                        << "bpe_ref.json"
                                        << "bpe.json" << 557;
        QTest::newRow("SentencePiece") << "spm:" + kDir + "spm_unigram.model"
                                       << "spm_ref.json"
                                       << "spm_unigram.model" << 400;
    }

    void tokenizedTextScoresTheReferenceIds()
    {
        QFETCH(QString, tokenizer);
        QFETCH(QString, reference);
        QFETCH(QString, key);
        QFETCH(int, vocab);
        const std::vector<int64_t> ids = referenceIds(reference, key);
        QVERIFY(ids.size() > 100);
        const QString npy = dir_.filePath(key + ".npy"), bin = dir_.filePath(key + ".bin");
        qs::writeNpy(qs::Tensor::fromVector(qs::Shape {int64_t(ids.size())}, ids), npy.toStdString());
        std::vector<uint16_t> narrow(ids.begin(), ids.end());
        std::ofstream(bin.toStdString(), std::ios::binary)
            .write(reinterpret_cast<const char*>(narrow.data()), std::streamsize(narrow.size() * 2));

        const QString lm = model(vocab);
        auto text = cli({"run", lm, "--data", kText, "--tokenizer", tokenizer, "--batch", "4", "--json"});
        QVERIFY2(text.exitCode == 0, text.err.constData());
        const QJsonObject t = json(text);
        QCOMPARE(t["tokens"].toInt(), int((ids.size() - 1) / 16 * 16));
        QCOMPARE(t["context"].toInt(), 16);
        QCOMPARE(t["tokenizer"].toString(), tokenizer);
        const double ppl = t["perplexity"].toDouble();
        QVERIFY(ppl > 1 && std::isfinite(ppl));
        for (const QString& spec : {"tokens:" + npy, "tokens:" + bin + ":u16"}) {
            auto r = cli({"run", lm, "--data", spec, "--batch", "4", "--json"});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            QCOMPARE(json(r)["tokens"].toInt(), t["tokens"].toInt());
            QCOMPARE(json(r)["perplexity"].toDouble(), ppl);
        }
    }

    // quantize of the decoder on tokenized text: perplexity against FP32, and the run
    // records the tokenizer for calibration and evaluation.
    void quantizeRecordsTheTokenizer()
    {
        const QString spec = "spm:" + kDir + "spm_bpe.model";
        const QString db = dir_.filePath("runs.db");
        auto q = cli({"quantize", model(400), "--data", kText, "--tokenizer", spec, "--wbits", "8", "--abits", "8",
            "--batch", "8", "--db", db, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const QJsonObject j = json(q);
        QVERIFY(j["perplexity"].toDouble() > 1 && j["fp32_perplexity"].toDouble() > 1);
        QVERIFY(std::abs(j["perplexity"].toDouble() / j["fp32_perplexity"].toDouble() - 1) < 0.05);
        auto show = cli({"show", QString::number(j["run_id"].toInt()), "--db", db, "--json"});
        QVERIFY2(show.exitCode == 0, show.err.constData());
        const QJsonObject config = json(show)["config"].toObject();
        QCOMPARE(config["calibration"].toObject()["tokenizer"].toString(), spec);
        QCOMPARE(config["evaluation"].toObject()["tokenizer"].toString(), spec);

        // export replays the calibration: it must read the same ids to find the same ranges
        auto exported = cli({"export", QString::number(j["run_id"].toInt()), "--format", "encodings", "--out",
            dir_.filePath("q.encodings"), "--db", db});
        QVERIFY2(exported.exitCode == 0, exported.err.constData());

        auto run = cli({"run", model(400), "--data", kText, "--tokenizer", spec, "--db", db, "--json"});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        auto shown = cli({"show", QString::number(json(run)["run_id"].toInt()), "--db", db, "--json"});
        QCOMPARE(json(shown)["config"].toObject()["tokenizer"].toString(), spec);
    }

    void errors_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("ids beyond the vocabulary")
            << QStringList {"run", "MODEL100", "--data", kText, "--tokenizer", "spm:" + kDir + "spm_unigram.model"}
            << "sample.txt: token 0 is id 122, outside the model's vocabulary of 100 (ids 0..99)";
        QTest::newRow("tokenizer on token ids")
            << QStringList {"run", "MODEL400", "--data", "tokens:x.npy", "--tokenizer", "hf:" + kDir + "bpe.json"}
            << "--tokenizer applies to text:FILE data, not \"tokens:x.npy\"";
        QTest::newRow("unsupported tokenizer.json")
            << QStringList {"quantize", "MODEL400", "--data", kText, "--tokenizer", "hf:" + kDir + "package.json"}
            << "package.json: field pre_tokenizer is missing";
        QTest::newRow("raw ids without a width")
            << QStringList {"run", "MODEL400", "--data", "tokens:" + kDir + "sample.txt"}
            << "raw token ids need their type";
    }

    void errors()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        args.replaceInStrings("MODEL100", model(100)).replaceInStrings("MODEL400", model(400));
        auto r = cli(args);
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(QString(r.err).contains(message), r.err.constData());
        QCOMPARE(r.err.count('\n'), 1);
    }
};

QTEST_GUILESS_MAIN(TestCliTextLm)
#include "test_cli_text_lm.moc"
