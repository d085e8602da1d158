// NPZ archives: NumPy-written fixtures (tests/data/fixtures, made by Python's zipfile as
// np.savez and np.savez_compressed do), the stored writer checked byte by byte against
// the zip spec, and malformed archives refused with one-line errors. Add a new
// malformation as a row of malformed_data().
#include "data/npy.h"
#include "data/npz.h"
#include "util/error.h"

#include "support/error_of.h"

#include <QtTest>

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <functional>

using namespace qs;

using qs::test::errorOf;

namespace {

const std::string kFixtures = QS_SOURCE_DIR "/tests/data/fixtures/";

std::string fileBytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

uint32_t le(const std::string& b, std::size_t at, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; ++i)
        v |= uint32_t(uint8_t(b[at + std::size_t(i)])) << (8 * i);
    return v;
}

void setLe(std::string& b, std::size_t at, uint32_t v, int n)
{
    for (int i = 0; i < n; ++i)
        b[at + std::size_t(i)] = char((v >> (8 * i)) & 0xff);
}

std::size_t endRecord(const std::string& b)
{
    return b.size() - 22;
} // the fixtures have no comment

std::size_t centralDirectory(const std::string& b)
{
    return le(b, endRecord(b) + 16, 4);
}

} // namespace

class TestNpz : public QObject {
    Q_OBJECT

private slots:
    void numpyFixtures_data()
    {
        QTest::addColumn<QString>("file");
        QTest::newRow("np.savez (stored)") << "savez.npz";
        QTest::newRow("np.savez_compressed (deflated)") << "savez_compressed.npz";
    }

    void numpyFixtures()
    {
        QFETCH(QString, file);
        const std::string path = kFixtures + file.toStdString();
        const NamedTensors a = readNpz(path);
        QCOMPARE(a.size(), std::size_t(3));
        QCOMPARE(npzNames(path), (std::vector<std::string> {"x", "attention_mask", "flags"}));
        QCOMPARE(a[0].first, std::string("x"));
        QCOMPARE(a[0].second.dtype, DType::Float);
        QCOMPARE(a[0].second.shape, (Shape {3, 4}));
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 4; ++j)
                QCOMPARE(a[0].second.data<float>()[std::size_t(i * 4 + j)], 0.5f * float(4 * i + j) - 1);
        QCOMPARE(a[1].second.dtype, DType::Int64);
        QCOMPARE(a[1].second.shape, (Shape {3, 4}));
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 4; ++j)
                QCOMPARE(a[1].second.data<int64_t>()[std::size_t(i * 4 + j)], int64_t(j <= i + 1 ? 1 : 0));
        QCOMPARE(a[2].second.dtype, DType::Bool);
        QCOMPARE(a[2].second.toInt64(), (std::vector<int64_t> {1, 0, 1}));
    }

    // The writer against the zip spec (APPNOTE 4.3.7, 4.3.12, 4.3.16), not against the reader.
    void storedWriterLayout()
    {
        Tensor x = Tensor::fromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
        Tensor ids = Tensor::fromVector<int64_t>({2}, {7, -8});
        const std::string z = formatNpz({{"out", x}, {"ids", ids}});
        std::size_t at = 0;
        std::vector<std::size_t> offsets;
        for (const auto& [name, t] : std::vector<std::pair<std::string, Tensor>> {{"out", x}, {"ids", ids}}) {
            const std::string npy = npyBytes(t), file = name + ".npy";
            offsets.push_back(at);
            QCOMPARE(le(z, at, 4), 0x04034b50u);
            QCOMPARE(le(z, at + 8, 2), 0u); // stored
            QCOMPARE(
                le(z, at + 14, 4), uint32_t(crc32(0, reinterpret_cast<const Bytef*>(npy.data()), uInt(npy.size()))));
            QCOMPARE(le(z, at + 18, 4), uint32_t(npy.size()));
            QCOMPARE(le(z, at + 22, 4), uint32_t(npy.size()));
            QCOMPARE(le(z, at + 26, 2), uint32_t(file.size()));
            QCOMPARE(z.substr(at + 30, file.size()), file);
            QCOMPARE(z.substr(at + 30 + file.size() + le(z, at + 28, 2), npy.size()), npy);
            at += 30 + file.size() + le(z, at + 28, 2) + npy.size();
        }
        QCOMPARE(std::size_t(centralDirectory(z)), at);
        QCOMPARE(le(z, endRecord(z), 4), 0x06054b50u);
        QCOMPARE(le(z, endRecord(z) + 10, 2), 2u);
        QCOMPARE(std::size_t(le(z, endRecord(z) + 12, 4)), endRecord(z) - at);
        std::size_t c = at;
        for (std::size_t i = 0; i < 2; ++i) {
            QCOMPARE(le(z, c, 4), 0x02014b50u);
            QCOMPARE(std::size_t(le(z, c + 42, 4)), offsets[i]);
            c += 46 + le(z, c + 28, 2) + le(z, c + 30, 2) + le(z, c + 32, 2);
        }
        QCOMPARE(c, endRecord(z));
        // and it reads back
        const NamedTensors back = parseNpz(z, "written");
        QCOMPARE(back[0].second.toFloat(), x.toFloat());
        QCOMPARE(back[1].second.toInt64(), ids.toInt64());
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("expected");
        for (const char* f : {"savez.npz", "savez_compressed.npz"}) {
            auto row = [&](const char* what, int kind, const char* expected) {
                QTest::newRow(qPrintable(QString("%1: %2").arg(f, what))) << QString(f) << kind << QString(expected);
            };
            row("member count +1", 0, "ends after 3 of the 4 members");
            row("member count -1", 1, "bytes after the 2 members");
            row("central directory offset past the end", 2, "runs past the end record");
            row("local header offset into the directory", 3, "has no local header");
            row("member size larger than the archive", 4, "run into the central directory");
            row("encrypted flag", 5, "is encrypted");
            row("zip64 member count", 6, "zip64");
            row("zip64 locator", 7, "zip64");
            row("corrupt payload", 8, "corrupt");
            row("unknown method", 9, "compression method 12");
        }
    }

    void malformed()
    {
        QFETCH(QString, file);
        QFETCH(int, kind);
        QFETCH(QString, expected);
        std::string b = fileBytes(kFixtures + file.toStdString());
        const std::size_t end = endRecord(b), cd = centralDirectory(b);
        switch (kind) {
        case 0:
            setLe(b, end + 8, 4, 2);
            setLe(b, end + 10, 4, 2);
            break;
        case 1:
            setLe(b, end + 8, 2, 2);
            setLe(b, end + 10, 2, 2);
            break;
        case 2:
            setLe(b, end + 16, uint32_t(b.size()), 4);
            break;
        case 3:
            setLe(b, cd + 42, uint32_t(cd), 4);
            break;
        case 4:
            setLe(b, cd + 20, uint32_t(b.size()), 4);
            setLe(b, cd + 24, uint32_t(b.size()), 4);
            break;
        case 5:
            setLe(b, cd + 8, 1, 2);
            break;
        case 6:
            setLe(b, end + 8, 0xffff, 2);
            setLe(b, end + 10, 0xffff, 2);
            break;
        case 7: { // a zip64 end-of-directory locator right before the end record
            std::string locator(20, '\0');
            setLe(locator, 0, 0x07064b50, 4);
            b.insert(end, locator);
            break;
        }
        case 8: // the last byte of the first member's data (array values: only the CRC sees it)
            b[30 + le(b, 26, 2) + le(b, 28, 2) + le(b, cd + 20, 4) - 1] ^= 0x5a;
            break;
        case 9:
            setLe(b, cd + 10, 12, 2);
            break;
        }
        const std::string e = errorOf([&] { parseNpz(b, "bad.npz"); });
        QVERIFY2(e.rfind("bad.npz", 0) == 0, e.c_str());
        QVERIFY2(e.find('\n') == std::string::npos, e.c_str());
        QVERIFY2(e.find(expected.toStdString()) != std::string::npos, e.c_str());
    }

    // Every prefix of both fixtures is refused (never read out of bounds: run under ASan too).
    void truncated()
    {
        for (const char* f : {"savez.npz", "savez_compressed.npz"}) {
            const std::string b = fileBytes(kFixtures + f);
            for (std::size_t n = 0; n < b.size(); ++n) {
                const std::string e = errorOf([&] { parseNpz(b.substr(0, n), "cut.npz"); });
                QVERIFY2(e.rfind("cut.npz", 0) == 0, qPrintable(QString("%1 bytes: %2").arg(n).arg(e.c_str())));
            }
        }
    }

    void deflateSizeLie()
    {
        std::string b = fileBytes(kFixtures + "savez_compressed.npz");
        const std::size_t cd = centralDirectory(b);
        setLe(b, cd + 24, le(b, cd + 24, 4) + 1, 4); // declares one byte more than it inflates to
        const std::string e = errorOf([&] { parseNpz(b, "lie.npz"); });
        QVERIFY2(e.find("corrupt deflate data") != std::string::npos, e.c_str());
        setLe(b, cd + 24, 0x7fffffff, 4); // an allocation bomb
        const std::string bomb = errorOf([&] { parseNpz(b, "lie.npz"); });
        QVERIFY2(bomb.find("more than deflate yields") != std::string::npos, bomb.c_str());
    }
};

QTEST_GUILESS_MAIN(TestNpz)
#include "test_npz.moc"
