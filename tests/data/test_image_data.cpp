// Image datasets: decoding against Pillow (tests/data/images/refs, made by make_refs.py),
// each --preprocess preset against a Pillow/NumPy implementation of torchvision's,
// PaddleOCR's and Ultralytics' pipelines, the pipeline's text/JSON forms, images:DIR and
// imagelist:FILE (labels, class index, limit, streaming order, threads, cancel), one-line
// errors for malformed files, and `quantstudio-cli run --data images:DIR` against the
// reference NPY.
#include "data/dataset.h"
#include "data/image.h"
#include "data/image_dataset.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "graph/onnx_import.h"
#include "support/cli_runner.h"
#include "support/compare.h"
#include "support/error_of.h"
#include "support/onnx_builder.h"
#include "util/error.h"
#include "util/file.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include <zlib.h>

using namespace qs;

namespace {

const std::string kImages = std::string(QS_SOURCE_DIR) + "/tests/data/images/";

// Pillow and libjpeg-turbo share the IDCT here, but another libjpeg build may round
// differently: JPEG pixels may differ by this much, PNG and BMP not at all.
constexpr int kJpegLevels = 1;
// The presets' outputs: Pillow's fixed-point resampling is reproduced exactly, the
// float normalization agrees to float rounding (a*x+b against (x/255-m)/s).
constexpr float kPresetTolerance = 1e-5f;
// JPEG: kJpegLevels pixel levels, scaled by the largest 1/(255*std) of the presets.
constexpr float kJpegPresetTolerance = kJpegLevels / (255 * 0.224f) + 1e-5f;

struct RefImage {
    const char* file;
    const char* stem;
};
const RefImage kRefImages[] = {
    {"classes/ant/photo.jpg", "classes_ant_photo"},
    {"classes/ant/wide.png", "classes_ant_wide"},
    {"classes/bee/gray.png", "classes_bee_gray"},
    {"classes/bee/palette.bmp", "classes_bee_palette"},
    {"flat/rgb24.bmp", "flat_rgb24"},
    {"flat/topdown32.bmp", "flat_topdown32"},
};

// The model sample shapes make_refs.py computes the presets at.
Shape presetModelSample(const std::string& preset)
{
    if (preset == "torchvision")
        return {3, 16, 16};
    if (preset == "paddleocr-rec")
        return {3, 8, 32};
    return {3, 24, 24};
}

std::string readBytes(const std::string& path)
{
    return readRegularFile(path, uint64_t(1) << 20);
}

void writeBytes(const std::string& path, const std::string& bytes)
{
    std::ofstream(path, std::ios::binary) << bytes;
}

void put32(std::string& b, std::size_t at, uint32_t v)
{
    for (int i = 0; i < 4; ++i)
        b[at + std::size_t(i)] = char((v >> (8 * i)) & 0xFF);
}

// `png` with its IHDR declaring width x height (and the chunk's CRC redone).
std::string pngSized(std::string png, uint32_t width, uint32_t height)
{
    auto be32 = [&](std::size_t at, uint32_t v) {
        for (int i = 0; i < 4; ++i)
            png[at + std::size_t(i)] = char((v >> (24 - 8 * i)) & 0xFF);
    };
    be32(16, width);
    be32(20, height);
    be32(29, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
    return png;
}

// A model [N, 3, H, W] -> Conv 1x1 to 2 channels -> GlobalAveragePool -> [N, 2].
test::OnnxBuilder classifier(int64_t h, int64_t w)
{
    test::OnnxBuilder b;
    b.input("x", {-1, 3, h, w});
    b.output("y", {-1, 2});
    b.initializer("W", {2, 3, 1, 1}, {0.5f, -0.25f, 0.125f, -0.5f, 0.75f, 0.25f});
    b.initializer("B", {2}, {0.1f, -0.2f});
    b.node("Conv", {"x", "W", "B"}, {"c"});
    b.node("GlobalAveragePool", {"c"}, {"p"});
    b.node("Flatten", {"p"}, {"y"});
    return b;
}

} // namespace

class TestImageData : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;

    std::string tmp(const std::string& name) const { return tmp_.filePath(QString::fromStdString(name)).toStdString(); }

    Graph model(int64_t h, int64_t w)
    {
        const std::string path = tmp("m" + std::to_string(h) + "x" + std::to_string(w) + ".onnx");
        classifier(h, w).save(path);
        return importOnnx(path);
    }

private slots:
    void decode_data()
    {
        QTest::addColumn<int>("which");
        for (int i = 0; i < int(std::size(kRefImages)); ++i)
            QTest::newRow(kRefImages[i].file) << i;
    }

    void decode()
    {
        QFETCH(int, which);
        const RefImage& r = kRefImages[which];
        const Image im = readImage(kImages + r.file);
        const Tensor ref = readNpy(kImages + "refs/" + r.stem + ".rgb.npy");
        QCOMPARE((Shape {im.height, im.width, 3}), ref.shape);
        const auto want = ref.data<uint8_t>();
        int worst = 0;
        for (std::size_t i = 0; i < want.size(); ++i)
            worst = std::max(worst, std::abs(int(im.rgb[i]) - int(want[i])));
        const bool jpeg = std::string(r.file).ends_with(".jpg");
        QVERIFY2(worst <= (jpeg ? kJpegLevels : 0), qPrintable(QString("max diff %1 levels").arg(worst)));
    }

    void presets_data()
    {
        QTest::addColumn<int>("which");
        QTest::addColumn<QString>("preset");
        for (const std::string& preset : preprocessPresets())
            for (int i = 0; i < int(std::size(kRefImages)); ++i)
                QTest::newRow((preset + " " + kRefImages[i].file).c_str()) << i << QString::fromStdString(preset);
    }

    void presets()
    {
        QFETCH(int, which);
        QFETCH(QString, preset);
        const std::string name = preset.toStdString();
        const RefImage& r = kRefImages[which];
        const Preprocess p = resolvePreprocess(parsePreprocess(name), presetModelSample(name), "test input");
        QCOMPARE(p.sampleShape(), presetModelSample(name));
        const Tensor ref = readNpy(kImages + "refs/" + r.stem + "." + name + ".npy");
        QCOMPARE(ref.shape, p.sampleShape());
        std::vector<float> out(std::size_t(numelOf(p.sampleShape())));
        preprocessImage(readImage(kImages + r.file), p, out.data());
        const double diff = test::maxAbsDiff(ref.toFloat(), out);
        const float tolerance = std::string(r.file).ends_with(".jpg") ? kJpegPresetTolerance : kPresetTolerance;
        QVERIFY2(diff <= tolerance, qPrintable(QString("max abs diff %1 > %2").arg(diff).arg(tolerance)));
    }

    void text_and_json_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::newRow("torchvision") << "torchvision";
        QTest::newRow("paddleocr-rec") << "paddleocr-rec";
        QTest::newRow("yolo") << "yolo";
        QTest::newRow("preset with overrides") << "torchvision,crop=200x100,bgr,nhwc,interp=area";
        QTest::newRow("exact") << "resize=64x32,scale=1/127.5,mean=1,std=0.5:1:2,fit=fixed";
        QTest::newRow("odd scale") << "letterbox=32,pad=0,scale=0.1";
    }

    void text_and_json()
    {
        QFETCH(QString, spec);
        const Preprocess p = parsePreprocess(spec.toStdString());
        QCOMPARE(parsePreprocess(p.text()), p);
        QCOMPARE(Preprocess::fromJson(p.toJson(), "test"), p);
        const std::string json = tmp("p.json");
        writeBytes(json, p.toJson().dump());
        QCOMPARE(parsePreprocess(json), p);
    }

    void presets_spelled_out()
    {
        const Preprocess t = parsePreprocess("torchvision");
        QVERIFY2(t.text().starts_with("resize=256,interp=bilinear,crop=224x224,pad=0,scale=1/255,mean=0.485") &&
                t.text().ends_with(",rgb,nchw,f32,fit=model"),
            t.text().c_str());
        QCOMPARE(t.sampleShape(), (Shape {3, 224, 224}));
        QCOMPARE(parsePreprocess("yolo").sampleShape(), (Shape {3, 640, 640}));
        QCOMPARE(parsePreprocess("paddleocr-rec").sampleShape(), (Shape {3, 48, 320}));
        // Sizes from the model where fixed: a 299 model gets Resize(341), CenterCrop(299).
        const Preprocess big = resolvePreprocess(t, {3, 299, 299}, "x");
        QCOMPARE(big.height, int64_t(341));
        QCOMPARE(big.cropWidth, int64_t(299));
        // A dynamic width keeps the preset's: PP-OCR's [3, 48, W].
        const Preprocess rec = resolvePreprocess(parsePreprocess("paddleocr-rec"), {3, 48, -1}, "x");
        QCOMPARE(rec.sampleShape(), (Shape {3, 48, 320}));
        // fit=fixed does not adapt, and the mismatch is an error naming the input.
        const std::string e = test::errorOf([&] {
            resolvePreprocess(parsePreprocess("torchvision,fit=fixed"), {3, 32, 32}, "input x");
        });
        QVERIFY2(e.find("input x") != std::string::npos && e.find("[3,224,224]") != std::string::npos, e.c_str());
        QVERIFY(test::errorOf([&] { resolvePreprocess(t, {32, 32, 3}, "x"); }).find("add nhwc") != std::string::npos);
    }

    void spec_errors_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("expected");
        QTest::newRow("unknown preset") << "resnet"
                                        << "unknown preset";
        QTest::newRow("preset not first") << "bgr,yolo"
                                          << "a preset comes first";
        QTest::newRow("bad size") << "resize=0"
                                  << "whole number";
        QTest::newRow("bad number") << "scale=abc"
                                    << "not a number";
        QTest::newRow("two means") << "mean=1:2"
                                   << "1 or 3 values";
        QTest::newRow("zero std") << "std=0"
                                  << "positive";
        QTest::newRow("bad interp") << "interp=cubic"
                                    << "bilinear or area";
        QTest::newRow("unknown key") << "rotate=90"
                                     << "unknown item";
        QTest::newRow("zero scale") << "scale=0"
                                    << "not 0";
    }

    void spec_errors()
    {
        QFETCH(QString, spec);
        QFETCH(QString, expected);
        const std::string e = test::errorOf([&] { parsePreprocess(spec.toStdString()); });
        QVERIFY2(e.find("--preprocess") != std::string::npos && e.find(expected.toStdString()) != std::string::npos,
            e.c_str());
        QVERIFY(e.find('\n') == std::string::npos);
    }

    void malformed_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        const std::string jpg = readBytes(kImages + "classes/ant/photo.jpg");
        const std::string png = readBytes(kImages + "classes/ant/wide.png");
        const std::string bmp = readBytes(kImages + "flat/rgb24.bmp");
        auto row = [](const char* tag, const std::string& b, const char* expected) {
            QTest::newRow(tag) << QString(tag).replace(' ', '_') << QByteArray(b.data(), qsizetype(b.size()))
                               << QString(expected);
        };
        row("truncated jpeg", jpg.substr(0, jpg.size() / 2), "not a readable JPEG");
        row("jpeg header only", jpg.substr(0, 20), "not a readable JPEG");
        row("truncated png", png.substr(0, png.size() / 2), "not a readable PNG");
        row("png signature only", png.substr(0, 8), "not a readable PNG");
        std::string corrupt = png;
        corrupt[40] = char(corrupt[40] ^ 0x55); // inside IDAT: CRC mismatch
        row("png bad crc", corrupt, "not a readable PNG");
        std::string zero = bmp;
        put32(zero, 18, 0);
        row("zero-size bmp", zero, "empty image");
        std::string huge = bmp;
        put32(huge, 18, 1u << 30);
        put32(huge, 22, 1u << 30);
        row("huge bmp", huge, "more than the limit");
        row("truncated bmp", bmp.substr(0, bmp.size() - 100), "runs past the end");
        row("huge png", pngSized(png, 1u << 20, 16), "not a readable PNG (libpng: ");
        row("png larger than its bytes", pngSized(png, 8000, 8000), "more than its 2004 bytes can hold");
        std::string hugeJpeg = jpg;
        const auto sof = hugeJpeg.find("\xFF\xC0");
        QVERIFY(sof != std::string::npos);
        hugeJpeg[sof + 5] = char(0xFF); // height 0xFF..
        hugeJpeg[sof + 7] = char(0xFF); // width 0xFF..
        row("huge jpeg", hugeJpeg, "more than the limit");
        std::string bigJpeg = jpg;
        bigJpeg[sof + 5] = char(0x10); // 4144 x 4132 from 1.4 KB: the data ends at its EOI marker
        bigJpeg[sof + 7] = char(0x10);
        row("jpeg larger than its data", bigJpeg, "not a readable JPEG");
        row("empty", "", "empty file");
        row("text", "hello", "not a JPEG, PNG or BMP");
        row("bmp header only", bmp.substr(0, 30), "not a BMP");
    }

    void malformed()
    {
        QFETCH(QString, name);
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        const std::string path = tmp(name.toStdString() + ".img");
        writeBytes(path, bytes.toStdString());
        const std::string e = test::errorOf([&] { readImage(path); });
        QVERIFY2(e.find(path) == 0 && e.find(expected.toStdString()) != std::string::npos, e.c_str());
        QVERIFY2(e.find('\n') == std::string::npos, e.c_str());
    }

    void folder_dataset()
    {
        const Graph m = model(16, 16);
        DataOptions o;
        o.spec = "images:" + kImages + "classes";
        o.preprocess = "torchvision";
        o.threads = 2;
        const Dataset ds = loadDataset(o, m);
        QCOMPARE(ds.kind, std::string("images"));
        QCOMPARE(ds.count(), int64_t(4));
        QCOMPARE(*ds.labels, (std::vector<int64_t> {0, 0, 1, 1}));
        QCOMPARE(ds.classes, (std::vector<std::string> {"ant", "bee"}));
        QCOMPARE(ds.inputs.front().samples.shape, (Shape {4, 3, 16, 16}));
        QVERIFY(ds.inputs.front().samples.bytes.empty()); // streamed, not held
        const Tensor ref = readNpy(kImages + "refs/classes.torchvision.npy");
        // In order with prefetching, out of order, and as a slice.
        const int64_t per = 3 * 16 * 16;
        for (int64_t start : {0, 2, 1, 3, 0}) {
            const Tensor b = ds.batch(start, 1).front();
            QCOMPARE(b.shape, (Shape {1, 3, 16, 16}));
            std::vector<float> want(
                ref.data<float>().begin() + start * per, ref.data<float>().begin() + (start + 1) * per);
            QVERIFY(test::maxAbsDiff(b.toFloat(), want) <= kJpegPresetTolerance);
        }
        const Dataset tail = ds.slice(1, 3);
        QCOMPARE(tail.count(), int64_t(3));
        QCOMPARE(*tail.labels, (std::vector<int64_t> {0, 1, 1}));
        const Tensor all = tail.batch(0, 3).front();
        const Tensor again = ds.batch(1, 3).front();
        QCOMPARE(all.bytes, again.bytes);
        QCOMPARE(tail.first().bytes, all.bytes);
        // One thread gives the same samples.
        o.threads = 1;
        o.prefetchBatches = 0;
        QCOMPARE(loadDataset(o, m).batch(1, 3).front().bytes, again.bytes);
        // The pipeline is part of the identity and the hash.
        QCOMPARE(ds.preprocess, resolvePreprocess(parsePreprocess("torchvision"), {3, 16, 16}, "x").text());
        o.preprocess = "torchvision,interp=area";
        QVERIFY(loadDataset(o, m).hash != ds.hash);
        o.limit = 3;
        QCOMPARE(loadDataset(o, m).count(), int64_t(3));
    }

    void class_index()
    {
        const Graph m = model(16, 16);
        DataOptions o;
        o.spec = "images:" + kImages + "classes";
        o.preprocess = "torchvision";
        o.labelsPath = tmp("synsets.txt");
        writeBytes(*o.labelsPath, "# model order\nbee Apis mellifera\nwasp\nant Formicidae\n");
        Dataset ds = loadDataset(o, m);
        QCOMPARE(*ds.labels, (std::vector<int64_t> {2, 2, 0, 0}));
        QCOMPARE(ds.classes, (std::vector<std::string> {"bee", "wasp", "ant"}));
        writeBytes(*o.labelsPath, "bee\n");
        const std::string e = test::errorOf([&] { loadDataset(o, m); });
        QVERIFY2(e.find("\"ant\"") != std::string::npos && e.find("synsets.txt") != std::string::npos, e.c_str());
    }

    void flat_and_list()
    {
        const Graph m = model(24, 24);
        DataOptions o;
        o.spec = "images:" + kImages + "flat";
        o.preprocess = "yolo";
        Dataset flat = loadDataset(o, m);
        QCOMPARE(flat.count(), int64_t(2));
        QVERIFY(!flat.labels);
        const Tensor b = flat.batch(0, 2).front();
        const Tensor r0 = readNpy(kImages + "refs/flat_rgb24.yolo.npy");
        const Tensor r1 = readNpy(kImages + "refs/flat_topdown32.yolo.npy");
        std::vector<float> want = r0.toFloat(), second = r1.toFloat();
        want.insert(want.end(), second.begin(), second.end());
        QVERIFY(test::maxAbsDiff(b.toFloat(), want) <= kPresetTolerance);

        o.spec = "imagelist:" + kImages + "list.csv";
        const Dataset list = loadDataset(o, m);
        QCOMPARE(list.kind, std::string("imagelist"));
        QCOMPARE(*list.labels, (std::vector<int64_t> {7, 3, 0}));
        QCOMPARE(list.batch(1, 1).front().bytes, flat.batch(0, 1).front().bytes);
        // A list without labels, with a space in a name and an absolute path.
        const std::string spaced = tmp("a b.png");
        writeBytes(spaced, readBytes(kImages + "classes/ant/wide.png"));
        writeBytes(tmp("l.txt"), "a b.png\n" + kImages + "flat/rgb24.bmp\n");
        o.spec = "imagelist:" + tmp("l.txt");
        const Dataset plain = loadDataset(o, m);
        QCOMPARE(plain.count(), int64_t(2));
        QVERIFY(!plain.labels);
    }

    void dataset_errors_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QString>("preprocess");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no folder") << "images:/nonexistent/x"
                                   << "yolo"
                                   << "no such folder";
        QTest::newRow("no pipeline") << "images:" + QString::fromStdString(kImages) + "flat"
                                     << ""
                                     << "need --preprocess";
        QTest::newRow("wrong size") << "images:" + QString::fromStdString(kImages) + "flat"
                                    << "resize=10x10,fit=fixed"
                                    << "gives [3,10,10]";
        QTest::newRow("list mixes labels") << "imagelist:MIXED"
                                           << "yolo"
                                           << "has no label unlike the lines before";
        QTest::newRow("list bad label") << "imagelist:BADLABEL"
                                        << "yolo"
                                        << "is not a class number";
    }

    void dataset_errors()
    {
        QFETCH(QString, spec);
        QFETCH(QString, preprocess);
        QFETCH(QString, expected);
        writeBytes(tmp("mixed.csv"), "flat/rgb24.bmp,1\nflat/topdown32.bmp\n");
        writeBytes(tmp("badlabel.csv"), "x.png,dog\n");
        DataOptions o;
        o.spec = spec.toStdString();
        if (o.spec == "imagelist:MIXED")
            o.spec = "imagelist:" + tmp("mixed.csv");
        if (o.spec == "imagelist:BADLABEL")
            o.spec = "imagelist:" + tmp("badlabel.csv");
        o.preprocess = preprocess.toStdString();
        const std::string e = test::errorOf([&] { loadDataset(o, model(24, 24)); });
        QVERIFY2(e.find(expected.toStdString()) != std::string::npos, e.c_str());
        QVERIFY(e.find('\n') == std::string::npos);
    }

    void bad_file_in_folder()
    {
        const std::string dir = tmp("broken");
        QDir().mkpath(QString::fromStdString(dir));
        writeBytes(dir + "/a.png", readBytes(kImages + "classes/ant/wide.png"));
        const std::string png = readBytes(kImages + "classes/ant/wide.png");
        writeBytes(dir + "/b.png", png.substr(0, png.size() / 2));
        DataOptions o;
        o.spec = "images:" + dir;
        o.preprocess = "yolo";
        const Dataset ds = loadDataset(o, model(24, 24));
        QCOMPARE(ds.batch(0, 1).front().shape, (Shape {1, 3, 24, 24}));
        const std::string e = test::errorOf([&] { ds.batch(0, 2); });
        QVERIFY2(e.find(dir + "/b.png: not a readable PNG") == 0, e.c_str());
    }

    void cancel()
    {
        DataOptions o;
        o.spec = "images:" + kImages + "classes";
        o.preprocess = "torchvision";
        const Dataset ds = loadDataset(o, model(16, 16));
        o.cancel.cancel();
        bool cancelled = false;
        try {
            ds.batch(0, 4);
        } catch (const Cancelled&) {
            cancelled = true;
        }
        QVERIFY(cancelled);
    }

    // The CLI end to end: the folder through --preprocess torchvision feeds the model what
    // the reference NPY does.
    void cli_run()
    {
        const std::string m = tmp("cli.onnx");
        classifier(16, 16).save(m);
        const QString model = QString::fromStdString(m);
        const auto a = test::cli({"run", model, "--data", QString::fromStdString("images:" + kImages + "classes"),
            "--preprocess", "torchvision", "--batch", "3", "--save-outputs", QString::fromStdString(tmp("a.npy"))});
        QVERIFY2(a.exitCode == 0, a.err.constData());
        QVERIFY2(a.out.contains("top-1"), a.out.constData());
        const auto b =
            test::cli({"run", model, "--data", QString::fromStdString(kImages + "refs/classes.torchvision.npy"),
                "--batch", "3", "--save-outputs", QString::fromStdString(tmp("b.npy"))});
        QVERIFY2(b.exitCode == 0, b.err.constData());
        const Tensor ya = readNpy(tmp("a.npy")), yb = readNpy(tmp("b.npy"));
        QCOMPARE(ya.shape, (Shape {4, 2}));
        QCOMPARE(ya.shape, yb.shape);
        // The outputs are averages of the inputs: the JPEG tolerance bounds them.
        QVERIFY(test::maxAbsDiff(ya.toFloat(), yb.toFloat()) <= kJpegPresetTolerance);
        const auto bad = test::cli({"run", model, "--data",
            QString::fromStdString(kImages + "refs/classes.torchvision.npy"), "--preprocess", "torchvision"});
        QVERIFY(bad.exitCode != 0 && bad.err.contains("--preprocess applies to images"));
    }

    // quantize records the pipeline with the run; export replays the run from it and
    // writes it to the QDQ model's metadata.
    void cli_quantize_export()
    {
        const std::string m = tmp("q.onnx"), db = tmp("runs.db"), out = tmp("q_qdq.onnx");
        classifier(16, 16).save(m);
        const auto q = test::cli(
            {"quantize", QString::fromStdString(m), "--data", QString::fromStdString("images:" + kImages + "classes"),
                "--preprocess", "torchvision", "--batch", "2", "--db", QString::fromStdString(db), "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const auto runId = nlohmann::json::parse(q.out.toStdString()).at("run_id").get<int64_t>();
        const auto e = test::cli({"export", QString::number(runId), "--format", "qdq", "--out",
            QString::fromStdString(out), "--db", QString::fromStdString(db)});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        const Graph exported = importOnnx(out);
        const std::string want = resolvePreprocess(parsePreprocess("torchvision"), {3, 16, 16}, "x").text();
        QVERIFY(exported.metadata.count("quantstudio.preprocess"));
        QCOMPARE(exported.metadata.at("quantstudio.preprocess"), want);
    }
};

QTEST_GUILESS_MAIN(TestImageData)
#include "test_image_data.moc"
