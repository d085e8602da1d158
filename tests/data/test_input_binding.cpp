// Input shapes bound from the data or from --input-shape (data/input_binding.h), and
// models whose batch is fixed to 1 run sample by sample, through the core and the CLI.
// A new case: a row in a _data() table, or a slot building its model with OnnxBuilder.
#include "data/dataset.h"
#include "data/input_binding.h"
#include "data/npy.h"
#include "data/npz.h"
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "util/error.h"

#include "support/cli_runner.h"
#include "support/error_of.h"
#include "support/onnx_builder.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <random>

namespace {

using qs::test::cli;
using qs::test::errorOf;
using qs::test::OnnxBuilder;

// y = Conv(x, w) + b with 1x1 kernels, 3 -> 2 channels: any spatial size runs.
OnnxBuilder pointwiseModel(std::vector<int64_t> inputDims, std::vector<int64_t> outputDims)
{
    OnnxBuilder b;
    b.input("x", inputDims);
    b.initializer("w", {2, 3, 1, 1}, {0.5f, -1.f, 0.25f, 1.f, 0.75f, -0.5f});
    b.initializer("b", {2}, {0.1f, -0.2f});
    b.node("Conv", {"x", "w", "b"}, {"y"}, "conv");
    b.output("y", outputDims);
    return b;
}

// [N,3,4,W] as the PaddleOCR recognizer states [?,3,48,?]: a named batch and width symbol.
OnnxBuilder symbolicModel()
{
    OnnxBuilder b = pointwiseModel({-1, 3, 4, -1}, {-1, 2, 4, -1});
    auto* shape = b.model().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->mutable_dim(3)->set_dim_param("W");
    return b;
}

// The model of the CLI cases: symbolicModel (or its batch fixed to 1) with a MatMul on
// the channels after the convolution, [N,4,W,2] x [2,3] (outliers profiles MatMuls).
OnnxBuilder cliModel(bool batch1)
{
    OnnxBuilder b = batch1 ? pointwiseModel({1, 3, 4, 4}, {1, 4, 4, 3}) : symbolicModel();
    auto* g = b.model().mutable_graph();
    g->mutable_node(0)->set_output(0, "c");
    if (!batch1)
        g->mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
    OnnxBuilder::intsAttr(b.node("Transpose", {"c"}, {"t"}, "transpose"), "perm", {0, 2, 3, 1});
    b.initializer("w2", {2, 3}, {0.5f, -0.25f, 1.f, 0.75f, 0.3f, -1.f});
    b.node("MatMul", {"t", "w2"}, {"y"}, "matmul");
    return b;
}

// pointwiseModel plus a second input z added to its output: z [N,2,4,W] as well.
OnnxBuilder twoInputModel()
{
    OnnxBuilder b = symbolicModel();
    auto* g = b.model().mutable_graph();
    g->mutable_node(0)->set_output(0, "c");
    b.input("z", {-1, 2, 4, -1});
    g->mutable_input(1)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(3)->set_dim_param("W");
    b.node("Add", {"c", "z"}, {"y"}, "add");
    return b;
}

qs::Tensor randomTensor(qs::Shape shape, uint32_t seed)
{
    qs::Tensor t(qs::DType::Float, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (float& v : t.data<float>())
        v = u(rng);
    return t;
}

// The naive 1x1 convolution of pointwiseModel, channel `co` of pixel `pixel` of the
// sample [3,H,W] at `offset` (hw = H*W).
float naivePointwise(const std::vector<float>& x, int64_t offset, int64_t hw, int64_t pixel, int co)
{
    static const float w[2][3] = {{0.5f, -1.f, 0.25f}, {1.f, 0.75f, -0.5f}};
    static const float b[2] = {0.1f, -0.2f};
    float acc = b[co];
    for (int ci = 0; ci < 3; ++ci)
        acc += w[co][ci] * x[std::size_t(offset + ci * hw + pixel)];
    return acc;
}

QString shapeText(const qs::Shape& s)
{
    return QString::fromStdString(qs::shapeString(s));
}

} // namespace

class TestInputBinding : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

    QString save(const OnnxBuilder& b, const QString& name)
    {
        const QString path = dir_.filePath(name);
        b.save(path.toStdString());
        return path;
    }
    qs::Graph import(const OnnxBuilder& b, const QString& name) { return qs::importOnnx(save(b, name).toStdString()); }

private slots:
    void initTestCase() { QVERIFY(dir_.isValid()); }

    void parsesInputShapes_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("shape");
        QTest::addColumn<QString>("error");
        QTest::newRow("ocr") << "x=1x3x48x320"
                             << "x"
                             << "[1,3,48,320]"
                             << "";
        QTest::newRow("rank 1") << "sr=7"
                                << "sr"
                                << "[7]"
                                << "";
        QTest::newRow("name with =") << "a=b=2x3"
                                     << "a=b"
                                     << "[2,3]"
                                     << "";
        QTest::newRow("no dims") << "x="
                                 << ""
                                 << ""
                                 << "expected NAME=DIMS";
        QTest::newRow("no name") << "=1x2"
                                 << ""
                                 << ""
                                 << "expected NAME=DIMS";
        QTest::newRow("no =") << "1x2"
                              << ""
                              << ""
                              << "expected NAME=DIMS";
        QTest::newRow("zero") << "x=1x0x4"
                              << ""
                              << ""
                              << "dimension \"0\" is not a positive integer";
        QTest::newRow("negative") << "x=1x-3"
                                  << ""
                                  << ""
                                  << "dimension \"-3\"";
        QTest::newRow("plus") << "x=1x+3"
                              << ""
                              << ""
                              << "dimension \"+3\"";
        QTest::newRow("empty part") << "x=1xx4"
                                    << ""
                                    << ""
                                    << "dimension \"\"";
        QTest::newRow("trailing x") << "x=1x4x"
                                    << ""
                                    << ""
                                    << "dimension \"\"";
        QTest::newRow("comma") << "x=1,3"
                               << ""
                               << ""
                               << "dimension \"1,3\"";
        QTest::newRow("huge") << "x=1x99999999999"
                              << ""
                              << ""
                              << "dimension \"99999999999\"";
    }

    void parsesInputShapes()
    {
        QFETCH(QString, text);
        QFETCH(QString, name);
        QFETCH(QString, shape);
        QFETCH(QString, error);
        try {
            const auto [n, s] = qs::parseInputShape(text.toStdString());
            QVERIFY2(error.isEmpty(), "accepted bad text");
            QCOMPARE(QString::fromStdString(n), name);
            QCOMPARE(shapeText(s), shape);
            QCOMPARE(QString::fromStdString(n + "=" + qs::inputShapeText(s)), text);
        } catch (const qs::Error& e) {
            QVERIFY2(!error.isEmpty() && QString(e.what()).contains(error), e.what());
            QVERIFY2(QString(e.what()).contains("--input-shape"), e.what());
        }
    }

    // NPY [5,3,4,7] binds the symbolic width of [N,3,4,W] (failed before: "unknown
    // non-batch dimensions"), and the plan's outputs equal a naive 1x1 convolution.
    void npyBindsSymbolicDims()
    {
        const qs::Graph g = import(symbolicModel(), "sym.onnx");
        QCOMPARE(QString::fromStdString(g.inputs.front().text()), QString("[N,3,4,W]"));
        const qs::Tensor x = randomTensor({5, 3, 4, 7}, 1);
        const QString npy = dir_.filePath("x5.npy");
        qs::writeNpy(x, npy.toStdString());
        qs::DataOptions d;
        d.spec = npy.toStdString();
        const qs::Dataset data = qs::loadDataset(d, g);
        QCOMPARE(shapeText(data.first().shape), QString("[5,3,4,7]"));
        QCOMPARE(data.boundShapes.size(), std::size_t(1));
        QCOMPARE(shapeText(data.boundShapes.at("x")), QString("[1,3,4,7]"));

        qs::CompileOptions co;
        co.inputShapes = data.inputShapes(5);
        auto plan = qs::compilePlan(g, co);
        const std::vector<float> y = plan->run(data.batch(0, 5)).front().toFloat();
        const std::vector<float> xs = x.toFloat();
        QCOMPARE(y.size(), std::size_t(5 * 2 * 28));
        for (int64_t n = 0; n < 5; ++n)
            for (int c = 0; c < 2; ++c)
                for (int64_t p = 0; p < 28; ++p)
                    QVERIFY(
                        std::abs(y[std::size_t((n * 2 + c) * 28 + p)] - naivePointwise(xs, n * 84, 28, p, c)) < 1e-5f);
    }

    // A model that fixes its sample shape binds nothing: the loaders reshape as before.
    void fixedModelsBindNothing()
    {
        const qs::Graph g = import(pointwiseModel({-1, 3, 4, 4}, {-1, 2, 4, 4}), "fixed.onnx");
        const QString npy = dir_.filePath("flat.npy");
        qs::writeNpy(randomTensor({2, 48}, 5), npy.toStdString());
        qs::DataOptions d;
        d.spec = npy.toStdString();
        const qs::Dataset data = qs::loadDataset(d, g);
        QCOMPARE(shapeText(data.first().shape), QString("[2,3,4,4]"));
        QVERIFY(data.boundShapes.empty());
    }

    void randomNeedsInputShape_data()
    {
        QTest::addColumn<QStringList>("given");
        QTest::addColumn<QString>("shape");
        QTest::addColumn<QString>("error");
        QTest::newRow("given") << QStringList {"x=1x3x4x9"} << "[3,3,4,9]"
                               << "";
        QTest::newRow("batch of the given shape ignored") << QStringList {"x=8x3x4x5"} << "[3,3,4,5]"
                                                          << "";
        QTest::newRow("none") << QStringList {} << ""
                              << "sym.onnx: input \"x\" [N,3,4,W] has unknown dimensions; give them with "
                                 "--input-shape x=1x3x4xN";
        QTest::newRow("contradicts a fixed dim") << QStringList {"x=1x3x5x9"} << ""
                                                 << "--input-shape x=1x3x5x9: dimension 2 is 5, ";
        QTest::newRow("wrong rank") << QStringList {"x=1x3x4"} << ""
                                    << "--input-shape x=1x3x4: rank 3";
        QTest::newRow("unknown input") << QStringList {"y=1x3x4x9"} << ""
                                       << "--input-shape \"y\": the model has no input of that name (inputs: \"x\")";
    }

    void randomNeedsInputShape()
    {
        QFETCH(QStringList, given);
        QFETCH(QString, shape);
        QFETCH(QString, error);
        const qs::Graph g = import(symbolicModel(), "sym.onnx");
        qs::DataOptions d;
        d.spec = "random:3";
        for (const QString& t : given)
            d.inputShapes.insert(qs::parseInputShape(t.toStdString()));
        const std::string e = errorOf([&] {
            const qs::Dataset data = qs::loadDataset(d, g);
            QCOMPARE(shapeText(data.first().shape), shape);
            QCOMPARE(shapeText(data.boundShapes.at("x")), "[1" + shape.mid(2));
        });
        QVERIFY2(error.isEmpty() ? e == "(no error)" : QString::fromStdString(e).contains(error), e.c_str());
        QVERIFY2(e.find('\n') == std::string::npos, e.c_str());
    }

    // Random data with a given shape is other data than without: the store tells them apart.
    void givenShapeIsPartOfTheDataIdentity()
    {
        const qs::Graph g = import(symbolicModel(), "sym.onnx");
        qs::DataOptions a, b;
        a.spec = b.spec = "random:2";
        a.inputShapes.insert(qs::parseInputShape("x=1x3x4x5"));
        b.inputShapes.insert(qs::parseInputShape("x=1x3x4x6"));
        QVERIFY(qs::loadDataset(a, g).hash != qs::loadDataset(b, g).hash);
    }

    void npyContradictions_data()
    {
        QTest::addColumn<QVector<qint64>>("modelDims");
        QTest::addColumn<QVector<qint64>>("npy");
        QTest::addColumn<QString>("given");
        QTest::addColumn<QString>("error");
        // The model fixes H = 4; the data has 5.
        QTest::newRow("fixed dim") << QVector<qint64> {-1, 3, 4, -1} << QVector<qint64> {2, 3, 5, 7} << ""
                                   << "samples of shape [3,5,7] do not fit";
        // [?,3,?,?] as PaddleOCR's classifier: 48x192 and 96x96 hold as many values;
        // the data must not be reshaped to the given shape.
        QTest::newRow("given vs data") << QVector<qint64> {-1, 3, -1, -1} << QVector<qint64> {2, 3, 48, 192}
                                       << "x=1x3x96x96"
                                       << "samples of shape [3,48,192] do not fit";
        QTest::newRow("rank") << QVector<qint64> {-1, 3, -1, -1} << QVector<qint64> {2, 3, 48} << ""
                              << "does not fix";
    }

    void npyContradictions()
    {
        QFETCH(QVector<qint64>, modelDims);
        QFETCH(QVector<qint64>, npy);
        QFETCH(QString, given);
        QFETCH(QString, error);
        std::vector<int64_t> dims(modelDims.begin(), modelDims.end());
        const qs::Graph g = import(pointwiseModel(dims, {-1, 2, -1, -1}), "open.onnx");
        const QString path = dir_.filePath("bad.npy");
        qs::writeNpy(randomTensor(qs::Shape(npy.begin(), npy.end()), 2), path.toStdString());
        qs::DataOptions d;
        d.spec = path.toStdString();
        if (!given.isEmpty())
            d.inputShapes.insert(qs::parseInputShape(given.toStdString()));
        const std::string e = errorOf([&] { qs::loadDataset(d, g); });
        QVERIFY2(QString::fromStdString(e).contains(error), e.c_str());
        QVERIFY2(QString::fromStdString(e).contains("bad.npy"), e.c_str());
        QVERIFY2(e.find('\n') == std::string::npos, e.c_str());
    }

    // Several inputs: an NPZ binds each from its own array; random data needs a shape
    // per input and names the one still missing.
    void severalInputs()
    {
        const qs::Graph g = import(twoInputModel(), "two.onnx");
        const QString npz = dir_.filePath("two.npz");
        qs::writeNpz({{"x", randomTensor({3, 3, 4, 6}, 7)}, {"z", randomTensor({3, 2, 4, 6}, 8)}}, npz.toStdString());
        qs::DataOptions d;
        d.spec = npz.toStdString();
        const qs::Dataset data = qs::loadDataset(d, g);
        QCOMPARE(shapeText(data.boundShapes.at("x")), QString("[1,3,4,6]"));
        QCOMPARE(shapeText(data.boundShapes.at("z")), QString("[1,2,4,6]"));

        d.inputShapes.insert(qs::parseInputShape("z=1x2x4x5"));
        QVERIFY2(
            errorOf([&] { qs::loadDataset(d, g); }).find("as --input-shape z=1x2x4x5 binds it") != std::string::npos,
            errorOf([&] { qs::loadDataset(d, g); }).c_str());

        qs::DataOptions r;
        r.spec = "random:2";
        r.inputShapes.insert(qs::parseInputShape("x=1x3x4x5"));
        const std::string e = errorOf([&] { qs::loadDataset(r, g); });
        QVERIFY2(e.find("input \"z\" [N,2,4,W] has unknown dimensions; give them with --input-shape z=1x2x4xN") !=
                std::string::npos,
            e.c_str());
        r.inputShapes.insert(qs::parseInputShape("z=1x2x4x5"));
        const qs::Dataset random = qs::loadDataset(r, g);
        QCOMPARE(shapeText(random.inputs.at(1).samples.shape), QString("[2,2,4,5]"));
    }

    void fixedBatch_data()
    {
        QTest::addColumn<QVector<qint64>>("dims");
        QTest::addColumn<qint64>("fixed");
        QTest::addColumn<qint64>("batch");
        QTest::newRow("batch 1 (tf2onnx)") << QVector<qint64> {1, 3, 4, 4} << qint64(1) << qint64(1);
        QTest::newRow("symbolic") << QVector<qint64> {-1, 3, 4, 4} << qint64(0) << qint64(32);
        QTest::newRow("batch 4 is kept as asked") << QVector<qint64> {4, 3, 4, 4} << qint64(4) << qint64(32);
    }

    void fixedBatch()
    {
        QFETCH(QVector<qint64>, dims);
        QFETCH(qint64, fixed);
        QFETCH(qint64, batch);
        const std::vector<int64_t> d(dims.begin(), dims.end());
        const qs::Graph g = import(pointwiseModel(d, {d[0], 2, 4, 4}), "m.onnx");
        QCOMPARE(qs::fixedBatch(g), fixed);
        QCOMPARE(qs::batchFor(g, 32), batch);
    }

    // The CLI commands that take --data on both models: a fixed batch of 1 with the
    // default --batch 32 and 5 samples (failed before: "given shape [5,3,4,4], the
    // model says [1,3,4,4]"), and the symbolic model on NPY data and on random data
    // with --input-shape (failed before: "unknown non-batch dimensions").
    void cliCommands_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("data");
        QTest::addColumn<QStringList>("command");
        for (const char* m : {"batch1", "symbolic"}) {
            const QString data = QString(m) == "batch1" ? "b1.npy" : "sym.npy";
            QTest::addRow("%s run", m) << m << data << QStringList {"run"};
            QTest::addRow("%s quantize", m) << m << data << QStringList {"quantize", "--wbits", "8", "--abits", "8"};
            QTest::addRow("%s quantize int8", m) << m << data << QStringList {"quantize", "--int8"};
            QTest::addRow("%s sensitivity", m) << m << data << QStringList {"sensitivity", "--bits", "4,8"};
            QTest::addRow("%s mixed", m) << m << data << QStringList {"mixed", "--budget-bits", "6"};
            QTest::addRow("%s calib-diag", m) << m << data << QStringList {"calib-diag"};
            QTest::addRow("%s samples", m) << m << data << QStringList {"samples", "--layer", "conv", "--bits", "4"};
            QTest::addRow("%s outliers", m) << m << data << QStringList {"outliers"};
            QTest::addRow("%s precision", m)
                << m << data
                << QStringList {"precision", "export", "--format", "aimet", "-o", "enc.json", "--calib-limit", "5"};
        }
        QTest::addRow("symbolic random run") << "symbolic"
                                             << "random:6" << QStringList {"run", "--input-shape", "x=1x3x4x11"};
        QTest::addRow("symbolic random quantize")
            << "symbolic"
            << "random:6" << QStringList {"quantize", "--input-shape", "x=1x3x4x11"};
        QTest::addRow("batch1 random run") << "batch1"
                                           << "random:4" << QStringList {"run"};
        QTest::addRow("batch1 random quantize")
            << "batch1"
            << "random:8" << QStringList {"quantize", "--wbits", "8", "--abits", "8"};
    }

    void cliCommands()
    {
        QFETCH(QString, model);
        QFETCH(QString, data);
        QFETCH(QStringList, command);
        const QString path = save(cliModel(model == "batch1"), model + ".onnx");
        qs::writeNpy(randomTensor({5, 3, 4, 4}, 3), dir_.filePath("b1.npy").toStdString());
        qs::writeNpy(randomTensor({5, 3, 4, 9}, 4), dir_.filePath("sym.npy").toStdString());
        const QString spec = data.startsWith("random:") ? data : dir_.filePath(data);
        QStringList args = command;
        if (command.front() == "precision") {
            args = QStringList {"precision", "export", path, "--data", spec};
            args += command.mid(2);
            args.replace(args.indexOf("enc.json"), dir_.filePath("enc.json"));
        } else {
            args = QStringList {command.front(), path, "--data", spec};
            args += command.mid(1);
            if (command.front() != "calib-diag" && command.front() != "mixed")
                args << "--json";
        }
        const qs::test::CliResult r = cli(args);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        if (command.front() == "run") {
            const QJsonObject j = QJsonDocument::fromJson(r.out).object();
            const int samples = data.startsWith("random:") ? data.mid(7).toInt() : 5;
            QCOMPARE(j["images"].toInt(), samples);
            QCOMPARE(j["batch"].toInt(), model == "batch1" ? 1 : samples);
        }
    }

    void cliRandomWithoutShapeNamesTheOption()
    {
        const QString path = save(symbolicModel(), "sym.onnx");
        const qs::test::CliResult r = cli({"run", path, "--data", "random:4"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("--input-shape x=1x3x4xN"), r.err.constData());
        QCOMPARE(r.err.count('\n'), 1);
        const qs::test::CliResult twice =
            cli({"run", path, "--data", "random:4", "--input-shape", "x=1x3x4x5", "--input-shape", "x=1x3x4x6"});
        QCOMPARE(twice.exitCode, 1);
        QVERIFY2(twice.err.contains("--input-shape: input \"x\" is given twice"), twice.err.constData());
    }

    // The run records the bound shape: export replays and parity reload random data with
    // it, no --input-shape needed (failed before: the replay's random data had no shape).
    void recordedShapeReplays()
    {
        const QString path = save(symbolicModel(), "sym.onnx");
        const QString db = dir_.filePath("replay.db");
        const qs::test::CliResult q = cli({"quantize", path, "--data", "random:6", "--input-shape", "x=1x3x4x11",
            "--wbits", "8", "--abits", "8", "--db", db, "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());
        const int run = QJsonDocument::fromJson(q.out).object()["run_id"].toInt();
        QVERIFY(run > 0);
        const QString qdq = dir_.filePath("sym_qdq.onnx");
        const qs::test::CliResult e =
            cli({"export", QString::number(run), "--format", "qdq", "--out", qdq, "--db", db});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        const qs::test::CliResult p =
            cli({"parity", qdq, "--run", QString::number(run), "--data", "random:4", "--db", db, "--json"});
        QVERIFY2(p.exitCode == 0 || p.exitCode == 3, p.err.constData());
        const qs::test::CliResult show = cli({"show", QString::number(run), "--db", db, "--json"});
        QVERIFY2(show.exitCode == 0, show.err.constData());
        QVERIFY2(show.out.contains("\"input_shapes\""), show.out.constData());
    }
};

QTEST_APPLESS_MAIN(TestInputBinding)
#include "test_input_binding.moc"
