// quantstudio-cli export: a stored quantization run as QDQ ONNX, AIMET encodings
// or an HTML+CSV report; every file is recorded as an artifact of the run.
#include "cli/args.h"
#include "cli/command.h"

#include "record/export_run.h"
#include "store/report.h"
#include "util/error.h"

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

int runExport(const std::vector<std::string>& argv)
{
    Args args(argv, {"format", "out", "db"}, {"json"});
    const int64_t id = parseRunId(args.required(0, "RUN (a run id, see `quantstudio-cli runs`)"));
    auto format = args.value("format");
    if (!format)
        fail("missing --format (qdq, encodings or report)");
    const ExportFormat f = parseExportFormat(*format);
    auto out = args.value("out");
    if (!out)
        fail("missing --out PATH");
    Store store = Store::open(args.value("db", defaultStorePath()), {.createIfMissing = false});
    const bool json = args.flag("json");
    Progress progress([&](const ProgressState& s) {
        if (!json)
            std::fprintf(stderr, "\r%3d%%  %-60.60s", int(s.fraction * 100), s.stage.c_str());
    });
    CancelToken cancel;
    ExportResult r = exportRun(store, id, f, *out, progress, cancel);
    if (!json)
        std::fprintf(stderr, "\r%-70s\r", "");

    if (json) {
        nlohmann::json j = {
            {"run_id", id}, {"checked_layers", r.checkedLayers}, {"artifacts", nlohmann::json::array()}};
        for (const auto& a : r.artifacts)
            j["artifacts"].push_back(artifactToJson(a));
        if (f == ExportFormat::Qdq) {
            j["true_size_bits"] = r.trueSizeBits;
            j["stored_size_bits"] = r.storedSizeBits;
            j["opset_upgrade"] = r.upgrade.upgraded()
                ? nlohmann::json {{"from", r.upgrade.from}, {"to", r.upgrade.to}, {"ops", r.upgrade.ops}}
                : nlohmann::json(nullptr);
            j["layers"] = nlohmann::json::array();
            for (const auto& l : r.layers)
                j["layers"].push_back(
                    {{"layer", l.layer}, {"weight", l.weight}, {"weight_bits", l.weightBits}, {"act_bits", l.actBits},
                        {"blocks", l.blocks}, {"true_bits", l.trueBits}, {"stored_bits", l.storedBits}});
        }
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    if (r.checkedLayers > 0)
        std::printf(
            "re-derived the quantizer of run %lld: %d layers match the store\n", (long long)id, r.checkedLayers);
    if (f == ExportFormat::Qdq)
        std::printf("size           %.1f KiB at the true bit widths, %.1f KiB as stored in the ONNX file\n",
            double(r.trueSizeBits) / 8192.0, double(r.storedSizeBits) / 8192.0);
    if (f == ExportFormat::Qdq && r.upgrade.upgraded())
        std::printf("upgraded       %s\n", r.upgrade.text().c_str());
    for (const auto& a : r.artifacts)
        std::printf("wrote %-14s %s (%lld bytes, sha256 %s), artifact %lld of run %lld\n", a.format.c_str(),
            a.path.c_str(), (long long)a.sizeBytes, a.hash.c_str(), (long long)a.id, (long long)id);
    return 0;
}

const bool registered = registerCommand({"export", "RUN --format qdq|encodings|report --out PATH [--db DB] [--json]",
    "export a quantization run as QDQ ONNX, AIMET encodings JSON or an HTML+CSV report (recorded as artifacts)",
    runExport});

} // namespace
} // namespace qs::cli
