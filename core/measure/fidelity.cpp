#include "measure/fidelity.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

int64_t argmax(const float* v, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
        if (v[i] > v[best])
            best = i;
    return best;
}

double sqnrDb(const float* ref, const float* test, std::size_t n)
{
    double s = 0, e = 0;
    for (std::size_t i = 0; i < n; ++i) {
        s += double(ref[i]) * ref[i];
        double d = double(ref[i]) - test[i];
        e += d * d;
    }
    if (e == 0)
        return std::numeric_limits<double>::infinity();
    return 10 * std::log10(s / e);
}

double softmaxKl(const float* a, const float* b, int64_t k)
{
    // KL(softmax(a) || softmax(b)) with log-sum-exp for stability.
    double maxA = -INFINITY, maxB = -INFINITY;
    for (int64_t i = 0; i < k; ++i) {
        maxA = std::max(maxA, double(a[i]));
        maxB = std::max(maxB, double(b[i]));
    }
    double za = 0, zb = 0;
    for (int64_t i = 0; i < k; ++i) {
        za += std::exp(a[i] - maxA);
        zb += std::exp(b[i] - maxB);
    }
    double lza = std::log(za) + maxA, lzb = std::log(zb) + maxB, kl = 0;
    for (int64_t i = 0; i < k; ++i) {
        double lpa = a[i] - lza, lpb = b[i] - lzb;
        kl += std::exp(lpa) * (lpa - lpb);
    }
    return std::max(0.0, kl);
}

void FidelityMeter::add(const Tensor& ref, const Tensor& test, const std::vector<int64_t>* labels)
{
    if (ref.shape != test.shape)
        fail("fidelity: output shapes differ: ", shapeString(ref.shape), " vs ", shapeString(test.shape));
    auto r = ref.data<float>();
    auto t = test.data<float>();
    const int64_t n = ref.shape.empty() ? 1 : ref.shape[0];
    const int64_t k = n > 0 ? int64_t(r.size()) / n : 0;
    // Softmax rows per sample and their width: one row of k values, or per position
    // (language models) one row per last-axis vector.
    if (perPosition_ && ref.shape.size() < 2)
        fail("fidelity: per-position (language-model) outputs need [N, ..., vocabulary] logits, got ",
            shapeString(ref.shape));
    if (perPosition_ && labels)
        fail("fidelity: labels are per sample; language-model outputs are compared per position");
    const int64_t width = perPosition_ ? ref.shape.back() : k;
    const int64_t rows = !perPosition_ ? 1 : width > 0 ? k / width : 0;
    for (int64_t s = 0; s < n; ++s) {
        double cos = 0, kl = 0, agree = 0;
        int64_t ia = 0, ib = 0;
        for (int64_t row = 0; row < rows; ++row) {
            const float* a = r.data() + s * k + row * width;
            const float* b = t.data() + s * k + row * width;
            double dot = 0, na = 0, nb = 0;
            for (int64_t i = 0; i < width; ++i) {
                dot += double(a[i]) * b[i];
                na += double(a[i]) * a[i];
                nb += double(b[i]) * b[i];
                double d = double(a[i]) - b[i];
                signal_ += double(a[i]) * a[i];
                noise_ += d * d;
            }
            cos += (na > 0 && nb > 0) ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
            kl += softmaxKl(a, b, width);
            ia = argmax(a, width);
            ib = argmax(b, width);
            agree += ia == ib;
        }
        const double per = rows > 0 ? 1.0 / double(rows) : 0.0;
        cosSum_ += cos * per;
        klSum_ += kl * per;
        agree_ += agree * per;
        if (labels && std::size_t(s) < labels->size()) {
            ++labelled_;
            refCorrect_ += ia == (*labels)[std::size_t(s)];
            testCorrect_ += ib == (*labels)[std::size_t(s)];
        }
        ++samples_;
    }
}

FidelityMeter::Sums FidelityMeter::sums() const
{
    return {signal_, noise_, cosSum_, klSum_, agree_, samples_, refCorrect_, testCorrect_, labelled_};
}

void FidelityMeter::add(const Sums& b)
{
    signal_ += b.signal;
    noise_ += b.noise;
    cosSum_ += b.cosSum;
    klSum_ += b.klSum;
    agree_ += b.agree;
    samples_ += b.samples;
    refCorrect_ += b.refCorrect;
    testCorrect_ += b.testCorrect;
    labelled_ += b.labelled;
}

double sqnrDb(double signal, double noise)
{
    return noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
}

void SignalNoise::add(std::span<const float> ref, std::span<const float> got)
{
    for (std::size_t i = 0; i < ref.size() && i < got.size(); ++i) {
        const double d = double(got[i]) - double(ref[i]);
        signal += double(ref[i]) * ref[i];
        noise += d * d;
        maxAbs = std::max(maxAbs, std::abs(d));
    }
}

double FidelityMeter::sqnrDb() const { return qs::sqnrDb(signal_, noise_); }

double FidelityMeter::cosine() const
{
    return samples_ ? cosSum_ / double(samples_) : 0;
}

double FidelityMeter::top1Agreement() const
{
    return samples_ ? agree_ / double(samples_) : 0;
}

double FidelityMeter::kl() const
{
    return samples_ ? klSum_ / double(samples_) : 0;
}

std::optional<double> FidelityMeter::refTop1() const
{
    if (!labelled_)
        return std::nullopt;
    return double(refCorrect_) / double(labelled_);
}

std::optional<double> FidelityMeter::testTop1() const
{
    if (!labelled_)
        return std::nullopt;
    return double(testCorrect_) / double(labelled_);
}

} // namespace qs
