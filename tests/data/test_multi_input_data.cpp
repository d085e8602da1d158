// Datasets for models with several inputs: an NPZ (the NumPy-written fixture) or a
// folder of NPY files feeds every input by name, random:N fills each within its type,
// --input-value fills scalars, and what does not fit is a one-line error naming it.
// Add a case as a slot; models come from tests/support/multi_input_models.h.
#include "data/dataset.h"
#include "data/npy.h"
#include "data/npz.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include "support/error_of.h"
#include "support/multi_input_models.h"

#include <QTemporaryDir>
#include <QtTest>

#include <functional>

using namespace qs;

using qs::test::errorOf;

namespace {

const std::string kFixture = QS_SOURCE_DIR "/tests/data/fixtures/savez_compressed.npz";

bool mentions(const std::string& e, const std::string& what)
{
    return e.find(what) != std::string::npos && e.find('\n') == std::string::npos;
}

} // namespace

class TestMultiInputData : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    Graph masked_;

    std::string path(const char* name) const { return dir_.filePath(name).toStdString(); }

    Graph import(test::OnnxBuilder b, const char* name)
    {
        b.save(path(name));
        return importOnnx(path(name));
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        masked_ = import(test::maskedMatMulModel(), "masked.onnx");
    }

    // The fixture's x and attention_mask feed the two inputs; its third array is extra.
    void npzFeedsEveryInput()
    {
        auto b = test::maskedMatMulModel();
        b.input("flags", {-1}, onnx::TensorProto::BOOL);
        const Graph g = import(b, "three.onnx");
        const Dataset d = loadDataset(kFixture, -1, g);
        QCOMPARE(d.kind, std::string("npz"));
        QCOMPARE(d.count(), int64_t(3));
        const std::vector<Tensor> in = d.batch(1, 2);
        QCOMPARE(in.size(), std::size_t(3));
        QCOMPARE(in[0].shape, (Shape {2, 4}));
        QCOMPARE(in[0].data<float>()[0], 0.5f * 4 - 1); // x[1, 0]
        QCOMPARE(in[1].dtype, DType::Int64);
        QCOMPARE(in[1].toInt64(), (std::vector<int64_t> {1, 1, 1, 0, 1, 1, 1, 1})); // mask rows 1 and 2
        QCOMPARE(in[2].dtype, DType::Bool);
        QCOMPARE(in[2].toInt64(), (std::vector<int64_t> {0, 1}));
        QCOMPARE(d.sampleShapes(), (std::map<std::string, Shape> {{"x", {4}}, {"attention_mask", {4}}, {"flags", {}}}));
        QCOMPARE(d.inputShapes(7).at("x"), (Shape {7, 4}));

        const std::string extra = errorOf([&] { loadDataset(kFixture, -1, masked_); });
        QVERIFY2(mentions(extra, "no model input for array \"flags\""), extra.c_str());
    }

    void folderOfNpy()
    {
        QTemporaryDir folder;
        const std::string f = folder.path().toStdString();
        const Tensor x = Tensor::fromVector<float>({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
        const Tensor m = Tensor::fromVector<int32_t>({2, 4}, {1, 1, 0, 0, 1, 1, 1, 0}); // int32 -> the input's int64
        writeNpy(x, f + "/x.npy");
        writeNpy(m, f + "/attention_mask.npy");
        const Dataset d = loadDataset(f, -1, masked_);
        QCOMPARE(d.kind, std::string("folder"));
        const std::vector<Tensor> in = d.batch(0, 2);
        QCOMPARE(in[0].toFloat(), x.toFloat());
        QCOMPARE(in[1].dtype, DType::Int64);
        QCOMPARE(in[1].toInt64(), m.toInt64());

        // first dimensions differ
        writeNpy(Tensor::fromVector<int64_t>({3, 4}, std::vector<int64_t>(12, 1)), f + "/attention_mask.npy");
        const std::string rows = errorOf([&] { loadDataset(f, -1, masked_); });
        QVERIFY2(mentions(rows, "different sample counts") && mentions(rows, "attention_mask"), rows.c_str());
        // a float array for an integer input
        writeNpy(Tensor::fromVector<float>({2, 4}, {1, 1, 0, 0, 1, 1, 0.5f, 0}), f + "/attention_mask.npy");
        const std::string type = errorOf([&] { loadDataset(f, -1, masked_); });
        QVERIFY2(mentions(type, "with value 0.5 at 6; input \"attention_mask\" takes int64"), type.c_str());
        // a missing input
        QFile::remove(QString::fromStdString(f + "/attention_mask.npy"));
        const std::string missing = errorOf([&] { loadDataset(f, -1, masked_); });
        QVERIFY2(mentions(missing, "no array for input \"attention_mask\""), missing.c_str());
        // a sample shape that does not fit
        writeNpy(Tensor::fromVector<int64_t>({2, 5}, std::vector<int64_t>(10, 1)), f + "/attention_mask.npy");
        const std::string shape = errorOf([&] { loadDataset(f, -1, masked_); });
        QVERIFY2(mentions(shape, "samples of shape [5] do not fit input \"attention_mask\""), shape.c_str());
    }

    // A single NPY file feeds the first input only: the others must be named.
    void singleFileNamesTheOthers()
    {
        writeNpy(Tensor::fromVector<float>({2, 4}, std::vector<float>(8, 1)), path("x_only.npy"));
        const std::string e = errorOf([&] { loadDataset(path("x_only.npy"), -1, masked_); });
        QVERIFY2(mentions(e, "the model also takes \"attention_mask\""), e.c_str());
    }

    // random:N: float inputs uniform in [0,1), token ids within the embedding's rows,
    // other integer inputs (masks) ones.
    void randomWithinTypes()
    {
        const Dataset r = loadDataset("random:64", -1, import(test::embeddingModel(7), "embed.onnx"));
        QCOMPARE(r.first().dtype, DType::Int64);
        std::set<int64_t> seen;
        for (int64_t id : r.first().toInt64()) {
            QVERIFY2(id >= 0 && id < 7, qPrintable(QString::number(id)));
            seen.insert(id);
        }
        QCOMPARE(seen.size(), std::size_t(7)); // 320 draws cover a vocabulary of 7
        QVERIFY(r.inputs.front().source.find("ids < 7") != std::string::npos);

        const Dataset m = loadDataset("random:4", -1, masked_);
        for (float v : m.inputs[0].samples.toFloat())
            QVERIFY(v >= 0 && v < 1);
        for (int64_t v : m.inputs[1].samples.toInt64())
            QCOMPARE(v, int64_t(1));
    }

    // h [2,N,3] keeps its batch in the middle: data holds it sample-first [N,2,3];
    // the scalar sr needs --input-value.
    void stateAndScalarInputs()
    {
        const Graph g = import(test::stateModel(), "state.onnx");
        const std::string e = errorOf([&] { loadDataset("random:4", -1, g); });
        QVERIFY2(mentions(e, "input \"sr\"") && mentions(e, "--input-value sr="), e.c_str());

        DataOptions o;
        o.spec = "random:4";
        o.inputValues = {{"sr", 16000}};
        const Dataset d = loadDataset(o, g);
        QCOMPARE(d.inputs[1].batchAxis, 1);
        QCOMPARE(d.inputs[1].samples.shape, (Shape {4, 2, 3}));
        QCOMPARE(d.inputs[2].batchAxis, -1);
        const std::vector<Tensor> in = d.batch(1, 3);
        QCOMPARE(in[1].shape, (Shape {2, 3, 3}));
        QCOMPARE(in[2].shape, Shape {});
        QCOMPARE(in[2].toInt64(), (std::vector<int64_t> {16000}));
        const auto h = d.inputs[1].samples.toFloat(), hb = in[1].toFloat();
        for (int64_t k = 0; k < 2; ++k)
            for (int64_t i = 0; i < 3; ++i)
                for (int64_t j = 0; j < 3; ++j)
                    QCOMPARE(hb[std::size_t((k * 3 + i) * 3 + j)], h[std::size_t(((1 + i) * 2 + k) * 3 + j)]);
        QCOMPARE(d.inputShapes(5).at("h"), (Shape {2, 5, 3}));
        QCOMPARE(d.inputShapes(5).at("sr"), Shape {});

        o.inputValues = {{"rate", 1}};
        const std::string unknown = errorOf([&] { loadDataset(o, g); });
        QVERIFY2(mentions(unknown, "--input-value rate: the model has no input of that name"), unknown.c_str());
    }

    // Samples of an input without a batch dimension must agree within a batch.
    void scalarSamplesMustAgree()
    {
        const Graph g = import(test::stateModel(), "state2.onnx");
        writeNpz({{"x", Tensor(DType::Float, {2, 3})}, {"h", Tensor(DType::Float, {2, 2, 3})},
                     {"sr", Tensor::fromVector<int64_t>({2}, {8000, 16000})}},
            path("rates.npz"));
        const Dataset d = loadDataset(path("rates.npz"), -1, g);
        QCOMPARE(d.batch(1, 1)[2].toInt64(), (std::vector<int64_t> {16000}));
        const std::string e = errorOf([&] { d.batch(0, 2); });
        QVERIFY2(mentions(e, "input \"sr\" has no batch dimension") && mentions(e, "--batch 1"), e.c_str());
    }

    void limitKeepsEveryInput()
    {
        const Dataset d = loadDataset(kFixture, 2,
            import(
                [] {
                    auto b = test::maskedMatMulModel();
                    b.input("flags", {-1}, onnx::TensorProto::BOOL);
                    return b;
                }(),
                "three2.onnx"));
        QCOMPARE(d.count(), int64_t(2));
        for (const DataInput& in : d.inputs)
            QCOMPARE(in.samples.shape[0], int64_t(2));
        const Dataset tail = d.slice(1, 1);
        QCOMPARE(tail.count(), int64_t(1));
        QCOMPARE(tail.batch(0, 1)[2].toInt64(), (std::vector<int64_t> {0}));
    }
};

QTEST_GUILESS_MAIN(TestMultiInputData)
#include "test_multi_input_data.moc"
