// The input shapes a Plan is compiled for, by input name or as one Shape for a
// one-input model: what QuantSession::compile and QdqLowered take.
#pragma once

#include "graph/graph.h"
#include "runtime/plan.h"

#include <map>
#include <string>

namespace qs {

// The input shapes a plan is compiled for: every input by name (Dataset::inputShapes),
// or a bare Shape for the first input of a one-input model. An unnamed entry (a
// dataset built by hand) is the first input's.
struct InputShapes {
    std::map<std::string, Shape> byName;

    InputShapes(Shape s) : byName {{std::string(), std::move(s)}} { }
    InputShapes(std::map<std::string, Shape> m) : byName(std::move(m)) { }
    void into(CompileOptions& co, const Graph& graph) const
    {
        for (const auto& [name, shape] : byName)
            if (!name.empty())
                co.inputShapes[name] = shape;
            else if (!graph.inputs.empty())
                co.inputShapes[graph.inputs.front().name] = shape;
    }
};

} // namespace qs
