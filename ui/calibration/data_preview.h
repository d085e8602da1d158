// What the calibration-data dialog shows before the data is chosen: thumbnails of a few
// images before and after their preprocessing, per-channel statistics of the preprocessed
// tensor, the label mapping, and warnings when the statistics look wrong for the model.
// previewData() decodes and preprocesses: call it on a worker thread (a JobRunner job).
#pragma once

#include "graph/tensor.h"
#include "jobs/progress.h"

#include <QImage>
#include <QString>
#include <QStringList>
#include <QVector>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qs {
class Graph;
struct Preprocess;
} // namespace qs

namespace qs::ui {

struct ChannelStats {
    double mean = 0, std = 0, min = 0, max = 0;
};

// The input normalization the model is taken to expect (see inputWarnings).
struct InputExpectation {
    bool normalized = false; // per channel mean about 0 and std about 1
    QString source;          // why: "the model's metadata (quantstudio.mean/std)", "the torchvision preset"
};

// The model's own record of its input scale: the first Conv fed by the input, when a
// BatchNormalization follows it, was trained on outputs whose per-channel mean and
// variance are that BatchNormalization's running statistics. firstLayerFit() computes the
// Conv's FP32 outputs on the preview's samples (a naive loop at sampled positions) and
// compares, per output channel, then takes the median over channels.
struct FirstLayerFit {
    QString layer;          // the Conv's name
    double spreadRatio = 1; // output std / sqrt(running var)
    double meanShift = 0;   // |output mean - running mean| / sqrt(running var)
    int64_t samples = 0, positions = 0;
};

struct DataPreview {
    struct Thumb {
        QImage before, after; // the decoded image, the preprocessed sample (min-max stretched), both small
        QString file;         // relative to the folder or list
        int64_t label = -1;
    };
    QString spec;
    QString pipeline;             // the resolved pipeline (Preprocess::text()) for images, else ""
    Shape sampleShape;            // of the first input's preprocessed sample
    int64_t count = 0;            // samples in the data
    int64_t sampled = 0;          // samples the statistics are over
    QStringList classes;          // label -> class name (folder), images:DIR with subfolders or a class index
    QVector<int64_t> classCounts; // label -> images (as many as the largest label + 1)
    QVector<Thumb> thumbs;
    std::vector<ChannelStats> channels; // in the output's channel order (or one for non-image data)
    QStringList channelNames;           // "R", "G", "B" (BGR: "B", "G", "R"), or "all"
    InputExpectation expectation;
    std::optional<FirstLayerFit> firstLayer; // when the model has such a layer and the samples are NCHW
    QStringList warnings;
};

struct PreviewRequest {
    std::string spec;       // images:DIR, imagelist:FILE, an IDX/NPY path or random:N
    std::string preprocess; // images: Preprocess text
    std::string presetName; // the preset the pipeline started from ("" for none)
    // Input name -> full shape for the model input's open dimensions (Studio::dataInputShapes).
    std::map<std::string, Shape> inputShapes;
    int thumbs = 8;        // images shown
    int statsSamples = 32; // samples the statistics are over, spread over the data
    int thumbSide = 96;    // pixels
};

// The model's expectation, in this order: its metadata quantstudio.mean/std (a model
// prepared for normalized data); else the preset the pipeline started from, when that
// preset normalizes (torchvision, paddleocr-rec); else none known (yolo, raw data).
InputExpectation expectedInput(const Graph* model, const std::string& presetName);

// The heuristic, from the preprocessed tensor's per-channel statistics:
//  1. unscaled pixels: every channel's min >= 0 and some channel's max > 2 (0..255 data
//     where scale=1/255 is missing; caffe-style mean subtraction goes negative and passes);
//  2. 0..1 data for a model expecting normalized input: every channel within [0, 1];
//  3. a model expecting normalized input, and a channel's mean outside [-1.5, 1.5] or its
//     std outside [0.1, 3] (a wrong mean/std, or std given as 255-scaled values).
// Each warning is one sentence naming the channel and numbers; none when all is well.
QStringList inputWarnings(
    const std::vector<ChannelStats>& channels, const QStringList& names, const InputExpectation& expectation);

// Outside [1/3, 3] (spread) or above 2 (mean shift) the data is taken to be scaled or
// normalized unlike the model's training data.
inline constexpr double kFirstLayerSpreadLimit = 3, kFirstLayerShiftLimit = 2;
// nullopt when the first input feeds no Conv (groups, strides, pads and dilations
// supported; auto_pad only NOTSET) directly followed by a BatchNormalization, or `batch`
// is not [N, C, H, W] as the Conv takes it.
std::optional<FirstLayerFit> firstLayerFit(const Graph& model, const Tensor& batch);
// The warning for a fit outside the limits, else "".
QString firstLayerWarning(const FirstLayerFit& fit);

// Per-channel statistics of samples [N, C, H, W] or [N, H, W, C] (`channelAxis` 1 or 3 of the
// batch), or of all values as one channel (`channelAxis` < 0).
std::vector<ChannelStats> channelStats(const Tensor& batch, int channelAxis);

// A preprocessed sample ([C,H,W], or [H,W,C] when `hwc`; C 1 or 3, in BGR order when `bgr`)
// as an RGB image, min-max stretched over the sample; null for other shapes.
QImage sampleImage(const float* sample, const Shape& shape, bool hwc, bool bgr);

// Lists, decodes and preprocesses a few samples of `request.spec` for `model`'s first input
// (none open: the pipeline's own size). Errors are qs::Error naming the file or field.
DataPreview previewData(const PreviewRequest& request, const Graph* model, const CancelToken& cancel);

} // namespace qs::ui
