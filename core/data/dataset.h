// Datasets for inference, calibration and evaluation: IDX images, NPY arrays, NPZ
// archives or folders of NPY files (one array per model input) or synthetic inputs,
// images scaled to [0,1] and normalized per channel; text (bytes, or ids of a
// tokenizer) or token-id files cut into token windows for language models (text:FILE,
// tokens:FILE, see data/text.h and data/tokenizer.h); or image files decoded and
// preprocessed batch by batch (images:DIR, imagelist:FILE, see data/image_dataset.h).
#pragma once

#include "graph/graph.h"
#include "jobs/progress.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qs {

struct DataOptions {
    // IDX/NPY/NPZ path, folder of NPY files, "random:N", "text:FILE", "tokens:FILE[:u16|:u32]",
    // "images:DIR", "imagelist:FILE"
    std::string spec;
    // Else found beside an IDX file by its standard name; images: the class index file.
    std::optional<std::string> labelsPath;
    std::optional<std::vector<float>> mean, std; // else from model metadata, else none
    int64_t limit = -1;                          // keep the first N samples (< 0: all)
    uint64_t seed = 1;                           // for random:N
    int64_t context = 0;                         // text: window length (0: from the model, see textContextFor)
    std::string tokenizer;                       // text:FILE: "spm:FILE" or "hf:FILE" (data/tokenizer.h); "": bytes
    std::map<std::string, double> inputValues;   // input name -> the value of every element of every sample
    // Input name -> full shape (batch ignored) for unknown or symbolic dimensions the data
    // does not fix (random:N, --input-value); see data/input_binding.h.
    std::map<std::string, Shape> inputShapes;
    std::string preprocess;  // images: the pipeline (data/preprocess.h: a preset, items or a .json file)
    int threads = 0;         // images: decoding threads (0: the machine's cores, at most 8)
    int prefetchBatches = 2; // images: batches decoded ahead of the one asked for
    CancelToken cancel;      // images: stops decoding; a read then throws Cancelled
};

// Samples made on demand (image files): read(start, n) gives [n, ...sample], decoded
// now or taken from a batch prepared ahead. Thread-safe.
class SampleStream {
public:
    virtual ~SampleStream() = default;
    virtual Tensor read(int64_t start, int64_t n) const = 0;
};

// The samples of one model input, [N, ...sample], sample-first whatever the model's layout.
struct DataInput {
    std::string name;   // the model input it feeds
    std::string source; // what fills it: "x.npy", "x (NPZ member)", "random ids < 30522", "--input-value"
    // [N, ...sample shape]; with a stream, only its type and shape (no bytes): the
    // samples are stream->read(streamStart + i, ...).
    Tensor samples;
    std::shared_ptr<const SampleStream> stream;
    int64_t streamStart = 0;
    // Where the batch goes in the model's input: 0 mostly; 1 for a recurrent state
    // [layers, batch, hidden] whose batch dimension is named like the first input's;
    // -1 for an input with no batch dimension (a scalar such as a sample rate, or a
    // shape without the batch name): the samples of a batch must then agree, and it takes one.
    int batchAxis = 0;

    Shape sampleShape() const { return Shape(samples.shape.begin() + 1, samples.shape.end()); }
    // The model's input for samples [start, start + n).
    Tensor batch(int64_t start, int64_t n) const;
    Shape batchShape(int64_t n) const;
    // Every sample, [N, ...]: `samples`, or all read from the stream.
    Tensor all() const;
};

struct Dataset {
    std::string kind; // "idx", "npy", "npz", "folder", "random", "text" (also tokens:), "images", "imagelist"
    std::string path; // file or spec
    std::string labelsPath;
    std::vector<DataInput> inputs; // one per model input, in the model's order
    std::optional<std::vector<int64_t>> labels;
    std::optional<Tensor> targets;             // text: int64 [N, context], the next token of every input position
    // Targets read on demand (streamed token files): `targets` holds only type and
    // shape, and window i is targetStream->read(targetStart + i, 1). targetBatch() reads.
    std::shared_ptr<const SampleStream> targetStream;
    int64_t targetStart = 0;
    std::vector<float> mean, std;              // what was applied to the first input (empty: none)
    std::string preprocess;                    // images: the pipeline applied (Preprocess::text()), else ""
    std::string tokenizer;                     // text: the tokenizer that made the ids (DataOptions::tokenizer)
    std::vector<std::string> classes;          // images: the class folder of each label
    std::string hash;                          // content hash of the source files (for the store)
    std::map<std::string, double> inputValues; // DataOptions::inputValues (the store records them)
    // The inputs whose model shape leaves dimensions other than the batch open: the full
    // shape, batch 1, that the data or DataOptions::inputShapes bound (the store records them).
    std::map<std::string, Shape> boundShapes;

    int64_t count() const;
    // Bytes held in memory: samples and targets not streamed, labels (not a first() read).
    int64_t heldBytes() const;
    // The first input's samples: the only input of IDX, NPY and text data. Streamed
    // images are all decoded here and kept (a whole-data statistic; batch() streams).
    const Tensor& first() const;
    // The model's inputs (in its order) for samples [start, start+n), copied.
    std::vector<Tensor> batch(int64_t start, int64_t n) const;
    // Input name -> the shape batch(., n) gives (CompileOptions::inputShapes).
    std::map<std::string, Shape> inputShapes(int64_t n) const;
    // Input name -> the shape of one sample.
    std::map<std::string, Shape> sampleShapes() const;
    // The targets of the same samples (text only; streamed ones are read here).
    Tensor targetBatch(int64_t start, int64_t n) const;
    // Samples [start, start+n) with their labels and targets.
    Dataset slice(int64_t start, int64_t n) const;

private:
    mutable std::shared_ptr<const Tensor> firstRead_; // first() of a streamed input
};

// Which array or generator feeds each input of `model` for `spec`, read from file names
// and archive directories only (cheap enough for a dialog): {input, source}.
std::vector<std::pair<std::string, std::string>> dataInputSources(
    const std::string& spec, const Graph& model, const std::map<std::string, double>& inputValues = {});

// Loads the samples of every input of `model` and normalizes the first. An IDX or NPY
// file feeds the first input; an NPZ holds one array per input name, a folder one
// "<input>.npy" per input; --input-value fills any input. Errors name the file and what
// does not fit (a missing or extra array, a sample shape vs the model's input, label count, ...).
Dataset loadDataset(const DataOptions& options, const Graph& model);
// The same with every other option at its default (the studio's jobs).
Dataset loadDataset(const std::string& spec, int64_t limit, const Graph& model);

// Where the batch sits in a model input or output (DataInput::batchAxis): where the
// first input's dimension-0 name appears; else 0, or -1 (no batch dimension) for a
// rank-0 value or one whose dimension 0 is fixed while the first input's batch is dynamic.
int batchAxisOf(const Graph& model, const ValueInfo& value);
// A batch in the model's layout, its batch at `axis`, as samples first: [n, ...].
Tensor samplesFirst(const Tensor& batch, int axis);

// "a,b,c" from the model's metadata_props (quantstudio.mean / quantstudio.std).
std::optional<std::vector<float>> metadataFloats(const Graph& model, const std::string& key);

// The standard label file next to an IDX image file ("" when there is none).
std::string findIdxLabels(const std::string& imagesPath);

} // namespace qs
