// Next-token negative log-likelihood of a language model, streamed batch by batch:
// perplexity = exp(mean NLL) over every scored token.
#pragma once

#include "graph/tensor.h"

namespace qs {

class PerplexityMeter {
public:
    // `logits` float32 [N, T, V] (or [N*T, V]), `targets` int64 [N, T] with values in [0, V).
    // NLL of a position is logsumexp(logits) - logits[target], accumulated in double.
    void add(const Tensor& logits, const Tensor& targets);

    double meanNll() const;    // nats per token
    double perplexity() const; // exp(meanNll())
    int64_t tokens() const { return tokens_; }
    double nllSum() const { return nll_; } // over every token
    // Another meter's sums (a batch's), added in the order the batches ran.
    void add(double nllSum, int64_t tokens)
    {
        nll_ += nllSum;
        tokens_ += tokens;
    }

private:
    double nll_ = 0;
    int64_t tokens_ = 0;
};

} // namespace qs
