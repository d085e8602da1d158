// quantstudio-cli outliers MODEL --data DATA: per linear layer, the input's outlier
// channels (max |x| per channel over all tokens), its massive activations (per-token
// max |x|) and the weight's kurtosis; --json gives every per-channel/per-position value.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"

#include "analysis/outliers.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <string>

namespace qs::cli {
namespace {

int runOutliers(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"batch", "threads", "top", "limit"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {"json"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    Graph g = importOnnx(path);
    DataOptions dopts = dataOptions(args);
    dopts.limit = args.intValue("limit", 64); // samples (windows of text)
    Dataset data = loadDataset(dopts, g);
    OutlierOptions o;
    o.batch = args.intValue("batch", 8);
    o.limit = dopts.limit;
    o.threads = args.intValue("threads", 0);
    const int top = args.intValue("top", 4);
    if (o.batch < 1 || top < 0)
        fail("--batch must be at least 1 and --top at least 0");
    const bool json = args.flag("json");
    Progress progress([&](const ProgressState& s) {
        if (!json)
            std::fprintf(stderr, "\r%3d%%  %-60.60s", int(s.fraction * 100), s.stage.c_str());
    });
    std::vector<LinearInputOutliers> rows = profileLinearOutliers(g, data, o, progress, CancelToken());
    if (!json)
        std::fprintf(stderr, "\r%-70s\r", "");

    if (json) {
        nlohmann::json j;
        j["model"] = path;
        j["data"] = data.path;
        j["samples"] = std::min<int64_t>(data.count(), o.limit < 0 ? data.count() : o.limit);
        j["layers"] = nlohmann::json::array();
        for (const auto& r : rows)
            j["layers"].push_back({{"layer", r.layer}, {"op", r.op}, {"input", r.input}, {"channels", r.channels},
                {"positions", r.positions}, {"tokens", r.tokens}, {"channel_max_abs", r.channelMaxAbs},
                {"channel_mean_abs", r.channelMeanAbs}, {"position_max_abs", r.positionMaxAbs},
                {"token_max_abs", r.tokenMaxAbs}, {"token_median_max_abs", r.tokenMedianMaxAbs},
                {"peak_position", r.peakPosition}, {"peak_channel", r.peakChannel},
                {"channel_outlier_ratio", r.channelOutlierRatio()}, {"massive_ratio", r.massiveRatio()},
                {"top_channels", r.topChannels(top)}, {"weight_kurtosis", r.weightKurtosis},
                {"weight_max_over_std", r.weightMaxOverStd}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("model  %s\ndata   %s (%lld tokens per layer input)\n\n", path.c_str(), data.path.c_str(),
        rows.empty() ? 0LL : (long long)rows.front().tokens);
    std::printf("%-24s %-7s %6s %10s %9s %10s %9s %8s %9s  %s\n", "layer", "op", "in-ch", "max|x|", "ch-ratio",
        "tok-med", "massive", "peak@pos", "w-kurt", "top channels (max|x|)");
    for (const auto& r : rows) {
        std::string topText;
        for (int64_t c : r.topChannels(top)) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "%s%lld:%.3g", topText.empty() ? "" : " ", (long long)c,
                double(r.channelMaxAbs[std::size_t(c)]));
            topText += buf;
        }
        std::printf("%-24s %-7s %6lld %10.4g %9.2f %10.4g %9.2f %8lld %9.3f  %s\n", r.layer.c_str(), r.op.c_str(),
            (long long)r.channels, double(r.tokenMaxAbs), r.channelOutlierRatio(), double(r.tokenMedianMaxAbs),
            r.massiveRatio(), (long long)r.peakPosition, r.weightKurtosis, topText.c_str());
    }
    std::printf("\nch-ratio: max/median of per-channel max|x|; massive: largest |x| / median per-token max|x|;\n"
                "w-kurt: Pearson kurtosis of the weight (3 = normal)\n");
    return 0;
}

const bool registered = registerCommand({"outliers",
    "MODEL --data DATA [--limit N] [--batch N] [--top K] [--json]",
    "per linear layer: outlier input channels, massive activations (per-token max |x|), weight kurtosis",
    runOutliers});

} // namespace
} // namespace qs::cli
