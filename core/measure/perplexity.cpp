#include "measure/perplexity.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

void PerplexityMeter::add(const Tensor& logits, const Tensor& targets)
{
    if (logits.dtype != DType::Float)
        fail("perplexity: logits must be float32, got ", dtypeName(logits.dtype));
    const int64_t positions = targets.numel();
    if (logits.shape.empty() || positions == 0 || logits.numel() % positions != 0 ||
        logits.numel() / positions != logits.shape.back())
        fail("perplexity: logits ", shapeString(logits.shape), " do not match targets ", shapeString(targets.shape),
             " (expected [..., vocab] with one row per target)");
    const int64_t vocab = logits.shape.back();
    const std::vector<int64_t> y = targets.toInt64();
    const auto z = logits.data<float>();
    double sum = 0;
    for (int64_t i = 0; i < positions; ++i) {
        const int64_t t = y[std::size_t(i)];
        if (t < 0 || t >= vocab)
            fail("perplexity: target ", t, " at position ", i, " is outside the vocabulary 0..", vocab - 1);
        const float* row = z.data() + i * vocab;
        const double m = *std::max_element(row, row + vocab);
        double e = 0;
        for (int64_t v = 0; v < vocab; ++v)
            e += std::exp(double(row[v]) - m);
        sum += m + std::log(e) - double(row[t]);
    }
    nll_ += sum;
    tokens_ += positions;
}

double PerplexityMeter::meanNll() const
{
    return tokens_ > 0 ? nll_ / double(tokens_) : std::numeric_limits<double>::quiet_NaN();
}

double PerplexityMeter::perplexity() const { return std::exp(meanNll()); }

} // namespace qs
