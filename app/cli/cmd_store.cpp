// quantstudio-cli runs / show / compare: reading the experiment store. These
// commands open the store read-only: looking never changes the record.
#include "cli/args.h"
#include "cli/command.h"

#include "store/compare.h"
#include "store/report.h"
#include "store/store.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

namespace qs::cli {
namespace {

using nlohmann::json;

Store openForReading(const Args& args)
{
    return Store::open(args.value("db", defaultStorePath()), {.mode = OpenMode::ReadOnly});
}

std::string localTime(int64_t ms)
{
    const std::time_t seconds = std::time_t(ms / 1000);
    std::tm tm{};
    localtime_r(&seconds, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

std::string fixed(const std::optional<double>& v, int decimals, const char* unit = "")
{
    if (!v)
        return "-";
    if (!std::isfinite(*v))
        return *v > 0 ? "inf" : (*v < 0 ? "-inf" : "nan");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%s", decimals, *v, unit);
    return buf;
}

std::string percent(const std::optional<double>& v)
{
    return v ? fixed(*v * 100, 2, "%") : "-";
}

std::string signedFixed(const std::optional<double>& v, int decimals)
{
    std::string s = fixed(v, decimals);
    return v && *v > 0 ? "+" + s : s;
}

// Bits as bytes in binary units: a model size a person can read.
std::string sizeFromBits(const std::optional<double>& bits)
{
    if (!bits)
        return "-";
    double bytes = *bits / 8;
    const char* units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    while (std::fabs(bytes) >= 1024 && u < 3) {
        bytes /= 1024;
        ++u;
    }
    return fixed(bytes, u == 0 ? 0 : 1, (std::string(" ") + units[u]).c_str());
}

std::string bits(const std::optional<int>& b)
{
    return b ? std::to_string(*b) : "-";
}

std::string shorten(const std::string& s, std::size_t max)
{
    std::string one = s;
    for (char& c : one)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    return one.size() <= max ? one : one.substr(0, max - 3) + "...";
}

// Columns padded to their widest cell; `right` marks right-aligned (numeric) ones.
void printTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                const std::vector<bool>& right, const std::string& indent = "")
{
    std::vector<std::size_t> width(header.size());
    for (std::size_t c = 0; c < header.size(); ++c) {
        width[c] = header[c].size();
        for (const auto& r : rows)
            width[c] = std::max(width[c], r[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out = indent;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            const std::string pad(width[c] - cells[c].size(), ' ');
            const bool last = c + 1 == cells.size();
            out += right[c] ? pad + cells[c] : cells[c] + (last ? "" : pad);
            if (!last)
                out += "  ";
        }
        out.erase(out.find_last_not_of(' ') + 1);
        std::cout << out << "\n";
    };
    line(header);
    for (const auto& r : rows)
        line(r);
}

void writeOut(const std::optional<std::string>& outPath, const std::string& text)
{
    if (!outPath) {
        std::cout << text;
        return;
    }
    std::ofstream out(*outPath, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        fail(*outPath, ": cannot write the export");
}

int runRuns(const std::vector<std::string>& argv)
{
    Args args(argv, {"db", "model", "export", "out", "kind", "tag", "limit"}, {"json"});
    if (!args.positional().empty())
        fail("runs takes no positional arguments, got ", quoted(args.positional().front()));
    if (args.value("out") && !args.value("export"))
        fail("--out needs --export csv|json");
    const auto format = args.value("export");
    if (format && *format != "csv" && *format != "json")
        fail("--export: expected csv or json, got ", quoted(*format));

    RunFilter filter;
    filter.model = args.value("model");
    if (auto kind = args.value("kind"))
        filter.kind = parseRunKind(*kind);
    filter.tag = args.value("tag");
    filter.limit = args.intValue("limit", -1);
    Store store = openForReading(args);
    const std::vector<RunRecord> runs = store.runs(filter);

    if (format == "csv") {
        writeOut(args.value("out"), runsToCsv(runs));
        return 0;
    }
    if (format == "json" || args.flag("json")) {
        json j = json::array();
        for (const auto& r : runs)
            j.push_back(runToJson(r));
        writeOut(args.value("out"), j.dump(2) + "\n");
        return 0;
    }
    if (runs.empty()) {
        std::cout << "no runs in " << store.path() << (filter.model ? " for model " + quoted(*filter.model) : "") << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : runs) {
        std::string tags;
        for (const auto& t : r.tags)
            tags += (tags.empty() ? "" : ",") + t;
        rows.push_back({std::to_string(r.id), shorten(r.modelName, 24), runKindName(r.kind), runStateName(r.state),
                        localTime(r.startedMs), std::to_string(r.layerCount), percent(r.metrics.top1),
                        fixed(r.metrics.sqnrDb, 2), sizeFromBits(r.metrics.sizeBits), tags, shorten(r.note, 40)});
    }
    printTable({"ID", "MODEL", "KIND", "STATE", "STARTED", "LAYERS", "TOP1", "SQNR dB", "SIZE", "TAGS", "NOTE"}, rows,
               {true, false, false, false, false, true, true, true, true, false, false});
    return 0;
}

void printMetrics(const RunMetrics& m)
{
    std::cout << "metrics   top1 " << percent(m.top1) << "   SQNR " << fixed(m.sqnrDb, 2, " dB") << "   cosine "
              << fixed(m.cosine, 5) << "   top-1 agreement " << percent(m.top1Agreement) << "   KL "
              << fixed(m.kl, 5) << "\n          size " << sizeFromBits(m.sizeBits) << " ("
              << fixed(m.sizeBits, 0, " bits") << ")   latency " << fixed(m.latencyMs, 3, " ms") << "\n";
    if (!m.extra.empty())
        std::cout << "          " << m.extra.dump() << "\n";
}

int runShow(const std::vector<std::string>& argv)
{
    Args args(argv, {"db"}, {"json"});
    const int64_t id = parseRunId(args.required(0, "RUN (a run id, see `quantstudio-cli runs`)"));
    Store store = openForReading(args);
    const RunRecord r = store.run(id);
    const std::vector<LayerResult> layers = store.layerResults(id);
    const std::vector<ArtifactRecord> artifacts = store.artifacts(id);

    if (args.flag("json")) {
        json j = runToJson(r);
        j["layers"] = json::array();
        for (const auto& l : layers)
            j["layers"].push_back(layerToJson(l));
        j["artifacts"] = json::array();
        for (const auto& a : artifacts)
            j["artifacts"].push_back(artifactToJson(a));
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << "run " << r.id << "   " << runKindName(r.kind) << "   " << runStateName(r.state) << "\n";
    std::cout << "model     " << r.modelName << "   (sha256 " << r.modelHash.substr(0, 12) << ")\n";
    if (r.datasetId)
        std::cout << "dataset   " << r.datasetPath << "\n";
    std::cout << "started   " << localTime(r.startedMs);
    if (r.finishedMs)
        std::cout << "   finished " << localTime(*r.finishedMs) << "   ("
                  << fixed(double(*r.finishedMs - r.startedMs) / 1000, 1, " s") << ")";
    std::cout << "\n";
    if (!r.error.empty())
        std::cout << "error     " << r.error << "\n";
    if (!r.tags.empty()) {
        std::string tags;
        for (const auto& t : r.tags)
            tags += (tags.empty() ? "" : ", ") + t;
        std::cout << "tags      " << tags << "\n";
    }
    if (!r.note.empty())
        std::cout << "note      " << r.note << "\n";
    if (r.machine)
        std::cout << "machine   " << r.machine->hostname << ": " << r.machine->cpu << ", " << r.machine->cores
                  << " cores, " << r.machine->os << "\n";
    printMetrics(r.metrics);
    std::cout << "config    " << r.config.dump() << "\n";
    std::cout << "\nlayers (" << layers.size() << ")\n";
    if (!layers.empty()) {
        std::vector<std::vector<std::string>> rows;
        auto clip = [](const std::optional<StoredRange>& c) {
            return c ? "[" + fixed(c->lo, 4) + ", " + fixed(c->hi, 4) + "]" : std::string("-");
        };
        for (const auto& l : layers)
            rows.push_back({std::to_string(l.position), l.layer, l.op, bits(l.weightBits), bits(l.actBits),
                            l.granularity.empty() ? "-" : l.granularity, fixed(l.sqnrDb, 2), fixed(l.sensitivity, 4),
                            l.sizeBits ? std::to_string(*l.sizeBits) : "-", clip(l.weightClip), clip(l.actClip)});
        printTable({"#", "LAYER", "OP", "W", "A", "GRANULARITY", "SQNR dB", "SENS", "SIZE bits", "W CLIP", "A CLIP"},
                   rows, {true, false, false, true, true, false, true, true, true, false, false}, "  ");
    }
    if (!artifacts.empty()) {
        std::cout << "\nartifacts (" << artifacts.size() << ")\n";
        for (const auto& a : artifacts)
            std::cout << "  " << a.format << "  " << a.path << "  (" << a.sizeBytes << " bytes, sha256 "
                      << a.hash.substr(0, 12) << ")\n";
    }
    return 0;
}

int runCompare(const std::vector<std::string>& argv)
{
    Args args(argv, {"db"}, {"json"});
    const int64_t a = parseRunId(args.required(0, "RUN_A (a run id)"));
    const int64_t b = parseRunId(args.required(1, "RUN_B (a run id)"));
    Store store = openForReading(args);
    const RunComparison c = compareRuns(store, a, b);

    if (args.flag("json")) {
        std::cout << comparisonToJson(c).dump(2) << "\n";
        return 0;
    }
    auto describe = [](const RunRecord& r) {
        return str("run ", r.id, " (", runKindName(r.kind), ", ", runStateName(r.state), ", model ", r.modelName, ")");
    };
    std::cout << "a: " << describe(c.a) << "\nb: " << describe(c.b) << "\n";
    if (c.config.empty()) {
        std::cout << "\nconfigurations are identical\n";
    } else {
        std::cout << "\nconfiguration differences\n";
        std::vector<std::vector<std::string>> rows;
        for (const auto& d : c.config)
            rows.push_back({d.key, d.a.is_null() ? "-" : d.a.dump(), d.b.is_null() ? "-" : d.b.dump()});
        printTable({"KEY", "A", "B"}, rows, {false, false, false}, "  ");
    }
    std::cout << "\nmetrics\n";
    std::vector<std::vector<std::string>> metricRows;
    for (const auto& m : c.metrics)
        metricRows.push_back({m.name, fixed(m.a, 6), fixed(m.b, 6), signedFixed(m.delta(), 6),
            m.incomparable.empty() ? "" : "not comparable: " + m.incomparable});
    printTable({"METRIC", "A", "B", "B-A", "NOTE"}, metricRows, {false, true, true, true, false}, "  ");

    std::cout << "\nlayers (" << c.layers.size() << " matched by name)\n";
    if (!c.layers.empty()) {
        std::vector<std::vector<std::string>> rows;
        for (const auto& l : c.layers) {
            auto delta = [](const std::optional<double>& x, const std::optional<double>& y) {
                return x && y ? std::optional(*y - *x) : std::nullopt;
            };
            auto size = [](const std::optional<int64_t>& s) {
                return s ? std::optional(double(*s)) : std::nullopt;
            };
            rows.push_back({l.layer, bits(l.a.weightBits) + "/" + bits(l.a.actBits),
                            bits(l.b.weightBits) + "/" + bits(l.b.actBits), fixed(l.a.sqnrDb, 2),
                            fixed(l.b.sqnrDb, 2), signedFixed(delta(l.a.sqnrDb, l.b.sqnrDb), 2),
                            fixed(l.a.sensitivity, 4), fixed(l.b.sensitivity, 4), fixed(size(l.a.sizeBits), 0),
                            fixed(size(l.b.sizeBits), 0)});
        }
        printTable({"LAYER", "W/A a", "W/A b", "SQNR a", "SQNR b", "dSQNR", "SENS a", "SENS b", "SIZE a", "SIZE b"},
                   rows, {false, true, true, true, true, true, true, true, true, true}, "  ");
    }
    auto list = [](const char* which, const std::vector<std::string>& names) {
        if (names.empty())
            return;
        std::cout << "\nonly in " << which << " (" << names.size() << "):";
        for (const auto& n : names)
            std::cout << " " << n;
        std::cout << "\n";
    };
    list("a", c.onlyInA);
    list("b", c.onlyInB);
    return 0;
}

const bool registered =
    registerCommand({"runs", "[--db DB] [--model NAME] [--kind KIND] [--tag TAG] [--limit N] [--json] [--export csv|json [--out PATH]]",
                     "list the runs recorded in the experiment store", runRuns}) &&
    registerCommand({"show", "RUN [--db DB] [--json]", "one stored run with its per-layer results", runShow}) &&
    registerCommand({"compare", "RUN_A RUN_B [--db DB] [--json]",
                     "two runs side by side: configurations, metric deltas, layers aligned by name", runCompare});

} // namespace
} // namespace qs::cli
