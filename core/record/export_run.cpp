// The export formats of a run; each file written is recorded as an artifact of the run.
#include "record/export_run.h"

#include "export/encodings.h"
#include "export/replay.h"
#include "export/run_report.h"
#include "graph/onnx_export.h"
#include "record/recording.h"
#include "util/error.h"
#include "util/file.h"
#include "util/hash.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace qs {

ExportFormat parseExportFormat(const std::string& name)
{
    if (name == "qdq")
        return ExportFormat::Qdq;
    if (name == "encodings")
        return ExportFormat::Encodings;
    if (name == "report")
        return ExportFormat::Report;
    fail("unknown export format ", quoted(name), " (expected qdq, encodings or report)");
}

ExportResult exportRun(Store& store, int64_t runId, ExportFormat format, const std::string& outPath, Progress& progress,
    const CancelToken& cancel, const std::string& alsoEncodings)
{
    ExportResult res;
    if (format == ExportFormat::Report) {
        RunReportInput in {store.run(runId), store.layerResults(runId), store.artifacts(runId)};
        std::filesystem::path csv = std::filesystem::path(outPath).replace_extension(".csv");
        if (csv == std::filesystem::path(outPath))
            fail(outPath, ": the report's HTML path must not end in .csv (the CSV goes beside it)");
        const std::string table = layerTableCsv(in.layers);
        writeFileAtomic(csv.string(), table);
        res.artifacts.push_back(recordArtifact(store, runId, csv.string(), "report-csv", table));
        in.artifacts.push_back(res.artifacts.back());
        const std::string page = runReportHtml(in);
        writeFileAtomic(outPath, page);
        res.artifacts.push_back(recordArtifact(store, runId, outPath, "report-html", page));
        progress.report(1.0, "report written");
        return res;
    }
    Progress replayProgress = progress.sub(0.0, 0.9);
    RunReplay replay = replayRun(store, runId, replayProgress, cancel);
    res.checkedLayers = replay.checkedLayers;
    cancel.check();
    auto writeEncodings = [&](const std::string& path) {
        const std::string text = encodingsJson(*replay.session).dump(2) + "\n";
        writeFileAtomic(path, text);
        res.artifacts.push_back(recordArtifact(store, runId, path, "encodings-json", text));
    };
    if (format == ExportFormat::Encodings) {
        writeEncodings(outPath);
    } else {
        QdqModel model = buildQdqModel(*replay.session, replay.calib.inputShapes(1));
        model.graph.metadata["quantstudio.run_id"] = std::to_string(runId);
        const std::string bytes = exportOnnxBytes(model.graph);
        checkOnnxBytes(bytes, outPath);
        writeFileAtomic(outPath, bytes);
        res.artifacts.push_back(recordArtifact(store, runId, outPath, "onnx-qdq", bytes));
        res.layers = model.layers;
        res.trueSizeBits = model.trueSizeBits;
        res.storedSizeBits = model.storedSizeBits;
        res.upgrade = model.upgrade;
        if (!alsoEncodings.empty())
            writeEncodings(alsoEncodings);
    }
    progress.report(1.0, "exported");
    return res;
}

} // namespace qs
