// Simulation versus deployment on the demo model: a W8A8 run exported as QDQ passes
// `quantstudio-cli parity` (INT8 kernels vs the simulated quantization, per layer) and
// is recorded in the store; exports whose one layer's weight scales or weight codes were
// edited in the ONNX file are flagged, naming that layer. The re-import of the QDQ file
// is checked against independent references: its dequantized weights against a naive
// loop over the file's integers, its execution as written against ONNX Runtime with
// graph optimizations off, and its INT8 execution against ONNX Runtime's integer kernels.
#include "export/qdq_lowering.h"
#include "graph/onnx_import.h"
#include "runtime/cpu_isa.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "store/store.h"
#include "util/error.h"

#include "quant/demo_data.h"
#include "support/cli_runner.h"
#include "support/onnx_builder.h"
#include "support/ort_runner.h"

#include <onnx/onnx_pb.h>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

using namespace qs;

namespace {

const QString kModel = test::kDemoModel;
const QString kData = test::kDemoData;

using qs::test::argmaxRows;

// The weight initializer of a layer in the working (BN-folded) graph the export writes.
std::string weightOf(const std::string& layer)
{
    QuantizeOptions all;
    QuantSession s(importOnnx(test::kDemoModel), all);
    for (const auto& l : s.layers())
        if (l.name == layer)
            return l.weight;
    qFatal("no layer %s", layer.c_str());
}

onnx::TensorProto* initializer(onnx::ModelProto& m, const std::string& name)
{
    for (auto& t : *m.mutable_graph()->mutable_initializer())
        if (t.name() == name)
            return &t;
    qFatal("no initializer %s", name.c_str());
}

// What int16 saturation of u8 x s8 pair sums (AVX2's vpmaddubsw, adjacent input
// channels of a group of four) does to each Conv of a QDQ model, by a naive loop over
// the file's weight codes and the u8 inputs the model as written gives on `images`
// (a saturated pair loses sum - clamp(sum) from the int32 accumulator):
// per layer, the largest change of an output, in quantization steps of the layer's
// output (the scale of the first QuantizeLinear after it), and the saturated pairs.
struct Saturation {
    double maxSteps = 0;
    int64_t pairs = 0;
};

std::map<std::string, Saturation> int16Saturation(const QString& qdqPath, const Tensor& images)
{
    const QdqLowered q = lowerQdqModel(importOnnx(qdqPath.toStdString()), qdqPath.toStdString());
    const Graph& g = q.graph;
    struct ConvCase {
        const Node* conv;
        std::string input;
        QParams in;
        double outScale = 1;
        const QdqWeight* w;
    };
    std::vector<ConvCase> cases;
    auto plan = compilePlan(g, q.simulated(images.shape));
    std::map<std::string, Tensor> seen;
    for (const QdqLayer& l : q.layers) {
        const Node& n = g.nodes[std::size_t(g.findNode(l.name))];
        if (n.opType != "Conv" || !l.weightQuantized || !l.inputQuantized || !q.weights.count(l.weight))
            continue;
        ConvCase c {&n, l.input, q.activations.at(l.input), 1, &q.weights.at(l.weight)};
        // The output's grid: the first quantized value down the chain of single consumers.
        std::string v = n.outputs[0];
        for (int hops = 0; hops < 4; ++hops) {
            if (auto it = q.activations.find(v); it != q.activations.end()) {
                c.outScale = it->second.scale;
                break;
            }
            if (g.consumersOf(v).size() != 1)
                break;
            v = g.nodes[std::size_t(g.consumersOf(v).front())].outputs[0];
        }
        plan->addTap(c.input, [&seen](const std::string& value, const Tensor& t) { seen[value] = t; });
        cases.push_back(std::move(c));
    }
    plan->run({images});
    std::map<std::string, Saturation> result;
    for (const ConvCase& c : cases) {
        const Node& n = *c.conv;
        const Tensor& x = seen.at(c.input);
        std::vector<int32_t> u; // the u8 codes the INT8 kernel reads
        for (float v : x.toFloat())
            u.push_back(std::clamp(int32_t(std::nearbyint(v / c.in.scale)) + c.in.zeroPoint, c.in.qmin, c.in.qmax));
        const Shape& xs = x.shape;
        const Shape& ws = c.w->shape;
        const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], KH = ws[2], KW = ws[3];
        const int64_t groups = n.attrInt("group", 1), cg = C / groups, og = O / groups;
        const auto pads = n.attrInts("pads", {0, 0, 0, 0}), strides = n.attrInts("strides", {1, 1});
        const auto dil = n.attrInts("dilations", {1, 1});
        const int64_t OH = (H + pads[0] + pads[2] - (KH - 1) * dil[0] - 1) / strides[0] + 1;
        const int64_t OW = (W + pads[1] + pads[3] - (KW - 1) * dil[1] - 1) / strides[1] + 1;
        Saturation sat;
        if (cg < 2) { // depthwise and single-channel convolutions multiply one channel at a time
            result[n.name] = sat;
            continue;
        }
        for (int64_t b = 0; b < N; ++b)
            for (int64_t o = 0; o < O; ++o) {
                const int64_t grp = o / og;
                const double step =
                    double(c.in.scale) * c.w->scales[std::size_t(c.w->scales.size() == 1 ? 0 : o)] / c.outScale;
                for (int64_t oh = 0; oh < OH; ++oh)
                    for (int64_t ow = 0; ow < OW; ++ow) {
                        int64_t lost = 0;
                        for (int64_t kh = 0; kh < KH; ++kh)
                            for (int64_t kw = 0; kw < KW; ++kw) {
                                const int64_t ih = oh * strides[0] - pads[0] + kh * dil[0];
                                const int64_t iw = ow * strides[1] - pads[1] + kw * dil[1];
                                if (ih < 0 || iw < 0 || ih >= H || iw >= W)
                                    continue;
                                for (int64_t i = 0; i + 1 < cg; i += 2) {
                                    int32_t sum = 0;
                                    for (int64_t k = i; k < i + 2; ++k) {
                                        const int64_t ch = grp * cg + k;
                                        sum += u[std::size_t(((b * C + ch) * H + ih) * W + iw)] *
                                            c.w->codes[std::size_t(((o * cg + k) * KH + kh) * KW + kw)];
                                    }
                                    const int32_t clamped = std::clamp(sum, -32768, 32767);
                                    if (clamped != sum) {
                                        ++sat.pairs;
                                        lost += sum - clamped;
                                    }
                                }
                            }
                        sat.maxSteps = std::max(sat.maxSteps, std::fabs(double(lost)) * step);
                    }
            }
        result[n.name] = sat;
    }
    return result;
}

} // namespace

class TestParity : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString db_, exported_;
    qint64 run_ = 0;

    test::CliResult parity(const QString& model, const QStringList& extra = {})
    {
        return test::cli(QStringList {"parity", model, "--reference", kModel, "--data", kData, "--calib-limit", "128",
                             "--limit", "128", "--json"} +
            extra);
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        db_ = dir_.filePath("studio.db");
        auto q = test::cli({"quantize", kModel, "--data", kData, "--calib-limit", "128", "--eval-limit", "100", "--db",
            db_, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        run_ = QJsonDocument::fromJson(q.out).object()["run_id"].toInteger();
        exported_ = dir_.filePath("w8a8.onnx");
        auto e = test::cli({"export", QString::number(run_), "--format", "qdq", "--out", exported_, "--db", db_});
        QVERIFY2(e.exitCode == 0, e.err.constData());
    }

    void w8a8Passes()
    {
        auto r = parity(exported_, {"--db", db_});
        QVERIFY2(r.exitCode == 0, (r.out + r.err).constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QVERIFY(j["passed"].toBool());
        QCOMPARE(j["flagged"].toArray().size(), 0);
        QCOMPARE(j["samples"].toInt(), 128);
        QVERIFY(j["top1_agreement"].toDouble() >= 0.99);
        const QJsonArray layers = j["layers"].toArray();
        QCOMPARE(layers.size(), 8);
        for (const auto& v : layers) {
            const QJsonObject l = v.toObject();
            QVERIFY2(l["int8"].toBool(), qPrintable(l["layer"].toString()));
            QVERIFY(!l["drifting"].toBool());
            QVERIFY(l["param_diffs"].toArray().isEmpty());
            qInfo("%-24s INT8 vs simulated: SQNR %s dB, max |diff| %.4g (%.2f steps); QDQ as written %s dB",
                qPrintable(l["layer"].toString()), qPrintable(l["sqnr_db"].toVariant().toString()),
                l["max_abs_diff"].toDouble(), l["max_diff_steps"].toDouble(),
                qPrintable(l["qdq_sqnr_db"].toVariant().toString()));
        }
        const QJsonObject cpu = j["cpu"].toObject();
        QVERIFY(!cpu["onednn_isa"].toString().isEmpty());
        QCOMPARE(cpu["saturation_risk"].toBool(),
            !cpu["onednn_isa"].toString().contains("vnni") && !cpu["onednn_isa"].toString().contains("amx") &&
                !cpu["onednn_isa"].toString().contains("bf16"));
        QVERIFY(!j["int8_kernels"].toArray().isEmpty());
        qInfo("cpu: oneDNN ISA %s, output SQNR %s dB, top-1 agreement %.4f", qPrintable(cpu["onednn_isa"].toString()),
            qPrintable(j["output_sqnr_db"].toVariant().toString()), j["top1_agreement"].toDouble());

        // Recorded: an inference run of the exported model, tagged parity, with its layers.
        Store store = Store::open(db_.toStdString(), {.mode = OpenMode::ReadOnly});
        const RunRecord rec = store.run(j["run_id"].toInteger());
        QCOMPARE(rec.kind, RunKind::Inference);
        QCOMPARE(rec.state, RunState::Done);
        QVERIFY(std::find(rec.tags.begin(), rec.tags.end(), "parity") != rec.tags.end());
        QCOMPARE(rec.metrics.extra["parity_passed"].get<bool>(), true);
        QCOMPARE(int(store.layerResults(rec.id).size()), 8);
    }

    // The reference re-derived from the stored run: no calibration options to repeat.
    void fromStoredRun()
    {
        auto r = test::cli({"parity", exported_, "--run", QString::number(run_), "--db", db_, "--data", kData,
            "--limit", "64", "--json"});
        QVERIFY2(r.exitCode == 0, (r.out + r.err).constData());
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QVERIFY(j["passed"].toBool());
        for (const auto& v : j["layers"].toArray())
            QVERIFY(v.toObject()["param_diffs"].toArray().isEmpty()); // the same quantizer as the export's
        r = test::cli(
            {"parity", exported_, "--run", QString::number(run_), "--db", db_, "--data", kData, "--calib-limit", "64"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("--calib-limit"), r.err.constData());
    }

    // A layer without an INT8 kernel (4-bit input) runs as written and says why.
    void layerWithoutInt8KernelRunsAsWritten()
    {
        const QString cfg = dir_.filePath("a4.json");
        {
            std::ofstream(cfg.toStdString()) << R"({"layers": {"/res1/conv1/Conv": {"activation": {"bits": 4}}}})";
        }
        auto q = test::cli({"quantize", kModel, "--data", kData, "--config", cfg, "--calib-limit", "64", "--eval-limit",
            "32", "--db", db_, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const QString run = QString::number(QJsonDocument::fromJson(q.out).object()["run_id"].toInteger());
        const QString out = dir_.filePath("a4.onnx");
        auto e = test::cli({"export", run, "--format", "qdq", "--out", out, "--db", db_});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        auto r = test::cli({"parity", out, "--run", run, "--db", db_, "--data", kData, "--limit", "64", "--json"});
        QVERIFY2(r.exitCode == 0, (r.out + r.err).constData());
        int int8 = 0;
        for (const auto& v : QJsonDocument::fromJson(r.out).object()["layers"].toArray()) {
            const QJsonObject l = v.toObject();
            int8 += l["int8"].toBool();
            if (l["layer"].toString() == "/res1/conv1/Conv") {
                QVERIFY(!l["int8"].toBool());
                QVERIFY2(l["not_int8"].toString().contains("16-level grid"), qPrintable(l["not_int8"].toString()));
            }
        }
        QCOMPARE(int8, 7);
    }

    // oneDNN capped below VNNI (DNNL_MAX_CPU_ISA=AVX2): u8 x s8 products go through int16
    // pairwise sums, and the rare large errors show in the steps, not in the SQNR.
    void withoutVnni()
    {
        QProcess p;
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert("DNNL_MAX_CPU_ISA", "AVX2");
        env.insert("QS_INT8_SATURATING", "1"); // else INT8 layers take exact reference kernels
        p.setProcessEnvironment(env);
        p.start(QS_CLI_PATH,
            {"parity", exported_, "--reference", kModel, "--data", kData, "--calib-limit", "128", "--limit", "128",
                "--json"});
        QVERIFY(p.waitForFinished(300000));
        const QJsonObject j = QJsonDocument::fromJson(p.readAllStandardOutput()).object();
        QVERIFY2(p.exitCode() == 0 || p.exitCode() == 3, p.readAllStandardError().constData());
        if (!j["cpu"].toObject()["avx2"].toBool())
            QSKIP("no AVX2 on this CPU");
        QCOMPARE(j["cpu"].toObject()["onednn_isa"].toString(), QString("avx2"));
        QVERIFY(j["cpu"].toObject()["saturation_risk"].toBool());
        QString worst;
        double worstDb = INFINITY;
        for (const auto& v : j["layers"].toArray()) {
            const QJsonObject l = v.toObject();
            const double db = l["sqnr_db"].isString() ? INFINITY : l["sqnr_db"].toDouble();
            if (db < worstDb) {
                worstDb = db;
                worst = l["layer"].toString();
            }
        }
        qInfo("DNNL_MAX_CPU_ISA=AVX2: passed %d, flagged %d, output SQNR %s dB, top-1 agreement %.4f, lowest layer "
              "SQNR %.2f dB (%s)",
            j["passed"].toBool(), int(j["flagged"].toArray().size()),
            qPrintable(j["output_sqnr_db"].toVariant().toString()), j["top1_agreement"].toDouble(), worstDb,
            qPrintable(worst));
        // oneDNN's AVX2 int8 convolution sums u8 x s8 pairs in int16 (vpmaddubsw). The
        // independent reference: the pair sums by a naive loop over the exported codes and
        // the u8 inputs on the same images. A layer whose saturation moves an output by
        // more than --max-steps (10) must be flagged unless drift upstream already
        // explains it, and every flagged layer must saturate by a few steps at least.
        const auto sat = int16Saturation(exported_, test::demoData(128).first());
        std::set<QString> flagged, drifting;
        for (const auto& v : j["flagged"].toArray())
            flagged.insert(v.toString());
        const double threshold = j["threshold_db"].toDouble();
        for (const auto& v : j["layers"].toArray()) {
            const QJsonObject l = v.toObject();
            const QString name = l["layer"].toString();
            const auto it = sat.find(name.toStdString());
            const Saturation s = it == sat.end() ? Saturation {} : it->second;
            qInfo("%-24s saturated pairs %lld, largest change %.2f steps; parity %.2f steps%s", qPrintable(name),
                (long long)s.pairs, s.maxSteps, l["max_diff_steps"].toDouble(), flagged.count(name) ? ", flagged" : "");
            const bool inputDrifts = !l["input_sqnr_db"].isString() && l["input_sqnr_db"].toDouble() < threshold;
            if (flagged.count(name))
                QVERIFY2(s.maxSteps >= 4, qPrintable(name + " is flagged without int16 saturation"));
            else if (!inputDrifts)
                QVERIFY2(s.maxSteps <= 2 * 10, qPrintable(name + " saturates by many steps but is not flagged"));
        }
        QCOMPARE(p.exitCode(), flagged.empty() ? 0 : 3);
        QVERIFY2(!flagged.empty() ||
                std::all_of(sat.begin(), sat.end(), [](const auto& e) { return e.second.maxSteps <= 10; }),
            "saturation beyond --max-steps but nothing flagged");
    }

    void perturbedLayerIsFlagged_data()
    {
        QTest::addColumn<QString>("layer");
        QTest::addColumn<QString>("edit");
        QTest::newRow("weight scales x1.25") << "/res1/conv2/Conv"
                                             << "scale";
        QTest::newRow("weight codes +40") << "/down2/down2.0/Conv"
                                          << "codes";
    }

    void perturbedLayerIsFlagged()
    {
        QFETCH(QString, layer);
        QFETCH(QString, edit);
        onnx::ModelProto m;
        {
            std::ifstream in(exported_.toStdString(), std::ios::binary);
            QVERIFY(m.ParseFromIstream(&in));
        }
        const std::string w = weightOf(layer.toStdString());
        if (edit == "scale") {
            onnx::TensorProto* t = initializer(m, w + "_qs.scale");
            std::string raw = t->raw_data();
            QVERIFY(!raw.empty());
            for (std::size_t i = 0; i + 4 <= raw.size(); i += 4) {
                float f;
                std::memcpy(&f, raw.data() + i, 4);
                f *= 1.25f;
                std::memcpy(raw.data() + i, &f, 4);
            }
            t->set_raw_data(raw);
        } else {
            onnx::TensorProto* t = initializer(m, w + "_qs.quantized");
            std::string raw = t->raw_data();
            for (std::size_t i = 0; i < raw.size(); i += 3)
                raw[i] = char(int8_t(std::clamp(int(int8_t(raw[i])) + 40, -127, 127)));
            t->set_raw_data(raw);
        }
        const QString path = dir_.filePath("perturbed-" + edit + ".onnx");
        {
            std::ofstream out(path.toStdString(), std::ios::binary);
            QVERIFY(m.SerializeToOstream(&out));
        }
        auto r = parity(path);
        QCOMPARE(r.exitCode, 3);
        const QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QVERIFY(!j["passed"].toBool());
        QCOMPARE(j["flagged"].toArray().size(), 1);
        QCOMPARE(j["flagged"].toArray()[0].toString(), layer);
        bool before = true;
        int drifted = 0; // downstream layers drifting (inherited)
        for (const auto& v : j["layers"].toArray()) {
            const QJsonObject l = v.toObject();
            if (l["layer"].toString() == layer) {
                before = false;
                QVERIFY(l["introduced"].toBool());
                const double alone = l["alone_sqnr_db"].toDouble();
                QVERIFY2(alone < 30 || l["alone_max_diff_steps"].toDouble() > 10, qPrintable(QString::number(alone)));
                QVERIFY(!l["param_diffs"].toArray().isEmpty()); // the file differs from the simulated quantizer
                qInfo("%s (%s edited): SQNR %.2f dB, max |diff| %.4g; %s", qPrintable(layer), qPrintable(edit),
                    l["sqnr_db"].toDouble(), l["max_abs_diff"].toDouble(),
                    qPrintable(l["param_diffs"].toArray()[0].toString()));
            } else if (before) {
                QVERIFY2(!l["drifting"].toBool(), qPrintable(l["layer"].toString()));
            } else {
                QVERIFY(!l["introduced"].toBool()); // downstream drift is inherited
                // Alone (fed the simulation's input) a downstream INT8 layer is within
                // rounding of the simulation, however far its inherited drift goes.
                const double alone = l["alone_sqnr_db"].isString() ? INFINITY : l["alone_sqnr_db"].toDouble();
                QVERIFY2(!l["int8"].toBool() || (alone >= 30 && l["alone_max_diff_steps"].toDouble() <= 10),
                    qPrintable(QString("%1: alone %2 dB, %3 steps")
                                   .arg(l["layer"].toString())
                                   .arg(alone)
                                   .arg(l["alone_max_diff_steps"].toDouble())));
                drifted += l["drifting"].toBool();
            }
        }
        qInfo("%d downstream layers drift (inherited), none alone", drifted);
        // Text output names the layer too.
        auto text = test::cli(
            {"parity", path, "--reference", kModel, "--data", kData, "--calib-limit", "128", "--limit", "64"});
        QCOMPARE(text.exitCode, 3);
        QVERIFY2(text.out.contains("FAILED") && text.out.contains(layer.toUtf8()), text.out.constData());
    }

    // The re-imported weights are the file's integers times its scales (naive loop).
    void loweredWeightsAreTheFilesIntegers()
    {
        onnx::ModelProto m;
        std::ifstream in(exported_.toStdString(), std::ios::binary);
        QVERIFY(m.ParseFromIstream(&in));
        const QdqLowered low = lowerQdqModel(importOnnx(exported_.toStdString()), "w8a8.onnx");
        QCOMPARE(int(low.layers.size()), 8);
        int checked = 0;
        for (const auto& l : low.layers) {
            const std::string codes = initializer(m, l.weight + "_qs.quantized")->raw_data();
            const std::string scaleRaw = initializer(m, l.weight + "_qs.scale")->raw_data();
            std::vector<float> scales(scaleRaw.size() / 4);
            std::memcpy(scales.data(), scaleRaw.data(), scaleRaw.size());
            const auto got = low.graph.initializers.at(l.weight).toFloat();
            QCOMPARE(got.size(), codes.size());
            const std::size_t perChannel = codes.size() / scales.size(); // axis 0: output channels
            for (std::size_t e = 0; e < codes.size(); ++e)
                QCOMPARE(got[e], float(int8_t(codes[e])) * scales[e / perChannel]);
            QVERIFY(l.weightQuantized && l.inputQuantized);
            ++checked;
        }
        QCOMPARE(checked, 8);
    }

    // As written (float QDQ) vs ONNX Runtime without optimizations; INT8 vs ORT's integer kernels.
    void loweredRunsAgainstOnnxRuntime()
    {
        const QdqLowered low = lowerQdqModel(importOnnx(exported_.toStdString()), "w8a8.onnx");
        const Dataset eval = test::demoData(200);
        Shape shape = eval.first().shape;
        auto plain = compilePlan(low.graph, low.simulated(shape))->run(eval.batch(0, eval.count())).front().toFloat();
        auto int8 = compilePlan(low.graph, low.int8(shape))->run(eval.batch(0, eval.count())).front().toFloat();
        const auto ortPlain = test::ortLogits(exported_, eval, "disabled", dir_.path());
        const auto ortFused = test::ortLogits(exported_, eval, "all", dir_.path());
        QCOMPARE(ortPlain.size(), plain.size());
        double sumDiff = 0, maxLogit = 0;
        for (std::size_t i = 0; i < plain.size(); ++i) {
            sumDiff += std::abs(plain[i] - ortPlain[i]);
            maxLogit = std::max(maxLogit, double(std::abs(ortPlain[i])));
        }
        const auto a = argmaxRows(plain, 200), b = argmaxRows(ortPlain, 200), c = argmaxRows(int8, 200),
                   d = argmaxRows(ortFused, 200);
        int plainAgree = 0, int8Agree = 0;
        for (int i = 0; i < 200; ++i) {
            plainAgree += a[std::size_t(i)] == b[std::size_t(i)];
            int8Agree += c[std::size_t(i)] == d[std::size_t(i)];
        }
        qInfo(
            "lowered QDQ as written vs ORT (no optimization): top-1 %d/200, mean |logit diff| %.3g (max |logit| %.3g); "
            "INT8 vs ORT integer kernels: top-1 %d/200",
            plainAgree, sumDiff / double(plain.size()), maxLogit, int8Agree);
        QVERIFY(plainAgree >= 199);
        QVERIFY(sumDiff / double(plain.size()) <= 1e-3 * maxLogit);
        // ORT's integer kernels saturate like oneDNN's on CPUs without VNNI (see test_export).
        const qs::CpuIsa isa = qs::detectCpuIsa();
        if (isa.avx512Vnni || isa.avxVnni || isa.amx)
            QVERIFY(int8Agree >= 196);
        else
            qInfo("no VNNI on this CPU: ORT's integer kernels are not a reference here");
    }

    // Q/DQ patterns the re-import cannot take apart are refused, naming the node.
    void loweringErrors_data()
    {
        QTest::addColumn<int>("scales");
        QTest::addColumn<bool>("dequantized");
        QTest::addColumn<QString>("expected");
        QTest::newRow("per-axis activation") << 4 << true << "per-axis activation";
        QTest::newRow("no DequantizeLinear") << 1 << false << "expected one DequantizeLinear";
    }

    void loweringErrors()
    {
        QFETCH(int, scales);
        QFETCH(bool, dequantized);
        QFETCH(QString, expected);
        test::OnnxBuilder b;
        b.input("x", {1, 4});
        b.initializer("s", scales > 1 ? std::vector<int64_t> {scales} : std::vector<int64_t> {},
            std::vector<float>(std::size_t(scales), 0.1f));
        auto* zp = b.model().mutable_graph()->add_initializer();
        zp->set_name("z");
        zp->set_data_type(onnx::TensorProto::UINT8);
        if (scales > 1)
            zp->add_dims(scales);
        zp->set_raw_data(std::string(std::size_t(scales), char(0)));
        auto* q = b.node("QuantizeLinear", {"x", "s", "z"}, {"xq"}, "q");
        if (scales > 1)
            test::OnnxBuilder::intAttr(q, "axis", 1);
        if (dequantized) {
            auto* d = b.node("DequantizeLinear", {"xq", "s", "z"}, {"y"}, "dq");
            if (scales > 1)
                test::OnnxBuilder::intAttr(d, "axis", 1);
            b.output("y", {1, 4});
        } else {
            b.node("Identity", {"xq"}, {"y"}, "id");
            b.output("y", {1, 4}, onnx::TensorProto::UINT8);
        }
        const Graph g = importOnnxBytes(b.bytes(), "q.onnx", "");
        try {
            lowerQdqModel(g, "q.onnx");
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(
                QString(e.what()).contains(expected) && QString(e.what()).contains("q.onnx: node \"q\""), e.what());
        }
    }

    void errors()
    {
        auto r = test::cli({"parity", kModel, "--reference", kModel, "--data", kData, "--limit", "16"});
        QCOMPARE(r.exitCode, 1); // a float model: its layers have nothing quantized to run in INT8
        QVERIFY2(r.err.contains("not a QDQ export"), r.err.constData());
        r = test::cli({"parity", exported_, "--data", kData});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.err.contains("--reference"));
    }
};

QTEST_GUILESS_MAIN(TestParity)
#include "test_parity.moc"
