// The data options every command that takes --data shares:
// --data DATA --labels PATH --mean a,b,c --std a,b,c --limit N --context N (text:FILE, tokens:FILE)
// --tokenizer spm:FILE|hf:FILE (text:FILE: the ids of a tokenizer instead of bytes)
// --input-value NAME=V[,NAME=V...] (an input filled with V, e.g. a sample rate)
// --input-shape NAME=1x3x48x320 (repeatable: an input's unknown dimensions; the batch is ignored).
// --preprocess SPEC --data-threads N (images:DIR, imagelist:FILE; see data/preprocess.h).
#pragma once

#include "cli/args.h"
#include "data/dataset.h"

#include <map>
#include <set>
#include <string>

namespace qs::cli {

// Option names (valued) that dataOptions() reads.
const std::set<std::string>& dataOptionNames();
// --input-value NAME=V,...: input name -> value.
std::map<std::string, double> inputValues(const Args& args);
// Every --input-shape NAME=DIMS (repeatable, or several separated by commas): input name -> full shape.
std::map<std::string, Shape> inputShapes(const Args& args);
// From the parsed args; `limitOption` names the option that limits the samples;
// `defaultSpec` is the data without --data ("": --data is required).
DataOptions dataOptions(const Args& args, const std::string& limitOption = "limit", const std::string& defaultSpec = "");
// The calibration data: --calib-data DATA (no labels) or else the data of `evalOpts`,
// the first `limit` samples, normalized for `model`.
Dataset calibrationData(const Args& args, const DataOptions& evalOpts, const Graph& model, int64_t limit);

} // namespace qs::cli
