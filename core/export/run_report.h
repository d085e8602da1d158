// A stored run as a self-contained HTML report (configuration, metrics, per-layer
// table, embedded PNG charts, exported artifacts) and its per-layer table as CSV.
#pragma once

#include "store/records.h"

#include <string>
#include <vector>

namespace qs {

struct RunReportInput {
    RunRecord run;
    std::vector<LayerResult> layers;
    std::vector<ArtifactRecord> artifacts; // listed with their sizes: the real storage
};

// Header: layer,op,weight_bits,act_bits,granularity,params,size_bits,weight_sqnr_db,
// output_sqnr_db,scale_min,scale_max,act_clip_lo,act_clip_hi. RFC 4180, CRLF.
std::string layerTableCsv(const std::vector<LayerResult>& layers);
std::string runReportHtml(const RunReportInput& in);

} // namespace qs
