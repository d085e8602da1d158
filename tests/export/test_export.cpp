// Exporting stored quantization runs of the demo model: QDQ ONNX checked by libonnx's
// checker and run in ONNX Runtime (node + onnxruntime-node) against our own quantized
// execution, AIMET encodings against an independent recomputation from the stored
// ranges, the HTML/CSV report, the artifact rows, and the errors.
#include "export/png.h"
#include "export/replay.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "record/export_run.h"
#include "runtime/cpu_isa.h"
#include "store/store.h"
#include "support/onnx_builder.h"
#include "util/error.h"
#include "util/file.h"
#include "util/hash.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"
#include "support/ort_runner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace {

using Cli = qs::test::CliResult;
using qs::test::cli;

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const QString kNodeModules = QS_SOURCE_DIR "/bench/ort/node_modules";

std::string readFile(const QString& path)
{
    std::ifstream in(path.toStdString(), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

using qs::test::argmaxRows;

struct RunCase {
    int64_t id = 0;
    double top1 = 0;
    int evalSamples = 1000; // the run's evaluation: the first N images of the slice
    int wbits = 8;
    bool symmetricActs = false;
};

} // namespace

class TestExport : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString db_;
    std::map<QString, RunCase> runs_;

    RunCase quantize(const QStringList& extra, int evalSamples = 1000)
    {
        Cli r = cli(QStringList {"quantize", kModel, "--data", kData, "--calib-limit", "128", "--eval-limit",
                        QString::number(evalSamples), "--db", db_, "--json"} +
            extra);
        if (r.exitCode != 0)
            qFatal("quantize failed: %s", r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        return {j["run_id"].toInteger(), j["top1"].toDouble(), evalSamples, 8, false};
    }

    // Our quantized execution of the run (the re-derived session's simulated Plan), in
    // the run's batches so that every sample goes through the same kernels as then.
    std::vector<float> ourLogits(const qs::QuantSession& session, const qs::Dataset& eval)
    {
        const int64_t batch = session.options().batch;
        std::unique_ptr<qs::Plan> plan;
        int64_t planBatch = -1;
        std::vector<float> out;
        for (int64_t s = 0; s < eval.count(); s += batch) {
            const int64_t n = std::min(batch, eval.count() - s);
            if (n != planBatch) {
                qs::Shape shape = eval.first().shape;
                shape[0] = n;
                plan = session.compile(true, shape);
                planBatch = n;
            }
            auto logits = plan->run(eval.batch(s, n)).front().toFloat();
            out.insert(out.end(), logits.begin(), logits.end());
        }
        return out;
    }

    std::vector<float> ortLogits(const QString& model, const qs::Dataset& eval, const QString& optimization)
    {
        return qs::test::ortLogits(model, eval, optimization, dir_.path());
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        db_ = dir_.filePath("studio.db");
        runs_["w8a8"] = quantize({});
        // The other runs evaluate 300 images (test time); ORT still sees all 1000.
        RunCase w4 = quantize({"--wbits", "4", "--granularity", "group:16", "--bias-correction"}, 300);
        w4.wbits = 4;
        runs_["w4a8-group16-bias-correction"] = w4;
        // Symmetric (int8) activations: the restricted grid [-127, 127] needs a Clip.
        const QString cfg = dir_.filePath("sym.json");
        QFile f(cfg);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(R"({"default": {"activation": {"symmetric": true, "calibrator": "percentile:99.9"}}})");
        f.close();
        RunCase sym = quantize({"--config", cfg}, 300);
        sym.symmetricActs = true;
        runs_["w8a8-symmetric-acts"] = sym;
    }

    void qdqRunsInOrt_data()
    {
        QTest::addColumn<QString>("name");
        for (const auto& [name, run] : runs_)
            QTest::newRow(qPrintable(name)) << name;
    }

    void qdqRunsInOrt()
    {
        QFETCH(QString, name);
        const RunCase run = runs_.at(name);
        const QString out = dir_.filePath(name + ".onnx");
        Cli r = cli({"export", QString::number(run.id), "--format", "qdq", "--out", out, "--db", db_, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["checked_layers"].toInt(), 8);

        // libonnx's own checker, called directly.
        onnx::ModelProto model;
        const std::string bytes = readFile(out);
        QVERIFY(model.ParseFromString(bytes));
        try {
            onnx::checker::check_model(model);
        } catch (const std::exception& e) {
            QFAIL(e.what());
        }
        int q = 0, dq = 0, clips = 0;
        for (const auto& n : model.graph().node()) {
            q += n.op_type() == "QuantizeLinear";
            dq += n.op_type() == "DequantizeLinear";
            clips += n.op_type() == "Clip";
        }
        QVERIFY2(q >= 7, qPrintable(QString::number(q)));
        QCOMPARE(dq, q + 8); // one per activation, one per weight
        QCOMPARE(clips > 0, run.symmetricActs);
        std::string weightBits;
        for (const auto& kv : model.metadata_props())
            if (kv.key() == "quantstudio.weight_bits")
                weightBits = kv.value();
        auto wb = nlohmann::json::parse(weightBits);
        QCOMPARE(int(wb.size()), 8);
        for (const auto& [layer, bits] : wb.items())
            QCOMPARE(bits.get<int>(), run.wbits);
        // Weights: int8 containers, values on the true grid, per-channel scales along axis 0.
        int weights = 0;
        const int qmax = (1 << (run.wbits - 1)) - 1;
        for (const auto& t : model.graph().initializer()) {
            if (!QString::fromStdString(t.name()).endsWith(".quantized"))
                continue;
            ++weights;
            QCOMPARE(t.data_type(), int(onnx::TensorProto::INT8));
            int lo = 127, hi = -128;
            for (char c : t.raw_data()) {
                lo = std::min(lo, int(int8_t(c)));
                hi = std::max(hi, int(int8_t(c)));
            }
            QVERIFY(lo >= -qmax && hi <= qmax);
            QVERIFY(hi == qmax || lo == -qmax); // min-max per channel reaches the grid's end
        }
        QCOMPARE(weights, 8);
        const double storedBits = j["stored_size_bits"].toDouble(), trueBits = j["true_size_bits"].toDouble();
        QVERIFY(storedBits > 0 && trueBits > 0);
        if (run.wbits < 8)
            QVERIFY(storedBits > trueBits * 1.3);

        // ORT vs our quantized execution of the same run on the 1000-image slice.
        qs::Store store = qs::Store::open(db_.toStdString(), {.mode = qs::OpenMode::ReadOnly});
        qs::Progress progress;
        qs::CancelToken cancel;
        qs::RunReplay replay = qs::replayRun(store, run.id, progress, cancel);
        qs::DataOptions evalOpts;
        evalOpts.spec = kData.toStdString();
        qs::Dataset eval = qs::loadDataset(evalOpts, replay.source);
        QCOMPARE(eval.count(), 1000);
        const std::vector<float> ours = ourLogits(*replay.session, eval), ort = ortLogits(out, eval, "all");
        QCOMPARE(ort.size(), ours.size());
        const auto a = argmaxRows(ours, eval.count()), b = argmaxRows(ort, eval.count());
        int agree = 0, ourHits = 0, ortHits = 0, ourHitsInRun = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            agree += a[i] == b[i];
            ourHits += a[i] == (*eval.labels)[i];
            ortHits += b[i] == (*eval.labels)[i];
            if (int(i) < run.evalSamples)
                ourHitsInRun += a[i] == (*eval.labels)[i];
        }
        const double agreement = agree / 1000.0, ourTop1 = ourHits / 1000.0, ortTop1 = ortHits / 1000.0;
        // ORT executing the QDQ nodes as written (no fusion into integer kernels) is the
        // same arithmetic as our simulation, up to float summation order in the convs:
        // that moves a rare activation across a rounding boundary (one step of its grid),
        // so logits agree closely on average and exactly in almost all places.
        const std::vector<float> plain = ortLogits(out, eval, "disabled");
        QCOMPARE(plain.size(), ours.size());
        double maxDiff = 0, maxPlainDiff = 0, maxLogit = 0, sumPlainDiff = 0;
        int plainAgree = 0;
        const auto c = argmaxRows(plain, eval.count());
        for (std::size_t i = 0; i < a.size(); ++i)
            plainAgree += a[i] == c[i];
        for (std::size_t i = 0; i < ours.size(); ++i) {
            sumPlainDiff += std::abs(ours[i] - plain[i]);
            maxDiff = std::max(maxDiff, double(std::abs(ours[i] - ort[i])));
            maxPlainDiff = std::max(maxPlainDiff, double(std::abs(ours[i] - plain[i])));
            maxLogit = std::max(maxLogit, double(std::abs(ours[i])));
        }
        qInfo("%s: ORT (optimized) vs ours on 1000 images: top-1 agreement %.3f, top-1 ours %.3f ORT %.3f, max |logit "
              "diff| %.3g; ORT unoptimized: agreement %.3f, mean |logit diff| %.3g, max %.3g (max |logit| %.3g)",
            qPrintable(name), agreement, ourTop1, ortTop1, maxDiff, plainAgree / 1000.0,
            sumPlainDiff / double(ours.size()), maxPlainDiff, maxLogit);
        // The re-derived session is the run's quantizer: same top-1 on the run's samples.
        QCOMPARE(ourHitsInRun / double(run.evalSamples), run.top1);
        // ORT's optimized graph runs u8 x s8 integer kernels, which saturate at int16 pair
        // sums on CPUs without VNNI (as oneDNN's do): there only the unoptimized
        // (float) execution below is a reference.
        const qs::CpuIsa isa = qs::detectCpuIsa();
        if (isa.avx512Vnni || isa.avxVnni || isa.amx) {
            QVERIFY(agreement >= 0.99);
            QVERIFY(std::abs(ortTop1 - ourTop1) <= 0.005);
        } else {
            qInfo("no VNNI on this CPU: ORT's optimized integer kernels are not a reference here");
        }
        QVERIFY(plainAgree >= 998);
        QVERIFY2(sumPlainDiff / double(ours.size()) <= 1e-4 * maxLogit, qPrintable(QString::number(sumPlainDiff)));
        QVERIFY2(maxPlainDiff <= 0.01 * maxLogit, qPrintable(QString::number(maxPlainDiff)));
    }

    // Through the core API, without the store: affine 3-bit per-tensor weights (uint8
    // containers with a zero point) and affine 4-bit activations (uint8, clamped to the
    // 4-bit grid by a Clip after the DequantizeLinear; with the Clip in front of the
    // QuantizeLinear ONNX Runtime's optimized session agreed on only 168 of 200).
    void affineLowBitThroughCoreApi()
    {
        qs::Graph model = qs::importOnnx(kModel.toStdString());
        qs::DataOptions data;
        data.spec = kData.toStdString();
        data.limit = 200;
        const qs::Dataset eval = qs::loadDataset(data, model);
        qs::QuantizeOptions opts;
        opts.config.defaults.weight = {.bits = 3, .symmetric = false, .granularity = qs::Granularity::Tensor};
        opts.config.defaults.activation = {.bits = 4, .symmetric = false};
        opts.calibLimit = 64;
        qs::QuantSession session(model, opts);
        qs::Progress progress;
        qs::CancelToken cancel;
        session.calibrate(eval, progress, cancel);
        session.quantizeWeights();
        const qs::QdqModel qdq = qs::buildQdqModel(session);
        const std::string bytes = qs::exportOnnxBytes(qdq.graph);
        qs::checkOnnxBytes(bytes, "affine.onnx");
        const QString path = dir_.filePath("affine.onnx");
        qs::writeFileAtomic(path.toStdString(), bytes);
        int weights = 0;
        for (const auto& [name, t] : qdq.graph.initializers) {
            if (!QString::fromStdString(name).endsWith(".quantized"))
                continue;
            ++weights;
            QCOMPARE(t.dtype, qs::DType::UInt8);
            for (uint8_t v : t.data<uint8_t>())
                QVERIFY(v <= 7);
        }
        QCOMPARE(weights, 8);
        const std::vector<float> ours = ourLogits(session, eval), plain = ortLogits(path, eval, "disabled"),
                                 fused = ortLogits(path, eval, "all");
        const auto a = argmaxRows(ours, eval.count()), b = argmaxRows(plain, eval.count()),
                   c = argmaxRows(fused, eval.count());
        int plainAgree = 0, fusedAgree = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            plainAgree += a[i] == b[i];
            fusedAgree += a[i] == c[i];
        }
        qInfo("W3 affine per-tensor, A4 affine: ORT unoptimized agrees on %d, optimized on %d of %lld", plainAgree,
            fusedAgree, (long long)eval.count());
        QVERIFY(plainAgree >= 0.99 * double(eval.count()));
        QVERIFY(fusedAgree >= 0.99 * double(eval.count()));
    }

    void encodingsMatchRun()
    {
        const RunCase run = runs_.at("w4a8-group16-bias-correction");
        const QString out = dir_.filePath("enc.json");
        Cli r = cli({"export", QString::number(run.id), "--format", "encodings", "--out", out, "--db", db_});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const nlohmann::json enc = nlohmann::json::parse(readFile(out));
        qs::Store store = qs::Store::open(db_.toStdString(), {.mode = qs::OpenMode::ReadOnly});
        const auto layers = store.layerResults(run.id);
        QCOMPARE(int(enc["param_encodings"].size()), 8);
        // Every stored activation range gives the affine 8-bit encoding, recomputed here.
        int acts = 0;
        for (const auto& [tensor, list] : enc["activation_encodings"].items()) {
            QCOMPARE(int(list.size()), 1);
            const auto& e = list[0];
            QCOMPARE(e["bitwidth"].get<int>(), 8);
            QCOMPARE(e["is_symmetric"].get<std::string>(), std::string("False"));
            QCOMPARE(e["dtype"].get<std::string>(), std::string("int"));
            bool matched = false;
            for (const auto& l : layers) {
                if (!l.actClip)
                    continue;
                const float lo = std::min(float(l.actClip->lo), 0.f), hi = std::max(float(l.actClip->hi), 0.f);
                const float scale = (hi - lo) / 255.f;
                if (std::abs(e["scale"].get<double>() - scale) > 1e-7 * scale)
                    continue;
                matched = true;
                QCOMPARE(e["offset"].get<int>(), -int(std::nearbyint(-lo / scale)));
                QVERIFY(std::abs(e["min"].get<double>() - e["offset"].get<int>() * scale) <= 1e-6 * (hi - lo));
                QVERIFY(std::abs(e["max"].get<double>() - (e["offset"].get<int>() + 255) * scale) <= 1e-6 * (hi - lo));
                QVERIFY(e["min"].get<double>() <= 0 && e["max"].get<double>() >= 0);
            }
            QVERIFY2(matched, tensor.c_str());
            ++acts;
        }
        QVERIFY(acts >= 7);
        // Weight encodings: 4-bit symmetric, one per group of 16 input channels (one per
        // output channel where a layer has fewer inputs); their scale range is the stored one.
        std::vector<std::pair<double, double>> storedScales;
        std::vector<int64_t> storedBlocks, exportedBlocks;
        for (const auto& l : layers) {
            storedScales.push_back({l.scales["min"].get<double>(), l.scales["max"].get<double>()});
            // size = params x 4 bits + one 32-bit scale per block (symmetric: no zero points)
            storedBlocks.push_back((*l.sizeBits - l.extra["params"].get<int64_t>() * 4) / 32);
        }
        std::vector<std::pair<double, double>> exported;
        for (const auto& [weight, list] : enc["param_encodings"].items()) {
            QVERIFY(list.size() > 1);
            double lo = INFINITY, hi = 0;
            for (const auto& e : list) {
                QCOMPARE(e["bitwidth"].get<int>(), 4);
                QCOMPARE(e["is_symmetric"].get<std::string>(), std::string("True"));
                QCOMPARE(e["offset"].get<int>(), -7);
                lo = std::min(lo, e["scale"].get<double>());
                hi = std::max(hi, e["scale"].get<double>());
            }
            exported.push_back({lo, hi});
            exportedBlocks.push_back(int64_t(list.size()));
        }
        std::sort(storedScales.begin(), storedScales.end());
        std::sort(exported.begin(), exported.end());
        QCOMPARE(exported, storedScales);
        std::sort(storedBlocks.begin(), storedBlocks.end());
        std::sort(exportedBlocks.begin(), exportedBlocks.end());
        QCOMPARE(exportedBlocks, storedBlocks);
    }

    void reportHasTablesAndCharts()
    {
        const RunCase run = runs_.at("w8a8");
        const QString out = dir_.filePath("report.html");
        Cli r = cli({"export", QString::number(run.id), "--format", "report", "--out", out, "--db", db_});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QString page = QString::fromStdString(readFile(out));
        qs::Store store = qs::Store::open(db_.toStdString(), {.mode = qs::OpenMode::ReadOnly});
        const auto layers = store.layerResults(run.id);
        for (const char* needle : {"<table id=\"metrics\">", "<table id=\"layers\">", "<pre id=\"config\">",
                 "<table id=\"artifacts\">", "report-csv", "minmax"})
            QVERIFY2(page.contains(needle), needle);
        // Every earlier export of the run is listed with its size on disk and hash.
        for (const auto& a : store.artifacts(run.id))
            if (a.format != "report-html")
                QVERIFY2(page.contains(QString::fromStdString(a.hash)) &&
                        page.contains(QString("<td>%1</td>").arg(a.sizeBytes)),
                    a.path.c_str());
        QVERIFY(page.contains(QString::number(run.top1)));
        for (const auto& l : layers)
            QVERIFY2(page.contains(QString::fromStdString(l.layer)), l.layer.c_str());
        // Two embedded charts that decode as PNG images.
        static const QRegularExpression img("data:image/png;base64,([A-Za-z0-9+/=]+)");
        int charts = 0;
        for (auto it = img.globalMatch(page); it.hasNext(); ++charts) {
            QImage image = QImage::fromData(QByteArray::fromBase64(it.next().captured(1).toLatin1()), "PNG");
            QVERIFY(!image.isNull());
            QCOMPARE(image.height(), 160);
        }
        QCOMPARE(charts, 2);

        const QStringList csv =
            QString::fromStdString(readFile(dir_.filePath("report.csv"))).split("\r\n", Qt::SkipEmptyParts);
        QCOMPARE(csv.size(), 9);
        QVERIFY(csv[0].startsWith("layer,op,weight_bits,act_bits,granularity,params,size_bits"));
        for (std::size_t i = 0; i < layers.size(); ++i) {
            const QStringList f = csv[int(i) + 1].split(',');
            QCOMPARE(f[0], QString::fromStdString(layers[i].layer));
            QCOMPARE(f[2], QString("8"));
            QCOMPARE(f[6].toLongLong(), *layers[i].sizeBits);
            QCOMPARE(f[8].toDouble(), *layers[i].sqnrDb);
        }
    }

    void artifactsRecorded()
    {
        qs::Store store = qs::Store::open(db_.toStdString(), {.mode = qs::OpenMode::ReadOnly});
        std::map<std::string, int> formats;
        for (const auto& [name, run] : runs_)
            for (const auto& a : store.artifacts(run.id)) {
                ++formats[a.format];
                QCOMPARE(a.runId, run.id);
                QCOMPARE(a.hash, qs::sha256File(a.path));
                QCOMPARE(a.sizeBytes, qint64(QFileInfo(QString::fromStdString(a.path)).size()));
            }
        QCOMPARE(formats["onnx-qdq"], 3);
        QCOMPARE(formats["encodings-json"], 1);
        QCOMPARE(formats["report-html"], 1);
        QCOMPARE(formats["report-csv"], 1);
    }

    void pngDecodesAsDrawn()
    {
        qs::Canvas c(5, 3, {255, 255, 255});
        c.fill(1, 0, 3, 2, {10, 200, 30});
        QImage image = QImage::fromData(QByteArray::fromStdString(c.png()), "PNG");
        QVERIFY(!image.isNull());
        QCOMPARE(image.size(), QSize(5, 3));
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 5; ++x) {
                const bool in = x >= 1 && x < 3 && y < 2;
                QCOMPARE(image.pixelColor(x, y), in ? QColor(10, 200, 30) : QColor(255, 255, 255));
            }
        QCOMPARE(QByteArray::fromStdString(qs::base64("ab?")), QByteArray("ab?").toBase64());
        QCOMPARE(QByteArray::fromStdString(qs::base64("abcd")), QByteArray("abcd").toBase64());
    }

    // Why weights below 8 bits are stored in int8 containers: a valid INT4 QDQ file is
    // IR version 10 + opset 21. The installed ONNX Runtime runs it; the libonnx here
    // (1.12: IR <= 8, opset <= 17) rejects it. (An IR-8 file with INT4 tensors slips
    // through its checker, which knows no INT4 schema to test, but is not valid ONNX.)
    // Both facts are checked, so this fails, saying so, once the checker takes IR 10.
    void int4NeedsNewerChecker()
    {
        constexpr int kInt4 = 22; // TensorProto.INT4 (onnx >= 1.16)
        onnx::ModelProto m;
        m.set_ir_version(10); // INT4/UINT4 exist from IR version 10 (ONNX 1.16) on
        auto* op = m.add_opset_import();
        op->set_domain("");
        op->set_version(21);
        auto* g = m.mutable_graph();
        g->set_name("int4");
        auto* w = g->add_initializer();
        w->set_name("w");
        w->set_data_type(kInt4);
        w->add_dims(4);
        w->set_raw_data(std::string("\x21\xF9", 2)); // 1, 2, -7, -1: low nibble first
        auto* sc = g->add_initializer();
        sc->set_name("s");
        sc->set_data_type(onnx::TensorProto::FLOAT);
        const float half = 0.5f;
        sc->set_raw_data(std::string(reinterpret_cast<const char*>(&half), 4));
        auto* n = g->add_node();
        n->set_op_type("DequantizeLinear");
        n->add_input("w");
        n->add_input("s");
        n->add_output("y");
        auto* out = g->add_output();
        out->set_name("y");
        out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
        out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(4);
        const QString path = dir_.filePath("int4.onnx");
        {
            std::ofstream f(path.toStdString(), std::ios::binary);
            f << m.SerializeAsString();
        }
        bool checkerAccepts = true;
        try {
            onnx::checker::check_model(m);
        } catch (const std::exception& e) {
            checkerAccepts = false;
            qInfo("libonnx checker on INT4 opset 21: %s", e.what());
        }
        QProcess p;
        auto env = QProcessEnvironment::systemEnvironment();
        env.insert("NODE_PATH", kNodeModules);
        p.setProcessEnvironment(env);
        p.start(QStandardPaths::findExecutable("node"),
            {"-e",
                "const ort=require('onnxruntime-node');ort.InferenceSession.create(process.argv[1]).then(s=>"
                "s.run({})).then(r=>console.log(Array.from(r.y.data).join(',')))"
                ".catch(e=>{console.error(String(e));process.exit(1)})",
                path});
        p.waitForFinished(60000);
        const QByteArray values = p.readAllStandardOutput().trimmed();
        qInfo("ONNX Runtime on INT4 opset 21: %s%s", values.isEmpty() ? "rejected: " : "accepted, y = ",
            values.isEmpty() ? p.readAllStandardError().constData() : values.constData());
        QCOMPARE(values, QByteArray("0.5,1,-3.5,-0.5"));
        QVERIFY2(!checkerAccepts, "the libonnx checker now accepts INT4: export INT4 QDQ (opset 21) instead of int8");
    }

    void errors_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("no such run") << QStringList {"999", "--format", "qdq", "--out", "x.onnx"} << "999";
        QTest::newRow("bad format") << QStringList {"1", "--format", "tflite", "--out", "x"}
                                    << "expected qdq, encodings or report";
        QTest::newRow("no out") << QStringList {"1", "--format", "qdq"} << "--out";
        QTest::newRow("bad id") << QStringList {"abc", "--format", "qdq", "--out", "x"} << "run id";
    }

    void errors()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        Cli r = cli(QStringList {"export"} + args + QStringList {"--db", db_});
        QVERIFY(r.exitCode != 0);
        QVERIFY2(r.err.contains(message.toUtf8()), r.err.constData());
        QVERIFY(r.err.trimmed().count('\n') == 0);
    }

    void changedModelIsRefused()
    {
        const QString copy = dir_.filePath("copy.onnx");
        QVERIFY(QFile::copy(kModel, copy));
        Cli q = cli(
            {"quantize", copy, "--data", kData, "--calib-limit", "32", "--eval-limit", "32", "--db", db_, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const qint64 id = QJsonDocument::fromJson(q.out).object()["run_id"].toInteger();
        {
            QFile f(copy);
            QVERIFY(f.open(QIODevice::Append));
            f.write("x");
        }
        Cli r = cli(
            {"export", QString::number(id), "--format", "encodings", "--out", dir_.filePath("e.json"), "--db", db_});
        QVERIFY(r.exitCode != 0);
        QVERIFY2(r.err.contains("changed since the run"), r.err.constData());
        QVERIFY(!QFileInfo::exists(dir_.filePath("e.json")));
    }
};

QTEST_GUILESS_MAIN(TestExport)
#include "test_export.moc"
