// Simulated low-precision floating-point weight formats: FP8 E4M3 (OCP "E4M3FN":
// no infinities, max 448), FP8 E5M2 (IEEE-like, max 57344) and FP4 E2M1 (OCP MX,
// max 6), each with subnormals, round to nearest even, saturating.
#pragma once

#include <string>

namespace qs::algo {

struct FpFormat {
    std::string name;
    int exponentBits = 4, mantissaBits = 3, bias = 7;
    float maxValue = 448;
    int bits() const { return 1 + exponentBits + mantissaBits; }
};

const FpFormat& fpFormat(const std::string& name); // "fp8_e4m3", "fp8_e5m2", "fp4_e2m1"
// The representable value nearest to x (ties to even mantissa), saturating at +-maxValue.
float roundToFp(float x, const FpFormat& f);

} // namespace qs::algo
