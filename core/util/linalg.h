// Dense double-precision linear algebra for the PTQ algorithms (GPTQ's Hessian inverse,
// its lazy batch updates, Gram-matrix products): a cache-blocked, OpenMP-threaded
// matrix product with packed panels and a 4 x 8 register tile (AVX2/FMA when the CPU
// has it, chosen at run time), and on it a right-looking blocked Cholesky and a blocked
// inverse of a lower triangular matrix. Row-major throughout; `ld` is the row stride.
#pragma once

#include <cstdint>
#include <vector>

namespace qs::linalg {

// C[m][n] += alpha * A[m][kk] * op(B): op(B) is B[kk][n] or, with bTransposed, B[n][kk]^T.
void gemm(int64_t m, int64_t n, int64_t kk, double alpha, const double* a, int64_t lda, const double* b, int64_t ldb,
    bool bTransposed, double* c, int64_t ldc);

// Lower Cholesky factor L (A = L L^T) of a symmetric positive definite matrix, in place in
// its lower triangle (the strict upper triangle is read as nothing and left as scratch);
// false if A is not positive definite (a pivot <= 0 or NaN).
bool choleskyLower(double* a, int64_t n, int64_t lda);

// Inverse of a lower triangular matrix with a nonzero diagonal, in place in its lower
// triangle (the strict upper triangle is not read and not written).
void invertLowerTriangular(double* a, int64_t n, int64_t lda);

// The upper triangular U with H^-1 = U^T U (the upper Cholesky factor of H's inverse, as
// GPTQ uses it) from H (symmetric positive definite, n x n, row-major), overwriting `h`
// with U (zeros below the diagonal); false if H is not positive definite (h is then
// scratch). One Cholesky and one triangular inverse, no inverse of H itself: with J the
// reversal permutation, J H J = L L^T gives H = R R^T with R = J L J upper, so
// H^-1 = R^-T R^-1 and U = R^-1 = J L^-1 J. Reversing a row-major square matrix's rows
// and columns reverses its storage.
bool inverseCholeskyUpper(std::vector<double>& h, int64_t n);

} // namespace qs::linalg
