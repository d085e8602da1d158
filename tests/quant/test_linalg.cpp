// util/linalg against naive loops: the blocked product (both layouts of B, strides,
// edges of every blocking level), the blocked Cholesky and triangular inverse, and
// GPTQ's upper Cholesky factor of H^-1 against the textbook path (Cholesky, inverse,
// H^-1, Cholesky again) on random SPD matrices: well conditioned, ill-conditioned
// (eigenvalues down to 1e-12 of the largest) and rank-deficient Gram matrices (fewer
// samples than columns), the last two with GPTQ's damping (1% of the mean diagonal).
#include "util/linalg.h"

#include <QtTest>

#include <cmath>
#include <random>
#include <vector>

using namespace qs;

namespace {

using Mat = std::vector<double>;

Mat randomMat(int64_t r, int64_t c, std::mt19937_64& rng)
{
    std::normal_distribution<double> nd;
    Mat m(std::size_t(r * c));
    for (double& v : m)
        v = nd(rng);
    return m;
}

// The naive references (the loops GPTQ used before the blocked ones).
bool naiveCholesky(Mat& a, int64_t n)
{
    for (int64_t j = 0; j < n; ++j) {
        double d = a[std::size_t(j * n + j)];
        for (int64_t k = 0; k < j; ++k)
            d -= a[std::size_t(j * n + k)] * a[std::size_t(j * n + k)];
        if (!(d > 0))
            return false;
        d = std::sqrt(d);
        a[std::size_t(j * n + j)] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double v = a[std::size_t(i * n + j)];
            for (int64_t k = 0; k < j; ++k)
                v -= a[std::size_t(i * n + k)] * a[std::size_t(j * n + k)];
            a[std::size_t(i * n + j)] = v / d;
        }
        for (int64_t k = j + 1; k < n; ++k)
            a[std::size_t(j * n + k)] = 0;
    }
    return true;
}

Mat naiveLowerInverse(const Mat& l, int64_t n)
{
    Mat x(std::size_t(n * n), 0.0);
    for (int64_t c = 0; c < n; ++c) // column c of X solves L x = e_c
        for (int64_t i = c; i < n; ++i) {
            double v = i == c ? 1.0 : 0.0;
            for (int64_t k = c; k < i; ++k)
                v -= l[std::size_t(i * n + k)] * x[std::size_t(k * n + c)];
            x[std::size_t(i * n + c)] = v / l[std::size_t(i * n + i)];
        }
    return x;
}

// U upper with H^-1 = U^T U: L = chol(H), Hinv = L^-T L^-1, U = chol(Hinv)^T.
bool naiveInverseCholeskyUpper(const Mat& h, int64_t n, Mat& u)
{
    Mat l = h;
    if (!naiveCholesky(l, n))
        return false;
    const Mat x = naiveLowerInverse(l, n);
    Mat hinv(std::size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double v = 0;
            for (int64_t k = std::max(i, j); k < n; ++k)
                v += x[std::size_t(k * n + i)] * x[std::size_t(k * n + j)];
            hinv[std::size_t(i * n + j)] = v;
        }
    if (!naiveCholesky(hinv, n))
        return false;
    u.assign(std::size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
            u[std::size_t(j * n + i)] = hinv[std::size_t(i * n + j)];
    return true;
}

double maxAbs(const Mat& m)
{
    double r = 0;
    for (double v : m)
        r = std::max(r, std::abs(v));
    return r;
}

// Largest |a - b| over the lower triangle (or all) relative to max |b|.
double relDiff(const Mat& a, const Mat& b, int64_t n, bool lowerOnly)
{
    double d = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < (lowerOnly ? i + 1 : n); ++j)
            d = std::max(d, std::abs(a[std::size_t(i * n + j)] - b[std::size_t(i * n + j)]));
    return d / std::max(maxAbs(b), 1e-300);
}

enum class Kind { Wishart, IllConditioned, RankDeficient };

// A symmetric positive definite test matrix, damped as GPTQ damps its Hessian.
Mat spd(int64_t n, Kind kind, std::mt19937_64& rng)
{
    Mat h(std::size_t(n * n), 0.0);
    if (kind == Kind::IllConditioned) {
        // Q diag(lambda) Q^T with lambda from 1 down to 1e-12, Q from Gram-Schmidt.
        Mat q = randomMat(n, n, rng);
        for (int64_t i = 0; i < n; ++i) {
            double* qi = q.data() + i * n;
            for (int64_t p = 0; p < i; ++p) {
                const double* qp = q.data() + p * n;
                double dot = 0;
                for (int64_t j = 0; j < n; ++j)
                    dot += qi[j] * qp[j];
                for (int64_t j = 0; j < n; ++j)
                    qi[j] -= dot * qp[j];
            }
            double norm = 0;
            for (int64_t j = 0; j < n; ++j)
                norm += qi[j] * qi[j];
            for (int64_t j = 0; j < n; ++j)
                qi[j] /= std::sqrt(norm);
        }
        for (int64_t p = 0; p < n; ++p) {
            const double lambda = std::pow(10.0, -12.0 * double(p) / double(std::max<int64_t>(n - 1, 1)));
            const double* qp = q.data() + p * n;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < n; ++j)
                    h[std::size_t(i * n + j)] += lambda * qp[i] * qp[j];
        }
    } else {
        const int64_t samples = kind == Kind::RankDeficient ? std::max<int64_t>(1, n / 3) : 2 * n + 3;
        const Mat x = randomMat(samples, n, rng);
        for (int64_t s = 0; s < samples; ++s)
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < n; ++j)
                    h[std::size_t(i * n + j)] +=
                        2.0 * x[std::size_t(s * n + i)] * x[std::size_t(s * n + j)] / double(samples);
    }
    if (kind != Kind::Wishart) {
        double meanDiag = 0;
        for (int64_t i = 0; i < n; ++i)
            meanDiag += h[std::size_t(i * n + i)] / double(n);
        for (int64_t i = 0; i < n; ++i)
            h[std::size_t(i * n + i)] += 0.01 * meanDiag;
    }
    return h;
}

} // namespace

class TestLinalg : public QObject {
    Q_OBJECT

private slots:
    void gemmMatchesNaiveLoop_data()
    {
        QTest::addColumn<int>("m");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("k");
        QTest::addColumn<bool>("bT");
        QTest::newRow("1x1x1") << 1 << 1 << 1 << false;
        QTest::newRow("edges of every tile") << 67 << 37 << 259 << false;
        QTest::newRow("edges, B transposed") << 67 << 37 << 259 << true;
        QTest::newRow("wider than a B panel") << 9 << 2061 << 300 << false;
        QTest::newRow("wider than a B panel, transposed") << 9 << 2061 << 300 << true;
        QTest::newRow("tall") << 301 << 8 << 5 << false;
    }
    void gemmMatchesNaiveLoop()
    {
        QFETCH(int, m);
        QFETCH(int, n);
        QFETCH(int, k);
        QFETCH(bool, bT);
        std::mt19937_64 rng(uint64_t(m * 131 + n * 7 + k));
        // Submatrices of wider buffers: every stride differs from its width.
        const int64_t lda = k + 3, ldb = (bT ? k : n) + 5, ldc = n + 2;
        const Mat a = randomMat(m, lda, rng), b = randomMat(bT ? n : k, ldb, rng);
        Mat c = randomMat(m, ldc, rng), want = c;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double v = 0;
                for (int64_t t = 0; t < k; ++t)
                    v += a[std::size_t(i * lda + t)] * (bT ? b[std::size_t(j * ldb + t)] : b[std::size_t(t * ldb + j)]);
                want[std::size_t(i * ldc + j)] -= 0.5 * v;
            }
        linalg::gemm(m, n, k, -0.5, a.data(), lda, b.data(), ldb, bT, c.data(), ldc);
        double err = 0;
        for (std::size_t i = 0; i < c.size(); ++i)
            err = std::max(err, std::abs(c[i] - want[i]));
        QVERIFY2(err < 1e-12 * double(k), qPrintable(QString("max error %1").arg(err)));
    }

    void factorsMatchNaiveReference_data()
    {
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("kind");
        for (int n : {1, 7, 128, 129, 300})
            for (int kind : {0, 1, 2})
                QTest::newRow(qPrintable(QString("n %1, %2").arg(n).arg(
                    kind == 0 ? "Wishart" : kind == 1 ? "ill-conditioned, damped" : "rank-deficient, damped")))
                    << n << kind;
    }
    void factorsMatchNaiveReference()
    {
        QFETCH(int, n);
        QFETCH(int, kind);
        std::mt19937_64 rng(uint64_t(n * 3 + kind));
        const Mat h = spd(n, Kind(kind), rng);

        // Cholesky: the lower triangle equals the naive factor.
        Mat l = h, want = h;
        QVERIFY(naiveCholesky(want, n));
        QVERIFY(linalg::choleskyLower(l.data(), n, n));
        QVERIFY2(relDiff(l, want, n, true) < 1e-10, qPrintable(QString::number(relDiff(l, want, n, true))));

        // Triangular inverse of that factor; the strict upper triangle is not touched.
        Mat x = want;
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = i + 1; j < n; ++j)
                x[std::size_t(i * n + j)] = 12345.0;
        linalg::invertLowerTriangular(x.data(), n, n);
        const Mat xWant = naiveLowerInverse(want, n);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = i + 1; j < n; ++j)
                QCOMPARE(x[std::size_t(i * n + j)], 12345.0);
        // The inverse's entries grow with the condition number; compare relative to them.
        QVERIFY2(relDiff(x, xWant, n, true) < 1e-8, qPrintable(QString::number(relDiff(x, xWant, n, true))));

        // GPTQ's U: equal to the textbook path, and U^T U is H's inverse.
        Mat uWant;
        QVERIFY(naiveInverseCholeskyUpper(h, n, uWant));
        Mat u = h;
        QVERIFY(linalg::inverseCholeskyUpper(u, n));
        const double du = relDiff(u, uWant, n, false);
        QVERIFY2(du < 1e-7, qPrintable(QString("U differs by %1 (relative)").arg(du)));
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < i; ++j)
                QCOMPARE(u[std::size_t(i * n + j)], 0.0);
        if (kind == 0) { // well conditioned: U^T U H = I
            Mat hinv(std::size_t(n * n), 0.0);
            for (int64_t t = 0; t < n; ++t)
                for (int64_t i = t; i < n; ++i)
                    for (int64_t p = t; p < n; ++p)
                        hinv[std::size_t(i * n + p)] += u[std::size_t(t * n + i)] * u[std::size_t(t * n + p)];
            double worst = 0;
            for (int64_t i = 0; i < n; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double v = 0;
                    for (int64_t p = 0; p < n; ++p)
                        v += hinv[std::size_t(i * n + p)] * h[std::size_t(p * n + j)];
                    worst = std::max(worst, std::abs(v - (i == j ? 1.0 : 0.0)));
                }
            QVERIFY2(worst < 1e-9, qPrintable(QString::number(worst)));
        }
    }

    void rejectsMatricesThatAreNotPositiveDefinite()
    {
        for (int n : {3, 200}) {
            std::mt19937_64 rng {uint64_t(n)};
            Mat h = spd(n, Kind::Wishart, rng);
            h[std::size_t((n - 1) * n + n - 1)] = -1.0; // last pivot negative
            Mat a = h;
            QVERIFY(!linalg::choleskyLower(a.data(), n, n));
            Mat u = h;
            QVERIFY(!linalg::inverseCholeskyUpper(u, n)); // reversed: the first pivot fails
            h[std::size_t((n - 1) * n + n - 1)] = std::nan("");
            a = h;
            QVERIFY(!linalg::choleskyLower(a.data(), n, n));
        }
    }
};

QTEST_MAIN(TestLinalg)
#include "test_linalg.moc"
