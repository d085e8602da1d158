// Who owns which copy of the weights: sealed tensors (TensorBytes) share their bytes
// between the imported graph, a session's working copy, the quantized weights and the
// plans compiled from them, and a write gives the written tensor bytes of its own.
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "runtime/plan.h"

#include <QtTest>

#include <utility>

using namespace qs;

namespace {

const char* const kByteGpt = QS_SOURCE_DIR "/resources/demo/byte_gpt.onnx";

Tensor ramp(int64_t n)
{
    std::vector<float> v(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        v[std::size_t(i)] = float(i);
    return Tensor::fromVector(Shape {n}, v);
}

// How many of `g`'s numeric initializer bytes have storage of their own, not shared
// with the tensor of the same name in `base`.
int64_t bytesNotSharedWith(const Graph& g, const Graph& base)
{
    int64_t own = 0;
    for (const auto& [name, t] : g.initializers) {
        auto it = base.initializers.find(name);
        if (it == base.initializers.end() || !t.bytes.sharesStorageWith(it->second.bytes))
            own += int64_t(t.bytes.size());
    }
    return own;
}

int64_t weightBytes(const Graph& g)
{
    int64_t all = 0;
    for (const auto& entry : g.initializers)
        all += int64_t(entry.second.bytes.size());
    return all;
}

} // namespace

class TestWeightSharing : public QObject {
    Q_OBJECT

private slots:
    void unsealedCopiesAreDeep()
    {
        Tensor a = ramp(16);
        auto p = a.data<float>(); // a mutable pointer: `a` must never be shared while it is in use
        Tensor b = a;
        QVERIFY(!b.bytes.sharesStorageWith(a.bytes));
        p[0] = 42;
        QCOMPARE(b.data<float>()[0], 0.f);
        QCOMPARE(std::as_const(a).data<float>()[0], 42.f);
    }

    void sealedCopiesShareUntilWritten()
    {
        Tensor a = ramp(16);
        a.seal();
        const Tensor b = a;
        Tensor c;
        c = b;
        QVERIFY(b.bytes.sharesStorageWith(a.bytes));
        QVERIFY(c.bytes.sharesStorageWith(a.bytes));
        QVERIFY(c.bytes.sealed());
        c.data<float>()[3] = -1; // copy on write: c alone changes
        QVERIFY(!c.bytes.sharesStorageWith(a.bytes));
        QVERIFY(!c.bytes.sealed());
        QCOMPARE(std::as_const(a).data<float>()[3], 3.f);
        QCOMPARE(b.data<float>()[3], 3.f);
        QCOMPARE(std::as_const(c).data<float>()[3], -1.f);
        Tensor d = c; // unsealed by the write: copied
        QVERIFY(!d.bytes.sharesStorageWith(c.bytes));
        // A tensor no one else shares is written in place, and its storage outlives it
        // for whoever holds storage() (a plan reading a weight in place).
        Tensor e = ramp(8);
        e.seal();
        std::shared_ptr<const std::byte> kept = e.bytes.storage();
        const std::byte* where = std::as_const(e).bytes.data();
        QCOMPARE(kept.get(), where);
        e = Tensor();
        QCOMPARE(reinterpret_cast<const float*>(kept.get())[7], 7.f);
        // Moving leaves nothing behind; equality compares bytes, not storage.
        Tensor f = ramp(4), g = ramp(4);
        QVERIFY(f.bytes == g.bytes);
        Tensor h = std::move(f);
        QVERIFY(f.bytes.empty());
        QCOMPARE(h.bytes.size(), std::size_t(16));
    }

    void importSealsAndGraphCopiesShare()
    {
        const Graph g = importOnnx(kByteGpt);
        QVERIFY(weightBytes(g) > 1'000'000);
        for (const auto& entry : g.initializers)
            QVERIFY2(entry.second.bytes.sealed(), entry.first.c_str());
        const Graph copy = g;
        QCOMPARE(bytesNotSharedWith(copy, g), int64_t(0));
    }

    // The session's working copy, its quantized weights and the options its quantized
    // plans compile with hold no second copy of the imported weights.
    void sessionSharesTheImportedWeights()
    {
        const Graph g = importOnnx(kByteGpt);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 4;
        o.config.defaults.weight.granularity = Granularity::Group;
        o.config.defaults.weight.groupSize = 32;
        o.config.defaults.activation.bits = 16;
        QuantSession s(g, o);
        QCOMPARE(bytesNotSharedWith(s.graph(), g), int64_t(0));
        s.quantizeWeights();
        QVERIFY(!s.weightOverrides.empty());
        // Reading the working graph, the quantized weights and the plans' options copies nothing.
        for (const SessionLayer& l : s.layers()) {
            const Tensor& w = s.weightOverrides.at(l.weight);
            QVERIFY(w.bytes.sealed());
            QVERIFY(!w.bytes.sharesStorageWith(g.initializers.at(l.weight).bytes)); // other values
        }
        std::map<std::string, Shape> shapes;
        shapes[s.graph().inputs.front().name] = Shape {1, 16};
        const CompileOptions co = s.compileOptions(true, shapes);
        for (const auto& [name, t] : co.initializerOverrides)
            QVERIFY2(t.bytes.sharesStorageWith(s.weightOverrides.at(name).bytes), name.c_str());
        QCOMPARE(bytesNotSharedWith(s.graph(), g), int64_t(0));
        // A plan of the working graph reads the weights where they lie; the graph and
        // the import still share after it ran.
        const std::unique_ptr<Plan> plan = s.compile(false, shapes);
        Tensor tokens(DType::Int64, Shape {1, 16});
        std::vector<Tensor> out = plan->run({tokens});
        QCOMPARE(out.size(), std::size_t(1));
        QCOMPARE(bytesNotSharedWith(s.graph(), g), int64_t(0));
    }
};

QTEST_GUILESS_MAIN(TestWeightSharing)
#include "test_weight_sharing.moc"
