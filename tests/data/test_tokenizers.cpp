// Tokenizers and token-id data for language models: byte-level BPE from tokenizer.json
// against ids made by Hugging Face's tokenizers, SentencePiece against its Python module
// (reference ids shipped in tests/data/tokenizers/, see make_tokenizers.py and
// make_bpe_ref.js there), tokens:FILE windows, the vocabulary check, one-line errors.
#include "data/dataset.h"
#include "data/npy.h"
#include "data/text.h"
#include "data/tokenizer.h"
#include "quant/transformer_fixture.h"
#include "support/error_of.h"
#include "util/error.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

using namespace qs;

namespace {

const std::string kDir = QS_SOURCE_DIR "/tests/data/tokenizers/";

std::string readText(const std::string& path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string textPath(const QString& name)
{
    return name == "byte_gpt_val.txt" ? QS_SOURCE_DIR "/resources/demo/byte_gpt_val.txt" : kDir + name.toStdString();
}

// {text: {tokenizer: ids}} of a reference file.
std::vector<int32_t> referenceIds(const QString& file, const QString& text, const QString& tokenizer)
{
    QFile f(QString::fromStdString(kDir) + file);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    std::vector<int32_t> out;
    for (const auto& v : QJsonDocument::fromJson(f.readAll()).object()[text].toObject()[tokenizer].toArray())
        out.push_back(int32_t(v.toInt()));
    return out;
}

// Where two id lists first differ, for a readable failure.
QString firstDifference(const std::vector<int32_t>& got, const std::vector<int32_t>& want)
{
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i])
        ++i;
    return QString("%1 ids vs %2 in the reference; first difference at %3 (%4 vs %5)")
        .arg(got.size())
        .arg(want.size())
        .arg(i)
        .arg(i < got.size() ? got[i] : -1)
        .arg(i < want.size() ? want[i] : -1);
}

std::string writeFile(const QTemporaryDir& dir, const std::string& name, const std::string& bytes)
{
    const std::string path = dir.filePath(QString::fromStdString(name)).toStdString();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

QString errorOf(const std::function<void()>& f)
{
    return QString::fromStdString(test::errorOf(f));
}

// A tiny GPT taking int64 ids in [0, vocab) with windows of 16.
Graph tinyLm(int64_t vocab)
{
    test::TransformerDims d;
    d.vocab = vocab;
    Graph g = test::tinyTransformer(d);
    g.inputs[0].dtype = DType::Int64;
    g.sourcePath = "tiny_lm.onnx";
    return g;
}

} // namespace

class TestTokenizers : public QObject {
    Q_OBJECT
private slots:
    void matchReference_data()
    {
        QTest::addColumn<QString>("reference");
        QTest::addColumn<QString>("tokenizer");
        QTest::addColumn<QString>("text");
        for (const char* text : {"sample.txt", "byte_gpt_val.txt", "mixed.txt"}) {
            for (const char* t : {"bpe.json", "bpe_prefix.json"})
                QTest::addRow("HF %s, %s", t, text) << "bpe_ref.json" << t << text;
            for (const char* t : {"spm_unigram.model", "spm_bpe.model"})
                if (std::string(text) != "mixed.txt")
                    QTest::addRow("SentencePiece %s, %s", t, text) << "spm_ref.json" << t << text;
        }
    }

    void matchReference()
    {
        QFETCH(QString, reference);
        QFETCH(QString, tokenizer);
        QFETCH(QString, text);
        const std::vector<int32_t> want = referenceIds(reference, text, tokenizer);
        QVERIFY2(want.size() > 100, "the reference ids are missing");
        const auto t = loadTokenizer(kDir + tokenizer.toStdString());
        const std::vector<int32_t> got = t->encode(readText(textPath(text)));
        QVERIFY2(got == want, qPrintable(firstDifference(got, want)));
        for (int32_t id : got)
            QVERIFY(id >= 0 && id < t->vocabSize());
    }

    void vocabularySizes()
    {
        QCOMPARE(loadTokenizer("spm:" + kDir + "spm_unigram.model")->vocabSize(), 400);
        // 256 bytes + 300 merges, <|endoftext|> after them, <mask> after that
        QCOMPARE(loadTokenizer("hf:" + kDir + "bpe.json")->vocabSize(), 557);
        QCOMPARE(loadTokenizer(kDir + "bpe_prefix.json")->vocabSize(), 558);
        QCOMPARE(modelVocabularySize(tinyLm(77)), 77);
        QCOMPARE(modelVocabularySize(tinyLm(500)), 500);
    }

    // Added tokens split first (longest match, lstrip), the prefix space per piece.
    void addedTokensAndEdges()
    {
        const auto t = loadTokenizer("hf:" + kDir + "bpe_prefix.json");
        const std::vector<int32_t> ids = t->encode("a <mask><|endoftext|>");
        QCOMPARE(ids.size(), std::size_t(3)); // " a", "<mask>" with the space on its left, "<|endoftext|>"
        QCOMPARE(ids[1], 557);
        QCOMPARE(ids[2], 556);
        QVERIFY(t->encode("").empty());
        const auto plain = loadTokenizer("hf:" + kDir + "bpe.json");
        QCOMPARE(plain->encode("<|endoftext|>"), std::vector<int32_t> {556});
        QVERIFY(plain->encode("<mask>").size() > 1); // no such added token here: plain BPE pieces
    }

    void tokenizerErrors_data()
    {
        QTest::addColumn<QString>("patch"); // JSON merged into bpe.json ("" : the file is "{")
        QTest::addColumn<QString>("message");
        QTest::newRow("WordPiece") << R"({"model": {"type": "WordPiece"}})"
                                   << R"(field model.type is "WordPiece"; only BPE is supported)";
        QTest::newRow("Metaspace") << R"({"pre_tokenizer": {"type": "Metaspace"}})"
                                   << R"(field pre_tokenizer.type is "Metaspace"; only ByteLevel)";
        QTest::newRow("no pre-tokenizer") << R"({"pre_tokenizer": null})"
                                          << "field pre_tokenizer is missing";
        QTest::newRow("no regex") << R"({"pre_tokenizer": {"use_regex": false}})"
                                  << "field pre_tokenizer.use_regex is false";
        QTest::newRow("normalizer") << R"({"normalizer": {"type": "NFC"}})"
                                    << R"(field normalizer is "NFC")";
        QTest::newRow("byte fallback") << R"({"model": {"byte_fallback": true}})"
                                       << "field model.byte_fallback";
        QTest::newRow("dropout") << R"({"model": {"dropout": 0.1}})"
                                 << "field model.dropout is set";
        QTest::newRow("word suffix") << R"({"model": {"end_of_word_suffix": "</w>"}})"
                                     << "field model.end_of_word_suffix is set";
        QTest::newRow("merge of an unknown token") << R"({"model": {"merges": ["a b", "zz q"]}})"
                                                   << R"(field model.merges[1] names "zz")";
        QTest::newRow("merge without a space") << R"({"model": {"merges": ["ab"]}})"
                                               << R"(field model.merges[0] is "ab"; expected two tokens)";
        QTest::newRow("negative id") << R"({"model": {"vocab": {"a": -1}}})"
                                     << R"(gives token "a" the id -1)";
        QTest::newRow("no vocab") << R"({"model": {"vocab": null}})"
                                  << "field model.vocab is missing";
        QTest::newRow("single word") << R"({"added_tokens": [{"id": 3, "content": "x", "single_word": true}]})"
                                     << "field added_tokens[0].single_word is true";
        QTest::newRow("unk not in vocab") << R"({"model": {"unk_token": "<unk>"}})"
                                          << "field model.unk_token \"<unk>\" is not a token";
        QTest::newRow("not JSON") << ""
                                  << "not a tokenizer.json";
    }

    void tokenizerErrors()
    {
        QFETCH(QString, patch);
        QFETCH(QString, message);
        QTemporaryDir dir;
        std::string text = "{";
        if (!patch.isEmpty()) {
            nlohmann::json j = nlohmann::json::parse(readText(kDir + "bpe.json"));
            j.merge_patch(nlohmann::json::parse(patch.toStdString()));
            text = j.dump();
        }
        const std::string path = writeFile(dir, "tokenizer.json", text);
        const QString e = errorOf([&] { loadTokenizer("hf:" + path); });
        QVERIFY2(e.startsWith(QString::fromStdString(path) + ": ") && e.contains(message) && !e.contains('\n'),
            qPrintable(e));
    }

    void otherErrors_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("message");
        QTest::newRow("missing model") << "spm:/nonexistent.model"
                                       << "/nonexistent.model: no such SentencePiece model";
        QTest::newRow("missing json") << "hf:/nonexistent.json"
                                      << "/nonexistent.json: no such tokenizer.json";
        QTest::newRow("bad spm") << "spm:" + QString::fromStdString(kDir) + "sample.txt"
                                 << "sample.txt: not a SentencePiece model";
        QTest::newRow("unknown kind") << "tok.bin"
                                      << "a bare file must end in .model or .json";
        QTest::newRow("empty") << "spm:"
                               << "expected spm:FILE.model or hf:tokenizer.json";
    }

    void otherErrors()
    {
        QFETCH(QString, spec);
        QFETCH(QString, message);
        const QString e = errorOf([&] { loadTokenizer(spec.toStdString()); });
        QVERIFY2(e.contains(message) && !e.contains('\n'), qPrintable(e));
    }

    void invalidUtf8NamesTheByte()
    {
        QTemporaryDir dir;
        const std::string path = writeFile(dir, "bad.txt", "ok text \xC3\x28 more");
        TextOptions o;
        o.context = 2;
        o.tokenizer = "hf:" + kDir + "bpe.json";
        QCOMPARE(errorOf([&] { loadTextDataset(path, o); }),
            QString::fromStdString(path + ": invalid UTF-8 at byte 8 (a tokenizer needs UTF-8 text)"));
        for (const char* bad : {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"})
            QVERIFY(errorOf([&] { checkUtf8(bad, "x"); }).startsWith("x: invalid UTF-8 at byte 0"));
        checkUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80", "x");
    }

    // text:FILE with a tokenizer through loadDataset: the reference ids in windows,
    // the tokenizer part of the data's identity.
    void textWithTokenizer()
    {
        const std::vector<int32_t> ids = referenceIds("bpe_ref.json", "sample.txt", "bpe.json");
        QVERIFY(ids.size() > 100);
        DataOptions o;
        o.spec = "text:" + kDir + "sample.txt";
        o.tokenizer = "hf:" + kDir + "bpe.json";
        const Dataset ds = loadDataset(o, tinyLm(557));
        QCOMPARE(ds.tokenizer, o.tokenizer);
        QCOMPARE(ds.kind, std::string("text"));
        const int64_t windows = (int64_t(ids.size()) - 1) / 16;
        QCOMPARE(ds.first().shape, (Shape {windows, 16}));
        const std::vector<int64_t> x = ds.first().toInt64(), y = ds.targetBatch(0, ds.count()).toInt64();
        for (std::size_t i = 0; i < x.size(); ++i) {
            QCOMPARE(x[i], int64_t(ids[i]));
            QCOMPARE(y[i], int64_t(ids[i + 1]));
        }
        DataOptions prefix = o;
        prefix.tokenizer = "hf:" + kDir + "bpe_prefix.json";
        DataOptions bytes = o;
        bytes.tokenizer.clear();
        QVERIFY(loadDataset(prefix, tinyLm(558)).hash != ds.hash);
        QVERIFY(loadDataset(bytes, tinyLm(558)).hash != ds.hash);
        QCOMPARE(loadDataset(o, tinyLm(557)).hash, ds.hash);

        DataOptions npy = o;
        npy.spec = kDir + "sample.txt";
        QCOMPARE(errorOf([&] { loadDataset(npy, tinyLm(557)); }),
            QString::fromStdString("--tokenizer applies to text:FILE data, not \"" + npy.spec + "\""));
    }

    // The model's vocabulary bounds every id: a one-line error naming the file, the
    // token's index, its id and the vocabulary, before anything reads a table.
    void idsOutsideTheVocabulary()
    {
        DataOptions o;
        o.spec = "text:" + kDir + "sample.txt";
        o.tokenizer = "spm:" + kDir + "spm_unigram.model";
        const std::vector<int32_t> ids = referenceIds("spm_ref.json", "sample.txt", "spm_unigram.model");
        const auto big = std::find_if(ids.begin(), ids.end(), [](int32_t id) { return id >= 100; });
        QVERIFY(big != ids.end());
        QCOMPARE(errorOf([&] { loadDataset(o, tinyLm(100)); }),
            QString("%1sample.txt: token %2 is id %3, outside the model's vocabulary of 100 (ids 0..99)")
                .arg(QString::fromStdString(kDir))
                .arg(big - ids.begin())
                .arg(*big));
        QCOMPARE(loadDataset(o, tinyLm(400)).count(), (int64_t(ids.size()) - 1) / 16);
        // bytes are ids too
        o.tokenizer.clear();
        QVERIFY(errorOf([&] { loadDataset(o, tinyLm(100)); }).contains("outside the model's vocabulary of 100"));
    }

    void tokenFiles_data()
    {
        QTest::addColumn<QString>("suffix");
        QTest::addColumn<int>("type");
        QTest::newRow("npy int32") << "" << int(DType::Int32);
        QTest::newRow("npy int64") << "" << int(DType::Int64);
        QTest::newRow("npy uint16") << "" << int(DType::UInt16);
        QTest::newRow("npy uint32") << "" << int(DType::UInt32);
        QTest::newRow("raw u16") << ":u16" << int(DType::UInt16);
        QTest::newRow("raw u32") << ":u32" << int(DType::UInt32);
    }

    void tokenFiles()
    {
        QFETCH(QString, suffix);
        QFETCH(int, type);
        const DType dtype = DType(type);
        QTemporaryDir dir;
        std::vector<int64_t> ids;
        for (int64_t i = 0; i < 100; ++i)
            ids.push_back((i * 37 + 5) % 300);
        Tensor t(dtype, {100});
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const int64_t v = ids[i];
            auto* p = reinterpret_cast<uint8_t*>(t.bytes.data()) + i * elementSize(dtype);
            if (dtype == DType::UInt16) {
                const auto w = uint16_t(v);
                std::memcpy(p, &w, 2);
            } else if (dtype == DType::Int64) {
                std::memcpy(p, &v, 8);
            } else {
                const auto w = uint32_t(v);
                std::memcpy(p, &w, 4);
            }
        }
        std::string path;
        if (suffix.isEmpty()) {
            path = dir.filePath("ids.npy").toStdString();
            writeNpy(t, path);
        } else {
            path =
                writeFile(dir, "train.bin", std::string(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size()));
        }
        DataOptions o;
        o.spec = "tokens:" + path + suffix.toStdString();
        const Dataset ds = loadDataset(o, tinyLm(300)); // windows of the model's 16
        QCOMPARE(ds.first().shape, (Shape {6, 16}));    // 99 / 16
        const std::vector<int64_t> x = ds.first().toInt64(), y = ds.targetBatch(0, ds.count()).toInt64();
        for (std::size_t i = 0; i < x.size(); ++i) {
            QCOMPARE(x[i], ids[i]);
            QCOMPARE(y[i], ids[i + 1]);
        }
        o.limit = 2;
        QCOMPARE(loadDataset(o, tinyLm(300)).count(), int64_t(2));
        o.limit = -1;
        QCOMPARE(errorOf([&] { loadDataset(o, tinyLm(250)); }),
            QString::fromStdString(path + ": token 7 is id 264, outside the model's vocabulary of 250 (ids 0..249)"));
    }

    void tokenFileErrors()
    {
        QTemporaryDir dir;
        const std::string floats = dir.filePath("f.npy").toStdString();
        writeNpy(Tensor::fromVector(Shape {4}, std::vector<float> {1, 2, 3, 4}), floats);
        const std::string matrix = dir.filePath("m.npy").toStdString();
        writeNpy(Tensor::fromVector(Shape {2, 2}, std::vector<int64_t> {1, 2, 3, 4}), matrix);
        const std::string negative = dir.filePath("n.npy").toStdString();
        std::vector<int64_t> withNegative(20, 1);
        withNegative[2] = -3;
        writeNpy(Tensor::fromVector(Shape {20}, withNegative), negative);
        const std::string odd = writeFile(dir, "odd.bin", "abc");
        const std::string raw = writeFile(dir, "raw.bin", "abcd");
        const struct {
            std::string spec, message;
        } cases[] = {
            {floats,
                floats + ": token ids must be a 1-D int32, int64, uint16 or uint32 array; this one is float32 [4]"},
            {matrix,
                matrix + ": token ids must be a 1-D int32, int64, uint16 or uint32 array; this one is int64 [2,2]"},
            {negative, negative + ": token 2 is id -3, outside the model's vocabulary of 48 (ids 0..47)"},
            {odd + ":u16", odd + ": 3 bytes are not a whole number of 16-bit token ids"},
            {raw, raw + ": raw token ids need their type: tokens:" + raw + ":u16 or tokens:" + raw + ":u32"},
            {raw + ":u32", raw + ": 1 tokens make no window of 16 tokens (need 17)"},
            {"/nonexistent.bin:u16", "/nonexistent.bin: no such token file"},
        };
        for (const auto& c : cases) {
            DataOptions o;
            o.spec = "tokens:" + c.spec;
            const QString e = errorOf([&] { loadDataset(o, tinyLm(48)); });
            QVERIFY2(e.startsWith(QString::fromStdString(c.message)), qPrintable(e));
        }
        DataOptions o;
        o.spec = "tokens:" + raw + ":u16";
        o.tokenizer = "hf:" + kDir + "bpe.json";
        QVERIFY(errorOf([&] { loadDataset(o, tinyLm(48)); }).contains("--tokenizer applies to text:FILE data"));
    }
};

QTEST_GUILESS_MAIN(TestTokenizers)
#include "test_tokenizers.moc"
