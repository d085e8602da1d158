// Safetensors files written by hand in the test (Debian ships no python3-safetensors):
// tensors of every common dtype read back bit-exactly through the mapping, every kind
// of malformed header refused with the file and tensor named, and
// `quantstudio-cli inspect FILE.safetensors` statistics against naive loops.
#include "support/cli_runner.h"

#include "graph/safetensors.h"
#include "util/error.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

using namespace qs;

namespace {

struct Raw {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::string bytes;
};

template <typename T> std::string bytesOf(const std::vector<T>& v)
{
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string header8(uint64_t n)
{
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i)
        s[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
    return s;
}

std::string withHeader(const std::string& json)
{
    return header8(json.size()) + json;
}

// The format as the reference writer lays it out: header padded with spaces to 8 bytes.
std::string encode(const std::vector<Raw>& tensors, const std::string& metadata = "")
{
    std::string json = "{", data;
    if (!metadata.empty())
        json += "\"__metadata__\":" + metadata + ",";
    for (const auto& t : tensors) {
        std::string shape;
        for (int64_t d : t.shape)
            shape += (shape.empty() ? "" : ",") + std::to_string(d);
        json += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
            std::to_string(data.size()) + "," + std::to_string(data.size() + t.bytes.size()) + "]},";
        data += t.bytes;
    }
    if (json.back() == ',')
        json.pop_back();
    json += "}";
    while (json.size() % 8)
        json += ' ';
    return header8(json.size()) + json + data;
}

QString writeFile(const QTemporaryDir& dir, const QString& name, const std::string& bytes)
{
    const QString path = dir.filePath(name);
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly))
        qFatal("cannot write %s", qPrintable(path));
    f.write(bytes.data(), qint64(bytes.size()));
    return path;
}

std::vector<float> gaussian(std::size_t n, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::student_t_distribution<float> t(4.f); // heavy tails, as LLM weights have
    std::vector<float> v(n);
    for (float& x : v)
        x = 0.02f * t(rng);
    return v;
}

// SQNR of symmetric RTN by a naive loop over groups of `group` columns of [rows, cols].
double naiveSqnr(const std::vector<float>& w, int64_t rows, int64_t cols, int bits, int64_t group)
{
    const float qmax = float((1 << (bits - 1)) - 1);
    double sig = 0, err = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t g0 = 0; g0 < cols; g0 += group) {
            float m = 0;
            for (int64_t c = g0; c < g0 + group; ++c)
                m = std::max(m, std::abs(w[std::size_t(r * cols + c)]));
            const float scale = m > 0 ? m / qmax : 1.f;
            for (int64_t c = g0; c < g0 + group; ++c) {
                const float x = w[std::size_t(r * cols + c)];
                const float q = std::clamp(std::nearbyint(x / scale), -qmax, qmax) * scale;
                sig += double(x) * x;
                err += (double(x) - q) * (double(x) - q);
            }
        }
    return 10 * std::log10(sig / err);
}

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT

private slots:
    void readsEveryDtypeBitExactly()
    {
        QTemporaryDir dir;
        const std::vector<float> f32 = {1.5f, -2.25f, 3.f, 0.f, 1e-8f, -7.f};
        const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff}; // 1, -2, 65504
        const std::vector<uint16_t> bf16 = {0x3f80, 0xc040};        // 1, -3
        const std::vector<int8_t> i8 = {-128, 0, 127, 5};
        const std::vector<int64_t> i64 = {-1, 1LL << 40};
        const std::vector<double> f64 = {0.1};
        const std::string path = writeFile(dir, "t.safetensors",
            encode({{"w.f32", "F32", {2, 3}, bytesOf(f32)}, {"w.f16", "F16", {3}, bytesOf(f16)},
                       {"w.bf16", "BF16", {1, 2}, bytesOf(bf16)}, {"q.i8", "I8", {2, 2}, bytesOf(i8)},
                       {"ids", "I64", {2}, bytesOf(i64)}, {"s", "F64", {}, bytesOf(f64)},
                       {"empty", "F32", {0, 4}, ""}},
                R"({"format":"pt"})"))
                                     .toStdString();
        SafetensorsFile f(path);
        QCOMPARE(int(f.tensors().size()), 7);
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
        Tensor t = f.tensor("w.f32");
        QCOMPARE(t.dtype, DType::Float);
        QCOMPARE(t.shape, (Shape {2, 3}));
        QCOMPARE(std::vector<float>(t.data<float>().begin(), t.data<float>().end()), f32);
        QCOMPARE(f.tensor("w.f16").toFloat(), (std::vector<float> {1.f, -2.f, 65504.f}));
        QCOMPARE(f.tensor("w.bf16").toFloat(), (std::vector<float> {1.f, -3.f}));
        QCOMPARE(f.tensor("q.i8").dtype, DType::Int8);
        QCOMPARE(f.tensor("q.i8").toInt64(), (std::vector<int64_t> {-128, 0, 127, 5}));
        QCOMPARE(f.tensor("ids").toInt64(), i64);
        QCOMPARE(f.tensor("s").shape, Shape {});
        QCOMPARE(f.tensor("s").toFloat(), std::vector<float> {0.1f});
        QCOMPARE(f.tensor("empty").numel(), int64_t(0));
        // The raw span points into the mapping at the header's offsets.
        const auto raw = f.raw(f.entry("q.i8"));
        QCOMPARE(int(raw.size()), 4);
        QVERIFY(std::memcmp(raw.data(), i8.data(), 4) == 0);
        QVERIFY_EXCEPTION_THROWN(f.entry("missing"), Error);
    }

    void refusesBadHeaders_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("message");
        const std::string f4 = bytesOf(std::vector<float> {1, 2, 3, 4});
        auto row = [](const char* name, const std::string& b, const char* msg) {
            QTest::newRow(name) << QByteArray(b.data(), qsizetype(b.size())) << QString(msg);
        };
        row("shorter than 8 bytes", "abc", "3 bytes, too short for the 8-byte header length");
        row("length beyond the file", header8(400) + "{}", "header length 400 reaches beyond the end of the file");
        row("huge length", header8(1ULL << 62), "is larger than the");
        row("bad JSON", withHeader("{\"a\": [1,"), "header is not valid JSON");
        row("not an object", withHeader("[]"), "header is a JSON array");
        row("unknown dtype", encode({{"w", "F8_E4M3", {4}, "abcd"}}), "tensor \"w\": unknown dtype \"F8_E4M3\"");
        row("missing shape", withHeader(R"({"w":{"dtype":"F32","data_offsets":[0,0]}})"), "tensor \"w\": missing field \"shape\"");
        row("negative dim", encode({{"w", "F32", {-1}, ""}}), "tensor \"w\": shape [-1] has a dimension");
        row("shape/size mismatch", encode({{"w", "F32", {5}, f4}}), "tensor \"w\": shape [5] of F32 needs 20 bytes, data_offsets give 16");
        {
            std::string b = encode({{"w", "F32", {4}, f4}});
            b.resize(b.size() - 4); // the data section ends early
            row("offsets out of range", b, "tensor \"w\": data_offsets [0, 16] reach beyond the data section (12 bytes)");
        }
        {
            const std::string json = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                     R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
            row("overlapping", header8(json.size()) + json + f4, "tensor \"b\" (bytes 8..16) overlaps tensor \"a\"");
        }
        {
            const std::string json = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})";
            row("end before begin", header8(json.size()) + json + f4, "tensor \"a\": data_offsets [8, 4] end before they begin");
        }
        row("metadata not strings", encode({}, R"({"n": 3})"), "__metadata__ \"n\" is not a string");
    }

    void refusesBadHeaders()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, message);
        QTemporaryDir dir;
        const QString path = writeFile(dir, "bad.safetensors", bytes.toStdString());
        try {
            SafetensorsFile f(path.toStdString());
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).startsWith(path + ": "), e.what());
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
        // The CLI reports it in one line and fails.
        qs::test::CliResult r = qs::test::cli({"inspect", path});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains(message.toUtf8()), r.err.constData());
    }

    void inspectStatistics()
    {
        QTemporaryDir dir;
        const std::vector<float> w = gaussian(64 * 256, 5), small = gaussian(8 * 96, 6);
        const QString path = writeFile(dir, "m.safetensors",
            encode({{"layers.0.mlp.up.weight", "F32", {64, 256}, bytesOf(w)}, {"odd.weight", "F32", {8, 96}, bytesOf(small)},
                {"norm.bias", "F32", {8}, bytesOf(std::vector<float>(8, 0.5f))}}));
        qs::test::CliResult r = qs::test::cli({"inspect", path, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["params"].toInt(), 64 * 256 + 8 * 96 + 8);
        const QJsonArray t = j["tensors"].toArray();
        QCOMPARE(t.size(), 3);
        const QJsonObject up = t[0].toObject(), odd = t[1].toObject();
        QCOMPARE(up["name"].toString(), QString("layers.0.mlp.up.weight"));
        const QJsonObject s = up["sqnr_db"].toObject();
        // Per tensor = one group spanning the whole matrix; groups of 128 along the input.
        auto near = [](double a, double b) { return std::abs(a - b) < 1e-3; };
        QVERIFY(near(s["w4_group"].toDouble(), naiveSqnr(w, 64, 256, 4, 128)));
        QVERIFY(near(s["w3_group"].toDouble(), naiveSqnr(w, 64, 256, 3, 128)));
        QVERIFY(near(s["w4_tensor"].toDouble(), naiveSqnr(w, 1, 64 * 256, 4, 64 * 256)));
        QVERIFY(near(s["w3_tensor"].toDouble(), naiveSqnr(w, 1, 64 * 256, 3, 64 * 256)));
        QVERIFY(s["w4_group"].toDouble() > s["w4_tensor"].toDouble());
        QVERIFY(up["kurtosis"].toDouble() > 3.5); // Student-t(4): heavier tails than a normal
        QVERIFY(odd["sqnr_db"].toObject()["w4_group"].isNull()); // 96 columns: no whole group of 128
        QVERIFY(!t[2].toObject().contains("sqnr_db"));           // 1-D: no statistics
        qs::test::CliResult g32 = qs::test::cli({"inspect", path, "--group", "32", "--json"});
        const QJsonObject odd32 = QJsonDocument::fromJson(g32.out).object()["tensors"].toArray()[1].toObject();
        QVERIFY(near(odd32["sqnr_db"].toObject()["w4_group"].toDouble(), naiveSqnr(small, 8, 96, 4, 32)));
        qs::test::CliResult text = qs::test::cli({"inspect", path});
        QVERIFY2(text.exitCode == 0, text.err.constData());
        QVERIFY(text.out.contains("layers.0.mlp.up.weight") && text.out.contains("W4 g128"));
    }
};

QTEST_MAIN(TestSafetensors)
#include "test_safetensors.moc"
