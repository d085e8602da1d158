#include "graph/onnx_export.h"

#include "util/error.h"
#include "util/file.h"

#include <onnx/onnx_pb.h>

#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <set>

namespace qs {
namespace {

void writeTensor(const Tensor& t, onnx::TensorProto* out)
{
    out->set_name(t.name);
    out->set_data_type(int(t.dtype));
    for (int64_t d : t.shape)
        out->add_dims(d);
    if (t.dtype == DType::String) {
        for (const auto& s : t.strings)
            out->add_string_data(s);
    } else {
        out->set_raw_data(t.bytes.data(), t.bytes.size());
    }
}

void writeValueInfo(const ValueInfo& v, onnx::ValueInfoProto* out)
{
    out->set_name(v.name);
    if (v.dtype == DType::Undefined && !v.dims)
        return;
    auto* tt = out->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(int(v.dtype));
    if (v.dims) {
        auto* shape = tt->mutable_shape();
        for (const Dim& d : *v.dims) {
            auto* dim = shape->add_dim();
            if (d.value >= 0)
                dim->set_dim_value(d.value);
            else if (!d.param.empty())
                dim->set_dim_param(d.param);
        }
    }
}

void writeGraph(const Graph& g, onnx::GraphProto* out);

void writeAttribute(const std::string& name, const Attribute& a, onnx::AttributeProto* out)
{
    using A = onnx::AttributeProto;
    out->set_name(name);
    switch (a.kind) {
    case Attribute::Kind::Float: out->set_type(A::FLOAT); out->set_f(a.f); break;
    case Attribute::Kind::Int: out->set_type(A::INT); out->set_i(a.i); break;
    case Attribute::Kind::String: out->set_type(A::STRING); out->set_s(a.s); break;
    case Attribute::Kind::Tensor: out->set_type(A::TENSOR); writeTensor(a.tensors.front(), out->mutable_t()); break;
    case Attribute::Kind::Graph: out->set_type(A::GRAPH); writeGraph(*a.graphs.front(), out->mutable_g()); break;
    case Attribute::Kind::Floats: out->set_type(A::FLOATS); for (float f : a.floats) out->add_floats(f); break;
    case Attribute::Kind::Ints: out->set_type(A::INTS); for (int64_t i : a.ints) out->add_ints(i); break;
    case Attribute::Kind::Strings: out->set_type(A::STRINGS); for (const auto& s : a.strings) out->add_strings(s); break;
    case Attribute::Kind::Tensors:
        out->set_type(A::TENSORS);
        for (const auto& t : a.tensors)
            writeTensor(t, out->add_tensors());
        break;
    case Attribute::Kind::Graphs:
        out->set_type(A::GRAPHS);
        for (const auto& sub : a.graphs)
            writeGraph(*sub, out->add_graphs());
        break;
    case Attribute::Kind::Other:
        fail("attribute ", quoted(name), ": this attribute kind cannot be written back");
    }
}

void writeGraph(const Graph& g, onnx::GraphProto* out)
{
    out->set_name(g.name.empty() ? "graph" : g.name);
    if (!g.docString.empty())
        out->set_doc_string(g.docString);
    for (const auto& [name, t] : g.initializers)
        writeTensor(t, out->add_initializer());
    for (const auto& v : g.inputs)
        writeValueInfo(v, out->add_input());
    for (const auto& v : g.outputs)
        writeValueInfo(v, out->add_output());
    std::set<std::string> io;
    for (const auto& v : g.inputs)
        io.insert(v.name);
    for (const auto& v : g.outputs)
        io.insert(v.name);
    for (const auto& [name, v] : g.valueInfo)
        if (!io.count(name) && !g.initializers.count(name) && (v.dtype != DType::Undefined || v.dims))
            writeValueInfo(v, out->add_value_info());
    for (const Node& n : g.nodes) {
        auto* np = out->add_node();
        np->set_name(n.name);
        np->set_op_type(n.opType);
        if (!n.domain.empty())
            np->set_domain(n.domain);
        for (const auto& in : n.inputs)
            np->add_input(in);
        for (const auto& o : n.outputs)
            np->add_output(o);
        for (const auto& [name, a] : n.attrs)
            writeAttribute(name, a, np->add_attribute());
    }
}

} // namespace

std::string exportOnnxBytes(const Graph& g)
{
    onnx::ModelProto model;
    model.set_ir_version(g.irVersion > 0 ? g.irVersion : 8);
    model.set_producer_name(g.producerName.empty() ? "QuantStudio" : g.producerName);
    if (!g.producerVersion.empty())
        model.set_producer_version(g.producerVersion);
    if (!g.docString.empty())
        model.set_doc_string(g.docString);
    for (const auto& [domain, version] : g.opsets) {
        auto* op = model.add_opset_import();
        op->set_domain(domain);
        op->set_version(version);
    }
    for (const auto& [k, v] : g.metadata) {
        auto* kv = model.add_metadata_props();
        kv->set_key(k);
        kv->set_value(v);
    }
    writeGraph(g, model.mutable_graph());
    std::string bytes;
    if (!model.SerializeToString(&bytes))
        fail("graph ", quoted(g.name), ": cannot serialize (larger than 2 GiB?)");
    return bytes;
}

void saveOnnx(const Graph& g, const std::string& path) { writeFileAtomic(path, exportOnnxBytes(g)); }

} // namespace qs
