// The optimizer overlay names, per node of a small model built here, the first pass
// that changed it and what became of it: checked against the fates written out by hand
// for each construct (Pad folded into the Conv, a constant Add folded, an Identity
// removed, HardSigmoid x input fused to one node), and the counts per pass.
#include "analysis/optimizer_overlay.h"
#include "graph/onnx_import.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

using namespace qs;
using test::OnnxBuilder;

class TestOptimizerOverlay : public QObject {
    Q_OBJECT
private:
    // x -> Identity -> Pad -> Conv(w, b + (one + two)) -> HardSigmoid -> Mul(conv) -> y
    static Graph model()
    {
        OnnxBuilder b(13);
        b.input("x", {1, 3, 6, 6});
        b.node("Identity", {"x"}, {"same"}, "identity");
        b.int64Initializer("pads", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
        b.node("Pad", {"same", "pads"}, {"padded"}, "pad");
        std::vector<float> w(4 * 3 * 9);
        for (std::size_t i = 0; i < w.size(); ++i)
            w[i] = 0.01f * float(int(i % 7) - 3);
        b.initializer("w", {4, 3, 3, 3}, w);
        b.initializer("one", {4}, {0.1f, 0.2f, 0.3f, 0.4f});
        b.initializer("two", {4}, {0.5f, 0.5f, 0.5f, 0.5f});
        b.node("Add", {"one", "two"}, {"bias"}, "bias_add");
        auto* conv = b.node("Conv", {"padded", "w", "bias"}, {"c"}, "conv");
        OnnxBuilder::intsAttr(conv, "kernel_shape", {3, 3});
        auto* hs = b.node("HardSigmoid", {"c"}, {"gate"}, "hardsigmoid");
        OnnxBuilder::floatAttr(hs, "alpha", 1.f / 6.f);
        b.node("Mul", {"c", "gate"}, {"y"}, "mul");
        b.output("y", {1, 4, 6, 6});
        return importOnnxBytes(b.bytes(), "overlay.onnx", "");
    }

private slots:
    void fatesNameTheFirstPassAndTheResult()
    {
        const Graph g = model();
        Progress progress;
        const OptimizerOverlay o = optimizerOverlay(g, "all", progress, CancelToken());
        for (const auto& [node, f] : o.fates)
            qInfo("%-12s %-9s by %-14s into %s", node.c_str(), optimizerFateName(f.kind), f.pass.c_str(),
                  f.into.c_str());
        auto fate = [&](const char* node) -> const OptimizerNodeFate& {
            auto it = o.fates.find(node);
            if (it == o.fates.end())
                throw std::runtime_error(std::string(node) + " has no fate");
            return it->second;
        };
        QCOMPARE(fate("identity").kind, OptimizerNodeFate::Kind::Removed);
        QCOMPARE(fate("identity").pass, std::string("cleanup"));
        QCOMPARE(fate("bias_add").kind, OptimizerNodeFate::Kind::Folded);
        QCOMPARE(fate("bias_add").pass, std::string("constant_fold"));
        QCOMPARE(fate("pad").kind, OptimizerNodeFate::Kind::Fused);
        QCOMPARE(fate("pad").pass, std::string("pad_fold"));
        QCOMPARE(fate("pad").into, std::string("conv"));
        QCOMPARE(fate("conv").kind, OptimizerNodeFate::Kind::Rewritten); // it now pads itself
        QCOMPARE(fate("conv").pass, std::string("pad_fold"));
        QCOMPARE(fate("hardsigmoid").kind, OptimizerNodeFate::Kind::Fused);
        QCOMPARE(fate("hardsigmoid").pass, std::string("hardswish"));
        QCOMPARE(fate("hardsigmoid").into, std::string("mul"));
        QCOMPARE(fate("mul").kind, OptimizerNodeFate::Kind::Rewritten); // the HardSwish
        QCOMPARE(o.fates.size(), std::size_t(6));
        QCOMPARE(o.nodesBefore, 6);
        QVERIFY2(o.nodesAfter < o.nodesBefore, qPrintable(QString::number(o.nodesAfter)));
        int counted = 0;
        for (const auto& [pass, n] : o.changedByPass)
            counted += n;
        QCOMPARE(counted, int(o.fates.size()));
        QVERIFY(!o.report.empty());
        // With no passes nothing changes; a pass spec typo names the variable.
        QVERIFY(optimizerOverlay(g, "none", progress, CancelToken()).fates.empty());
        try {
            optimizerOverlay(g, "pad_fould", progress, CancelToken());
            QFAIL("an unknown pass was accepted");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("pad_fould"), e.what());
        }
    }

    void cancelStopsBetweenPasses()
    {
        CancelToken cancel;
        cancel.cancel();
        Progress progress;
        QVERIFY_THROWS_EXCEPTION(Cancelled, optimizerOverlay(model(), "all", progress, cancel));
    }
};

QTEST_GUILESS_MAIN(TestOptimizerOverlay)
#include "test_optimizer_overlay.moc"
