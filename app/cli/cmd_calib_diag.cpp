// quantstudio-cli calib-diag MODEL --data CAL [--eval-data EVAL]: how calibration
// ranges converge with the number of samples, how many are enough, and whether the
// calibration data look like the evaluation data.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/output.h"

#include "analysis/calib_diag.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

int runCalibDiag(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"eval-data", "eval-labels", "eval-limit", "sizes", "tolerance", "batch",
        "threads", "ks-threshold", "mean-threshold", "std-threshold", "limit"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {"json"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    Graph graph = importOnnx(path);
    if (!args.value("data"))
        fail("calib-diag needs --data CAL (the calibration set)");
    DataOptions dopts = dataOptions(args);
    Dataset calib = loadDataset(dopts, graph);
    std::optional<Dataset> eval;
    if (auto e = args.value("eval-data")) {
        DataOptions eo = dopts;
        eo.spec = *e;
        eo.labelsPath = args.value("eval-labels");
        eo.limit = args.intValue("eval-limit", -1);
        eval = loadDataset(eo, graph);
    }
    CalibDiagOptions o;
    if (auto s = args.value("sizes"))
        for (double v : parseNumberList(*s, "--sizes"))
            o.sizes.push_back(int64_t(v));
    o.tolerance = args.doubleValue("tolerance", o.tolerance);
    o.batch = args.intValue("batch", 32);
    o.threads = args.intValue("threads", 0);
    o.ksThreshold = args.doubleValue("ks-threshold", o.ksThreshold);
    o.meanShiftThreshold = args.doubleValue("mean-threshold", o.meanShiftThreshold);
    o.stdRatioThreshold = args.doubleValue("std-threshold", o.stdRatioThreshold);
    Progress progress = stderrProgress(args);
    CancelToken cancel;
    const CalibDiagnostics d = diagnoseCalibration(graph, calib, eval ? &*eval : nullptr, o, progress, cancel);
    clearProgress(args);

    if (args.flag("json")) {
        nlohmann::json j = {{"model", path}, {"data", calib.path}, {"sizes", d.sizes}, {"tolerance", d.tolerance},
            {"recommended", d.recommended}, {"layers", d.layers}, {"values", d.values},
            {"calibrators", nlohmann::json::array()}};
        for (const auto& c : d.calibrators) {
            nlohmann::json cj = {{"name", c.calibrator}, {"recommended", c.recommended}, {"worst_layer", c.worstLayer},
                {"layers", nlohmann::json::array()}};
            for (std::size_t li = 0; li < c.ranges.size(); ++li) {
                nlohmann::json rows = nlohmann::json::array();
                for (const auto& r : c.ranges[li])
                    rows.push_back({{"samples", r.samples}, {"lo", r.lo}, {"hi", r.hi}, {"rel_change", r.relChange}});
                cj["layers"].push_back({{"name", d.layers[li]}, {"ranges", rows}});
            }
            j["calibrators"].push_back(cj);
        }
        if (d.shift) {
            nlohmann::json ch = nlohmann::json::array();
            for (const auto& c : d.shift->channels)
                ch.push_back({{"channel", c.channel}, {"cal_mean", c.calMean}, {"cal_std", c.calStd},
                    {"eval_mean", c.evalMean}, {"eval_std", c.evalStd}, {"mean_shift", c.meanShift},
                    {"std_ratio", jsonNumber(c.stdRatio)}});
            j["shift"] = {{"warning", d.shift->warning}, {"reasons", d.shift->reasons}, {"ks", d.shift->ks},
                {"ks_value", d.shift->ksValue}, {"ks_values", {d.shift->ksCalValues, d.shift->ksEvalValues}},
                {"channels", ch}, {"eval_data", eval->path}};
        } else {
            j["shift"] = nullptr;
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("calibration range convergence (%d-bit affine ranges; relative change to the full %lld samples)\n",
        o.bits, (long long)d.sizes.back());
    for (const auto& c : d.calibrators) {
        std::printf("\n%s: recommended %lld samples (every layer within %.1f%% from there on; slowest: %s)\n",
            c.calibrator.c_str(), (long long)c.recommended, 100 * d.tolerance, c.worstLayer.c_str());
        std::printf("  %-26s", "layer \\ samples");
        for (int64_t s : d.sizes)
            std::printf(" %8lld", (long long)s);
        std::printf("\n");
        for (std::size_t li = 0; li < c.ranges.size(); ++li) {
            std::printf("  %-26.26s", d.layers[li].c_str());
            for (const auto& r : c.ranges[li])
                std::printf(" %7.2f%%", 100 * r.relChange);
            std::printf("\n");
        }
    }
    std::printf("\nrecommended calibration size: %lld samples (largest over the calibrators)%s\n",
        (long long)d.recommended,
        d.recommended >= d.sizes.back() ? "; the ranges still move at the full set: more data may help" : "");
    if (d.shift) {
        std::printf("\ncalibration vs evaluation data (%s): KS statistic %.4f on %s (%lld vs %lld values)\n",
            eval->path.c_str(), d.shift->ks, d.shift->ksValue.c_str(), (long long)d.shift->ksCalValues,
            (long long)d.shift->ksEvalValues);
        for (const auto& c : d.shift->channels)
            std::printf("  input channel %d: mean %.4f vs %.4f (shift %.3f std), std %.4f vs %.4f (ratio %.3f)\n",
                c.channel, c.calMean, c.evalMean, c.meanShift, c.calStd, c.evalStd, c.stdRatio);
        if (d.shift->warning) {
            std::printf("WARNING: the calibration data differ from the evaluation data:\n");
            for (const auto& r : d.shift->reasons)
                std::printf("  - %s\n", r.c_str());
        } else {
            std::printf("no distribution shift detected\n");
        }
    }
    return 0;
}

const bool registered = registerCommand({"calib-diag",
    "MODEL --data CAL [--eval-data EVAL] [--eval-labels L] [--sizes 8,16,...] [--tolerance 0.02] [--limit N] "
    "[--ks-threshold D] [--mean-threshold S] [--std-threshold R] [--json]",
    "calibration diagnostics: range convergence per calibrator, a recommended size, calibration/evaluation shift",
    runCalibDiag});

} // namespace
} // namespace qs::cli
