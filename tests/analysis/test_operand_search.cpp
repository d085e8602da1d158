// Attention operands in the mixed-precision search: their KV-cache cost counted by
// hand, the front over weights and operands against brute-force enumeration of every
// configuration, and a front point's config quantizing the operands it chose.
#include "analysis/bit_budget.h"
#include "analysis/latency_front.h"
#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "quant/transformer_fixture.h"

#include <QtTest>

#include <algorithm>
#include <cmath>

using namespace qs;
using namespace qs::test;

namespace {

const TransformerDims kDims {.vocab = 24, .dModel = 16, .ffn = 32, .context = 8};

// The fixture through ONNX and back: import infers the operands' shapes.
Graph tinyModel()
{
    return importOnnxBytes(exportOnnxBytes(tinyTransformer(kDims)), "tiny.onnx", ".");
}

struct Config {
    int64_t cost = 0;
    double noise = 0;
};

// Every pick of one option per entry, reduced to its Pareto set (increasing cost,
// strictly decreasing noise).
std::vector<Config> bruteForceFront(const std::vector<LayerOptions>& all)
{
    std::vector<Config> every;
    std::vector<std::size_t> idx(all.size(), 0);
    while (true) {
        Config c;
        for (std::size_t l = 0; l < all.size(); ++l) {
            c.cost += all[l].options[idx[l]].cost;
            c.noise += all[l].options[idx[l]].noise;
        }
        every.push_back(c);
        std::size_t l = 0;
        while (l < all.size() && ++idx[l] == all[l].options.size())
            idx[l++] = 0;
        if (l == all.size())
            break;
    }
    std::sort(every.begin(), every.end(),
        [](const Config& a, const Config& b) { return a.cost != b.cost ? a.cost < b.cost : a.noise < b.noise; });
    std::vector<Config> front;
    for (const Config& c : every)
        if (front.empty() || c.noise < front.back().noise)
            front.push_back(c);
    return front;
}

} // namespace

class TestOperandSearch : public QObject {
    Q_OBJECT

private slots:
    // Stored bits of a KV cache, as a reader counts them: elements x bits, plus 32 bits a
    // scale (and bits a zero point when affine) per range.
    void kvCacheBitsByHand()
    {
        ModelSizeTable t;
        t.kvContext = 10;
        const OperandShape k {"attn:K", OperandRole::K, 64, 4, true};
        const OperandShape q {"attn:Q", OperandRole::Q, 64, 4, false};
        OperandSpec s;
        s.bits = 4;
        QCOMPARE(t.operandBits(k, s), int64_t(640 * 4 + 32));
        s.granularity = OperandGranularity::Head;
        QCOMPARE(t.operandBits(k, s), int64_t(640 * 4 + 4 * 32));
        s.granularity = OperandGranularity::Channel; // head dim 16
        QCOMPARE(t.operandBits(k, s), int64_t(640 * 4 + 16 * 32));
        s.granularity = OperandGranularity::Token; // a range per token and head
        s.symmetric = false;
        QCOMPARE(t.operandBits(k, s), int64_t(640 * 4 + 40 * (32 + 4)));
        s.bits = 32;
        QCOMPARE(t.operandBits(k, s), int64_t(640 * 32));
        QCOMPARE(t.operandBits(q, s), int64_t(0)); // not cached
        QCOMPARE(t.operandElements(k), int64_t(640));
    }

    // The table reads each operand's per-token size from the imported shapes: K^T is
    // [N, d, T], so a token adds d elements, for every token of the context.
    void sizeTableFindsTheOperands()
    {
        const Graph g = tinyModel();
        const ModelSizeTable t = modelSizeTable(g);
        QCOMPARE(t.operands.size(), std::size_t(4));
        QCOMPARE(t.kvContext, kDims.context);
        for (const OperandShape& o : t.operands) {
            // P's rows are query tokens of T key positions each.
            QCOMPARE(o.tokenElements, o.role == OperandRole::P ? kDims.context : kDims.dModel);
            QCOMPARE(o.cached, o.role == OperandRole::K || o.role == OperandRole::V);
        }
        // A compiled plan's shapes (for exports whose graph leaves them symbolic) agree.
        ModelSizeTable r = t;
        r.kvContext = 0;
        resolveOperandShapes(r, QuantSession(g, QuantizeOptions {}), {{"input", Shape {1, kDims.context}}});
        QCOMPARE(r.kvContext, kDims.context);
        QCOMPARE(r.operands.size(), t.operands.size());
        for (std::size_t i = 0; i < r.operands.size(); ++i) {
            QCOMPARE(r.operands[i].point, t.operands[i].point);
            QCOMPARE(r.operands[i].tokenElements, t.operands[i].tokenElements);
            QCOMPARE(r.operands[i].heads, t.operands[i].heads);
        }
    }

    // The demo's torch export computes heads and head dim with Shape ops, so its graph
    // leaves them symbolic: the table compiles a one-token plan for them; the context
    // (dynamic, no metadata) stays unknown.
    void sizeTableResolvesSymbolicHeads()
    {
        const Graph g = importOnnx(QS_SOURCE_DIR "/resources/demo/byte_gpt_tiny_decomposed.onnx");
        const ModelSizeTable t = modelSizeTable(g);
        QCOMPARE(t.operands.size(), std::size_t(4));
        QCOMPARE(t.kvContext, int64_t(0));
        for (const OperandShape& o : t.operands)
            if (o.cached)
                QVERIFY2(o.tokenElements > 1 && o.heads >= 1, o.point.c_str());
    }

    // The DP front over the layers' weights and the four operands (each at 4 or 8 bits or
    // float) equals the Pareto set of all 2^L x 3^4 configurations, and each point's
    // config carries its operand bits.
    void frontMatchesBruteForce()
    {
        const Graph g = tinyModel();
        Dataset data = tokenData(kDims, 6, 3);
        SensitivityOptions o;
        o.bits = {4, 8};
        o.limit = 6;
        o.batch = 3;
        o.attention = true;
        o.base.attention.k.granularity = OperandGranularity::Channel; // KIVI
        o.base.attention.v.granularity = OperandGranularity::Token;
        Progress p;
        const SensitivityResult sens = measureSensitivity(g, data, o, p, CancelToken());
        const ModelSizeTable sizes = modelSizeTable(g);
        std::vector<LayerOptions> all = mixedLayerOptions(sizes, sens, o.bits, o.base, false);
        const std::size_t layers = all.size();
        for (LayerOptions& op : mixedOperandOptions(sizes, sens, o.bits, o.base, false))
            all.push_back(std::move(op));
        QCOMPARE(all.size(), layers + 4);
        QVERIFY(layers >= 5);
        // V per token at 4 bits, by hand: T x d elements and one (symmetric) scale per
        // token of the one head.
        const auto vAt =
            std::find_if(all.begin(), all.end(), [](const LayerOptions& l) { return l.layer.ends_with(":V"); });
        QVERIFY(vAt != all.end());
        const LayerOptions& v = *vAt;
        QCOMPARE(v.options.front().bits, 4);
        QCOMPARE(v.options.front().sizeBits, kDims.context * kDims.dModel * 4 + kDims.context * 32);
        QCOMPARE(v.options.back().bits, 32);

        const std::vector<Config> ref = bruteForceFront(all);
        const std::vector<FrontPoint> front = paretoFront(constrain(all, MixedConstraints {}), 1 << 16);
        QCOMPARE(front.size(), ref.size());
        bool kvFloat = false, kvNarrow = false;
        for (std::size_t i = 0; i < ref.size(); ++i) {
            QCOMPARE(front[i].cost, ref[i].cost);
            QVERIFY2(std::abs(front[i].predictedNoise - ref[i].noise) <= 1e-12 * std::max(1.0, ref[i].noise),
                qPrintable(QString("point %1: %2 vs %3").arg(i).arg(front[i].predictedNoise).arg(ref[i].noise)));
            QCOMPARE(front[i].bits.size(), layers);
            QCOMPARE(front[i].operandBits.size(), std::size_t(4));
            const QuantConfig cfg = configForPoint(o.base, front[i]);
            int64_t kv = 0;
            for (const OperandShape& op : sizes.operands) {
                const int b = front[i].operandBits.at(op.point);
                const auto spec = cfg.forOperand(op.point, op.role);
                QCOMPARE(spec.has_value(), b < 16);
                if (spec)
                    QCOMPARE(spec->bits, b);
                OperandSpec s = o.base.attention.role(op.role);
                s.bits = b;
                kv += sizes.operandBits(op, s);
                if (op.cached)
                    (b >= 16 ? kvFloat : kvNarrow) = true;
            }
            QCOMPARE(front[i].kvCacheBits, kv);
            // The what-if's prediction of the point's config is the point's own.
            std::vector<std::string> names;
            for (const auto& [layer, b] : front[i].bits)
                names.push_back(layer);
            const ErrorPrediction pred = predictError(sens, cfg, names);
            QVERIFY(std::abs(pred.noise - front[i].predictedNoise) <= 1e-9 * std::max(1e-12, front[i].predictedNoise));
        }
        // The front trades KV bits against weight bits: both ends appear.
        QVERIFY(kvFloat);
        QVERIFY(kvNarrow);
    }
};

QTEST_GUILESS_MAIN(TestOperandSearch)
#include "test_operand_search.moc"
