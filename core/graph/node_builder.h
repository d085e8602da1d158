// Building nodes and attributes in code, for the passes and writers that rewrite a Graph
// (the QDQ writer, the opset upgrade, the runtime's graph passes).
#pragma once

#include "graph/graph.h"

#include <string>
#include <utility>
#include <vector>

namespace qs {

inline Attribute intAttr(int64_t v)
{
    Attribute a;
    a.kind = Attribute::Kind::Int;
    a.i = v;
    return a;
}

inline Attribute floatAttr(float v)
{
    Attribute a;
    a.kind = Attribute::Kind::Float;
    a.f = v;
    return a;
}

inline Attribute intsAttr(std::vector<int64_t> v)
{
    Attribute a;
    a.kind = Attribute::Kind::Ints;
    a.ints = std::move(v);
    return a;
}

inline Node makeNode(const std::string& op, const std::string& name, std::vector<std::string> in,
    std::vector<std::string> out)
{
    Node n;
    n.opType = op;
    n.name = name;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
}

} // namespace qs
