#include "util/linalg.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

#include <omp.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define QS_LINALG_X86 1
#endif

namespace qs::linalg {
namespace {

// Register tile MR x NR, A panels MC x KC (L2), B panels KC x NC (L3).
constexpr int64_t kLinalgMR = 4, kLinalgNR = 8, kLinalgKC = 256, kLinalgMC = 64, kLinalgNC = 2048;
// Panel width of the Cholesky and of the triangular inverse.
constexpr int64_t kLinalgNB = 128;

// c (mr x nr valid of a 4 x 8 tile) += ap (kc x 4, packed) * bp (kc x 8, packed).
void linalgKernelPlain(int64_t kc, const double* ap, const double* bp, double* c, int64_t ldc, int64_t mr, int64_t nr)
{
    double acc[kLinalgMR][kLinalgNR] = {};
    for (int64_t k = 0; k < kc; ++k, ap += kLinalgMR, bp += kLinalgNR)
        for (int64_t i = 0; i < kLinalgMR; ++i)
            for (int64_t j = 0; j < kLinalgNR; ++j)
                acc[i][j] += ap[i] * bp[j];
    for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j)
            c[i * ldc + j] += acc[i][j];
}

#ifdef QS_LINALG_X86
__attribute__((target("avx2,fma"))) void linalgKernelAvx2(
    int64_t kc, const double* ap, const double* bp, double* c, int64_t ldc, int64_t mr, int64_t nr)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int64_t k = 0; k < kc; ++k, ap += kLinalgMR, bp += kLinalgNR) {
        const __m256d b0 = _mm256_load_pd(bp), b1 = _mm256_load_pd(bp + 4);
        __m256d a = _mm256_broadcast_sd(ap);
        c00 = _mm256_fmadd_pd(a, b0, c00);
        c01 = _mm256_fmadd_pd(a, b1, c01);
        a = _mm256_broadcast_sd(ap + 1);
        c10 = _mm256_fmadd_pd(a, b0, c10);
        c11 = _mm256_fmadd_pd(a, b1, c11);
        a = _mm256_broadcast_sd(ap + 2);
        c20 = _mm256_fmadd_pd(a, b0, c20);
        c21 = _mm256_fmadd_pd(a, b1, c21);
        a = _mm256_broadcast_sd(ap + 3);
        c30 = _mm256_fmadd_pd(a, b0, c30);
        c31 = _mm256_fmadd_pd(a, b1, c31);
    }
    if (mr == kLinalgMR && nr == kLinalgNR) {
        const __m256d rows[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
        for (int64_t i = 0; i < 4; ++i) {
            double* ci = c + i * ldc;
            _mm256_storeu_pd(ci, _mm256_add_pd(_mm256_loadu_pd(ci), rows[i][0]));
            _mm256_storeu_pd(ci + 4, _mm256_add_pd(_mm256_loadu_pd(ci + 4), rows[i][1]));
        }
        return;
    }
    alignas(32) double t[kLinalgMR][kLinalgNR];
    _mm256_store_pd(t[0], c00);
    _mm256_store_pd(t[0] + 4, c01);
    _mm256_store_pd(t[1], c10);
    _mm256_store_pd(t[1] + 4, c11);
    _mm256_store_pd(t[2], c20);
    _mm256_store_pd(t[2] + 4, c21);
    _mm256_store_pd(t[3], c30);
    _mm256_store_pd(t[3] + 4, c31);
    for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j)
            c[i * ldc + j] += t[i][j];
}

bool linalgHasAvx2()
{
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
}
#endif

using LinalgKernel = void (*)(int64_t, const double*, const double*, double*, int64_t, int64_t, int64_t);

LinalgKernel linalgKernel()
{
#ifdef QS_LINALG_X86
    if (linalgHasAvx2())
        return linalgKernelAvx2;
#endif
    return linalgKernelPlain;
}

struct AlignedDoubles {
    double* p = nullptr;
    explicit AlignedDoubles(std::size_t n)
        : p(static_cast<double*>(std::aligned_alloc(64, std::max<std::size_t>(64, (n * sizeof(double) + 63) / 64 * 64))))
    {
        if (!p)
            throw std::bad_alloc();
    }
    ~AlignedDoubles() { std::free(p); }
    AlignedDoubles(const AlignedDoubles&) = delete;
    AlignedDoubles& operator=(const AlignedDoubles&) = delete;
};

// Unblocked lower Cholesky of a small diagonal block (row-major, in place).
bool linalgCholeskySmall(double* a, int64_t n, int64_t lda)
{
    for (int64_t j = 0; j < n; ++j) {
        double* aj = a + j * lda;
        double d = aj[j];
        for (int64_t k = 0; k < j; ++k)
            d -= aj[k] * aj[k];
        if (!(d > 0))
            return false;
        d = std::sqrt(d);
        aj[j] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double* ai = a + i * lda;
            double v = ai[j];
            for (int64_t k = 0; k < j; ++k)
                v -= ai[k] * aj[k];
            ai[j] = v / d;
        }
    }
    return true;
}

// Inverse of a small lower triangular block into out (nb x nb, row-major, zeros above).
void linalgInvertSmall(const double* a, int64_t n, int64_t lda, double* out)
{
    std::fill(out, out + n * n, 0.0);
    for (int64_t i = 0; i < n; ++i) {
        double* xi = out + i * n;
        const double* li = a + i * lda;
        for (int64_t k = 0; k < i; ++k) {
            const double f = li[k];
            const double* xk = out + k * n;
            for (int64_t c = 0; c <= k; ++c)
                xi[c] -= f * xk[c];
        }
        xi[i] = 1.0;
        const double d = li[i];
        for (int64_t c = 0; c <= i; ++c)
            xi[c] /= d;
    }
}

} // namespace

void gemm(int64_t m, int64_t n, int64_t kk, double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
    bool bTransposed, double* c, int64_t ldc)
{
    if (m <= 0 || n <= 0 || kk <= 0 || alpha == 0)
        return;
    const LinalgKernel kernel = linalgKernel();
    const int64_t ncMax = std::min(n, kLinalgNC), kcMax = std::min(kk, kLinalgKC);
    const int64_t ncPad = (ncMax + kLinalgNR - 1) / kLinalgNR * kLinalgNR;
    AlignedDoubles bp(std::size_t(kcMax * ncPad));
    const int64_t mBlocks = (m + kLinalgMC - 1) / kLinalgMC;
    // Threads over blocks of rows; one inside a parallel region (the callers below split
    // their own work into independent products, which keeps barriers few: with other
    // processes on the cores, each barrier waits for a descheduled thread).
    const int threads = omp_in_parallel()
        ? 1
        : int(std::min<int64_t>({omp_get_max_threads(), mBlocks, std::max<int64_t>(1, m * n * kk / 2000000)}));
    for (int64_t j0 = 0; j0 < n; j0 += kLinalgNC) {
        const int64_t nc = std::min(kLinalgNC, n - j0);
        const int64_t nPanels = (nc + kLinalgNR - 1) / kLinalgNR;
        for (int64_t k0 = 0; k0 < kk; k0 += kLinalgKC) {
            const int64_t kc = std::min(kLinalgKC, kk - k0);
#pragma omp parallel num_threads(threads) if (threads > 1)
            {
                // B[k0:k0+kc, j0:j0+nc] into panels of NR columns, kc x NR each, zero padded.
#pragma omp for schedule(static)
                for (int64_t p = 0; p < nPanels; ++p) {
                    double* dst = bp.p + p * kc * kLinalgNR;
                    const int64_t jb = j0 + p * kLinalgNR, w = std::min(kLinalgNR, j0 + nc - jb);
                    for (int64_t k = 0; k < kc; ++k) {
                        double* d = dst + k * kLinalgNR;
                        for (int64_t j = 0; j < w; ++j)
                            d[j] = bTransposed ? b[(jb + j) * ldb + k0 + k] : b[(k0 + k) * ldb + jb + j];
                        for (int64_t j = w; j < kLinalgNR; ++j)
                            d[j] = 0;
                    }
                }
                AlignedDoubles ap(std::size_t(kLinalgMC * kc));
#pragma omp for schedule(dynamic)
                for (int64_t ib = 0; ib < mBlocks; ++ib) {
                    const int64_t i0 = ib * kLinalgMC, mc = std::min(kLinalgMC, m - i0);
                    const int64_t mPanels = (mc + kLinalgMR - 1) / kLinalgMR;
                    for (int64_t q = 0; q < mPanels; ++q) {
                        double* dst = ap.p + q * kc * kLinalgMR;
                        const int64_t ib0 = i0 + q * kLinalgMR, h = std::min(kLinalgMR, i0 + mc - ib0);
                        for (int64_t k = 0; k < kc; ++k) {
                            for (int64_t i = 0; i < h; ++i)
                                dst[k * kLinalgMR + i] = alpha * a[(ib0 + i) * lda + k0 + k];
                            for (int64_t i = h; i < kLinalgMR; ++i)
                                dst[k * kLinalgMR + i] = 0;
                        }
                    }
                    for (int64_t p = 0; p < nPanels; ++p) {
                        const int64_t jb = j0 + p * kLinalgNR, w = std::min(kLinalgNR, j0 + nc - jb);
                        for (int64_t q = 0; q < mPanels; ++q) {
                            const int64_t ib0 = i0 + q * kLinalgMR, h = std::min(kLinalgMR, i0 + mc - ib0);
                            kernel(kc, ap.p + q * kc * kLinalgMR, bp.p + p * kc * kLinalgNR, c + ib0 * ldc + jb, ldc,
                                h, w);
                        }
                    }
                }
            }
        }
    }
}

bool choleskyLower(double* a, int64_t n, int64_t lda)
{
    // Right-looking: factor the diagonal block, solve the panel below it, update the
    // trailing lower triangle with the panel's product (column block by column block,
    // so the strict upper triangle costs no work).
    for (int64_t j0 = 0; j0 < n; j0 += kLinalgNB) {
        const int64_t jb = std::min(kLinalgNB, n - j0);
        double* a11 = a + j0 * lda + j0;
        if (!linalgCholeskySmall(a11, jb, lda))
            return false;
        const int64_t r0 = j0 + jb;
        if (r0 >= n)
            break;
        // A21 := A21 L11^-T: each row x solves x L11^T = a (forward substitution); with L11
        // transposed, every step is a contiguous axpy.
        std::vector<double> lt(std::size_t(jb * jb), 0.0);
        for (int64_t i = 0; i < jb; ++i)
            for (int64_t j = 0; j <= i; ++j)
                lt[std::size_t(j * jb + i)] = a11[i * lda + j];
#pragma omp parallel for schedule(static)
        for (int64_t r = r0; r < n; ++r) {
            double* x = a + r * lda + j0;
            for (int64_t c = 0; c < jb; ++c) {
                const double v = x[c] / lt[std::size_t(c * jb + c)];
                x[c] = v;
                const double* l = lt.data() + c * jb;
                for (int64_t t = c + 1; t < jb; ++t)
                    x[t] -= v * l[t];
            }
        }
        // A22 -= A21 A21^T, lower triangle: column block [c0, c0+w) needs rows >= c0; the
        // blocks are independent products, the tallest first.
        const int64_t cBlocks = (n - r0 + kLinalgNB - 1) / kLinalgNB;
#pragma omp parallel for schedule(dynamic)
        for (int64_t cb = 0; cb < cBlocks; ++cb) {
            const int64_t c0 = r0 + cb * kLinalgNB, w = std::min(kLinalgNB, n - c0);
            gemm(n - c0, w, jb, -1.0, a + c0 * lda + j0, lda, a + c0 * lda + j0, lda, true, a + c0 * lda + c0, lda);
        }
    }
    return true;
}

void invertLowerTriangular(double* a, int64_t n, int64_t lda)
{
    // Block rows top-down; rows above block row I already hold X = L^-1 there:
    // X[I,I] = L[I,I]^-1 and X[I,:I] = -X[I,I] (L[I,:I] X[:I,:I]), X[:I,:I] lower, so
    // column block J of the product needs L[I, J0:I0] and X[J0:I0, J] only; X's
    // diagonal blocks are kept apart, zeros above the diagonal included.
    const int64_t blocks = (n + kLinalgNB - 1) / kLinalgNB;
    std::vector<double> diag(std::size_t(blocks * kLinalgNB * kLinalgNB), 0.0);
    std::vector<double> t;
    for (int64_t i0 = 0; i0 < n; i0 += kLinalgNB) {
        const int64_t ib = std::min(kLinalgNB, n - i0);
        double* rowsI = a + i0 * lda;
        double* xii = diag.data() + (i0 / kLinalgNB) * kLinalgNB * kLinalgNB; // ib x ib, stride ib
        linalgInvertSmall(rowsI + i0, ib, lda, xii);
        if (i0 > 0) {
            t.assign(std::size_t(ib * i0), 0.0);
            const int64_t jBlocks = i0 / kLinalgNB; // full blocks: i0 is a multiple of NB
#pragma omp parallel
            {
                // Column blocks of T, independent products, the longest first.
#pragma omp for schedule(dynamic)
                for (int64_t jbk = 0; jbk < jBlocks; ++jbk) {
                    const int64_t j0 = jbk * kLinalgNB, w = kLinalgNB;
                    const double* xjj = diag.data() + jbk * kLinalgNB * kLinalgNB;
                    gemm(ib, w, w, 1.0, rowsI + j0, lda, xjj, w, false, t.data() + j0, i0);
                    if (j0 + w < i0)
                        gemm(ib, w, i0 - j0 - w, 1.0, rowsI + j0 + w, lda, a + (j0 + w) * lda + j0, lda, false,
                            t.data() + j0, i0);
                }
                // X[I, :I] = -X[I,I] T, by column blocks.
#pragma omp for schedule(static)
                for (int64_t jbk = 0; jbk < jBlocks; ++jbk) {
                    const int64_t j0 = jbk * kLinalgNB;
                    for (int64_t i = 0; i < ib; ++i)
                        std::fill(rowsI + i * lda + j0, rowsI + i * lda + j0 + kLinalgNB, 0.0);
                    gemm(ib, kLinalgNB, ib, -1.0, xii, ib, t.data() + j0, i0, false, rowsI + j0, lda);
                }
            }
        }
        for (int64_t i = 0; i < ib; ++i)
            std::copy_n(xii + i * ib, i + 1, rowsI + i * lda + i0);
    }
}

bool inverseCholeskyUpper(std::vector<double>& h, int64_t n)
{
    std::reverse(h.begin(), h.end()); // J H J
    if (!choleskyLower(h.data(), n, n))
        return false;
    for (int64_t i = 0; i < n; ++i) // the factor's strict upper triangle still holds H
        std::fill(h.begin() + i * n + i + 1, h.begin() + (i + 1) * n, 0.0);
    invertLowerTriangular(h.data(), n, n);
    std::reverse(h.begin(), h.end()); // U = J L^-1 J
    return true;
}

} // namespace qs::linalg
