// The compact blob a StoredHistogram is stored as (layer_results.weight_hist/act_hist).
//
// Format, version 1 (every multi-byte value little-endian):
//   4 bytes          magic "QSH1"
//   varint           n, the number of bins (unsigned LEB128)
//   (n+1) x float32  bin edges, non-decreasing, finite (none when n == 0)
//   n x varint       counts (unsigned LEB128, 64-bit)
// Counts are varints because most bins of a tail-heavy histogram are small.
#pragma once

#include "store/records.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

// Throws an Error when edges and counts do not fit (sizes, order, non-finite).
std::vector<uint8_t> encodeHistogram(const StoredHistogram& h);
// Throws an Error naming `context` (e.g. `layer "conv1" weight histogram`) and the
// byte offset when the blob is malformed.
StoredHistogram decodeHistogram(const uint8_t* data, std::size_t size, const std::string& context);
inline StoredHistogram decodeHistogram(const std::vector<uint8_t>& blob, const std::string& context)
{
    return decodeHistogram(blob.data(), blob.size(), context);
}

} // namespace qs
