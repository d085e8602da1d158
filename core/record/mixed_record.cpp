#include "record/mixed_record.h"

#include "util/json_number.h"

namespace qs {

std::vector<LayerResult> mixedLayerRows(const FrontPoint& chosen, int activationBits)
{
    std::vector<LayerResult> rows;
    for (const auto& [layer, bits] : chosen.bits) {
        LayerResult lr;
        lr.layer = layer;
        lr.weightBits = bits;
        lr.actBits = activationBits;
        rows.push_back(lr);
    }
    return rows;
}

RunMetrics mixedRunMetrics(const FrontPoint& chosen, nlohmann::json front)
{
    RunMetrics m;
    m.sizeBits = double(chosen.sizeBits);
    m.extra = {{"predicted_sqnr_db", jsonNumber(chosen.predictedSqnrDb)}, {"average_bits", chosen.averageBits},
        {"front", std::move(front)}};
    if (chosen.measured) {
        m.top1 = chosen.measured->top1;
        m.sqnrDb = chosen.measured->sqnrDb;
    }
    return m;
}

} // namespace qs
