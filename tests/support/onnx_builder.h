// Builds small ONNX models in tests with the ONNX protobuf API, so tests never
// depend on downloaded files. Header-only; link onnx_proto and protobuf.
#pragma once

#include <onnx/onnx_pb.h>

#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace qs::test {

// Nodes, inputs and outputs of a subgraph (an If branch, a Loop body) held in a node's
// graph attribute; see OnnxBuilder::graphAttr.
class GraphBuilder {
public:
    explicit GraphBuilder(onnx::GraphProto* g) : g_(g) { }
    onnx::ValueInfoProto* input(
        const std::string& name, std::vector<int64_t> dims, int type = onnx::TensorProto::FLOAT);
    onnx::ValueInfoProto* output(
        const std::string& name, std::vector<int64_t> dims = {}, int type = onnx::TensorProto::FLOAT);
    onnx::NodeProto* node(const std::string& op, std::initializer_list<std::string> inputs,
        std::initializer_list<std::string> outputs, const std::string& name = {})
    {
        auto* n = g_->add_node();
        n->set_op_type(op);
        n->set_name(name);
        for (const auto& i : inputs)
            n->add_input(i);
        for (const auto& o : outputs)
            n->add_output(o);
        return n;
    }
    onnx::GraphProto* graph() { return g_; }

private:
    onnx::GraphProto* g_;
};

class OnnxBuilder {
public:
    explicit OnnxBuilder(int opset = 13)
    {
        model_.set_ir_version(8);
        model_.set_producer_name("quantstudio-tests");
        auto* op = model_.add_opset_import();
        op->set_domain("");
        op->set_version(opset);
        model_.mutable_graph()->set_name("test");
    }

    onnx::ValueInfoProto* input(const std::string& name, std::vector<int64_t> dims, int type = onnx::TensorProto::FLOAT)
    {
        return valueInfo(model_.mutable_graph()->add_input(), name, dims, type);
    }
    onnx::ValueInfoProto* output(
        const std::string& name, std::vector<int64_t> dims = {}, int type = onnx::TensorProto::FLOAT)
    {
        return valueInfo(model_.mutable_graph()->add_output(), name, dims, type);
    }
    onnx::TensorProto* initializer(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& values)
    {
        auto* t = model_.mutable_graph()->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (int64_t d : dims)
            t->add_dims(d);
        for (float v : values)
            t->add_float_data(v);
        return t;
    }
    // Shapes, axes, pads and indices.
    onnx::TensorProto* int64Initializer(
        const std::string& name, std::vector<int64_t> dims, const std::vector<int64_t>& values)
    {
        auto* t = model_.mutable_graph()->add_initializer();
        t->set_name(name);
        t->set_data_type(onnx::TensorProto::INT64);
        for (int64_t d : dims)
            t->add_dims(d);
        for (int64_t v : values)
            t->add_int64_data(v);
        return t;
    }
    onnx::NodeProto* node(const std::string& op, std::initializer_list<std::string> inputs,
        std::initializer_list<std::string> outputs, const std::string& name = {})
    {
        return GraphBuilder(model_.mutable_graph()).node(op, inputs, outputs, name);
    }
    static void intsAttr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> values)
    {
        auto* a = n->add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : values)
            a->add_ints(v);
    }
    static void intAttr(onnx::NodeProto* n, const std::string& name, int64_t value)
    {
        auto* a = n->add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(value);
    }
    static void floatAttr(onnx::NodeProto* n, const std::string& name, float value)
    {
        auto* a = n->add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::FLOAT);
        a->set_f(value);
    }

    static void stringAttr(onnx::NodeProto* n, const std::string& name, const std::string& value)
    {
        auto* a = n->add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::STRING);
        a->set_s(value);
    }
    // A graph attribute (If's then_branch/else_branch, Loop's body) to fill in.
    static GraphBuilder graphAttr(onnx::NodeProto* n, const std::string& name)
    {
        auto* a = n->add_attribute();
        a->set_name(name);
        a->set_type(onnx::AttributeProto::GRAPH);
        a->mutable_g()->set_name(n->name() + "." + name);
        return GraphBuilder(a->mutable_g());
    }

    onnx::ModelProto& model() { return model_; }
    std::string bytes() const { return model_.SerializeAsString(); }
    void save(const std::string& path) const
    {
        std::ofstream out(path, std::ios::binary);
        model_.SerializeToOstream(&out);
    }

    static onnx::ValueInfoProto* valueInfo(
        onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims, int type)
    {
        v->set_name(name);
        auto* tt = v->mutable_type()->mutable_tensor_type();
        tt->set_elem_type(type);
        auto* shape = tt->mutable_shape();
        for (int64_t d : dims) {
            auto* dim = shape->add_dim();
            if (d < 0)
                dim->set_dim_param("N");
            else
                dim->set_dim_value(d);
        }
        return v;
    }

private:
    onnx::ModelProto model_;
};

inline onnx::ValueInfoProto* GraphBuilder::input(const std::string& name, std::vector<int64_t> dims, int type)
{
    return OnnxBuilder::valueInfo(g_->add_input(), name, dims, type);
}
inline onnx::ValueInfoProto* GraphBuilder::output(const std::string& name, std::vector<int64_t> dims, int type)
{
    return OnnxBuilder::valueInfo(g_->add_output(), name, dims, type);
}

// A tiny valid model: y = Relu(Conv(x, w) + b), x [N,2,4,4], w [3,2,3,3].
inline OnnxBuilder tinyConvModel()
{
    OnnxBuilder b;
    b.input("x", {-1, 2, 4, 4});
    std::vector<float> w(3 * 2 * 3 * 3);
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = float(int(i % 7) - 3) * 0.1f;
    b.initializer("w", {3, 2, 3, 3}, w);
    b.initializer("b", {3}, {0.1f, -0.2f, 0.3f});
    auto* conv = b.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
    OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    b.node("Relu", {"c"}, {"y"}, "relu");
    b.output("y", {-1, 3, 4, 4});
    return b;
}

} // namespace qs::test
