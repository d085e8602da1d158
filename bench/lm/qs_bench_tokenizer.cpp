// qs_bench_tokenizer TEXT TOKENIZER... [--mib N]: TEXT repeated to N MiB (default 8),
// each tokenizer spec (data/tokenizer.h) timed encoding it once, printed as one JSON line
// each: MB/s, ids, and the ratio to the baseline measured in the same run, one pass of
// checkUtf8 over the same bytes (reading every byte once, the least a tokenizer does).
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/file.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv)
{
    std::vector<std::string> specs;
    std::string textPath;
    double mib = 8;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--mib" && i + 1 < argc)
            mib = std::atof(argv[++i]);
        else if (textPath.empty())
            textPath = a;
        else
            specs.push_back(a);
    }
    if (textPath.empty() || specs.empty() || !(mib > 0)) {
        std::fprintf(stderr, "usage: qs_bench_tokenizer TEXT TOKENIZER... [--mib N]\n");
        return 2;
    }
    try {
        const std::string base = qs::readRegularFile(textPath, qs::kMaxDataFileBytes);
        if (base.empty())
            qs::fail(textPath, ": empty");
        std::string text;
        while (double(text.size()) < mib * 1048576.0)
            text += base;
        using Clock = std::chrono::steady_clock;
        auto seconds = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
        double baseline = 1e30;
        for (int k = 0; k < 3; ++k) {
            const auto t = Clock::now();
            qs::checkUtf8(text, textPath);
            baseline = std::min(baseline, seconds(t));
        }
        const double mb = double(text.size()) / 1e6;
        std::printf(
            "{\"tokenizer\": \"(baseline: checkUtf8)\", \"mb\": %.2f, \"mb_per_s\": %.1f}\n", mb, mb / baseline);
        for (const std::string& spec : specs) {
            auto t = Clock::now();
            const auto tokenizer = qs::loadTokenizer(spec);
            const double load = seconds(t);
            t = Clock::now();
            const std::vector<int32_t> ids = tokenizer->encode(text);
            const double s = seconds(t);
            std::printf(
                "{\"tokenizer\": \"%s\", \"load_s\": %.3f, \"ids\": %zu, \"seconds\": %.3f, \"mb_per_s\": %.2f, "
                "\"ratio_to_baseline\": %.1f}\n",
                spec.c_str(), load, ids.size(), s, mb / s, s / baseline);
        }
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
