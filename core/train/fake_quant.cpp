#include "train/fake_quant.h"

#include <cmath>

namespace qs::train {

void fakeQuantForward(std::span<const float> x, const QParams& q, std::span<float> y)
{
    for (std::size_t i = 0; i < x.size(); ++i)
        y[i] = fakeQuant(x[i], q);
}

double fakeQuantBackward(std::span<const float> x, const QParams& q, std::span<const float> dy, std::span<float> dx)
{
    double ds = 0;
    const float z = float(q.zeroPoint);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const float u = x[i] / q.scale;
        const float r = std::nearbyint(u);
        const float code = r + z;
        if (code < float(q.qmin)) {
            ds += double(dy[i]) * double(float(q.qmin) - z);
        } else if (code > float(q.qmax)) {
            ds += double(dy[i]) * double(float(q.qmax) - z);
        } else {
            ds += double(dy[i]) * double(r - u);
            if (!dx.empty())
                dx[i] += dy[i];
        }
    }
    return ds;
}

float lsqGradScale(int64_t elements, int32_t qmax)
{
    return float(1.0 / std::sqrt(double(std::max<int64_t>(elements, 1)) * double(std::max(qmax, 1))));
}

} // namespace qs::train
