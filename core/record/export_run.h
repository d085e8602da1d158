// Exporting a stored quantization run: QDQ ONNX, AIMET encodings or an HTML+CSV
// report, each file written atomically and recorded as an artifact of the run.
#pragma once

#include "export/qdq.h"
#include "jobs/progress.h"
#include "store/store.h"

#include <string>
#include <vector>

namespace qs {

enum class ExportFormat { Qdq, Encodings, Report };
// "qdq", "encodings", "report"; the parser's error lists them.
ExportFormat parseExportFormat(const std::string& name);

struct ExportResult {
    std::vector<ArtifactRecord> artifacts;        // as recorded (ids set)
    int checkedLayers = 0;                        // re-derived layers that matched the store (qdq, encodings)
    std::vector<QdqLayerInfo> layers;             // qdq only
    int64_t trueSizeBits = 0, storedSizeBits = 0; // qdq only
    OpsetUpgrade upgrade;                         // qdq only: what reaching opset 13 took
};

// Report: `outPath` is the HTML file, the CSV goes beside it with extension .csv.
// Qdq with `alsoEncodings`: the AIMET encodings of the same replay are written there too
// (one replay for both files; recorded as a second artifact).
ExportResult exportRun(Store& store, int64_t runId, ExportFormat format, const std::string& outPath, Progress& progress,
    const CancelToken& cancel, const std::string& alsoEncodings = {});

} // namespace qs
