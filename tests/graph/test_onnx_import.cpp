// ONNX import: valid models, round trip, and every kind of bad input giving a
// clear error that names the file and the node or tensor at fault.
#include "support/onnx_builder.h"

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

std::string errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

void writeFile(const std::string& path, const std::string& bytes)
{
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string demoModelBytes()
{
    std::ifstream in(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx", std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace

using Mutation = std::function<void(OnnxBuilder&)>;
Q_DECLARE_METATYPE(Mutation)

class TestOnnxImport : public QObject {
    Q_OBJECT

private slots:
    void importsTinyModelWithShapes()
    {
        QTemporaryDir dir;
        std::string path = dir.filePath("tiny.onnx").toStdString();
        qs::test::tinyConvModel().save(path);
        Graph g = importOnnx(path);
        QCOMPARE(int(g.nodes.size()), 2);
        QCOMPARE(g.nodes[0].opType, std::string("Conv"));
        QCOMPARE(g.inputs.size(), std::size_t(1));
        QCOMPARE(g.inputs[0].text(), std::string("[N,2,4,4]"));
        QVERIFY(g.info("c") != nullptr);
        QCOMPARE(g.info("c")->text(), std::string("[N,3,4,4]"));
        QCOMPARE(g.quantizableLayers(), std::vector<int>{0});
        QCOMPARE(g.weightOf(g.nodes[0]), std::string("w"));
        QCOMPARE(g.producerOf("c"), 0);
        QCOMPARE(g.consumersOf("c"), std::vector<int>{1});
        QCOMPARE(g.parameterCount(), int64_t(3 * 2 * 9 + 3));
        QCOMPARE(g.initializers.at("w").toFloat()[1], -0.2f);
    }

    void fixedInputShapeInfersConcreteShapes()
    {
        QTemporaryDir dir;
        std::string path = dir.filePath("tiny.onnx").toStdString();
        qs::test::tinyConvModel().save(path);
        ImportOptions opts;
        opts.inputShapes["x"] = {5, 2, 4, 4};
        Graph g = importOnnx(path, opts);
        QCOMPARE(g.info("y")->shape(), (Shape{5, 3, 4, 4}));
        opts.inputShapes["x"] = {5, 2, 4};
        QVERIFY(errorOf([&] { importOnnx(path, opts); }).find("rank") != std::string::npos);
    }

    void nodesAreSortedTopologically()
    {
        OnnxBuilder b;
        b.input("x", {1, 4});
        b.node("Relu", {"a"}, {"y"}, "second"); // listed before its producer
        b.node("Neg", {"x"}, {"a"}, "first");
        b.output("y", {1, 4});
        Graph g = importOnnxBytes(b.bytes(), "sorted.onnx", "");
        QCOMPARE(g.nodes[0].name, std::string("first"));
        QCOMPARE(g.nodes[1].name, std::string("second"));
    }

    void roundTripKeepsEverything()
    {
        std::string bytes = demoModelBytes();
        QVERIFY(!bytes.empty());
        Graph a = importOnnxBytes(bytes, "demo.onnx", "");
        Graph b = importOnnxBytes(exportOnnxBytes(a), "demo-again.onnx", "");
        QCOMPARE(a.nodes.size(), b.nodes.size());
        for (std::size_t i = 0; i < a.nodes.size(); ++i) {
            QCOMPARE(a.nodes[i].name, b.nodes[i].name);
            QCOMPARE(a.nodes[i].inputs, b.nodes[i].inputs);
            QCOMPARE(a.nodes[i].attrs.size(), b.nodes[i].attrs.size());
        }
        QCOMPARE(a.initializers.size(), b.initializers.size());
        for (const auto& [name, t] : a.initializers)
            QVERIFY(t.bytes == b.initializers.at(name).bytes);
        QCOMPARE(a.metadata, b.metadata);
        QCOMPARE(a.opsets, b.opsets);
    }

    void badModels_data()
    {
        QTest::addColumn<Mutation>("mutate");
        QTest::addColumn<QString>("expected");
        QTest::newRow("missing initializer") << Mutation([](OnnxBuilder& b) {
            b.model().mutable_graph()->mutable_initializer()->RemoveLast(); // drops "b"
        }) << "node \"conv\" (Conv): input \"b\" is not produced by any node, initializer or graph input";
        QTest::newRow("cycle") << Mutation([](OnnxBuilder& b) {
            b.node("Add", {"y", "loop_b"}, {"loop_a"}, "loop_add");
            b.node("Relu", {"loop_a"}, {"loop_b"}, "loop_relu");
        }) << "lies on a cycle";
        QTest::newRow("duplicate output") << Mutation([](OnnxBuilder& b) {
            b.node("Neg", {"x"}, {"c"}, "neg");
        }) << "output \"c\" is already produced by node";
        QTest::newRow("output shadows initializer") << Mutation([](OnnxBuilder& b) {
            b.node("Neg", {"x"}, {"w"}, "neg");
        }) << "has the name of a graph input or initializer";
        for (const char* attr : {"strides", "dilations", "kernel_shape"})
            QTest::newRow(qPrintable(QString("zero ") + attr)) << Mutation([attr](OnnxBuilder& b) {
                auto* a = b.model().mutable_graph()->mutable_node(0)->add_attribute();
                a->set_name(attr);
                a->set_type(onnx::AttributeProto::INTS);
                a->add_ints(1);
                a->add_ints(0);
            }) << QString("node \"conv\" (Conv): attribute %1 has 0, expected values of at least 1").arg(attr);
        QTest::newRow("unknown dtype") << Mutation([](OnnxBuilder& b) {
            b.model().mutable_graph()->mutable_initializer(0)->set_data_type(99);
        }) << "initializer \"w\": unknown data type 99";
        QTest::newRow("float_data count") << Mutation([](OnnxBuilder& b) {
            b.model().mutable_graph()->mutable_initializer(1)->add_float_data(1.f);
        }) << "initializer \"b\": float_data has 4 values, expected 3";
        QTest::newRow("raw_data size") << Mutation([](OnnxBuilder& b) {
            auto* t = b.model().mutable_graph()->mutable_initializer(1);
            t->clear_float_data();
            t->set_raw_data(std::string(10, '\0'));
        }) << "initializer \"b\": raw_data has 10 bytes, expected 12";
        QTest::newRow("huge claimed shape, no allocation") << Mutation([](OnnxBuilder& b) {
            b.model().mutable_graph()->mutable_initializer(1)->set_dims(0, int64_t(1) << 34);
        }) << "float_data has 3 values, expected 17179869184";
        QTest::newRow("negative dim") << Mutation([](OnnxBuilder& b) {
            b.model().mutable_graph()->mutable_initializer(1)->set_dims(0, -3);
        }) << "negative dimension -3";
        QTest::newRow("dangling graph output") << Mutation([](OnnxBuilder& b) { b.output("nowhere"); })
                                               << "graph output \"nowhere\" is not produced by any node";
        QTest::newRow("duplicate initializer") << Mutation([](OnnxBuilder& b) {
            b.initializer("b", {1}, {1.f});
        }) << "initializer \"b\" is defined twice";
        QTest::newRow("no graph") << Mutation([](OnnxBuilder& b) { b.model().clear_graph(); })
                                  << "no graph";
        QTest::newRow("external data escape: absolute") << Mutation([](OnnxBuilder& b) {
            auto* t = b.model().mutable_graph()->mutable_initializer(1);
            t->clear_float_data();
            t->set_data_location(onnx::TensorProto::EXTERNAL);
            auto* kv = t->add_external_data();
            kv->set_key("location");
            kv->set_value("/etc/passwd");
        }) << "is an absolute path";
        QTest::newRow("external data escape: dotdot") << Mutation([](OnnxBuilder& b) {
            auto* t = b.model().mutable_graph()->mutable_initializer(1);
            t->clear_float_data();
            t->set_data_location(onnx::TensorProto::EXTERNAL);
            auto* kv = t->add_external_data();
            kv->set_key("location");
            kv->set_value("sub/../../outside.bin");
        }) << "leaves the model's folder";
        QTest::newRow("external data escape: symlink") << Mutation([](OnnxBuilder& b) {
            auto* t = b.model().mutable_graph()->mutable_initializer(1);
            t->clear_float_data();
            t->set_data_location(onnx::TensorProto::EXTERNAL);
            auto* kv = t->add_external_data();
            kv->set_key("location");
            kv->set_value("link.bin"); // created by the test, pointing outside
        }) << "outside the model's folder";
        QTest::newRow("external data missing") << Mutation([](OnnxBuilder& b) {
            auto* t = b.model().mutable_graph()->mutable_initializer(1);
            t->clear_float_data();
            t->set_data_location(onnx::TensorProto::EXTERNAL);
            auto* kv = t->add_external_data();
            kv->set_key("location");
            kv->set_value("absent.bin");
        }) << "not found next to the model";
    }

    void badModels()
    {
        QFETCH(Mutation, mutate);
        QFETCH(QString, expected);
        QTemporaryDir outside, dir;
        std::filesystem::create_directory(dir.filePath("model").toStdString());
        writeFile(outside.filePath("secret.bin").toStdString(), std::string(12, '\0'));
        std::filesystem::create_symlink(outside.filePath("secret.bin").toStdString(),
                                        dir.filePath("model/link.bin").toStdString());
        OnnxBuilder b = qs::test::tinyConvModel();
        mutate(b);
        std::string path = dir.filePath("model/bad.onnx").toStdString();
        b.save(path);
        std::string message = errorOf([&] { importOnnx(path); });
        QVERIFY2(message.rfind(path, 0) == 0, message.c_str()); // names the file first
        QVERIFY2(message.find(expected.toStdString()) != std::string::npos, message.c_str());
    }

    void externalDataInsideFolderLoads()
    {
        QTemporaryDir dir;
        OnnxBuilder b = qs::test::tinyConvModel();
        auto* t = b.model().mutable_graph()->mutable_initializer(1);
        t->clear_float_data();
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        auto* kv = t->add_external_data();
        kv->set_key("location");
        kv->set_value("weights/b.bin");
        kv = t->add_external_data();
        kv->set_key("offset");
        kv->set_value("4");
        std::filesystem::create_directory(dir.filePath("weights").toStdString());
        float values[4] = {9.f, 1.5f, -2.5f, 3.5f};
        writeFile(dir.filePath("weights/b.bin").toStdString(),
                  std::string(reinterpret_cast<const char*>(values), sizeof values));
        std::string path = dir.filePath("ext.onnx").toStdString();
        b.save(path);
        Graph g = importOnnx(path);
        QCOMPARE(g.initializers.at("b").toFloat(), (std::vector<float>{1.5f, -2.5f, 3.5f}));
    }

    // Weights of 64 KiB and more leave the protobuf as they are converted and reach ONNX's
    // checker and shape inference as typed inputs. Inline or external (the test runs outside
    // the model's folder: the checker used to look for external files from the working
    // folder, fail, and leave every shape unknown), the values arrive exactly, the shapes are
    // inferred, a Reshape still reads its small shape tensor, and the weight is no input.
    void largeWeightsKeepValuesAndShapes_data()
    {
        QTest::addColumn<bool>("external");
        QTest::newRow("inline raw_data") << false;
        QTest::newRow("external data") << true;
    }

    void largeWeightsKeepValuesAndShapes()
    {
        QFETCH(bool, external);
        QTemporaryDir dir;
        std::vector<float> w(128 * 256);
        std::mt19937 rng(7);
        std::normal_distribution<float> normal;
        for (float& v : w)
            v = normal(rng);
        OnnxBuilder b;
        b.input("x", {2, 128});
        auto* t = b.initializer("w", {128, 256}, {});
        const std::string raw(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
        if (external) {
            writeFile(dir.filePath("w.bin").toStdString(), raw);
            t->set_data_location(onnx::TensorProto::EXTERNAL);
            auto* kv = t->add_external_data();
            kv->set_key("location");
            kv->set_value("w.bin");
        } else {
            t->set_raw_data(raw);
        }
        b.int64Initializer("shape", {3}, {2, 16, 16});
        b.node("MatMul", {"x", "w"}, {"y"}, "mm");
        b.node("Reshape", {"y", "shape"}, {"z"}, "reshape");
        b.output("z", {2, 16, 16});
        const std::string path = dir.filePath("big.onnx").toStdString();
        b.save(path);
        QVERIFY(std::filesystem::current_path() != std::filesystem::path(dir.path().toStdString()));

        Graph g = importOnnx(path);
        QCOMPARE(g.initializers.at("w").toFloat(), w);
        QCOMPARE(g.initializers.at("shape").toInt64(), (std::vector<int64_t> {2, 16, 16}));
        QCOMPARE(int(g.inputs.size()), 1);
        QCOMPARE(g.inputs[0].name, std::string("x"));
        QVERIFY2(g.warnings.empty(), g.warnings.empty() ? "" : g.warnings.front().c_str());
        const ValueInfo* y = g.info("y");
        QVERIFY(y && y->dims);
        QCOMPARE(y->text(), std::string("[2,256]"));
        QCOMPARE(g.outputs.at(0).text(), std::string("[2,16,16]"));
        QCOMPARE(g.fileBytes, uint64_t(std::filesystem::file_size(path) + (external ? raw.size() : 0)));
        // --input-shape still addresses real inputs only.
        ImportOptions o;
        o.inputShapes["w"] = {128, 256};
        QVERIFY(errorOf([&] { importOnnx(path, o); }).find("no graph input named \"w\"") != std::string::npos);
    }

    // An external file shorter than the tensor: one line naming the model, the tensor and the file.
    void truncatedExternalData_data()
    {
        QTest::addColumn<bool>("withLength");
        QTest::newRow("length given") << true;
        QTest::newRow("length from the file") << false;
    }

    void truncatedExternalData()
    {
        QFETCH(bool, withLength);
        QTemporaryDir dir;
        OnnxBuilder b = qs::test::tinyConvModel();
        auto* t = b.model().mutable_graph()->mutable_initializer(1);
        t->clear_float_data();
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        auto* kv = t->add_external_data();
        kv->set_key("location");
        kv->set_value("b.bin");
        if (withLength) {
            kv = t->add_external_data();
            kv->set_key("length");
            kv->set_value("12");
        }
        writeFile(dir.filePath("b.bin").toStdString(), std::string(7, '\0')); // 3 floats need 12
        const std::string path = dir.filePath("ext.onnx").toStdString();
        b.save(path);
        const std::string message = errorOf([&] { importOnnx(path); });
        QVERIFY2(message.rfind(path, 0) == 0, message.c_str());
        QVERIFY2(message.find("tensor \"" + t->name() + "\"") != std::string::npos, message.c_str());
        QVERIFY2(message.find("\"b.bin\"") != std::string::npos, message.c_str());
        QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    }

    void truncatedFiles_data()
    {
        QTest::addColumn<double>("fraction");
        for (double f : {0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.9999})
            QTest::newRow(QByteArray::number(f).constData()) << f;
    }

    void truncatedFiles()
    {
        QFETCH(double, fraction);
        std::string bytes = demoModelBytes();
        bytes.resize(std::size_t(double(bytes.size()) * fraction));
        QTemporaryDir dir;
        std::string path = dir.filePath("truncated.onnx").toStdString();
        writeFile(path, bytes);
        std::string message = errorOf([&] { importOnnx(path); });
        QVERIFY2(message != "(no error)", "a truncated model imported without error");
        QVERIFY2(message.rfind(path, 0) == 0, message.c_str());
    }

    void randomBytes_data()
    {
        QTest::addColumn<int>("seed");
        for (int s = 1; s <= 8; ++s)
            QTest::newRow(QByteArray::number(s).constData()) << s;
    }

    void randomBytes()
    {
        QFETCH(int, seed);
        std::mt19937 rng{uint32_t(seed)};
        std::string bytes(std::size_t(64 + rng() % 4096), '\0');
        for (char& c : bytes)
            c = char(rng());
        std::string message = errorOf([&] { importOnnxBytes(bytes, "random.onnx", ""); });
        QVERIFY2(message.rfind("random.onnx: ", 0) == 0, message.c_str());
    }

    void missingAndFolderPaths()
    {
        QVERIFY(errorOf([] { importOnnx("/nonexistent/model.onnx"); }).find("cannot open file") != std::string::npos);
        QTemporaryDir dir;
        QVERIFY(errorOf([&] { importOnnx(dir.path().toStdString()); }).find("is a folder") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(TestOnnxImport)
#include "test_onnx_import.moc"
