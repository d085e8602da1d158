// ONNX protobuf (Debian's libonnx) -> Graph, with validation, external data kept
// inside the model's folder, and ONNX shape inference.
#include "graph/onnx_import.h"

#include "graph/subgraphs.h"
#include "util/error.h"
#include "util/file.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

namespace fs = std::filesystem;

namespace qs {
namespace {

constexpr int64_t kMaxElements = int64_t(1) << 36; // 64 Gi elements: beyond any model we load

struct Context {
    std::string label;   // file name for messages
    std::string baseDir; // where external data may live
    uint64_t externalBytes = 0;
    std::vector<int> released;          // root initializers whose bytes left the protobuf (releaseWeights)
    std::set<std::string> weightInputs; // the graph inputs they became
};

std::string where(const Context& ctx, const std::string& what)
{
    return ctx.label + ": " + what;
}

Shape readDims(const Context& ctx, const onnx::TensorProto& t)
{
    Shape shape;
    int64_t n = 1;
    for (int64_t d : t.dims()) {
        if (d < 0)
            fail(where(ctx, "tensor " + quoted(t.name())), ": negative dimension ", d);
        shape.push_back(d);
        if (d > 0 && n > kMaxElements / d)
            fail(where(ctx, "tensor " + quoted(t.name())), ": shape ", shapeString(shape), " is too large");
        n *= d;
    }
    return shape;
}

// Where a tensor's external data lies, checked against the file and the tensor's size.
struct ExternalRange {
    fs::path file;
    std::string location, what;
    uint64_t offset = 0, length = 0;
};

ExternalRange checkExternal(const Context& ctx, const onnx::TensorProto& t, std::size_t wantBytes)
{
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : t.external_data()) {
        if (kv.key() == "location")
            location = kv.value();
        else if (kv.key() == "offset" || kv.key() == "length") {
            char* end = nullptr;
            long long v = std::strtoll(kv.value().c_str(), &end, 10);
            if (kv.value().empty() || *end != 0 || v < 0)
                fail(where(ctx, "tensor " + quoted(t.name())), ": external data ", kv.key(), " ",
                     quoted(kv.value()), " is not a non-negative integer");
            (kv.key() == "offset" ? offset : length) = v;
        }
    }
    const std::string what = where(ctx, "tensor " + quoted(t.name()) + ": external data");
    if (ctx.baseDir.empty())
        fail(what, " needs the model to be loaded from a file");
    if (location.empty())
        fail(what, " has no location");
    fs::path rel(location);
    if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory())
        fail(what, " location ", quoted(location), " is an absolute path; it must stay inside the model's folder");
    for (const auto& part : rel)
        if (part == "..")
            fail(what, " location ", quoted(location), " leaves the model's folder");
    std::error_code ec;
    fs::path base = fs::canonical(ctx.baseDir, ec);
    fs::path file = fs::canonical(fs::path(ctx.baseDir) / rel, ec);
    if (ec)
        fail(what, " file ", quoted(location), " not found next to the model");
    auto [b, f] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (b != base.end())
        fail(what, " location ", quoted(location), " resolves to ", file.string(),
             ", outside the model's folder (symbolic link?)");
    if (!fs::is_regular_file(file))
        fail(what, " location ", quoted(location), " is not a regular file");
    uint64_t fileSize = fs::file_size(file);
    if (length < 0)
        length = int64_t(fileSize) - offset;
    if (uint64_t(offset) > fileSize || uint64_t(length) > fileSize - uint64_t(offset))
        fail(what, " range offset ", offset, " length ", length, " exceeds ", quoted(location), " (", fileSize,
             " bytes)");
    if (std::size_t(length) != wantBytes)
        fail(
            what, " in ", quoted(location), " has ", length, " bytes, expected ", wantBytes, " for its shape and type");
    return {file, location, what, uint64_t(offset), uint64_t(length)};
}

// Reads the range once, straight into the tensor's storage.
void readExternal(const ExternalRange& r, std::byte* out)
{
    if (r.length == 0)
        return;
    std::ifstream in(r.file, std::ios::binary);
    in.seekg(std::streamoff(r.offset));
    in.read(reinterpret_cast<char*>(out), std::streamsize(r.length));
    if (!in)
        fail(r.what, ": read error in ", quoted(r.location));
}

const char* typedFieldName(DType t)
{
    switch (t) {
    case DType::Float: return "float_data";
    case DType::Double: return "double_data";
    case DType::Int64: return "int64_data";
    case DType::UInt32:
    case DType::UInt64: return "uint64_data";
    default: return "int32_data";
    }
}

template <typename Src, typename Dst> void copyTyped(const Src& field, Tensor& out)
{
    auto dst = reinterpret_cast<Dst*>(out.bytes.data());
    for (int i = 0; i < field.size(); ++i)
        dst[i] = static_cast<Dst>(field.Get(i));
}

Tensor convertTensor(Context& ctx, const onnx::TensorProto& t, const std::string& role)
{
    const std::string what = where(ctx, role + " " + quoted(t.name()));
    if (!isKnownDType(t.data_type()))
        fail(what, ": unknown data type ", t.data_type());
    if (t.has_segment())
        fail(what, ": segmented tensors are not supported");
    const DType dtype = static_cast<DType>(t.data_type());
    const Shape shape = readDims(ctx, t);
    const int64_t n = numelOf(shape);
    const std::size_t esize = elementSize(dtype);
    // Check what the file holds against the shape before allocating: a corrupt
    // header may claim any size.
    if (dtype == DType::String) {
        if (t.string_data_size() != n)
            fail(what, ": has ", t.string_data_size(), " strings, expected ", n);
    } else if (t.data_location() == onnx::TensorProto::EXTERNAL) {
        // checkExternal checks the file's length against the shape.
    } else if (t.has_raw_data()) {
        if (t.raw_data().size() != std::size_t(n) * esize)
            fail(what, ": raw_data has ", t.raw_data().size(), " bytes, expected ", std::size_t(n) * esize, " for ",
                 dtypeName(dtype), " ", shapeString(shape));
    } else {
        int have = std::max({t.float_data_size(), t.double_data_size(), t.int64_data_size(), t.uint64_data_size(),
                             t.int32_data_size()});
        if (have != n)
            fail(what, ": ", typedFieldName(dtype), " has ", have, " values, expected ", n, " for shape ",
                 shapeString(shape));
    }
    if (dtype == DType::Complex64 || dtype == DType::Complex128)
        fail(what, ": complex tensors are not supported");
    std::optional<ExternalRange> external;
    if (dtype != DType::String && t.data_location() == onnx::TensorProto::EXTERNAL)
        external = checkExternal(ctx, t, std::size_t(n) * esize);

    Tensor out(dtype, shape);
    out.name = t.name();
    if (out.dtype == DType::String) {
        for (int i = 0; i < t.string_data_size(); ++i)
            out.strings[std::size_t(i)] = t.string_data(i);
        return out;
    }
    if (external) {
        readExternal(*external, out.bytes.data());
        ctx.externalBytes += external->length;
        return out;
    }
    if (t.has_raw_data()) {
        if (!t.raw_data().empty())
            std::memcpy(out.bytes.data(), t.raw_data().data(), t.raw_data().size());
        return out;
    }
    auto expectCount = [&](int got, const char* field) {
        if (got != n)
            fail(what, ": ", field, " has ", got, " values, expected ", n, " for shape ", shapeString(out.shape));
    };
    switch (out.dtype) {
    case DType::Float: expectCount(t.float_data_size(), "float_data"); copyTyped<decltype(t.float_data()), float>(t.float_data(), out); break;
    case DType::Double: expectCount(t.double_data_size(), "double_data"); copyTyped<decltype(t.double_data()), double>(t.double_data(), out); break;
    case DType::Int64: expectCount(t.int64_data_size(), "int64_data"); copyTyped<decltype(t.int64_data()), int64_t>(t.int64_data(), out); break;
    case DType::UInt32: expectCount(t.uint64_data_size(), "uint64_data"); copyTyped<decltype(t.uint64_data()), uint32_t>(t.uint64_data(), out); break;
    case DType::UInt64: expectCount(t.uint64_data_size(), "uint64_data"); copyTyped<decltype(t.uint64_data()), uint64_t>(t.uint64_data(), out); break;
    case DType::Int32: expectCount(t.int32_data_size(), "int32_data"); copyTyped<decltype(t.int32_data()), int32_t>(t.int32_data(), out); break;
    case DType::Int16: expectCount(t.int32_data_size(), "int32_data"); copyTyped<decltype(t.int32_data()), int16_t>(t.int32_data(), out); break;
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16: expectCount(t.int32_data_size(), "int32_data"); copyTyped<decltype(t.int32_data()), uint16_t>(t.int32_data(), out); break;
    case DType::Int8: expectCount(t.int32_data_size(), "int32_data"); copyTyped<decltype(t.int32_data()), int8_t>(t.int32_data(), out); break;
    case DType::UInt8:
    case DType::Bool: expectCount(t.int32_data_size(), "int32_data"); copyTyped<decltype(t.int32_data()), uint8_t>(t.int32_data(), out); break;
    default: fail(what, ": unsupported data type ", dtypeName(out.dtype));
    }
    return out;
}

ValueInfo convertValueInfo(const Context& ctx, const onnx::ValueInfoProto& v)
{
    ValueInfo info;
    info.name = v.name();
    if (!v.has_type() || !v.type().has_tensor_type())
        return info; // sequences, maps, optionals: kept untyped
    const auto& tt = v.type().tensor_type();
    if (tt.elem_type() != 0) {
        if (!isKnownDType(tt.elem_type()))
            fail(where(ctx, "value " + quoted(v.name())), ": unknown element type ", tt.elem_type());
        info.dtype = static_cast<DType>(tt.elem_type());
    }
    if (tt.has_shape()) {
        std::vector<Dim> dims;
        for (const auto& d : tt.shape().dim()) {
            Dim dim;
            if (d.has_dim_value())
                dim.value = d.dim_value() >= 0 ? d.dim_value() : -1;
            else if (d.has_dim_param())
                dim.param = d.dim_param();
            dims.push_back(dim);
        }
        info.dims = std::move(dims);
    }
    return info;
}

Graph convertGraph(
    Context& ctx, const onnx::GraphProto& gp, const std::set<std::string>& outer, onnx::GraphProto* release = nullptr);

Attribute convertAttribute(Context& ctx, const onnx::AttributeProto& a, const std::string& nodeWhat,
                           const std::set<std::string>& scope)
{
    Attribute out;
    using A = onnx::AttributeProto;
    switch (a.type()) {
    case A::FLOAT: out.kind = Attribute::Kind::Float; out.f = a.f(); break;
    case A::INT: out.kind = Attribute::Kind::Int; out.i = a.i(); break;
    case A::STRING: out.kind = Attribute::Kind::String; out.s = a.s(); break;
    case A::TENSOR:
        out.kind = Attribute::Kind::Tensor;
        out.tensors.push_back(convertTensor(ctx, a.t(), nodeWhat + " attribute " + quoted(a.name()) + " tensor"));
        break;
    case A::GRAPH:
        out.kind = Attribute::Kind::Graph;
        out.graphs.push_back(std::make_shared<Graph>(convertGraph(ctx, a.g(), scope)));
        break;
    case A::FLOATS: out.kind = Attribute::Kind::Floats; out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case A::INTS: out.kind = Attribute::Kind::Ints; out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case A::STRINGS: out.kind = Attribute::Kind::Strings; out.strings.assign(a.strings().begin(), a.strings().end()); break;
    case A::TENSORS:
        out.kind = Attribute::Kind::Tensors;
        for (const auto& t : a.tensors())
            out.tensors.push_back(convertTensor(ctx, t, nodeWhat + " attribute " + quoted(a.name()) + " tensor"));
        break;
    case A::GRAPHS:
        out.kind = Attribute::Kind::Graphs;
        for (const auto& g : a.graphs())
            out.graphs.push_back(std::make_shared<Graph>(convertGraph(ctx, g, scope)));
        break;
    default: out.kind = Attribute::Kind::Other; break; // sparse tensors, type protos: kept opaque
    }
    return out;
}

// Kahn's algorithm on explicit data edges; what is left over lies on a cycle.
void sortTopologically(Context& ctx, Graph& g)
{
    const int n = int(g.nodes.size());
    std::map<std::string, int> producer;
    for (int i = 0; i < n; ++i)
        for (const auto& o : g.nodes[i].outputs)
            if (!o.empty())
                producer[o] = i;
    std::vector<int> pending(n, 0);
    std::vector<std::vector<int>> users(n);
    for (int i = 0; i < n; ++i) {
        std::set<int> deps;
        for (const auto& in : g.nodes[i].inputs)
            if (auto it = producer.find(in); !in.empty() && it != producer.end())
                deps.insert(it->second);
        pending[i] = int(deps.size());
        for (int d : deps)
            users[d].push_back(i);
    }
    std::vector<int> order, ready;
    for (int i = n - 1; i >= 0; --i)
        if (pending[i] == 0)
            ready.push_back(i);
    while (!ready.empty()) {
        int i = ready.back();
        ready.pop_back();
        order.push_back(i);
        // Keep file order among ready nodes: push users in reverse so the lowest pops first.
        std::vector<int> now;
        for (int u : users[i])
            if (--pending[u] == 0)
                now.push_back(u);
        std::sort(now.rbegin(), now.rend());
        for (int u : now)
            ready.push_back(u);
        std::sort(ready.rbegin(), ready.rend());
    }
    if (int(order.size()) != n) {
        for (int i = 0; i < n; ++i)
            if (pending[i] > 0)
                fail(where(ctx, "node " + quoted(g.nodes[i].name)), " (", g.nodes[i].opType,
                     ") lies on a cycle: the graph is not a DAG");
    }
    std::vector<Node> sorted;
    sorted.reserve(n);
    for (int i : order)
        sorted.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(sorted);
}

// Initializers of at least this many bytes leave the protobuf once converted (see
// releaseWeights); smaller ones, shape and axis tensors among them, stay for ONNX's
// shape inference, which reads their values.
constexpr std::size_t kReleaseBytes = 64 * 1024;

bool releasable(const onnx::TensorProto& t)
{
    return t.data_location() == onnx::TensorProto::EXTERNAL || t.raw_data().size() >= kReleaseBytes;
}

// The weights converted into the Graph leave the ModelProto `release` (the root graph of
// a model imported from a file): their raw bytes are freed one by one as they are
// converted, so the weights are held once, plus the tensor being copied; then each
// becomes a graph input of its type and shape, which is all ONNX's checker and shape
// inference need of it (and external data, which the checker would look for relative
// to the working folder, no longer trips it).
void releaseWeights(Context& ctx, onnx::GraphProto& g)
{
    const std::vector<int>& released = ctx.released;
    if (released.empty())
        return;
    std::set<std::string> inputs;
    for (const auto& v : g.input())
        inputs.insert(v.name());
    auto* inits = g.mutable_initializer();
    std::vector<char> gone(std::size_t(inits->size()), 0);
    for (int i : released)
        gone[std::size_t(i)] = 1;
    int kept = 0;
    for (int i = 0; i < inits->size(); ++i) {
        if (!gone[std::size_t(i)]) {
            inits->SwapElements(i, kept++);
            continue;
        }
        const onnx::TensorProto& t = inits->Get(i);
        if (inputs.count(t.name()))
            continue;
        ctx.weightInputs.insert(t.name());
        auto* v = g.add_input();
        v->set_name(t.name());
        auto* tt = v->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(t.data_type());
        auto* shape = tt->mutable_shape();
        for (int64_t d : t.dims())
            shape->add_dim()->set_dim_value(d);
    }
    inits->DeleteSubrange(kept, inits->size() - kept);
}

Graph convertGraph(
    Context& ctx, const onnx::GraphProto& gp, const std::set<std::string>& outer, onnx::GraphProto* release)
{
    Graph g;
    g.name = gp.name();
    g.docString = gp.doc_string();
    std::set<std::string> defined = outer; // names visible to this graph's nodes

    if (gp.sparse_initializer_size() > 0)
        fail(where(ctx, "sparse initializer " + quoted(gp.sparse_initializer(0).values().name())),
             ": sparse initializers are not supported");
    for (int i = 0; i < gp.initializer_size(); ++i) {
        const onnx::TensorProto& t = gp.initializer(i);
        if (t.name().empty())
            fail(where(ctx, "an initializer has no name"));
        if (g.initializers.count(t.name()))
            fail(where(ctx, "initializer " + quoted(t.name())), " is defined twice");
        g.initializers.emplace(t.name(), convertTensor(ctx, t, "initializer"));
        defined.insert(t.name());
        if (release && releasable(t)) {
            std::string().swap(*release->mutable_initializer(i)->mutable_raw_data());
            ctx.released.push_back(i);
        }
    }
    for (const auto& v : gp.input()) {
        ValueInfo info = convertValueInfo(ctx, v);
        g.valueInfo[info.name] = info;
        if (!g.initializers.count(v.name()))
            g.inputs.push_back(info);
        defined.insert(v.name());
    }
    for (const auto& v : gp.value_info())
        g.valueInfo[v.name()] = convertValueInfo(ctx, v);

    std::set<std::string> nodeNames;
    std::map<std::string, std::string> producedBy;
    for (int i = 0; i < gp.node_size(); ++i) {
        const auto& np = gp.node(i);
        Node node;
        node.opType = np.op_type();
        node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
        node.name = np.name().empty() ? node.opType + "_" + std::to_string(i) : np.name();
        if (node.opType.empty())
            fail(where(ctx, "node " + quoted(node.name)), " has no op_type");
        while (nodeNames.count(node.name)) // names must be unique for the UI and the store
            node.name += "_" + std::to_string(i);
        nodeNames.insert(node.name);
        node.inputs.assign(np.input().begin(), np.input().end());
        node.outputs.assign(np.output().begin(), np.output().end());
        const std::string nodeWhat = "node " + quoted(node.name) + " (" + node.opType + ")";
        for (const auto& out : node.outputs) {
            if (out.empty())
                continue;
            if (auto it = producedBy.find(out); it != producedBy.end())
                fail(where(ctx, nodeWhat), ": output ", quoted(out), " is already produced by node ", quoted(it->second));
            if (g.initializers.count(out) || std::any_of(g.inputs.begin(), g.inputs.end(),
                                                         [&](const ValueInfo& v) { return v.name == out; }))
                fail(where(ctx, nodeWhat), ": output ", quoted(out), " has the name of a graph input or initializer");
            producedBy[out] = node.name;
        }
        g.nodes.push_back(std::move(node));
    }
    for (const auto& [name, by] : producedBy)
        defined.insert(name);
    // Attributes after all names are known, so subgraphs can see every outer value.
    for (int i = 0; i < gp.node_size(); ++i) {
        Node& node = g.nodes[std::size_t(i)];
        const std::string nodeWhat = "node " + quoted(node.name) + " (" + node.opType + ")";
        for (const auto& a : gp.node(i).attribute())
            node.attrs[a.name()] = convertAttribute(ctx, a, nodeWhat, defined);
        for (const auto& in : node.inputs)
            if (!in.empty() && !defined.count(in))
                fail(where(ctx, nodeWhat), ": input ", quoted(in),
                     " is not produced by any node, initializer or graph input (missing initializer?)");
    }
    for (const auto& v : gp.output()) {
        ValueInfo info = convertValueInfo(ctx, v);
        if (!defined.count(v.name()))
            fail(where(ctx, "graph output " + quoted(v.name())), " is not produced by any node");
        g.valueInfo[info.name] = info;
        g.outputs.push_back(info);
    }
    sortTopologically(ctx, g);
    g.index();
    return g;
}

void silenceProtobufLogging()
{
    static bool once = [] {
        google::protobuf::SetLogHandler(nullptr);
        return true;
    }();
    (void)once;
}

void applyInputShapes(const Context& ctx, onnx::ModelProto& model, const std::map<std::string, Shape>& shapes)
{
    for (const auto& [name, shape] : shapes) {
        onnx::ValueInfoProto* target = nullptr;
        for (auto& v : *model.mutable_graph()->mutable_input())
            if (v.name() == name && !ctx.weightInputs.count(name))
                target = &v;
        if (!target)
            fail(where(ctx, "no graph input named " + quoted(name)));
        auto* tshape = target->mutable_type()->mutable_tensor_type()->mutable_shape();
        if (tshape->dim_size() != 0 && tshape->dim_size() != int(shape.size()))
            fail(where(ctx, "input " + quoted(name)), ": given shape ", shapeString(shape), " has rank ", shape.size(),
                 ", the model says rank ", tshape->dim_size());
        tshape->clear_dim();
        for (int64_t d : shape)
            tshape->add_dim()->set_dim_value(d);
    }
}

// paddle2onnx and tf2onnx write weights as Constant nodes. Each numeric Constant of
// the main graph (value, value_float(s), value_int(s)) becomes an initializer of its
// output's name, so inspect, the quantizer, the analyses and the exporters see one
// kind of weight; exporters write them back as initializers. String and sparse
// constants, and those that are graph outputs, stay nodes.
void hoistConstants(const std::string& label, Graph& g)
{
    std::set<std::string> outputs;
    for (const ValueInfo& o : g.outputs)
        outputs.insert(o.name);
    std::vector<Node> kept;
    kept.reserve(g.nodes.size());
    for (Node& n : g.nodes) {
        if (n.opType != "Constant" || !n.domain.empty() || n.outputs.size() != 1 || n.outputs[0].empty() ||
            outputs.count(n.outputs[0]) || n.attrs.size() != 1) {
            kept.push_back(std::move(n));
            continue;
        }
        const auto& [attr, a] = *n.attrs.begin();
        std::optional<Tensor> t;
        if (attr == "value" && a.kind == Attribute::Kind::Tensor && a.tensors.size() == 1 &&
            a.tensors[0].dtype != DType::String)
            t = a.tensors[0];
        else if (attr == "value_float" && a.kind == Attribute::Kind::Float)
            t = Tensor::fromVector<float>({}, {a.f});
        else if (attr == "value_floats" && a.kind == Attribute::Kind::Floats)
            t = Tensor::fromVector<float>({int64_t(a.floats.size())}, a.floats);
        else if (attr == "value_int" && a.kind == Attribute::Kind::Int)
            t = Tensor::fromVector<int64_t>({}, {a.i});
        else if (attr == "value_ints" && a.kind == Attribute::Kind::Ints)
            t = Tensor::fromVector<int64_t>({int64_t(a.ints.size())}, a.ints);
        if (!t) {
            kept.push_back(std::move(n));
            continue;
        }
        if (g.initializers.count(n.outputs[0]))
            fail(label, ": node ", quoted(n.name), " (Constant): output ", quoted(n.outputs[0]),
                " has the name of an initializer");
        t->name = n.outputs[0];
        ValueInfo& info = g.valueInfo[t->name];
        info.name = t->name;
        info.dtype = t->dtype;
        info.dims.emplace();
        for (int64_t d : t->shape)
            info.dims->push_back(Dim {d, {}});
        g.initializers.emplace(t->name, std::move(*t));
    }
    g.nodes = std::move(kept);
    g.index();
}

// Spatial attributes must be positive (ONNX spec); libonnx's shape inference for
// Conv and pooling divides by strides and dilations without checking (a libFuzzer
// find: strides [2, 0] is a SIGFPE inside libonnx). Subgraphs are checked as well.
void checkWindowAttributes(const std::string& label, const Graph& g)
{
    for (const Node& n : g.nodes) {
        for (const char* attr : {"strides", "dilations", "kernel_shape"}) {
            const auto it = n.attrs.find(attr);
            if (it == n.attrs.end())
                continue;
            for (int64_t v : it->second.ints)
                if (v < 1)
                    fail(label, ": node ", quoted(n.name), " (", n.opType, "): attribute ", attr, " has ", v,
                         ", expected values of at least 1");
        }
        if (n.opType == "Conv" || n.opType == "ConvTranspose")
            if (const auto it = n.attrs.find("group"); it != n.attrs.end() && it->second.i < 1)
                fail(label, ": node ", quoted(n.name), " (", n.opType, "): attribute group is ", it->second.i,
                     ", expected at least 1");
        for (const auto& [name, a] : n.attrs)
            for (const auto& sub : a.graphs)
                if (sub)
                    checkWindowAttributes(label, *sub);
    }
}

void parseModel(
    onnx::ModelProto& model, google::protobuf::io::ZeroCopyInputStream& in, uint64_t bytes, const std::string& label)
{
    silenceProtobufLogging();
    if (bytes > uint64_t(INT_MAX))
        fail(label, ": file is larger than 2 GiB; store the weights as external data");
    google::protobuf::io::CodedInputStream coded(&in);
    coded.SetTotalBytesLimit(INT_MAX);
    if (!model.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
        fail(label, ": not a valid ONNX model (protobuf parse failed: the file is truncated or corrupt)");
}

// The parsed model -> Graph, taking the model apart on the way (releaseWeights).
Graph convertModel(onnx::ModelProto& model, uint64_t bytes, const std::string& label, const std::string& baseDir,
    const ImportOptions& options)
{
    Context ctx {label, baseDir, 0, {}, {}};
    if (!model.has_graph())
        fail(label, ": not a valid ONNX model (no graph; truncated or not an ONNX file)");
    if (model.ir_version() <= 0)
        fail(label, ": not a valid ONNX model (ir_version missing)");

    std::map<std::string, int64_t> opsets;
    for (const auto& op : model.opset_import())
        opsets[op.domain() == "ai.onnx" ? "" : op.domain()] = op.version();
    if (opsets.empty())
        opsets[""] = 1; // IR < 3 had no opset_import; ONNX says assume opset 1

    // Validate structure before ONNX's own shape inference runs on it.
    Graph g = convertGraph(ctx, model.graph(), {}, model.mutable_graph());
    releaseWeights(ctx, *model.mutable_graph());
    checkWindowAttributes(label, g);

    if (options.inferShapes || !options.inputShapes.empty()) {
        applyInputShapes(ctx, model, options.inputShapes);
        // ONNX's shape inference trusts its input (it dereferences missing inputs and
        // attributes), so it only runs on models its own checker accepts.
        bool checked = false;
        try {
            onnx::checker::check_model(model);
            checked = true;
        } catch (const std::exception& e) {
            g.warnings.push_back(str("ONNX checker: ", e.what(), " (shapes come from the runtime instead)"));
        }
        if (checked) {
            try {
                onnx::ShapeInferenceOptions opts(false, 0, true);
                onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), opts);
                for (const auto& v : model.graph().value_info())
                    g.valueInfo[v.name()] = convertValueInfo(ctx, v);
                for (const auto& v : model.graph().output())
                    g.valueInfo[v.name()] = convertValueInfo(ctx, v);
                for (const auto& v : model.graph().input())
                    if (!ctx.weightInputs.count(v.name()))
                        g.valueInfo[v.name()] = convertValueInfo(ctx, v);
                for (ValueInfo& in : g.inputs)
                    in = g.valueInfo[in.name];
                for (ValueInfo& out : g.outputs)
                    out = g.valueInfo[out.name];
            } catch (const Error&) {
                throw;
            } catch (const std::exception& e) {
                fail(label, ": shape inference failed: ", e.what());
            }
        }
    }

    hoistConstants(label, g);
    g.opsets = std::move(opsets);
    inlineConstantIfs(g); // layers in a branch chosen by a constant become ordinary layers
    g.irVersion = model.ir_version();
    g.producerName = model.producer_name();
    g.producerVersion = model.producer_version();
    if (!model.doc_string().empty())
        g.docString = model.doc_string();
    for (const auto& kv : model.metadata_props())
        g.metadata[kv.key()] = kv.value();
    g.sourcePath = label;
    g.fileBytes = bytes + ctx.externalBytes;
    sealTensors(g); // copies of the graph (a session's working copy, plans) share the weights
    return g;
}

} // namespace

Graph importOnnxBytes(
    std::string_view bytes, const std::string& label, const std::string& baseDir, const ImportOptions& options)
{
    onnx::ModelProto model;
    google::protobuf::io::ArrayInputStream raw(bytes.data(), int(std::min<std::size_t>(bytes.size(), INT_MAX)));
    parseModel(model, raw, bytes.size(), label);
    return convertModel(model, bytes.size(), label, baseDir, options);
}

Graph importOnnx(const std::string& path, const ImportOptions& options)
{
    std::error_code ec;
    if (fs::is_directory(path, ec))
        fail(path, ": is a folder, not an ONNX file");
    // Streamed from the file, never held whole: the weights are in memory once (in the
    // protobuf, then moved tensor by tensor into the Graph).
    const OpenedFile f = openRegularFile(path, kMaxModelFileBytes);
    google::protobuf::io::FileInputStream in(f.fd, 1 << 20);
    in.SetCloseOnDelete(true);
    onnx::ModelProto model;
    parseModel(model, in, f.bytes, path);
    if (in.GetErrno() != 0)
        fail(path, ": read error (", std::strerror(in.GetErrno()), ")");
    fs::path dir = fs::path(path).parent_path();
    return convertModel(model, f.bytes, path, dir.empty() ? "." : dir.string(), options);
}

} // namespace qs
