// Image files as a dataset: "images:DIR" (class subfolders, ImageNet layout, labels
// from sorted folder names or an index file; or a flat folder without labels) and
// "imagelist:FILE" (lines "path,label", paths relative to the list's folder). Samples
// are decoded and preprocessed (data/preprocess.h) batch by batch on worker threads
// with a bounded number of batches prepared ahead: never all in memory.
#pragma once

#include "data/dataset.h"
#include "data/preprocess.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

struct ImageListing {
    std::vector<std::string> files;
    std::optional<std::vector<int64_t>> labels; // one per file when the layout or list gives them
    std::vector<std::string> classes;           // label -> class folder name (images:DIR with subfolders)
};

bool isImageDataSpec(const std::string& spec);

// A folder: class subfolders (files found recursively, sorted; label = the folder's
// position in sorted order, or its line in `classIndex`: one class folder name per line,
// the first word counts), or image files directly in it (no labels).
ImageListing listImageFolder(const std::string& dir, const std::optional<std::string>& classIndex);
// Lines "path,label", "path label" or "path" (blank lines and # comments skipped, a
// header "path,label" too); a label is a class number, or a name of `classIndex`.
ImageListing readImageList(const std::string& listFile, const std::optional<std::string>& classIndex);

// Decodes and preprocesses files[start, start + n) on `threads` workers, keeping up to
// `prefetch` following batches ready; errors name the file.
std::shared_ptr<const SampleStream> imageStream(
    std::vector<std::string> files, const Preprocess& p, int threads, int prefetch, CancelToken cancel);

// The sample shape (batch removed, -1 where open) images must give `in`: its model shape,
// open dimensions taken from `inputShapes` (full shapes, --input-shape) where given.
Shape imageSampleShape(const ValueInfo& in, const std::map<std::string, Shape>& inputShapes);

// The dataset of an images:/imagelist: spec for the model's first input.
Dataset loadImageDataset(const DataOptions& options, const Graph& model);

} // namespace qs
