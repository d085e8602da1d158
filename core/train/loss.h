// Losses of quantization-aware training, each returning its mean over the batch and
// adding weight x its gradient into d: knowledge distillation from the FP32 model
// (Hinton et al. 2015: T^2 KL(softmax(t/T) || softmax(s/T)) on logits), cross-entropy
// on labels, and the mean squared error of a block's output against the FP32 one.
#pragma once

#include <cstdint>
#include <span>

namespace qs::train {

// Logits are [rows, classes] row-major.
double distillationLoss(std::span<const float> student, std::span<const float> teacher, int64_t rows,
    double temperature, double weight, std::span<float> d);
// Labels outside [0, classes) fail naming the row.
double crossEntropyLoss(
    std::span<const float> logits, std::span<const int64_t> labels, int64_t rows, double weight, std::span<float> d);
// Attention-map distillation (as EdgeQAT, Shen et al. 2024): the mean over rows of
// KL(teacher || student) between attention probabilities ([rows, keys], each row a
// distribution); student probabilities are floored at 1e-8.
double attentionKlLoss(
    std::span<const float> student, std::span<const float> teacher, int64_t rows, double weight, std::span<float> d);
// Mean over every element of (a - b)^2.
double mseLoss(std::span<const float> a, std::span<const float> b, double weight, std::span<float> d);

} // namespace qs::train
