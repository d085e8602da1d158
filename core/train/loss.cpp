#include "train/loss.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace qs::train {
namespace {

// Softmax of one row of logits / t, in double; returns log-sum-exp of logits / t.
double softmaxRow(const float* x, std::size_t n, double t, std::vector<double>& p)
{
    p.resize(n);
    double mx = -INFINITY;
    for (std::size_t i = 0; i < n; ++i)
        mx = std::max(mx, double(x[i]) / t);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i)
        sum += (p[i] = std::exp(double(x[i]) / t - mx));
    for (double& v : p)
        v /= sum;
    return mx + std::log(sum);
}

} // namespace

double distillationLoss(std::span<const float> student, std::span<const float> teacher, int64_t rows,
    double temperature, double weight, std::span<float> d)
{
    if (rows <= 0 || student.size() != teacher.size() || student.size() % std::size_t(rows) != 0)
        fail("distillation loss: student logits (", student.size(), ") and teacher logits (", teacher.size(),
            ") do not make ", rows, " rows");
    const std::size_t n = student.size() / std::size_t(rows);
    std::vector<double> ps, pt;
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const float* s = student.data() + std::size_t(r) * n;
        const float* t = teacher.data() + std::size_t(r) * n;
        softmaxRow(s, n, temperature, ps);
        softmaxRow(t, n, temperature, pt);
        double kl = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (pt[i] > 0)
                kl += pt[i] * (std::log(pt[i]) - std::log(std::max(ps[i], 1e-300)));
        total += kl * temperature * temperature;
        if (!d.empty())
            for (std::size_t i = 0; i < n; ++i) // d/ds of T^2 KL = T (ps - pt)
                d[std::size_t(r) * n + i] += float(weight * temperature * (ps[i] - pt[i]) / double(rows));
    }
    return total / double(rows);
}

double crossEntropyLoss(
    std::span<const float> logits, std::span<const int64_t> labels, int64_t rows, double weight, std::span<float> d)
{
    if (rows <= 0 || logits.size() % std::size_t(rows) != 0 || labels.size() != std::size_t(rows))
        fail("cross-entropy loss: ", logits.size(), " logits and ", labels.size(), " labels do not make ", rows,
            " rows");
    const std::size_t n = logits.size() / std::size_t(rows);
    std::vector<double> p;
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t y = labels[std::size_t(r)];
        if (y < 0 || y >= int64_t(n))
            fail("cross-entropy loss: label ", y, " of row ", r, " is outside [0, ", n, ")");
        const float* s = logits.data() + std::size_t(r) * n;
        const double lse = softmaxRow(s, n, 1.0, p);
        total += lse - double(s[y]);
        if (!d.empty())
            for (std::size_t i = 0; i < n; ++i)
                d[std::size_t(r) * n + i] += float(weight * (p[i] - (int64_t(i) == y ? 1.0 : 0.0)) / double(rows));
    }
    return total / double(rows);
}

double mseLoss(std::span<const float> a, std::span<const float> b, double weight, std::span<float> d)
{
    if (a.size() != b.size() || a.empty())
        fail("MSE loss: ", a.size(), " values against ", b.size());
    double total = 0;
    const double n = double(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = double(a[i]) - double(b[i]);
        total += e * e;
        if (!d.empty())
            d[i] += float(weight * 2 * e / n);
    }
    return total / n;
}

double attentionKlLoss(
    std::span<const float> student, std::span<const float> teacher, int64_t rows, double weight, std::span<float> d)
{
    if (student.size() != teacher.size() || rows <= 0 || student.size() % std::size_t(rows) != 0)
        fail("attention loss: ", student.size(), " student and ", teacher.size(), " teacher probabilities in ", rows,
            " rows");
    double sum = 0;
    for (std::size_t i = 0; i < student.size(); ++i) {
        const double p = teacher[i], q = std::max(double(student[i]), 1e-8);
        if (p > 0)
            sum += p * (std::log(p) - std::log(q));
        if (!d.empty())
            d[i] += float(weight * -p / q / double(rows));
    }
    return sum / double(rows);
}

} // namespace qs::train
