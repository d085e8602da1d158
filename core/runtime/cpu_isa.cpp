// CPU features from /proc/cpuinfo and oneDNN's effective ISA.
#include "runtime/cpu_isa.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace qs {

std::string CpuIsa::summary() const
{
    std::string s;
    auto add = [&](bool on, const char* name) {
        if (on)
            s += (s.empty() ? "" : " ") + std::string(name);
    };
    add(avx2, "AVX2");
    add(avx512, "AVX-512");
    add(avx512Vnni, "AVX512-VNNI");
    add(avxVnni, "AVX-VNNI");
    add(avx512Bf16, "AVX512-BF16");
    add(amx, "AMX");
    return (s.empty() ? std::string("no AVX2") : s) + "; oneDNN " + onednn;
}

CpuIsa detectCpuIsa()
{
    CpuIsa c;
    std::set<std::string> flags;
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("flags", 0) == 0) {
            std::istringstream words(line.substr(line.find(':') + 1));
            for (std::string w; words >> w;)
                flags.insert(w);
            break;
        }
    c.avx2 = flags.count("avx2");
    c.avx512 = flags.count("avx512f") && flags.count("avx512bw");
    c.avx512Vnni = flags.count("avx512_vnni");
    c.avxVnni = flags.count("avx_vnni");
    c.amx = flags.count("amx_int8") && flags.count("amx_tile");
    c.avx512Bf16 = flags.count("avx512_bf16");
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41:
        c.onednn = "sse41";
        break;
    case dnnl_cpu_isa_avx:
        c.onednn = "avx";
        break;
    case dnnl_cpu_isa_avx2:
        c.onednn = "avx2";
        break;
    case dnnl_cpu_isa_avx2_vnni:
        c.onednn = "avx2_vnni";
        c.onednnVnni = true;
        break;
    case dnnl_cpu_isa_avx512_mic:
        c.onednn = "avx512_mic";
        break;
    case dnnl_cpu_isa_avx512_mic_4ops:
        c.onednn = "avx512_mic_4ops";
        break;
    case dnnl_cpu_isa_avx512_core:
        c.onednn = "avx512_core";
        c.bf16Supported = true;
        break;
    case dnnl_cpu_isa_avx512_core_vnni:
        c.onednn = "avx512_core_vnni";
        c.bf16Supported = true;
        c.onednnVnni = true;
        break;
    case dnnl_cpu_isa_avx512_core_bf16:
        c.onednn = "avx512_core_bf16";
        c.bf16Supported = true;
        c.onednnVnni = true;
        c.onednnBf16 = true;
        break;
    case dnnl_cpu_isa_avx512_core_amx:
        c.onednn = "avx512_core_amx";
        c.bf16Supported = true;
        c.onednnVnni = true;
        c.onednnBf16 = true;
        break;
    default:
        c.onednn = "any";
        break;
    }
    return c;
}

bool int8UsesReferenceKernels()
{
    static const bool reference = [] {
        const char* e = std::getenv("QS_INT8_SATURATING");
        return detectCpuIsa().saturationRisk() && !(e && std::string(e) == "1");
    }();
    return reference;
}

} // namespace qs
