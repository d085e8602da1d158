// NumPy .npz archives: a zip of named .npy members (np.savez stores them,
// np.savez_compressed deflates them). Reads stored and deflated members, bounds-checked
// against the central directory; zip64, encrypted and multi-disk archives are refused.
//
//   for (auto& [name, t] : readNpz("batch.npz")) ...   // name: the member without ".npy"
//   writeNpz({{"logits", t}}, "out.npz");               // stored, no compression
#pragma once

#include "graph/tensor.h"

#include <string>
#include <utility>
#include <vector>

namespace qs {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The arrays of an archive in member order; `label` names it in errors.
NamedTensors parseNpz(const std::string& bytes, const std::string& label);
NamedTensors readNpz(const std::string& path);
// Only the array names (the central directory), without reading any member.
std::vector<std::string> npzNames(const std::string& path);
// A stored (uncompressed) zip with one "<name>.npy" member per array.
std::string formatNpz(const NamedTensors& arrays);
void writeNpz(const NamedTensors& arrays, const std::string& path);

} // namespace qs
