// text:FILE datasets: byte windows and their shifted targets at exact boundaries,
// --limit, the context taken from the model, and errors naming the file.
#include "data/dataset.h"
#include "data/text.h"
#include "graph/onnx_import.h"
#include "util/error.h"
#include "util/hash.h"
#include "util/memory_budget.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace qs;

namespace {
std::string writeFile(const QTemporaryDir& dir, const std::string& name, const std::string& bytes)
{
    const std::string path = dir.filePath(QString::fromStdString(name)).toStdString();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}
} // namespace

class TestTextDataset : public QObject {
    Q_OBJECT
private slots:
    void windows_data()
    {
        QTest::addColumn<int>("context");
        QTest::addColumn<int>("limit");
        QTest::addColumn<QString>("inputs");
        QTest::addColumn<QString>("targets");
        // "abcdefghij": (10 - 1) / N windows, targets shifted by one byte
        QTest::newRow("context 3") << 3 << -1 << "abcdefghi" << "bcdefghij";
        QTest::newRow("context 4 drops the tail") << 4 << -1 << "abcdefgh" << "bcdefghi";
        QTest::newRow("context 9: one window") << 9 << -1 << "abcdefghi" << "bcdefghij";
        QTest::newRow("limit 1") << 3 << 1 << "abc" << "bcd";
    }

    void windows()
    {
        QFETCH(int, context);
        QFETCH(int, limit);
        QFETCH(QString, inputs);
        QFETCH(QString, targets);
        QTemporaryDir dir;
        const std::string path = writeFile(dir, "t.txt", "abcdefghij");
        const Dataset ds = loadTextDataset(path, context, limit);
        QCOMPARE(ds.kind, std::string("text"));
        QCOMPARE(ds.count() * context, int64_t(inputs.size()));
        QCOMPARE(ds.first().shape, (Shape {ds.count(), context}));
        QCOMPARE(ds.first().dtype, DType::Int64);
        auto str = [](const Tensor& t) {
            QString s;
            for (int64_t v : t.toInt64())
                s += QChar(char(v));
            return s;
        };
        QCOMPARE(str(ds.first()), inputs);
        QCOMPARE(str(ds.targetBatch(0, ds.count())), targets);
        QCOMPARE(str(ds.targetBatch(ds.count() - 1, 1)), targets.right(context));
        QCOMPARE(str(ds.batch(0, 1).front()), inputs.left(context));
    }

    void highBytesAreUnsigned()
    {
        QTemporaryDir dir;
        const Dataset ds = loadTextDataset(writeFile(dir, "u.txt", "\xc2\xa0\xff"), 2);
        QCOMPARE(ds.first().toInt64(), (std::vector<int64_t> {0xc2, 0xa0}));
        QCOMPARE(ds.targetBatch(0, ds.count()).toInt64(), (std::vector<int64_t> {0xa0, 0xff}));
    }

    // Through loadDataset: the spec prefix, the context from the model's metadata
    // (the demo LM's sequence axis is dynamic), an explicit context.
    void throughLoadDataset()
    {
        const Graph lm = importOnnx(QS_SOURCE_DIR "/resources/demo/byte_gpt.onnx");
        QTemporaryDir dir;
        const std::string path = writeFile(dir, "d.txt", std::string(1000, 'x'));
        DataOptions o;
        o.spec = "text:" + path;
        Dataset ds = loadDataset(o, lm);
        QCOMPARE(ds.first().shape, (Shape {7, 128})); // 999 / 128
        QCOMPARE(ds.path, o.spec);
        o.context = 100;
        o.limit = 4;
        ds = loadDataset(o, lm);
        QCOMPARE(ds.first().shape, (Shape {4, 100}));
    }

    // A text file three times the cache budget streams: nothing of it is held, each
    // window asked for is read from the file (inputs and targets equal its bytes), a
    // slice reads its own windows, and the data's hash is the file's as when it was held.
    void streamsFilesLargerThanTheBudget()
    {
        QTemporaryDir dir;
        std::string bytes(std::size_t(3) << 20, '\0');
        uint32_t x = 12345;
        for (char& c : bytes) {
            x = x * 1664525u + 1013904223u;
            c = char(x >> 24);
        }
        const std::string path = writeFile(dir, "big.txt", bytes);
        setCacheBudgetBytes(int64_t(1) << 20);
        const Dataset ds = loadTextDataset(path, 128);
        QCOMPARE(ds.count(), int64_t((bytes.size() - 1) / 128));
        QVERIFY(ds.inputs.front().stream && ds.targetStream);
        QCOMPARE(ds.heldBytes(), int64_t(0));
        QVERIFY(int64_t(bytes.size()) > 2 * cacheBudgetBytes());
        auto window = [&](int64_t start, int64_t n) {
            std::vector<int64_t> ids;
            for (int64_t i = start; i < start + n; ++i)
                ids.push_back(int64_t(static_cast<unsigned char>(bytes[std::size_t(i)])));
            return ids;
        };
        for (const int64_t w : {int64_t(0), int64_t(1000), ds.count() - 2}) {
            QCOMPARE(ds.batch(w, 2).front().toInt64(), window(w * 128, 256));
            QCOMPARE(ds.targetBatch(w, 2).toInt64(), window(w * 128 + 1, 256));
        }
        const Dataset tail = ds.slice(ds.count() - 3, 3);
        QCOMPARE(tail.count(), int64_t(3));
        QCOMPARE(tail.batch(1, 1).front().toInt64(), window((ds.count() - 2) * 128, 128));
        QCOMPARE(tail.targetBatch(2, 1).toInt64(), window((ds.count() - 1) * 128 + 1, 128));
        QVERIFY_THROWS_EXCEPTION(Error, tail.targetBatch(2, 2));
        QCOMPARE(ds.hash, sha256Hex(bytes));
        setCacheBudgetBytes(0);
    }

    void errors()
    {
        QTemporaryDir dir;
        const std::string shortFile = writeFile(dir, "s.txt", "abc");
        QVERIFY_THROWS_EXCEPTION(Error, loadTextDataset(shortFile, 3));
        QVERIFY_THROWS_EXCEPTION(Error, loadTextDataset(shortFile, 0));
        QVERIFY_THROWS_EXCEPTION(Error, loadTextDataset(dir.filePath("none.txt").toStdString(), 2));
        try {
            loadTextDataset(shortFile, 3);
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("s.txt: 3 bytes make no window of 3 tokens") != std::string::npos,
                     e.what());
        }
        const Graph cnn = importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
        QVERIFY_THROWS_EXCEPTION(Error, textContextFor(cnn, 0));
    }
};

QTEST_GUILESS_MAIN(TestTextDataset)
#include "test_text_dataset.moc"
