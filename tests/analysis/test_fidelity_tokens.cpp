// Language-model fidelity is per token: a [windows, positions, vocabulary] output has one
// softmax per position. FidelityMeter's per-position mode, quantizeModel's agreement, KL
// and cosine on text data, the sensitivity sweep's KL and agreement, each against a naive per-token loop
// (textbook softmax, no shared code).
#include "analysis/sensitivity.h"
#include "measure/fidelity.h"
#include "quant/session.h"
#include "quant/transformer_fixture.h"
#include "support/naive_softmax.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::test;

namespace {

struct Naive {
    double agreement = 0, kl = 0, cosine = 0;
};

// Per token: share of positions with the same argmax, mean KL, mean cosine.
Naive perToken(const Tensor& ref, const Tensor& test)
{
    const int64_t vocab = ref.shape.back(), rows = ref.numel() / vocab;
    auto a = ref.data<float>();
    auto b = test.data<float>();
    Naive n;
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = a.data() + r * vocab;
        const float* y = b.data() + r * vocab;
        n.agreement += naiveArgmax(x, vocab) == naiveArgmax(y, vocab);
        n.kl += naiveKl(x, y, vocab);
        double dot = 0, nx = 0, ny = 0;
        for (int64_t v = 0; v < vocab; ++v) {
            dot += double(x[v]) * y[v];
            nx += double(x[v]) * x[v];
            ny += double(y[v]) * y[v];
        }
        n.cosine += dot / std::sqrt(nx * ny);
    }
    n.agreement /= double(rows);
    n.kl /= double(rows);
    n.cosine /= double(rows);
    return n;
}

} // namespace

class TestFidelityTokens : public QObject {
    Q_OBJECT

private slots:
    // 2 windows of 4 positions over a 5-token vocabulary: positions 1 and 2 of window 0
    // change their top token, the rest keep it. Per window, both windows keep their
    // overall argmax (a 20 in each); per token, 6 of 8 positions agree.
    void meterIsPerPosition()
    {
        Tensor ref = randomTensor({2, 4, 5}, 1, 1.f);
        Tensor test = ref;
        auto r = ref.data<float>();
        auto t = test.data<float>();
        for (int64_t p = 0; p < 8; ++p) {
            float* rowR = r.data() + p * 5;
            float* rowT = t.data() + p * 5;
            const int64_t top = naiveArgmax(rowR, 5);
            rowR[top] += 0.5f; // a clear winner
            rowT[top] = rowR[top];
            const bool flip = p < 3 || p == 7;
            const int64_t other = (top + 1) % 5;
            if (flip)
                rowT[other] = rowR[top] + 0.3f;
        }
        r[2 * 4 * 5 - 1] = 20.f; // window 1's overall top is at position 3, kept
        t[2 * 4 * 5 - 1] = 20.f;
        r[0] = 20.f; // window 0's overall top at position 0, kept
        t[0] = 20.f;
        const Naive want = perToken(ref, test);
        FidelityMeter m(true);
        m.add(ref, test);
        qInfo("per token: agreement %.4f KL %.6f cosine %.6f", want.agreement, want.kl, want.cosine);
        QCOMPARE(m.samples(), int64_t(2));
        QVERIFY2(std::abs(m.top1Agreement() - want.agreement) < 1e-12, qPrintable(QString::number(m.top1Agreement())));
        QVERIFY2(want.agreement < 0.99, qPrintable(QString::number(want.agreement))); // the case flips tokens
        QVERIFY2(std::abs(m.kl() - want.kl) < 1e-9 * std::max(1.0, want.kl), qPrintable(QString::number(m.kl())));
        QVERIFY2(std::abs(m.cosine() - want.cosine) < 1e-9, qPrintable(QString::number(m.cosine())));
        // Per window the same logits would agree everywhere: the modes differ here.
        FidelityMeter window;
        window.add(ref, test);
        QCOMPARE(window.top1Agreement(), 1.0);
        // Labels are per sample; per position they are refused.
        const std::vector<int64_t> labels {0, 1};
        QVERIFY_THROWS_EXCEPTION(Error, m.add(ref, test, &labels));
    }

    // quantizeModel on text data reports agreement, KL and cosine per token of the tiny
    // GPT's logits, the same as the naive loop over the FP32 and quantized plans.
    void quantizeOnTextIsPerToken()
    {
        const TransformerDims d;
        Dataset text = tokenData(d, 8, 5);
        std::vector<int64_t> next;
        for (float v : text.first().data<float>())
            next.push_back((int64_t(v) * 5 + 1) % d.vocab);
        text.kind = "text";
        text.targets = Tensor::fromVector(Shape {8, d.context}, next);
        QuantizeOptions o;
        o.config.defaults.weight = {.bits = 3, .granularity = Granularity::Channel};
        o.config.defaults.activation.bits = 16;
        o.batch = 3; // 3 + 3 + 2 windows
        Progress p;
        const QuantizeResult r = quantizeModel(tinyTransformer(), text, text, o, p, CancelToken());
        QuantSession s(tinyTransformer(), o);
        s.calibrate(text, p, CancelToken());
        s.quantizeWeights();
        const Tensor fp = s.compile(false, text.first().shape)->run({text.first()}).front();
        const Tensor q = s.compile(true, text.first().shape)->run({text.first()}).front();
        QCOMPARE(fp.shape, (Shape {8, d.context, d.vocab}));
        const Naive want = perToken(fp, q);
        qInfo("quantize: agreement %.4f (naive %.4f), KL %.6f (naive %.6f)", r.top1Agreement, want.agreement, r.kl,
            want.kl);
        QVERIFY2(want.agreement < 0.999 && want.agreement > 0.2, qPrintable(QString::number(want.agreement)));
        QVERIFY(std::abs(r.top1Agreement - want.agreement) < 1e-9);
        QVERIFY(std::abs(r.kl - want.kl) < 1e-5 * std::max(1e-3, want.kl));
        QVERIFY(std::abs(r.cosine - want.cosine) < 1e-6);
        QCOMPARE(r.evalSamples, int64_t(8));
    }

    // The sensitivity sweep on text (one-shot, weights at 3 bits): a layer's KL and
    // agreement are per token of the model with only that weight quantized.
    void sensitivityOnTextIsPerToken()
    {
        const TransformerDims d;
        Dataset text = tokenData(d, 6, 8);
        text.kind = "text";
        text.targets = Tensor(DType::Int64, {6, d.context});
        SensitivityOptions so;
        so.bits = {3};
        so.limit = 6;
        so.batch = 3;
        so.threads = 1;
        Progress p;
        const Graph g = tinyTransformer();
        const SensitivityResult r = measureSensitivity(g, text, so, p, CancelToken());
        QuantizeOptions o;
        o.config = so.base;
        const QuantSession s(g, o);
        const Tensor fp = s.compile(false, text.first().shape)->run({text.first()}).front();
        int checked = 0;
        for (const SessionLayer& l : s.layers()) {
            if (l.name != "fc1" && l.name != "lm_head")
                continue;
            const Tensor* w = s.graph().constant(l.weight);
            QuantSpec spec = l.spec.weight;
            spec.bits = 3;
            CompileOptions co = s.compileOptions(false, text.first().shape);
            co.initializerOverrides[l.weight] =
                Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
            co.initializerOverrides[l.weight].name = l.weight;
            const Tensor q = compilePlan(s.graph(), co)->run({text.first()}).front();
            const Naive want = perToken(fp, q);
            const LayerSensitivity* got = nullptr;
            for (const auto& ls : r.layers)
                if (ls.layer == l.name)
                    got = &ls;
            QVERIFY(got && got->byBits.count(3));
            const BitMeasure& m = got->byBits.at(3);
            qInfo("%s: agreement %.4f (naive %.4f), KL %.6f (naive %.6f)", l.name.c_str(), m.top1Agreement,
                want.agreement, m.kl, want.kl);
            QVERIFY(std::abs(m.top1Agreement - want.agreement) < 0.5 / 96); // the same count of 96 tokens
            QVERIFY(std::abs(m.kl - want.kl) <= 1e-3 * std::max(1e-3, want.kl));
            ++checked;
        }
        QCOMPARE(checked, 2);
    }
};

QTEST_APPLESS_MAIN(TestFidelityTokens)
#include "test_fidelity_tokens.moc"
