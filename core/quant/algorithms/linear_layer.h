// The matrix view of a quantizable layer that the research PTQ algorithms (GPTQ,
// AWQ, SmoothQuant, AdaRound, rotation, SpQR) share: the weight as W[rows][cols]
// (rows = output channels, cols = K = Cin*kh*kw for Conv, in-features for Gemm/MatMul),
// the layer input as im2col rows x[K], and the quantization blocks of the layer's
// spec on that view (identical to planWeightQuantization's blocks on the tensor).
#pragma once

#include "quant/session.h"

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace qs::algo {

struct LinearLayer {
    SessionLayer info;
    enum class Kind { Conv, Gemm, MatMul } kind = Kind::Gemm;
    int64_t rows = 0, cols = 0;
    bool transposed = false; // the tensor is stored [K, rows] (Gemm transB=0, MatMul)
    Shape weightShape;
    // Conv geometry (2-D, group 1); channels = Cin, spatial = kh*kw columns per channel.
    int64_t channels = 0, kh = 1, kw = 1, strideH = 1, strideW = 1, padT = 0, padL = 0, padB = 0, padR = 0, dilH = 1,
            dilW = 1;
    int64_t spatial() const { return kind == Kind::Conv ? kh * kw : 1; }
    int64_t inputChannels() const { return kind == Kind::Conv ? channels : cols; }

    // Quantization blocks of info.spec.weight on the [rows][cols] view.
    int64_t groupsPerRow() const;
    int64_t blocks() const;
    int64_t blockOf(int64_t row, int64_t col) const;
};

// nullopt when the layer is not a 2-D Conv with group 1, a Gemm with transA=0, or a
// MatMul whose second input is a 2-D constant.
std::optional<LinearLayer> linearLayer(const QuantSession& s, const SessionLayer& l);
// Every layer of the session with a quantized weight that has a matrix view.
std::vector<LinearLayer> linearLayers(const QuantSession& s);

// Weight tensor (float values in its own layout) <-> row-major [rows][cols].
std::vector<float> toMatrix(const LinearLayer& L, std::span<const float> w);
std::vector<float> fromMatrix(const LinearLayer& L, const std::vector<float>& m);

// Appends one input batch as rows of K values (im2col for Conv; zero padding).
void appendInputRows(const LinearLayer& L, const Tensor& x, std::vector<float>& rows);

// Runs the FP32 working graph over up to `limit` calibration samples and calls
// sink(layer index, the batch's input tensor) for every layer's input.
void streamLayerInputs(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers, int64_t limit,
    const std::function<void(std::size_t, const Tensor&)>& sink, Progress& progress, const CancelToken& cancel);

// Block by block (quant/algorithms/blockwise.cpp), as GPTQ quantizes large models
// (Frantar et al. 2022, sec. 4 "Step 3" and App. A: one Transformer block at a time, its
// inputs from the already quantized blocks): consecutive ranges [first, last] of the
// graph's node order covering every node, each holding at least one of `layers` (node
// names). The cuts are where the fewest computed values are live between the first and
// the last layer: the residual stream between a Transformer's attention and MLP halves,
// between ResNet blocks, between every layer of a plain chain. One block when the graph
// has fewer than two layers or control flow (If/Loop bodies read outer values).
struct ModelBlock {
    int first = 0, last = -1;
};
std::vector<ModelBlock> findBlocks(const Graph& g, const std::vector<std::string>& layers);

// Runs up to `limit` calibration samples through the working graph one block
// (findBlocks of `layers`) at a time: each block is compiled alone on the values live at
// its start, `sink(layer index, input batch)` sees the inputs of its layers, then
// `blockDone(indices of its layers)` runs (it may change s.weightOverrides, not the
// graph), and the block's outputs become the next block's inputs: with `sequential` the
// block runs again with s.weightOverrides of its weights (the quantized model so far, as
// GPTQ does), else the first run's values pass on (the FP32 model's). Memory: one block's
// weights and plan, and the values live at a cut for the calibration samples. Returns
// the number of blocks.
std::size_t forEachBlock(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers, int64_t limit,
    bool sequential, const std::function<void(std::size_t, const Tensor&)>& sink,
    const std::function<void(const std::vector<std::size_t>&)>& blockDone, Progress& progress,
    const CancelToken& cancel);

// forEachBlock for the algorithms that rescale layers last first (AWQ, SmoothQuant):
// one FP32 pass keeps every block's input values, then the blocks run again from them,
// the last first, each followed by blockDone, which may edit the graph as
// scaleInputChannels does (a node inserted before one of the block's layers, weights
// folded into an earlier producer): no such edit changes an earlier layer's input, so
// every layer sees the FP32 model's inputs, as when all were observed at once. Memory:
// one block's weights and plan, and every block's input values for the samples.
std::size_t forEachBlockBackwards(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers,
    int64_t limit, const std::function<void(std::size_t, const Tensor&)>& sink,
    const std::function<void(const std::vector<std::size_t>&)>& blockDone, Progress& progress,
    const CancelToken& cancel);

// The layer's weight matrix as the working graph holds it now (after earlier rescaling).
std::vector<float> currentMatrix(const QuantSession& s, const LinearLayer& L);

// sum over every input row x of x x^T for each layer (K x K), and the rows seen.
struct LayerGram {
    std::vector<double> h;
    int64_t rows = 0;
};
// streamLayerInputs accumulating each layer's Gram matrix; `also` sees every batch too.
std::vector<LayerGram> layerGrams(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers,
    int64_t limit, Progress& progress, const CancelToken& cancel,
    const std::function<void(std::size_t, const Tensor&)>& also = {});

// A uniform random subset of at most `capacity` rows of K values (reservoir sampling).
class RowSample {
public:
    RowSample(int64_t k, int64_t capacity, uint64_t seed) : k_(k), capacity_(capacity), rng_(seed) { }
    void add(const std::vector<float>& rows);
    int64_t count() const { return int64_t(data_.size()) / std::max<int64_t>(k_, 1); }
    const std::vector<float>& data() const { return data_; }

private:
    int64_t k_, capacity_, seen_ = 0;
    std::mt19937_64 rng_;
    std::vector<float> data_;
};

// H += sum over rows of x x^T (K x K, row-major, full).
void addGram(const std::vector<float>& rows, int64_t k, std::vector<double>& h);

// Min-max QParams of every block of the matrix under the spec (spec.range wins).
std::vector<QParams> blockParams(const LinearLayer& L, const std::vector<float>& m, const QuantSpec& spec);
// Round-to-nearest quantize-dequantize of the matrix with those params.
std::vector<float> roundToNearest(const LinearLayer& L, const std::vector<float>& m, const std::vector<QParams>& p);

// sum over the Gram's samples of ||(A - B) x||^2 = trace(D H D^T), D = A - B.
double outputError(
    const std::vector<float>& a, const std::vector<float>& b, int64_t rows, int64_t k, const std::vector<double>& h);

// The weight range by layer output MSE (weight calibrator "output-mse"): per block of
// the spec, the clipping of the block's [min, max] whose round-to-nearest quantization
// has the least output error sum_x ||(W~ - W) x||^2 = sum over rows of d^T H d (d: the
// row's weight error on the block's columns, H: the Gram matrix of the layer's inputs,
// K x K). A shared shrink factor of both ends, 1 down to 0.2 in steps of 0.02, refined
// by 0.002 around the best; on an affine grid then each end alone (1 down to 0.1 of it
// by 0.02) with the other fixed, keeping the best so far a candidate. Per-channel and
// per-tensor blocks span whole rows, so the error is exact; a group sees only its
// diagonal block of H. Returns one QParams per block, in LinearLayer::blockOf order.
std::vector<QParams> outputMseGrid(
    const LinearLayer& L, const std::vector<float>& m, const std::vector<double>& h, const QuantSpec& spec);

// Makes node input `index` an initializer of its own named `name` (float), so a
// shared weight elsewhere stays untouched; returns it.
Tensor& ownInitializer(Graph& g, Node& n, std::size_t index, const std::string& name);

// Multiplies the layer's weight along its input channels by s (per input channel:
// Cin for Conv, K for Gemm/MatMul) and divides the layer's input by s: folded into
// the producing Conv/Gemm (directly or through a ReLU) when the value feeds only this
// layer, else an explicit Mul node in the working graph. The FP32 function is unchanged.
// Returns "folded into <node>" or "Mul <node>".
std::string scaleInputChannels(
    QuantSession& s, const LinearLayer& L, const std::vector<double>& scale, const std::string& tag);

// Per-input-channel max |x| and mean |x| over a stream of input tensors.
struct ChannelAbs {
    std::vector<double> max, sum;
    int64_t count = 0;
    void add(const LinearLayer& L, const Tensor& x);
    std::vector<double> mean() const;
};

} // namespace qs::algo
