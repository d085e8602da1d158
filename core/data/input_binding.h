// Binds a model's unknown and symbolic input dimensions to concrete ones, from the
// data's sample shape or from full shapes the user gives (--input-shape NAME=1x3x48x320,
// whose batch is ignored), and picks the batch a model with a fixed batch can run.
//
//   std::map<std::string, Shape> given;
//   given.insert(parseInputShape("x=1x3x48x320"));
//   checkInputShapeNames(model, given);
//   Shape sample = bindSampleShape(model, model.inputs[0], 0, given, Shape {3, 48, 320}, "x.npy");
//   int64_t batch = batchFor(model, 32); // 1 when the model fixes its batch to 1
#pragma once

#include "graph/graph.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

namespace qs {

// "NAME=1x3x48x320" -> {"NAME", [1,3,48,320]}; errors quote the text and name --input-shape.
std::pair<std::string, Shape> parseInputShape(const std::string& text);
// "1x3x48x320": the shape part of parseInputShape.
std::string inputShapeText(const Shape& shape);

// Every name of `given` must be an input of the model.
void checkInputShapeNames(const Graph& model, const std::map<std::string, Shape>& given);

// The shape of one sample of `input` (its dimensions without the batch at `batchAxis`,
// -1: none; see batchAxisOf in data/dataset.h): the model's dimensions where known,
// else those of the full shape `given` holds for it (its batch ignored), else the
// data's (`fromData`, one sample's shape, `dataName` for messages) when the rank fits.
// A given shape that contradicts the model, a data shape that contradicts either, or a
// dimension still unknown is an error naming the input and --input-shape.
Shape bindSampleShape(const Graph& model, const ValueInfo& input, int batchAxis,
    const std::map<std::string, Shape>& given, const std::optional<Shape>& fromData = std::nullopt,
    const std::string& dataName = std::string());

// Whether the model leaves a dimension of `input` other than its batch at `batchAxis`
// open (unknown or symbolic), or its rank unknown: what bindSampleShape has to bind.
bool hasOpenDimensions(const ValueInfo& input, int batchAxis);

// The model's fixed batch: dimension 0 of its first input when that is a number, else
// 0 (free or symbolic).
int64_t fixedBatch(const Graph& model);
// The batch to run at: `requested`, or 1 for a model whose batch is fixed to 1
// (tf2onnx exports), which then runs any dataset sample by sample.
int64_t batchFor(const Graph& model, int64_t requested);

} // namespace qs
