// `quantstudio-cli inspect` on the demo model against statistics computed here,
// independently, from the ONNX protobuf; and its one-line errors.
#include <onnx/onnx_pb.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

namespace {

using Run = qs::test::CliResult;
using qs::test::cli;

std::vector<double> floatsOf(const onnx::TensorProto& t)
{
    std::vector<double> v;
    if (t.has_raw_data()) {
        std::vector<float> f(t.raw_data().size() / 4);
        std::memcpy(f.data(), t.raw_data().data(), t.raw_data().size());
        v.assign(f.begin(), f.end());
    } else {
        v.assign(t.float_data().begin(), t.float_data().end());
    }
    return v;
}

} // namespace

class TestCliInspect : public QObject {
    Q_OBJECT

private slots:
    void jsonMatchesIndependentStatistics()
    {
        const char* path = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
        Run r = cli({"inspect", path, "--json"});
        QCOMPARE(r.exitCode, 0);
        QJsonParseError perr;
        QJsonObject j = QJsonDocument::fromJson(r.out, &perr).object();
        QCOMPARE(perr.error, QJsonParseError::NoError);
        for (const char* key : {"inputs", "outputs", "op_counts", "params", "layers"})
            QVERIFY2(j.contains(key), key);

        onnx::ModelProto model;
        std::ifstream in(path, std::ios::binary);
        QVERIFY(model.ParseFromIstream(&in));
        std::map<std::string, const onnx::TensorProto*> inits;
        int64_t params = 0;
        for (const auto& t : model.graph().initializer()) {
            inits[t.name()] = &t;
            int64_t n = 1;
            for (auto d : t.dims())
                n *= d;
            params += n;
        }
        QCOMPARE(j["params"].toInteger(), params);
        std::map<std::string, int> ops;
        for (const auto& n : model.graph().node())
            ++ops[n.op_type()];
        QCOMPARE(j["op_counts"].toObject().size(), int(ops.size()));
        for (const auto& [op, count] : ops)
            QCOMPARE(j["op_counts"][QString::fromStdString(op)].toInt(), count);
        QCOMPARE(j["inputs"][0]["shape"].toArray().size(), 4);

        QJsonArray layers = j["layers"].toArray();
        int expectedLayers = 0;
        for (const auto& n : model.graph().node()) {
            if (n.op_type() != "Conv" && n.op_type() != "Gemm")
                continue;
            QJsonObject row = layers[expectedLayers++].toObject();
            QCOMPARE(row["name"].toString().toStdString(), n.name());
            std::vector<double> w = floatsOf(*inits.at(n.input(1)));
            double mn = 1e300, mx = -1e300, sum = 0;
            for (double v : w) {
                mn = std::min(mn, v);
                mx = std::max(mx, v);
                sum += v;
            }
            double mean = sum / double(w.size()), m2 = 0, m4 = 0;
            for (double v : w) {
                m2 += (v - mean) * (v - mean);
                m4 += std::pow(v - mean, 4);
            }
            m2 /= double(w.size());
            m4 /= double(w.size());
            int64_t bias = n.input_size() > 2 ? inits.at(n.input(2))->dims(0) : 0;
            QJsonObject s = row["weight_stats"].toObject();
            QCOMPARE(row["params"].toInteger(), int64_t(w.size()) + bias);
            QVERIFY(std::abs(s["min"].toDouble() - mn) < 1e-7);
            QVERIFY(std::abs(s["max"].toDouble() - mx) < 1e-7);
            QVERIFY(std::abs(s["mean"].toDouble() - mean) < 1e-6);
            QVERIFY(std::abs(s["std"].toDouble() - std::sqrt(m2)) < 1e-6);
            QVERIFY(std::abs(s["kurtosis"].toDouble() - m4 / (m2 * m2)) < 1e-4);
            // Per-output-channel range ratio: Conv [O,...] rows; Gemm with transB=1 rows too.
            bool rows = n.op_type() == "Conv";
            for (const auto& a : n.attribute())
                if (a.name() == "transB" && a.i() == 1)
                    rows = true;
            const auto& dims = inits.at(n.input(1))->dims();
            int64_t channels = rows ? dims[0] : dims[1];
            int64_t inner = int64_t(w.size()) / channels;
            std::vector<double> ranges;
            for (int64_t c = 0; c < channels; ++c) {
                double lo = 1e300, hi = -1e300;
                for (int64_t i = 0; i < inner; ++i) {
                    double v = rows ? w[std::size_t(c * inner + i)] : w[std::size_t(i * channels + c)];
                    lo = std::min(lo, v);
                    hi = std::max(hi, v);
                }
                ranges.push_back(hi - lo);
            }
            double maxRange = *std::max_element(ranges.begin(), ranges.end());
            std::sort(ranges.begin(), ranges.end());
            std::size_t k = ranges.size();
            double median = k % 2 ? ranges[k / 2] : 0.5 * (ranges[k / 2 - 1] + ranges[k / 2]);
            QVERIFY(std::abs(s["channel_range_ratio"].toDouble() - maxRange / median) < 1e-5);
        }
        QCOMPARE(layers.size(), expectedLayers);
    }

    void textOutputHasOneRowPerLayer()
    {
        Run r = cli({"inspect", QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains("input      input"));
        QVERIFY(r.out.contains("/fc/Gemm"));
        QVERIFY(r.out.contains("kurtosis"));
    }

    void badInputIsOneLineAndNonZero_data()
    {
        QTest::addColumn<QByteArray>("content");
        QTest::newRow("garbage") << QByteArray("this is not an onnx model at all");
        QTest::newRow("empty") << QByteArray();
    }

    void badInputIsOneLineAndNonZero()
    {
        QFETCH(QByteArray, content);
        QTemporaryDir dir;
        QString path = dir.filePath("broken.onnx");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(content);
        f.close();
        Run r = cli({"inspect", path});
        QVERIFY(r.exitCode != 0);
        QCOMPARE(r.err.count('\n'), 1);
        QVERIFY(r.err.contains(path.toUtf8()));
        QVERIFY(r.out.isEmpty());
    }

    void usageErrors()
    {
        QVERIFY(cli({"inspect"}).exitCode != 0);
        QVERIFY(cli({"inspect", "x.onnx", "--bogus"}).err.contains("unknown option --bogus"));
        QVERIFY(cli({"no-such-command"}).exitCode != 0);
    }
};

QTEST_GUILESS_MAIN(TestCliInspect)
#include "test_cli_inspect.moc"
