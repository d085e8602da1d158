// Per-layer precision to and from AIMET encodings (0.6.1 and 1.0.0), ONNX Runtime
// TensorQuantOverrides, trtexec flags and regex rules on the demo model: round trips
// (data-driven over the formats), the scales AIMET files carry against an independent
// recomputation, the CLI, and errors that name the file, the line or key and the layer.
#include "export/encodings.h"
#include "export/replay.h"
#include "interop/precision.h"
#include "quant/session.h"
#include "util/error.h"

#include "quant/demo_data.h"
#include "support/cli_runner.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

using namespace qs;

namespace {

enum Field { Bits = 1, Symmetric = 2, Granular = 4, Range = 8, Calib = 16, All = 31 };

// What the format can say of one layer, as text (QCOMPARE shows it on a mismatch).
std::string describe(const std::optional<LayerQuant>& lq, int fields)
{
    if (!lq)
        return "float";
    auto spec = [&](const QuantSpec& s, bool weight) {
        std::string d = std::to_string(s.bits);
        if (s.isFloat())
            return d + "f";
        if (fields & Symmetric)
            d += s.symmetric ? " sym" : " affine";
        if ((fields & Granular) && weight)
            d += s.granularity == Granularity::Group ? " group:" + std::to_string(s.groupSize)
                                                     : std::string(" ") + granularityName(s.granularity);
        if ((fields & Range) && s.range)
            d += " [" + std::to_string(s.range->first) + "," + std::to_string(s.range->second) + "]";
        if (fields & Calib)
            d += " " + s.calibrator + ":" + std::to_string(s.calibratorParam) +
                (s.rounding == Rounding::Nearest ? " nearest" : " stochastic");
        return d;
    };
    return "W" + spec(lq->weight, true) + " A" + spec(lq->activation, false);
}

const Graph& demo()
{
    static const Graph g = importOnnx(test::kDemoModel);
    return g;
}

std::unique_ptr<QuantSession> calibrated(const QuantConfig& c)
{
    QuantizeOptions o;
    o.config = c;
    o.calibLimit = 64;
    Progress p;
    CancelToken cancel;
    return prepareSession(demo(), o, test::demoData(64), p, cancel);
}

std::string exportText(const QuantConfig& c, PrecisionFormat f)
{
    const bool aimet = f == PrecisionFormat::Aimet || f == PrecisionFormat::Aimet1;
    auto s = aimet ? calibrated(c) : nullptr;
    return exportPrecision(demo(), c, f, s.get()).text;
}

// The scales and offsets of an AIMET file by tensor, whichever its form.
std::map<std::string, std::vector<std::pair<double, int>>> aimetGrids(const std::string& text)
{
    std::map<std::string, std::vector<std::pair<double, int>>> out;
    const auto j = nlohmann::json::parse(text);
    for (const char* section : {"activation_encodings", "param_encodings"}) {
        const auto& s = j[section];
        if (s.is_object()) {
            for (const auto& [name, list] : s.items())
                for (const auto& e : list)
                    out[name].push_back({e["scale"].get<double>(), e["offset"].get<int>()});
        } else {
            for (const auto& e : s)
                for (std::size_t i = 0; i < e["scale"].size(); ++i)
                    out[e["name"]].push_back({e["scale"][i].get<double>(), e["offset"][i].get<int>()});
        }
    }
    return out;
}

} // namespace

class TestPrecision : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

    QString write(const QString& name, const std::string& text)
    {
        const QString path = dir_.filePath(name);
        std::ofstream(path.toStdString(), std::ios::binary) << text;
        return path;
    }

private slots:
    void layerNames()
    {
        const auto layers = precisionLayers(demo());
        QCOMPARE(int(layers.size()), 8);
        QCOMPARE(layers.front().name, std::string("/stem/stem.0/Conv"));
        QCOMPARE(layers.back().op, std::string("Gemm"));
        QCOMPARE(layers.back().outChannels, int64_t(10));
        QVERIFY(layers.front().weight != layers.front().sourceWeight); // BatchNorm folded: a new initializer
    }

    void roundTrip_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("config");
        QTest::addColumn<int>("fields");
        QTest::newRow("rules") << "rules"
                               << R"({"default": {"weight": {"bits": 6}, "activation": {"calibrator": "percentile:99.9"}},
                "layers": {"/res1/conv1/Conv": {"weight": {"bits": 4, "granularity": "group:16", "rounding": "stochastic"}},
                           "/down1/down1.0/Conv": {"activation": {"symmetric": true, "range": [-1.5, 3.25], "calibrator": "mse"}},
                           "/res2/conv2/Conv": {"weight": {"bits": 16}, "activation": {"bits": 16}},
                           "/res2/conv1/Conv": {"activation": {"bits": 32}}},
                "exclude": ["/fc/Gemm"]})"
                               << int(All);
        QTest::newRow("trt") << "trt"
                             << R"({"default": {"activation": {"symmetric": true}},
                "layers": {"/res2/conv2/Conv": {"weight": {"bits": 16}, "activation": {"bits": 16}}},
                "exclude": ["/fc/Gemm", "/stem/stem.0/Conv"]})"
                             << int(Bits | Symmetric | Granular);
        QTest::newRow("ort") << "ort"
                             << R"({"layers": {"/res1/conv1/Conv": {"weight": {"bits": 4, "granularity": "tensor"}},
                           "/down2/down2.0/Conv": {"weight": {"bits": 7, "symmetric": false, "granularity": "tensor"}},
                           "/res2/conv1/Conv": {"activation": {"range": [-0.5, 4.0], "symmetric": true}}},
                "exclude": ["/fc/Gemm"]})"
                             << int(Bits | Symmetric | Granular | Range);
        const char* aimet = R"({"layers": {"/res1/conv1/Conv": {"weight": {"bits": 4, "granularity": "group:16"}},
                           "/down2/down2.0/Conv": {"weight": {"bits": 6, "granularity": "tensor"}, "activation": {"symmetric": true}},
                           "/res2/conv1/Conv": {"weight": {"bits": 5, "symmetric": false}}},
                "exclude": ["/fc/Gemm"]})";
        QTest::newRow("aimet 0.6.1") << "aimet" << aimet << int(Bits | Symmetric | Granular);
        QTest::newRow("aimet 1.0.0") << "aimet1" << aimet << int(Bits | Symmetric | Granular);
    }

    void roundTrip()
    {
        QFETCH(QString, format);
        QFETCH(QString, config);
        QFETCH(int, fields);
        const PrecisionFormat f = parsePrecisionFormat(format.toStdString());
        const QuantConfig original = QuantConfig::fromJson(nlohmann::json::parse(config.toStdString()));
        const std::string first = exportText(original, f);
        const PrecisionImport back = importPrecision(demo(), first, f, "first." + format.toStdString());
        for (const auto& l : precisionLayers(demo()))
            QCOMPARE(describe(back.config.forLayer(l.name), fields), describe(original.forLayer(l.name), fields));

        // The second trip writes the same file (AIMET: the same grids, from the imported ranges).
        const std::string second = exportText(back.config, f);
        if (f != PrecisionFormat::Aimet && f != PrecisionFormat::Aimet1) {
            QCOMPARE(second, first);
            return;
        }
        const auto a = aimetGrids(first), b = aimetGrids(second);
        QCOMPARE(a.size(), b.size());
        for (const auto& [tensor, grids] : a) {
            QVERIFY2(b.count(tensor), tensor.c_str());
            QCOMPARE(b.at(tensor).size(), grids.size());
            for (std::size_t i = 0; i < grids.size(); ++i) {
                QCOMPARE(b.at(tensor)[i].second, grids[i].second);
                QVERIFY2(std::abs(b.at(tensor)[i].first - grids[i].first) <= 1e-6 * grids[i].first, tensor.c_str());
            }
        }
    }

    // The scales of an AIMET file recomputed by hand from the observed min/max.
    void aimetScalesIndependent()
    {
        QuantConfig c; // W8 symmetric per channel, A8 affine min-max
        auto s = calibrated(c);
        const auto j = nlohmann::json::parse(exportPrecision(demo(), c, PrecisionFormat::Aimet1, s.get()).text);
        QCOMPARE(j["version"].get<std::string>(), std::string("1.0.0"));
        const PrecisionLayer fc = precisionLayers(demo()).back();
        const Tensor* w = s->graph().constant(fc.weight);
        const auto values = w->toFloat();
        const int64_t in = w->shape[1];
        bool found = false;
        for (const auto& e : j["param_encodings"]) {
            if (e["name"] != fc.weight)
                continue;
            found = true;
            QCOMPARE(e["enc_type"].get<std::string>(), std::string("PER_CHANNEL"));
            QCOMPARE(int(e["scale"].size()), 10);
            for (int64_t oc = 0; oc < 10; ++oc) {
                double m = 0;
                for (int64_t i = 0; i < in; ++i)
                    m = std::max(m, std::abs(double(values[std::size_t(oc * in + i)])));
                QVERIFY(std::abs(e["scale"][oc].get<double>() - m / 127) <= 1e-6 * m);
                QCOMPARE(e["offset"][oc].get<int>(), -127);
            }
        }
        QVERIFY(found);
    }

    void errors_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("rules: bad regex") << "rules" << "# layers\n/res[12/.*=w4a8\n"
                                          << QStringList {"p.rules:2", "regular expression", "/res[12/.*"};
        QTest::newRow("rules: bad bits") << "rules" << "/fc/Gemm=w9a8\n" << QStringList {"p.rules:1", "w9a8", "9 weight bits"};
        QTest::newRow("rules: bad attribute") << "rules" << "\n\n.*=w8a8 w:sideways\n"
                                              << QStringList {"p.rules:3", "sideways"};
        QTest::newRow("rules: no type") << "rules" << "/fc/Gemm\n" << QStringList {"p.rules:1", "pattern=type"};
        QTest::newRow("trt: unknown layer") << "trt" << "trtexec --onnx=m.onnx --layerPrecisions=/fc/Gemm:int8,conv9:fp16"
                                            << QStringList {"p.trt", "conv9", "no layer named"};
        QTest::newRow("trt: int4") << "trt" << "--layerPrecisions=/fc/Gemm:int4"
                                   << QStringList {"p.trt", "/fc/Gemm:int4", "int4"};
        QTest::newRow("ort: unknown tensor") << "ort" << R"({"TensorQuantOverrides": {"nope": [{"quant_type": "QInt8"}]}})"
                                             << QStringList {"p.ort", "\"nope\"", "no tensor"};
        QTest::newRow("ort: 16-bit integer") << "ort" << R"({"input": [{"quant_type": "QUInt16"}]})"
                                             << QStringList {"p.ort", "\"input\"", "QUInt16", "/stem/stem.0/Conv"};
        QTest::newRow("ort: wrong axis") << "ort" << R"({"input": [{"quant_type": "QUInt8", "axis": 1}]})"
                                         << QStringList {"p.ort", "axis", "/stem/stem.0/Conv"};
        QTest::newRow("ort: unknown node") << "ort" << R"({"TensorQuantOverrides": {}, "nodes_to_exclude": ["fc9"]})"
                                           << QStringList {"p.ort", "fc9"};
        QTest::newRow("aimet: bad bitwidth")
            << "aimet" << R"({"activation_encodings": {"input": [{"bitwidth": 12, "dtype": "int", "min": 0, "max": 1}]}})"
            << QStringList {"p.aimet", "activation_encodings", "\"input\"", "12", "/stem/stem.0/Conv"};
        QTest::newRow("aimet: unknown tensor")
            << "aimet1" << R"({"version": "1.0.0", "param_encodings": [{"name": "w9", "bw": 8, "scale": [1], "offset": [0]}]})"
            << QStringList {"p.aimet1", "param_encodings[0]", "w9"};
        QTest::newRow("aimet: channels") << "aimet1" << QString::fromStdString(
            R"({"param_encodings": [{"name": ")" + precisionLayers(demo()).back().weight +
            R"(", "bw": 8, "enc_type": "PER_CHANNEL", "is_sym": true, "scale": [1, 1, 1], "offset": [-127, -127, -127]}]})")
                                         << QStringList {"p.aimet1", "3 per-channel", "/fc/Gemm", "10 output channels"};
        QTest::newRow("aimet: not json") << "aimet" << "{" << QStringList {"p.aimet", "not valid JSON"};
    }

    void errors()
    {
        QFETCH(QString, format);
        QFETCH(QString, text);
        QFETCH(QStringList, expected);
        const std::string label = "p." + format.toStdString();
        try {
            importPrecision(demo(), text.toStdString(), parsePrecisionFormat(format.toStdString()), label);
            QFAIL("no error");
        } catch (const Error& e) {
            for (const auto& want : expected)
                QVERIFY2(QString(e.what()).contains(want), qPrintable(QString("%1 lacks %2").arg(e.what(), want)));
        }
    }

    void exportRefusals_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("config");
        QTest::addColumn<QString>("expected");
        QTest::newRow("trt W4") << "trt" << R"({"layers": {"/res1/conv1/Conv": {"weight": {"bits": 4}}}})"
                                << "/res1/conv1/Conv";
        QTest::newRow("ort 5-bit") << "ort" << R"({"layers": {"/fc/Gemm": {"activation": {"bits": 5}}}})" << "/fc/Gemm";
        QTest::newRow("ort group") << "ort" << R"({"default": {"weight": {"granularity": "group:16"}}})" << "group-wise";
        QTest::newRow("aimet uncalibrated") << "aimet" << "{}" << "calibrated";
    }

    void exportRefusals()
    {
        QFETCH(QString, format);
        QFETCH(QString, config);
        QFETCH(QString, expected);
        const QuantConfig c = QuantConfig::fromJson(nlohmann::json::parse(config.toStdString()));
        try {
            exportPrecision(demo(), c, parsePrecisionFormat(format.toStdString()));
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains(expected), e.what());
        }
    }

    // Files as the other tools' users write them, read against values worked out by hand.
    void importsHandWritten_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("layer");
        QTest::addColumn<QString>("expected");
        // ORT: uint8 scale 0.02, zero point 10 -> the grid [-10, 245] x 0.02.
        QTest::newRow("ort scale/zero_point") << "ort" << R"({"input": [{"quant_type": "QUInt8", "scale": 0.02, "zero_point": 10}]})"
                                              << "/stem/stem.0/Conv" << "W8 sym channel A8 affine [-0.200000,4.900000]";
        QTest::newRow("ort reduce_range") << "ort" << R"({"input": [{"quant_type": "QInt8", "reduce_range": true}]})"
                                          << "/stem/stem.0/Conv" << "W8 sym channel A7 sym";
        // AIMET's own symmetric 8-bit grid: offset -128, scale 0.01 -> centred range +-1.28.
        QTest::newRow("aimet native symmetric")
            << "aimet" << R"({"activation_encodings": {"input": [{"bitwidth": 8, "dtype": "int", "is_symmetric": "True", "offset": -128, "scale": 0.01}]}, "param_encodings": {}})"
            << "/stem/stem.0/Conv" << "W32f A8 sym [-1.280000,1.280000]";
        QTest::newRow("aimet absent = float") << "aimet" << R"({"activation_encodings": {}, "param_encodings": {}})"
                                              << "/fc/Gemm" << "float";
        QTest::newRow("trt wildcard fp16") << "trt" << "trtexec --onnx=a.onnx --fp16 --int8 --precisionConstraints=obey --layerPrecisions=*:fp16,/fc/Gemm:int8"
                                           << "/res1/conv1/Conv" << "W16f A16f";
        QTest::newRow("trt int8 symmetric") << "trt" << "--layerPrecisions=*:fp16,/fc/Gemm:int8" << "/fc/Gemm"
                                            << "W8 sym channel A8 sym";
        QTest::newRow("trt output types") << "trt" << "--layerOutputTypes=/fc/Gemm:fp32" << "/fc/Gemm" << "float";
    }

    void importsHandWritten()
    {
        QFETCH(QString, format);
        QFETCH(QString, text);
        QFETCH(QString, layer);
        QFETCH(QString, expected);
        const PrecisionImport r = importPrecision(
            demo(), text.toStdString(), parsePrecisionFormat(format.toStdString()), "hand." + format.toStdString());
        QCOMPARE(QString::fromStdString(describe(r.config.forLayer(layer.toStdString()), Bits | Symmetric | Granular | Range)),
            expected);
    }

    // First match wins; .* sets the defaults the other rules start from.
    void rulesSemantics()
    {
        const std::string rules = "/res1/.*=w4a8 w:group:16\n/res.*=float\n.*=w6a8 w:affine\n";
        const PrecisionImport r = importPrecision(demo(), rules, PrecisionFormat::Rules, "r.rules");
        QCOMPARE(r.config.defaults.weight.bits, 6);
        QVERIFY(!r.config.defaults.weight.symmetric);
        const auto res1 = r.config.forLayer("/res1/conv2/Conv");
        QVERIFY(res1);
        QCOMPARE(res1->weight.bits, 4);
        QVERIFY(!res1->weight.symmetric); // from the defaults
        QCOMPARE(res1->weight.granularity, Granularity::Group);
        QVERIFY(!r.config.forLayer("/res2/conv1/Conv"));
        QCOMPARE(r.config.forLayer("/fc/Gemm")->weight.bits, 6);
        const PrecisionImport unused = importPrecision(demo(), "attn.*=w4a8\n", PrecisionFormat::Rules, "u.rules");
        QCOMPARE(int(unused.notes.size()), 1);
        QVERIFY(QString::fromStdString(unused.notes[0]).contains("u.rules:1"));
    }

    void cli()
    {
        QVERIFY(dir_.isValid());
        const QString cfg = write("c.json", R"({"layers": {"/res1/conv1/Conv": {"weight": {"bits": 4}}}, "exclude": ["/fc/Gemm"]})");
        const QString out = dir_.filePath("c.rules"), back = dir_.filePath("back.json");
        auto r = test::cli({"precision", "export", test::kDemoModel, "--config", cfg, "--format", "rules", "-o", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        r = test::cli({"precision", "import", test::kDemoModel, out, "--format", "rules", "-o", back});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QuantConfig c = QuantConfig::load(back.toStdString());
        QCOMPARE(c.forLayer("/res1/conv1/Conv")->weight.bits, 4);
        QVERIFY(!c.forLayer("/fc/Gemm"));
        QCOMPARE(c.forLayer("/res2/conv1/Conv")->weight.bits, 8);

        const QString enc = dir_.filePath("e.json");
        r = test::cli({"precision", "export", test::kDemoModel, "--config", cfg, "--format", "aimet", "-o", enc,
            "--data", test::kDemoData, "--calib-limit", "32"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(nlohmann::json::parse(std::ifstream(enc.toStdString()))["param_encodings"].size() == 7);

        const QString bad = write("bad.trt", "--layerPrecisions=/fc/Gemm:int8,nosuch:int8\n");
        r = test::cli({"precision", "import", test::kDemoModel, bad, "--format", "trt", "-o", back});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("bad.trt") && r.err.contains("nosuch"), r.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestPrecision)
#include "test_precision.moc"
