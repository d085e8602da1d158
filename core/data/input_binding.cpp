// Input shapes from the data or the user: see input_binding.h.
#include "data/input_binding.h"

#include "util/error.h"

#include <algorithm>
#include <cstdlib>

namespace qs {

std::pair<std::string, Shape> parseInputShape(const std::string& text)
{
    const auto eq = text.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
        fail("--input-shape ", quoted(text), ": expected NAME=DIMS such as x=1x3x48x320");
    const std::string name = text.substr(0, eq);
    Shape shape;
    std::size_t pos = eq + 1;
    while (pos <= text.size()) {
        const std::size_t x = std::min(text.find('x', pos), text.size());
        const std::string part = text.substr(pos, x - pos);
        char* end = nullptr;
        const long long v = std::strtoll(part.c_str(), &end, 10);
        if (part.empty() || *end != 0 || part.front() == '+' || part.front() == ' ' || v < 1 || v > (int64_t(1) << 32))
            fail("--input-shape ", quoted(text), ": dimension ", quoted(part), " is not a positive integer");
        shape.push_back(v);
        pos = x + 1;
    }
    return {name, shape};
}

std::string inputShapeText(const Shape& shape)
{
    std::string out;
    for (std::size_t i = 0; i < shape.size(); ++i)
        out += (i ? "x" : "") + std::to_string(shape[i]);
    return out;
}

void checkInputShapeNames(const Graph& model, const std::map<std::string, Shape>& given)
{
    for (const auto& entry : given) {
        const std::string& name = entry.first;
        if (std::any_of(model.inputs.begin(), model.inputs.end(), [&](const ValueInfo& in) { return in.name == name; }))
            continue;
        std::string names;
        for (const ValueInfo& v : model.inputs)
            names += (names.empty() ? "" : ", ") + quoted(v.name);
        fail("--input-shape ", quoted(name), ": the model has no input of that name (inputs: ", names, ")");
    }
}

namespace {

bool anyUnknown(const Shape& s)
{
    return std::any_of(s.begin(), s.end(), [](int64_t d) { return d < 0; });
}

} // namespace

Shape bindSampleShape(const Graph& model, const ValueInfo& input, int batchAxis,
    const std::map<std::string, Shape>& given, const std::optional<Shape>& fromData, const std::string& dataName)
{
    const std::string where =
        str(model.sourcePath.empty() ? "model" : model.sourcePath, ": input ", quoted(input.name), " ", input.text());
    auto hasBatch = [&](std::size_t rank) { return batchAxis >= 0 && std::size_t(batchAxis) < rank; };
    auto withoutBatch = [&](Shape s) {
        if (hasBatch(s.size()))
            s.erase(s.begin() + batchAxis);
        return s;
    };
    // Index d of a sample shape in the full shape (the dimension a user counts).
    auto fullIndex = [&](std::size_t d, std::size_t rank) {
        return hasBatch(rank) && d >= std::size_t(batchAxis) ? d + 1 : d;
    };

    std::optional<Shape> sample;
    if (input.dims)
        sample = withoutBatch(input.shape());
    // The data binds (and must agree with) a sample shape the model leaves open; one the
    // model fixes keeps the loaders' reshaping (IDX [N,28,28] for [N,1,28,28]).
    const bool open = !sample || anyUnknown(*sample);
    const auto it = given.find(input.name);
    std::string option; // "--input-shape x=1x3x48x320" when one is given
    if (it != given.end()) {
        const Shape& full = it->second;
        option = str("--input-shape ", input.name, "=", inputShapeText(full));
        if (input.dims && full.size() != input.dims->size())
            fail(option, ": rank ", full.size(), ", ", where, " has rank ", input.dims->size());
        const Shape g = withoutBatch(full);
        if (!sample)
            sample = Shape(g.size(), -1);
        for (std::size_t d = 0; d < g.size(); ++d) {
            if ((*sample)[d] >= 0 && (*sample)[d] != g[d])
                fail(option, ": dimension ", fullIndex(d, full.size()), " is ", g[d], ", ", where, " fixes it to ",
                    (*sample)[d]);
            (*sample)[d] = g[d];
        }
    }
    if (!sample) {
        if (!fromData)
            fail(where, " has an unknown rank; give its shape with --input-shape ", input.name, "=1x...");
        sample = Shape(fromData->size(), -1);
    }
    if (open && fromData && fromData->size() == sample->size()) {
        for (std::size_t d = 0; d < sample->size(); ++d) {
            if ((*sample)[d] >= 0 && (*sample)[d] != (*fromData)[d])
                fail(dataName.empty() ? std::string("the data") : dataName, ": samples of shape ",
                    shapeString(*fromData), " do not fit ", where, option.empty() ? "" : " as " + option + " binds it");
            (*sample)[d] = (*fromData)[d];
        }
    }
    if (anyUnknown(*sample)) {
        Shape full = *sample;
        if (batchAxis >= 0 && std::size_t(batchAxis) <= full.size() &&
            (!input.dims || input.dims->size() > full.size()))
            full.insert(full.begin() + batchAxis, 1);
        std::string example;
        for (std::size_t d = 0; d < full.size(); ++d)
            example += (d ? "x" : "") + (full[d] >= 0 ? std::to_string(full[d]) : std::string("N"));
        fail(where, " has unknown dimensions",
            fromData ? str(" that ", dataName.empty() ? std::string("the data") : dataName, " (samples of shape ",
                           shapeString(*fromData), ") does not fix")
                     : std::string(),
            "; give them with --input-shape ", input.name, "=", example);
    }
    return *sample;
}

bool hasOpenDimensions(const ValueInfo& input, int batchAxis)
{
    if (!input.dims)
        return true;
    for (std::size_t d = 0; d < input.dims->size(); ++d)
        if (int(d) != batchAxis && (*input.dims)[d].value < 0)
            return true;
    return false;
}

int64_t fixedBatch(const Graph& model)
{
    if (model.inputs.empty())
        return 0;
    const ValueInfo& in = model.inputs.front();
    if (!in.dims || in.dims->empty() || in.dims->front().value < 1)
        return 0;
    return in.dims->front().value;
}

int64_t batchFor(const Graph& model, int64_t requested)
{
    return fixedBatch(model) == 1 ? 1 : requested;
}

} // namespace qs
