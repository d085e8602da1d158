// HTML and CSV reports of one run, from what the store holds (no re-derivation).
#include "export/run_report.h"

#include "export/png.h"
#include "store/report.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace qs {
namespace {

std::string html(const std::string& s)
{
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '&':
            out += "&amp;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string number(const nlohmann::json& v)
{
    if (v.is_number_float() && !std::isfinite(v.get<double>()))
        return {};
    return v.is_number() ? v.dump() : std::string();
}

template<typename T> std::string number(const std::optional<T>& v)
{
    return v ? number(nlohmann::json(*v)) : std::string();
}

struct Column {
    const char* name;
    std::string (*get)(const LayerResult&);
};

const std::vector<Column>& columns()
{
    static const std::vector<Column> c = {
        {"layer", [](const LayerResult& l) { return l.layer; }},
        {"op", [](const LayerResult& l) { return l.op; }},
        {"weight_bits", [](const LayerResult& l) { return number(l.weightBits); }},
        {"act_bits", [](const LayerResult& l) { return number(l.actBits); }},
        {"granularity", [](const LayerResult& l) { return l.granularity; }},
        {"params", [](const LayerResult& l) { return number(l.extra.value("params", nlohmann::json())); }},
        {"size_bits", [](const LayerResult& l) { return number(l.sizeBits); }},
        {"weight_sqnr_db",
            [](const LayerResult& l) { return number(l.extra.value("weight_sqnr_db", nlohmann::json())); }},
        {"output_sqnr_db", [](const LayerResult& l) { return number(l.sqnrDb); }},
        {"scale_min", [](const LayerResult& l) { return number(l.scales.value("min", nlohmann::json())); }},
        {"scale_max", [](const LayerResult& l) { return number(l.scales.value("max", nlohmann::json())); }},
        {"act_clip_lo", [](const LayerResult& l) { return l.actClip ? number(nlohmann::json(l.actClip->lo)) : ""; }},
        {"act_clip_hi", [](const LayerResult& l) { return l.actClip ? number(nlohmann::json(l.actClip->hi)) : ""; }},
    };
    return c;
}

std::string chart(const std::string& title, const std::vector<double>& values, Rgb colour)
{
    const int width = std::max(240, int(values.size()) * 36 + 20);
    double top = -INFINITY;
    for (double v : values)
        if (std::isfinite(v))
            top = std::max(top, v);
    return str("<figure><img alt=\"", html(title), "\" src=\"data:image/png;base64,",
        base64(barChart(values, width, 160, colour).png()), "\"><figcaption>", html(title),
        ": bars in layer order, as in the table", std::isfinite(top) ? str("; the tallest is ", top) : "",
        "</figcaption></figure>\n");
}

std::string metricRow(const std::string& name, const std::string& value)
{
    return str("<tr><th>", html(name), "</th><td>", value.empty() ? "n/a" : html(value), "</td></tr>\n");
}

} // namespace

std::string layerTableCsv(const std::vector<LayerResult>& layers)
{
    std::string out;
    for (std::size_t i = 0; i < columns().size(); ++i)
        out += (i ? "," : "") + std::string(columns()[i].name);
    out += "\r\n";
    for (const auto& l : layers) {
        for (std::size_t i = 0; i < columns().size(); ++i)
            out += (i ? "," : "") + csvField(columns()[i].get(l));
        out += "\r\n";
    }
    return out;
}

std::string runReportHtml(const RunReportInput& in)
{
    const RunRecord& r = in.run;
    const nlohmann::json m = metricsToJson(r.metrics);
    std::string out = str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>QuantStudio run ",
        r.id, " - ", html(r.modelName), "</title>\n",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "th{background:#f4f4f4}pre{background:#f8f8f8;padding:1em}</style></head><body>\n");
    out += str("<h1>Run ", r.id, ": ", html(runKindName(r.kind)), " of ", html(r.modelName), "</h1>\n");
    out += str("<p>State <b>", runStateName(r.state), "</b>, started ", isoTimeUtc(r.startedMs),
        r.finishedMs ? ", finished " + isoTimeUtc(*r.finishedMs) : std::string(), ". Model SHA-256 <code>",
        html(r.modelHash), "</code>; dataset <code>", html(r.datasetPath), "</code>.</p>\n");

    out += "<h2>Metrics</h2>\n<table id=\"metrics\">\n";
    const nlohmann::json& x = r.metrics.extra;
    out += metricRow("top-1", number(m["top1"]));
    out += metricRow("FP32 top-1", number(x.value("fp32_top1", nlohmann::json())));
    out += metricRow("top-1 agreement with FP32", number(m["top1_agreement"]));
    out += metricRow("output SQNR (dB)", number(m["sqnr_db"]));
    out += metricRow("cosine", number(m["cosine"]));
    out += metricRow("KL (nats)", number(m["kl"]));
    out += metricRow("size (bits, at the true bit widths)", number(m["size_bits"]));
    out += metricRow("FP32 size (bits)", number(x.value("fp32_size_bits", nlohmann::json())));
    out += metricRow("compression", number(x.value("compression", nlohmann::json())));
    out += metricRow("latency per batch (ms, median)", number(m["latency_ms"]));
    out += metricRow("evaluation samples", number(x.value("eval_samples", nlohmann::json())));
    out += "</table>\n";

    out += "<h2>Configuration</h2>\n<pre id=\"config\">" + html(r.config.dump(2)) + "</pre>\n";

    out += "<h2>Layers</h2>\n<table id=\"layers\">\n<tr>";
    for (const auto& c : columns())
        out += str("<th>", c.name, "</th>");
    out += "</tr>\n";
    std::vector<double> sqnr, size;
    for (const auto& l : in.layers) {
        out += "<tr>";
        for (const auto& c : columns())
            out += "<td>" + html(c.get(l)) + "</td>";
        out += "</tr>\n";
        sqnr.push_back(l.sqnrDb ? *l.sqnrDb : NAN);
        size.push_back(l.sizeBits ? double(*l.sizeBits) : NAN);
    }
    out += "</table>\n<h2>Charts</h2>\n";
    out += chart("Output SQNR per layer (dB)", sqnr, {52, 101, 164});
    out += chart("Stored weight size per layer (bits)", size, {204, 102, 0});

    out += "<h2>Exports</h2>\n";
    if (in.artifacts.empty()) {
        out += "<p>None yet.</p>\n";
    } else {
        out += "<table id=\"artifacts\"><tr><th>format</th><th>path</th><th>bytes on disk</th><th>SHA-256</th>"
               "<th>created</th></tr>\n";
        for (const auto& a : in.artifacts)
            out += str("<tr><td>", html(a.format), "</td><td>", html(a.path), "</td><td>", a.sizeBytes,
                "</td><td><code>", a.hash, "</code></td><td>", isoTimeUtc(a.createdMs), "</td></tr>\n");
        out += "</table>\n<p>An ONNX QDQ file stores weights below 8 bits in 8-bit containers; its size on disk is "
               "the real storage, the size above counts the true bit widths.</p>\n";
    }
    out += "</body></html>\n";
    return out;
}

} // namespace qs
