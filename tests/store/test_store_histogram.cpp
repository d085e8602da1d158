// The histogram blob: exact bytes of a hand-encoded example, round trips, and
// clear errors for malformed blobs and inconsistent histograms.
#include "store/histogram_blob.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <limits>

using namespace qs;

Q_DECLARE_METATYPE(qs::StoredHistogram)

class TestStoreHistogram : public QObject {
    Q_OBJECT

private slots:
    // Encoded by hand from the format in histogram_blob.h.
    void knownBytes()
    {
        StoredHistogram h{{0.0f, 1.0f, 2.5f}, {300, 0}};
        const std::vector<uint8_t> expected = {
            'Q', 'S', 'H', '1', 0x02,             // magic, n = 2
            0x00, 0x00, 0x00, 0x00,               // 0.0f
            0x00, 0x00, 0x80, 0x3f,               // 1.0f
            0x00, 0x00, 0x20, 0x40,               // 2.5f
            0xac, 0x02,                           // 300 = 0b10_0101100
            0x00,                                 // 0
        };
        QCOMPARE(encodeHistogram(h), expected);
        QCOMPARE(decodeHistogram(expected, "h"), h);
    }

    void roundTrip_data()
    {
        QTest::addColumn<StoredHistogram>("h");
        QTest::newRow("empty") << StoredHistogram{};
        QTest::newRow("one bin") << StoredHistogram{{-1.0f, 1.0f}, {5}};
        QTest::newRow("equal edges") << StoredHistogram{{0.0f, 0.0f, 1.0f}, {1, 2}};
        QTest::newRow("huge counts") << StoredHistogram{{0.0f, 1.0f, 2.0f},
                                                  {std::numeric_limits<uint64_t>::max(), uint64_t(1) << 35}};
        StoredHistogram wide;
        for (int i = 0; i <= 2048; ++i)
            wide.edges.push_back(-3.0f + float(i) * 6.0f / 2048);
        for (int i = 0; i < 2048; ++i)
            wide.counts.push_back(uint64_t(std::exp(-std::pow((i - 1024) / 200.0, 2)) * 1e6));
        QTest::newRow("2048 bins") << wide;
    }

    void roundTrip()
    {
        QFETCH(StoredHistogram, h);
        const auto blob = encodeHistogram(h);
        QCOMPARE(decodeHistogram(blob, "h"), h);
        // Compact: at most 4 bytes per edge plus 10 per count, plus the header.
        QVERIFY(blob.size() <= 4 + 10 + h.edges.size() * 4 + h.counts.size() * 10);
    }

    void malformed_data()
    {
        QTest::addColumn<QByteArray>("blob");
        QTest::addColumn<QString>("message");
        QTest::newRow("empty") << QByteArray() << "expected magic";
        QTest::newRow("bad magic") << QByteArray("QSH2\x00", 5) << "expected magic";
        QTest::newRow("no count") << QByteArray("QSH1") << "truncated";
        QTest::newRow("truncated edges") << QByteArray("QSH1\x01\x00\x00\x00\x00\x00\x00\x80", 12) << "cannot fit";
        QTest::newRow("truncated count")
            << QByteArray("QSH1\x01\x00\x00\x00\x00\x00\x00\x80\x3f\x80", 14) << "truncated";
        QTest::newRow("trailing bytes")
            << QByteArray("QSH1\x01\x00\x00\x00\x00\x00\x00\x80\x3f\x05\x07", 15) << "unexpected bytes";
        QTest::newRow("huge n") << QByteArray("QSH1\xff\xff\xff\xff\x0f", 9) << "cannot fit";
        QTest::newRow("varint overflow")
            << QByteArray("QSH1\x01\x00\x00\x00\x00\x00\x00\x80\x3f\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 23)
            << "overflows";
        QTest::newRow("decreasing edges")
            << QByteArray("QSH1\x01\x00\x00\x80\x3f\x00\x00\x00\x00\x01", 14) << "must not decrease";
        QTest::newRow("nan edge") << QByteArray("QSH1\x01\x00\x00\xc0\x7f\x00\x00\x80\x3f\x01", 14) << "not finite";
    }

    void malformed()
    {
        QFETCH(QByteArray, blob);
        QFETCH(QString, message);
        try {
            decodeHistogram(reinterpret_cast<const uint8_t*>(blob.constData()), std::size_t(blob.size()),
                            "layer \"conv1\" weight histogram");
            QFAIL("expected an error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).startsWith("layer \"conv1\" weight histogram: "), e.what());
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
    }

    void inconsistentHistogramsAreNotEncoded_data()
    {
        QTest::addColumn<StoredHistogram>("h");
        QTest::newRow("edges without counts") << StoredHistogram{{0.0f, 1.0f}, {}};
        QTest::newRow("one edge too few") << StoredHistogram{{0.0f, 1.0f}, {1, 2}};
        QTest::newRow("infinite edge") << StoredHistogram{{0.0f, std::numeric_limits<float>::infinity()}, {1}};
        QTest::newRow("decreasing") << StoredHistogram{{1.0f, 0.0f}, {1}};
    }

    void inconsistentHistogramsAreNotEncoded()
    {
        QFETCH(StoredHistogram, h);
        QVERIFY_THROWS_EXCEPTION(Error, encodeHistogram(h));
    }
};

QTEST_APPLESS_MAIN(TestStoreHistogram)
#include "test_store_histogram.moc"
