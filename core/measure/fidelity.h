// Label-free fidelity of a model's outputs against a reference (FP32), streamed
// batch by batch: SQNR, cosine similarity, top-1 agreement, KL of softmax; plus
// top-1 accuracy where labels exist.
#pragma once

#include "graph/tensor.h"

#include <optional>
#include <span>
#include <vector>

namespace qs {

// 10 log10(signal / noise) in dB; +inf when the noise is zero (identical outputs).
double sqnrDb(double signal, double noise);

// Running sums of a reference's power and of the error of another output against it,
// over the elements both have.
struct SignalNoise {
    double signal = 0, noise = 0, maxAbs = 0; // maxAbs: the largest |got - ref|
    void add(std::span<const float> ref, std::span<const float> got);
    void add(const Tensor& ref, const Tensor& got) { add(ref.data<float>(), got.data<float>()); }
    double sqnrDb() const { return qs::sqnrDb(signal, noise); }
};

class FidelityMeter {
public:
    // perPosition = false: a classifier's outputs, one softmax over each sample's values.
    // perPosition = true: a language model's [N, positions..., vocabulary] logits (text
    // data), one softmax per position over the last axis; a sample's cosine, KL and
    // agreement are the means over its positions (every window has as many).
    FidelityMeter() = default;
    explicit FidelityMeter(bool perPosition) : perPosition_(perPosition) { }

    // `ref` and `test` are [N, classes...] logits of the same batch; labels optional
    // (one per sample; refused per position).
    void add(const Tensor& ref, const Tensor& test, const std::vector<int64_t>* labels = nullptr);

    double sqnrDb() const;        // 10 log10(sum ref^2 / sum (ref - test)^2); +inf when identical
    double cosine() const;        // mean over samples (per position: over positions)
    double top1Agreement() const; // share of samples (per position: positions) with the same argmax
    double kl() const;            // mean KL(softmax(ref) || softmax(test)) per sample (per position), nats
    std::optional<double> refTop1() const, testTop1() const;
    int64_t samples() const { return samples_; }
    // The running sums behind sqnrDb() and kl(), for per-batch differences (bootstrap).
    double signal() const { return signal_; }
    double noise() const { return noise_; }
    double klSum() const { return klSum_; } // over samples of each sample's (mean) KL

    // Every running sum: one batch's, to be added to another meter's in batch order
    // (the order a sharded evaluation's merge adds them in, so both agree bit for bit).
    struct Sums {
        double signal = 0, noise = 0, cosSum = 0, klSum = 0, agree = 0;
        int64_t samples = 0, refCorrect = 0, testCorrect = 0, labelled = 0;
    };
    Sums sums() const;
    void add(const Sums& batch);

private:
    bool perPosition_ = false;
    double signal_ = 0, noise_ = 0, cosSum_ = 0, klSum_ = 0, agree_ = 0;
    int64_t samples_ = 0, refCorrect_ = 0, testCorrect_ = 0, labelled_ = 0;
};

// SQNR of one tensor pair, in dB (+inf when equal).
double sqnrDb(const float* ref, const float* test, std::size_t n);

int64_t argmax(const float* v, int64_t n);

// KL(softmax(ref) || softmax(test)) of one sample's `n` logits, nats (>= 0).
double softmaxKl(const float* ref, const float* test, int64_t n);

} // namespace qs
