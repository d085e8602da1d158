// The CPU's integer SIMD features and the instruction set oneDNN actually uses: what
// decides whether INT8 kernels can saturate. Without VNNI, oneDNN multiplies u8 x s8
// with vpmaddubsw, whose pairwise sums saturate at int16; VNNI (AVX-512 or AVX) and AMX
// accumulate in int32.
#pragma once

#include <string>
#include <vector>

namespace qs {

struct CpuIsa {
    bool avx2 = false, avx512 = false, avx512Vnni = false, avxVnni = false, amx = false; // /proc/cpuinfo flags
    std::string onednn;      // dnnl_get_effective_cpu_isa(), e.g. "avx512_core_vnni" (DNNL_MAX_CPU_ISA caps it)
    bool onednnVnni = false; // the effective ISA accumulates u8 x s8 in int32
    bool avx512Bf16 = false; // /proc/cpuinfo avx512_bf16
    bool onednnBf16 = false; // the effective ISA has bf16 dot products (AVX512-BF16 or AMX)
    // oneDNN computes bf16 at all only from avx512_core on (emulated there, native with
    // onednnBf16); below it, it has no bf16 kernel, not even a reference one.
    bool bf16Supported = false;
    // Whether INT8 kernels may saturate: the ISA oneDNN uses has neither VNNI nor AMX.
    bool saturationRisk() const { return !onednnVnni; }
    std::string summary() const; // "AVX2 AVX-512 VNNI ... ; oneDNN avx512_core_vnni"
};

CpuIsa detectCpuIsa();

// Whether INT8 layers run on oneDNN's reference kernels, which accumulate in int32: where
// the ISA would saturate, unless QS_INT8_SATURATING=1 asks for the fast kernels anyway
// (to measure them or their drift). Exact, and slow.
bool int8UsesReferenceKernels();

} // namespace qs
