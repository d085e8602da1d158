// quantstudio-cli precision export|import: per-layer precision to and from AIMET
// encodings, ONNX Runtime TensorQuantOverrides, trtexec flags and regex rule lists.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"

#include "export/replay.h"
#include "graph/onnx_import.h"
#include "interop/precision.h"
#include "record/export_run.h"
#include "util/error.h"
#include "util/file.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace qs::cli {
namespace {

std::vector<std::string> withLongOut(std::vector<std::string> argv)
{
    for (auto& a : argv)
        if (a == "-o")
            a = "--out";
    return argv;
}

std::string readText(const std::string& path)
{
    return readRegularFile(path, kMaxTextFileBytes);
}

void printNotes(const std::vector<std::string>& notes)
{
    for (const auto& n : notes)
        std::fprintf(stderr, "note: %s\n", n.c_str());
}

int runPrecisionExport(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"config", "format", "out", "calib-limit", "batch"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    const PrecisionFormat f = parsePrecisionFormat(args.value("format", "rules"));
    auto out = args.value("out");
    if (!out)
        fail("missing -o OUT");
    QuantizeOptions opts;
    if (auto c = args.value("config"))
        opts.config = QuantConfig::load(*c);
    Graph graph = importOnnx(path);
    std::unique_ptr<QuantSession> session;
    if (args.value("data")) {
        DataOptions d = dataOptions(args, "calib-limit");
        opts.calibLimit = args.intValue("calib-limit", 256);
        opts.batch = args.intValue("batch", 32);
        if (opts.batch < 1)
            fail("--batch must be at least 1");
        d.limit = opts.calibLimit;
        Dataset calib = loadDataset(d, graph);
        Progress progress([](const ProgressState&) {});
        CancelToken cancel;
        session = prepareSession(graph, opts, calib, progress, cancel);
    }
    PrecisionText text = exportPrecision(graph, opts.config, f, session.get());
    writeFileAtomic(*out, text.text);
    printNotes(text.notes);
    std::printf("wrote %s precision of %s to %s\n", precisionFormatName(f), path.c_str(), out->c_str());
    return 0;
}

int runPrecisionImport(const std::vector<std::string>& argv)
{
    Args args(argv, {"config", "format", "out"}, {});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    const std::string& file = args.required(1, "FILE (the precision file to read)");
    const PrecisionFormat f = parsePrecisionFormat(args.value("format", "rules"));
    auto out = args.value("out");
    if (!out)
        fail("missing -o CONFIG.json");
    QuantConfig base;
    if (auto c = args.value("config"))
        base = QuantConfig::load(*c);
    Graph graph = importOnnx(path);
    PrecisionImport r = importPrecision(graph, readText(file), f, file, base);
    writeFileAtomic(*out, r.config.toJson().dump(2) + "\n");
    printNotes(r.notes);
    std::printf("read %s precision from %s: %zu layer overrides, %zu kept in float; wrote %s\n", precisionFormatName(f),
        file.c_str(), r.config.layers.size(), r.config.excluded.size(), out->c_str());
    return 0;
}

int runPrecision(const std::vector<std::string>& argv)
{
    if (argv.empty() || (argv[0] != "export" && argv[0] != "import"))
        fail("precision: expected export or import, e.g. `precision export MODEL --config C.json --format rules -o "
             "OUT`");
    const std::vector<std::string> rest = withLongOut({argv.begin() + 1, argv.end()});
    return argv[0] == "export" ? runPrecisionExport(rest) : runPrecisionImport(rest);
}

const bool registered = registerCommand({"precision",
    "export MODEL [--config C.json] --format aimet|aimet1|ort|trt|rules -o OUT [--data DATA --calib-limit N --batch N] "
    "| "
    "import MODEL FILE --format aimet|aimet1|ort|trt|rules -o C.json [--config BASE.json]",
    "per-layer precision to and from AIMET encodings, ONNX Runtime TensorQuantOverrides, trtexec "
    "--layerPrecisions and regex rules (AIMET export calibrates on --data)",
    runPrecision});

} // namespace
} // namespace qs::cli
