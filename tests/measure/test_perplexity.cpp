// PerplexityMeter against hand-computed values: uniform logits give perplexity = vocab,
// a two-position case checked against a naive log-softmax, streaming over batches,
// and errors for mismatched shapes and out-of-vocabulary targets.
#include "measure/perplexity.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>

using namespace qs;

class TestPerplexity : public QObject {
    Q_OBJECT
private slots:
    void uniformIsVocab()
    {
        PerplexityMeter m;
        Tensor logits(DType::Float, {2, 3, 5}); // all zero
        m.add(logits, Tensor::fromVector<int64_t>({2, 3}, {0, 1, 2, 3, 4, 0}));
        QCOMPARE(m.tokens(), int64_t(6));
        QVERIFY(std::abs(m.perplexity() - 5.0) < 1e-12);
    }

    void naiveReferenceAcrossBatches()
    {
        const std::vector<float> a {1.f, 2.f, 3.f}, b {-1.f, 0.5f, 40.f};
        auto nll = [](const std::vector<float>& z, int t) {
            double s = 0;
            for (float v : z)
                s += std::exp(double(v));
            return -std::log(std::exp(double(z[std::size_t(t)])) / s);
        };
        const double want = std::exp((nll(a, 2) + nll(b, 0)) / 2);
        PerplexityMeter m;
        m.add(Tensor::fromVector<float>({1, 1, 3}, a), Tensor::fromVector<int64_t>({1, 1}, {2}));
        m.add(Tensor::fromVector<float>({1, 1, 3}, b), Tensor::fromVector<int64_t>({1, 1}, {0}));
        QVERIFY2(std::abs(m.perplexity() - want) < 1e-9 * want, qPrintable(QString::number(m.perplexity())));
    }

    void errors()
    {
        PerplexityMeter m;
        QVERIFY_THROWS_EXCEPTION(Error, m.add(Tensor(DType::Float, {1, 4, 5}), Tensor(DType::Int64, {1, 3})));
        QVERIFY_THROWS_EXCEPTION(Error, m.add(Tensor(DType::Float, {1, 1, 5}), Tensor::fromVector<int64_t>({1, 1}, {5})));
        QCOMPARE(m.tokens(), int64_t(0));
    }
};

QTEST_GUILESS_MAIN(TestPerplexity)
#include "test_perplexity.moc"
