// IDX (gzipped or not) and NPY readers against hand-made bytes, and dataset loading
// with label discovery and normalization on the shipped Fashion-MNIST slice.
#include "data/dataset.h"
#include "data/idx.h"
#include "data/npy.h"
#include "data/text.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <QTemporaryDir>
#include <QtTest>

#include <sys/stat.h>
#include <zlib.h>

#include <cmath>
#include <fstream>

using namespace qs;

namespace {

std::string idxBytes()
{
    // int16 IDX, shape [2,3], big-endian values 1..6 with a negative one.
    std::string b = {0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int16_t v : {1, 2, 3, -4, 5, 600}) {
        b += char((uint16_t(v) >> 8) & 0xff);
        b += char(uint16_t(v) & 0xff);
    }
    return b;
}

void writeFile(const std::string& path, const std::string& bytes)
{
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

void writeGzip(const std::string& path, const std::string& bytes)
{
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), unsigned(bytes.size()));
    gzclose(f);
}

std::string errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

class TestDataReaders : public QObject {
    Q_OBJECT

private slots:
    void idxPlainAndGzip_data()
    {
        QTest::addColumn<bool>("gzip");
        QTest::newRow("plain") << false;
        QTest::newRow("gzip") << true;
    }

    void idxPlainAndGzip()
    {
        QFETCH(bool, gzip);
        QTemporaryDir dir;
        std::string path = dir.filePath("a-idx2-int16").toStdString();
        gzip ? writeGzip(path, idxBytes()) : writeFile(path, idxBytes());
        Tensor t = readIdx(path);
        QCOMPARE(t.dtype, DType::Int16);
        QCOMPARE(t.shape, (Shape{2, 3}));
        QCOMPARE(t.toInt64(), (std::vector<int64_t>{1, 2, 3, -4, 5, 600}));
    }

    void idxErrors_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        std::string good = idxBytes();
        QTest::newRow("bad magic") << QByteArray("\x01\x02\x08\x01", 4) << "bad magic";
        QTest::newRow("bad type") << QByteArray("\x00\x00\x07\x01\x00\x00\x00\x01\x05", 9) << "type code";
        QTest::newRow("truncated payload") << QByteArray(good.data(), int(good.size()) - 3) << "truncated";
        QTest::newRow("truncated header") << QByteArray(good.data(), 6) << "truncated IDX header";
        QTest::newRow("huge dims") << QByteArray("\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", 12)
                                   << "implausibly large";
    }

    void idxErrors()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        QTemporaryDir dir;
        std::string path = dir.filePath("bad-idx").toStdString();
        writeFile(path, bytes.toStdString());
        std::string message = errorOf([&] { readIdx(path); });
        QVERIFY2(message.rfind(path, 0) == 0, message.c_str());
        QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    }

    void truncatedGzipIsAnError()
    {
        QTemporaryDir dir;
        std::string path = dir.filePath("t.gz").toStdString();
        std::string big(100000, 'x');
        writeGzip(path, idxBytes() + big);
        std::ifstream in(path, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        writeFile(path, bytes.substr(0, bytes.size() / 2));
        QVERIFY(errorOf([&] { readIdx(path); }).find("gzip") != std::string::npos);
    }

    void npyFromNumpy()
    {
        // Written by numpy.save in resources/demo/train_demo_cnn.py.
        Tensor t = readNpy(QS_SOURCE_DIR "/resources/demo/fashion1k-logits.npy");
        QCOMPARE(t.dtype, DType::Float);
        QCOMPARE(t.shape, (Shape{1000, 10}));
        for (float v : t.data<float>())
            QVERIFY(std::isfinite(v));
    }

    void npyRoundTrip_data()
    {
        QTest::addColumn<int>("dtype");
        QTest::newRow("float32") << int(DType::Float);
        QTest::newRow("uint8") << int(DType::UInt8);
        QTest::newRow("int64") << int(DType::Int64);
    }

    void npyRoundTrip()
    {
        QFETCH(int, dtype);
        Tensor t(DType(dtype), {3, 2, 1});
        for (std::size_t i = 0; i < t.bytes.size(); ++i)
            t.bytes[i] = std::byte(i * 37 % 251);
        QTemporaryDir dir;
        std::string path = dir.filePath("x.npy").toStdString();
        writeNpy(t, path);
        Tensor back = readNpy(path);
        QCOMPARE(back.dtype, t.dtype);
        QCOMPARE(back.shape, t.shape);
        QVERIFY(back.bytes == t.bytes);
    }

    void npyHandMadeHeader()
    {
        std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
        std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + '\0' + header;
        int32_t v[2] = {-7, 1 << 20};
        bytes.append(reinterpret_cast<const char*>(v), 8);
        Tensor t = parseNpy(bytes, "hand.npy");
        QCOMPARE(t.toInt64(), (std::vector<int64_t>{-7, 1 << 20}));
        QVERIFY(errorOf([&] { parseNpy(bytes.substr(0, bytes.size() - 1), "hand.npy"); }).find("payload") !=
                std::string::npos);
        std::string fortran = bytes;
        fortran.replace(fortran.find("False"), 5, "True ");
        QVERIFY(errorOf([&] { parseNpy(fortran, "hand.npy"); }).find("Fortran") != std::string::npos);
    }

    void demoSliceLoadsWithLabelsAndNormalization()
    {
        Graph model = importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
        DataOptions opts;
        opts.spec = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
        opts.limit = 100;
        Dataset ds = loadDataset(opts, model);
        QCOMPARE(ds.count(), int64_t(100));
        QCOMPARE(ds.first().shape, (Shape {100, 1, 28, 28}));
        QVERIFY(ds.labels.has_value());
        QCOMPARE(ds.labels->size(), std::size_t(100));
        QVERIFY(ds.labelsPath.find("fashion1k-labels-idx1-ubyte") != std::string::npos);

        // Independent check of one pixel: raw byte from the gzip stream.
        gzFile f = gzopen(opts.spec.c_str(), "rb");
        std::vector<unsigned char> raw(16 + 28 * 28 * 2);
        QCOMPARE(gzread(f, raw.data(), unsigned(raw.size())), int(raw.size()));
        gzclose(f);
        float mean = std::stof(model.metadata.at("quantstudio.mean"));
        float stdev = std::stof(model.metadata.at("quantstudio.std"));
        const int pixel = 28 * 28 + 14 * 28 + 14; // second image, centre
        float want = (float(raw[16 + std::size_t(pixel)]) / 255.f - mean) / stdev;
        QCOMPARE(ds.first().data<float>()[std::size_t(pixel)], want);

        Tensor b = ds.batch(1, 2).front();
        QCOMPARE(b.shape, (Shape {2, 1, 28, 28}));
        QCOMPARE(b.data<float>()[14 * 28 + 14], want);
    }

    void datasetErrors()
    {
        Graph model = importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
        DataOptions opts;
        opts.spec = QS_SOURCE_DIR "/resources/demo/fashion1k-logits.npy"; // [1000,10] is not [1,28,28]
        QVERIFY(errorOf([&] { loadDataset(opts, model); }).find("do not split into samples") != std::string::npos);
        opts.spec = "random:0";
        QVERIFY(errorOf([&] { loadDataset(opts, model); }).find("random:N") != std::string::npos);
        opts.spec = "random:3";
        opts.std = std::vector<float>{0.f};
        QVERIFY(errorOf([&] { loadDataset(opts, model); }).find("positive") != std::string::npos);
        opts.std.reset();
        QCOMPARE(loadDataset(opts, model).count(), int64_t(3));
    }

    // N times the sample size must not wrap around (2^60 + 2 samples once ran as 2).
    void randomSpecIsParsedStrictly_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("expected");
        QTest::newRow("wraps around") << "random:1152921504606846978"
                                      << "needs N in 1..2739137";
        QTest::newRow("beyond int64") << "random:99999999999999999999999"
                                      << "needs N in 1..";
        QTest::newRow("negative") << "random:-3"
                                  << "needs N in 1..";
        QTest::newRow("trailing text") << "random:3x"
                                       << "expected random:N";
        QTest::newRow("sign") << "random:+3"
                              << "expected random:N";
        QTest::newRow("space") << "random: 3"
                               << "expected random:N";
    }

    void randomSpecIsParsedStrictly()
    {
        QFETCH(QString, spec);
        QFETCH(QString, expected);
        Graph model = importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
        DataOptions opts;
        opts.spec = spec.toStdString();
        const std::string m = errorOf([&] { loadDataset(opts, model); });
        QVERIFY2(
            m.find(opts.spec) != std::string::npos && m.find(expected.toStdString()) != std::string::npos, m.c_str());
    }

    // The NPY header is scanned by hand: linear in its length (a 200 KB header once
    // overflowed the stack in std::regex), with every malformed part named.
    void npyHeaderErrors_data()
    {
        QTest::addColumn<QByteArray>("header");
        QTest::addColumn<int>("payloadBytes");
        QTest::addColumn<QString>("expected");
        QTest::newRow("negative dim") << QByteArray(
                                             "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 1, 28, 28), }")
                                      << 0 << "negative";
        QTest::newRow("dim beyond int64")
            << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }") << 0
            << "implausibly large";
        QTest::newRow("count overflows")
            << QByteArray("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }") << 0
            << "implausibly large";
        QTest::newRow("payload short") << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
                                       << 20 << "expected 24";
        QTest::newRow("unterminated shape")
            << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3") << 0 << "malformed";
        QTest::newRow("no shape") << QByteArray("{'descr': '<f4', 'fortran_order': False, }") << 0 << "no shape";
        QTest::newRow("unknown key") << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}") << 4
                                     << "not one of";
        QTest::newRow("repeated key") << QByteArray(
                                             "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}")
                                      << 4 << "repeated";
        QTest::newRow("text after the dict")
            << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x") << 4 << "after the dict";
        QTest::newRow("bad boolean") << QByteArray("{'descr': '<f4', 'fortran_order': Nope, 'shape': ()}") << 4
                                     << "True or False";
        QTest::newRow("200 KB header")
            << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (").append(QByteArray(200000, '(')) << 0
            << "more than";
    }

    void npyHeaderErrors()
    {
        QFETCH(QByteArray, header);
        QFETCH(int, payloadBytes);
        QFETCH(QString, expected);
        // Version 2: a four-byte header length.
        const uint32_t len = uint32_t(header.size());
        std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
        for (int i = 0; i < 4; ++i)
            bytes += char((len >> (8 * i)) & 0xff);
        bytes += header.toStdString() + std::string(std::size_t(payloadBytes), '\0');
        const std::string m = errorOf([&] { parseNpy(bytes, "bad.npy"); });
        QVERIFY2(m.rfind("bad.npy: ", 0) == 0, m.c_str());
        QVERIFY2(m.find(expected.toStdString()) != std::string::npos, m.c_str());
    }

    void npyHeaderVariantsParse_data()
    {
        QTest::addColumn<QByteArray>("header");
        QTest::newRow("numpy's own") << QByteArray(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }      \n");
        QTest::newRow("other key order, double quotes")
            << QByteArray("{\"shape\": (2,1), \"fortran_order\": False, \"descr\": \"<f4\"}");
        QTest::newRow("Python 2 longs") << QByteArray("{'descr':'<f4','fortran_order':False,'shape':(2L, 1L)}");
        QTest::newRow("60 KB of padding")
            << QByteArray("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }").append(QByteArray(60000, ' '));
    }

    void npyHeaderVariantsParse()
    {
        QFETCH(QByteArray, header);
        std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xff) +
            char(header.size() >> 8) + header.toStdString();
        const float v[2] = {1.5f, -2.f};
        bytes.append(reinterpret_cast<const char*>(v), 8);
        Tensor t = parseNpy(bytes, "ok.npy");
        QCOMPARE(t.shape, (Shape {2, 1}));
        QCOMPARE(t.toFloat(), (std::vector<float> {1.5f, -2.f}));
    }

    // A gzip IDX inflates only as far as its header announces: a small file of zeros
    // past the payload (a decompression bomb) is refused, not inflated into memory.
    void gzipIdxInflatesOnlyWhatTheHeaderAnnounces_data()
    {
        QTest::addColumn<int>("extraBytes");
        QTest::addColumn<QString>("expected");
        QTest::newRow("64 MB of zeros past 2 bytes") << (64 << 20) << "continues past";
        QTest::newRow("one byte too many") << 1 << "continues past";
        QTest::newRow("one byte short") << -1 << "truncated";
    }

    void gzipIdxInflatesOnlyWhatTheHeaderAnnounces()
    {
        QFETCH(int, extraBytes);
        QFETCH(QString, expected);
        std::string idx = {0, 0, 0x08, 1, 0, 0, 0, 2, 7, 9}; // uint8 [2] = {7, 9}
        if (extraBytes < 0)
            idx.resize(idx.size() - std::size_t(-extraBytes));
        else
            idx.append(std::size_t(extraBytes), '\0');
        QTemporaryDir dir;
        const std::string path = dir.filePath("bomb-idx1-ubyte.gz").toStdString();
        writeGzip(path, idx);
        const std::string m = errorOf([&] { readIdx(path); });
        QVERIFY2(m.rfind(path, 0) == 0 && m.find(expected.toStdString()) != std::string::npos, m.c_str());
        writeGzip(path, std::string {0, 0, 0x08, 1, 0, 0, 0, 2, 7, 9});
        QCOMPARE(readIdx(path).toInt64(), (std::vector<int64_t> {7, 9}));
    }

    // Readers of a path refuse what is not a regular file instead of reading without end
    // (/dev/zero) or waiting for a writer (a FIFO).
    void readersRefuseNonRegularFiles_data()
    {
        QTest::addColumn<QString>("reader");
        QTest::addColumn<bool>("fifo");
        for (const char* reader : {"npy", "idx", "text", "onnx", "dataset"}) {
            QTest::addRow("%s /dev/zero", reader) << reader << false;
            QTest::addRow("%s FIFO", reader) << reader << true;
        }
    }

    void readersRefuseNonRegularFiles()
    {
        QFETCH(QString, reader);
        QFETCH(bool, fifo);
        QTemporaryDir dir;
        std::string path = "/dev/zero";
        if (fifo) {
            path = dir.filePath("pipe.npy").toStdString();
            QCOMPARE(::mkfifo(path.c_str(), 0600), 0);
        }
        const std::string m = errorOf([&] {
            if (reader == "npy")
                readNpy(path);
            else if (reader == "idx")
                readIdx(path);
            else if (reader == "text")
                loadTextDataset(path, 8);
            else if (reader == "onnx")
                importOnnx(path);
            else {
                DataOptions opts;
                opts.spec = path;
                loadDataset(opts, importOnnx(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx"));
            }
        });
        QVERIFY2(m.rfind(path, 0) == 0 && m.find("not a regular file") != std::string::npos, m.c_str());
    }
};

QTEST_APPLESS_MAIN(TestDataReaders)
#include "test_data_readers.moc"
