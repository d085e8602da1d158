// Shape and bookkeeping operators in plain C++: Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, Dropout, Shape, Size, Constant, ConstantOfShape, Range, Cast, CastLike.
// Their outputs are row-major copies; with constant inputs they fold at compile time.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <algorithm>
#include <cmath>

namespace qs::rt {

namespace {

// Largest tensor an operator may build at compile time from attributes or constants.
constexpr int64_t kMaxConstantElements = int64_t(1) << 31;

void checkConstantShape(const NodeContext& c, const std::vector<int64_t>& dims)
{
    int64_t n = 1;
    for (int64_t d : dims) {
        if (d < 0)
            c.fail("shape ", intList(dims), " has a negative dim");
        if (d > 0 && n > kMaxConstantElements / d)
            c.fail("shape ", shapeString(dims), " has more than ", kMaxConstantElements, " elements");
        n *= d;
    }
}

void addCopy(NodeContext& c, std::size_t input, const Shape& outShape, std::size_t output = 0)
{
    const int src = c.plainInput(input);
    const int dst = c.output(output, c.dtype(input), outShape);
    c.addFn({src}, {dst}, [src, dst](Program& p) {
        std::memcpy(p.slot(dst).data(), p.slot(src).data(), p.slot(dst).buffer.bytes);
    });
}

std::vector<int64_t> intsInputOrAttr(NodeContext& c, std::size_t input, const char* attr, int64_t inputSince)
{
    if (c.opset() >= inputSince) {
        if (!c.has(input))
            return {};
        return c.requireConstant(input, attr).toInt64();
    }
    return c.node.attrInts(attr);
}

bool buildReshape(NodeContext& c)
{
    const Shape& in = c.shape(0);
    std::vector<int64_t> target = c.opset() >= 5 ? c.requireConstant(1, "shape").toInt64() : c.node.attrInts("shape");
    const bool allowZero = c.node.attrInt("allowzero", 0) != 0;
    Shape out(target.size());
    int64_t known = 1, infer = -1;
    for (std::size_t i = 0; i < target.size(); ++i) {
        int64_t d = target[i];
        if (d == 0 && !allowZero) {
            if (i >= in.size())
                c.fail("shape ", shapeString(target), " copies dim ", i, " that ", shapeString(in), " lacks");
            d = in[i];
        }
        if (d == -1) {
            if (infer >= 0)
                c.fail("shape ", shapeString(target), " has more than one -1");
            infer = int64_t(i);
            continue;
        }
        if (d < 0)
            c.fail("shape ", intList(target), " has a negative dim");
        if (d > 0 && known > (int64_t(1) << 40) / d) // the input cannot hold that many
            c.fail("shape ", shapeString(target), " has implausibly many elements");
        out[i] = d;
        known *= d;
    }
    if (infer >= 0)
        out[std::size_t(infer)] = known == 0 ? 0 : numelOf(in) / known;
    if (numelOf(out) != numelOf(in))
        c.fail("cannot reshape ", shapeString(in), " to ", shapeString(target));
    addCopy(c, 0, out);
    return true;
}

bool buildFlatten(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const int64_t r = int64_t(in.size());
    int64_t axis = c.node.attrInt("axis", 1);
    if (axis < 0)
        axis += r;
    if (axis < 0 || axis > r)
        c.fail("axis ", c.node.attrInt("axis", 1), " is out of range for rank ", r);
    int64_t a = 1, b = 1;
    for (int64_t i = 0; i < r; ++i)
        (i < axis ? a : b) *= in[std::size_t(i)];
    addCopy(c, 0, {a, b});
    return true;
}

bool buildSqueeze(NodeContext& c)
{
    const Shape& in = c.shape(0);
    auto axes = normalizeAxes(intsInputOrAttr(c, 1, "axes", 13), int64_t(in.size()), c);
    Shape out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const bool listed = std::find(axes.begin(), axes.end(), int64_t(i)) != axes.end();
        if (listed && in[i] != 1)
            c.fail("cannot squeeze dim ", i, " of ", shapeString(in), ": it is not 1");
        if (!(listed || (axes.empty() && in[i] == 1)))
            out.push_back(in[i]);
    }
    addCopy(c, 0, out);
    return true;
}

bool buildUnsqueeze(NodeContext& c)
{
    const Shape& in = c.shape(0);
    auto raw = intsInputOrAttr(c, 1, "axes", 13);
    const int64_t rank = int64_t(in.size() + raw.size());
    auto axes = normalizeAxes(raw, rank, c);
    std::sort(axes.begin(), axes.end());
    Shape out;
    std::size_t k = 0;
    for (int64_t i = 0; i < rank; ++i) {
        if (std::binary_search(axes.begin(), axes.end(), i))
            out.push_back(1);
        else if (k < in.size())
            out.push_back(in[k++]);
    }
    if (k != in.size() || int64_t(out.size()) != rank)
        c.fail("axes ", shapeString(raw), " do not fit rank ", in.size());
    addCopy(c, 0, out);
    return true;
}

bool buildIdentity(NodeContext& c)
{
    addCopy(c, 0, c.shape(0));
    if (c.node.opType == "Dropout" && c.node.outputs.size() > 1 && !c.node.outputs[1].empty()) {
        Tensor mask(DType::Bool, c.shape(0));
        std::fill(mask.bytes.begin(), mask.bytes.end(), std::byte{1});
        c.constantOutput(1, std::move(mask));
    }
    if (c.node.opType == "Dropout" && c.opset() >= 12 && c.has(2)) {
        const Tensor* training = c.constant(2);
        if (!training || training->numel() != 1 || training->toInt64()[0] != 0)
            c.fail("training_mode must be a constant false (inference only)");
    }
    return true;
}

bool buildShape(NodeContext& c)
{
    const Shape& in = c.shape(0);
    const int64_t r = int64_t(in.size());
    int64_t start = c.node.attrInt("start", 0), end = c.node.attrInt("end", r);
    if (start < 0)
        start += r;
    if (end < 0)
        end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
    std::vector<int64_t> dims;
    for (int64_t i = start; i < end; ++i)
        dims.push_back(in[std::size_t(i)]);
    c.constantOutput(0, Tensor::fromVector<int64_t>({int64_t(dims.size())}, dims));
    return true;
}

bool buildConstant(NodeContext& c)
{
    const Node& n = c.node;
    if (n.has("value")) {
        const Attribute& a = n.attrs.at("value");
        if (a.tensors.empty())
            c.fail("attribute value holds no tensor");
        if (a.tensors[0].dtype == DType::String)
            c.fail("string constants are not supported");
        c.constantOutput(0, a.tensors[0]);
    } else if (n.has("value_float")) {
        c.constantOutput(0, Tensor::fromVector<float>({}, {n.attrFloat("value_float", 0)}));
    } else if (n.has("value_floats")) {
        auto v = n.attrFloats("value_floats");
        c.constantOutput(0, Tensor::fromVector<float>({int64_t(v.size())}, v));
    } else if (n.has("value_int")) {
        c.constantOutput(0, Tensor::fromVector<int64_t>({}, {n.attrInt("value_int", 0)}));
    } else if (n.has("value_ints")) {
        auto v = n.attrInts("value_ints");
        c.constantOutput(0, Tensor::fromVector<int64_t>({int64_t(v.size())}, v));
    } else {
        c.fail("only value, value_float(s) and value_int(s) are supported");
    }
    return true;
}

bool buildConstantOfShape(NodeContext& c)
{
    const std::vector<int64_t> dims = c.requireConstant(0, "shape").toInt64();
    checkConstantShape(c, dims);
    Tensor fill = Tensor::fromVector<float>({1}, {0.f});
    if (c.node.has("value") && !c.node.attrs.at("value").tensors.empty())
        fill = c.node.attrs.at("value").tensors[0];
    const std::size_t es = elementSize(fill.dtype);
    if (es == 0 || fill.numel() != 1 || fill.bytes.size() < es)
        c.fail("value must be a numeric tensor with one element");
    Tensor out(fill.dtype, Shape(dims.begin(), dims.end()));
    for (int64_t i = 0; i < out.numel(); ++i)
        std::memcpy(out.bytes.data() + std::size_t(i) * es, fill.bytes.data(), es);
    c.constantOutput(0, std::move(out));
    return true;
}

bool buildRange(NodeContext& c)
{
    const Tensor& start = c.requireConstant(0, "start");
    const Tensor& limit = c.requireConstant(1, "limit");
    const Tensor& delta = c.requireConstant(2, "delta");
    const DType t = start.dtype;
    if (start.numel() != 1 || limit.numel() != 1 || delta.numel() != 1 || limit.dtype != t || delta.dtype != t)
        c.fail("start, limit and delta must be scalars of one type");
    Tensor out;
    bool ok = dispatchType(t, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (std::is_same_v<T, bool>) {
            c.fail("bool is not a valid type");
        } else {
            const double s = double(start.data<T>()[0]), l = double(limit.data<T>()[0]), d = double(delta.data<T>()[0]);
            if (d == 0)
                c.fail("delta is zero");
            const double count = std::ceil((l - s) / d);
            if (!(count <= double(kMaxConstantElements)))
                c.fail("the range from ", s, " to ", l, " by ", d, " has more than ", kMaxConstantElements, " values");
            const int64_t n = std::max<int64_t>(int64_t(count), 0);
            out = Tensor(t, {n});
            auto v = out.data<T>();
            const T s0 = start.data<T>()[0], d0 = delta.data<T>()[0];
            for (int64_t i = 0; i < n; ++i)
                v[std::size_t(i)] = T(s0 + T(i) * d0);
        }
    });
    if (!ok)
        c.fail("type ", dtypeName(t), " is not supported");
    c.constantOutput(0, std::move(out));
    return true;
}

bool buildSize(NodeContext& c)
{
    c.constantOutput(0, Tensor::fromVector<int64_t>({}, {numelOf(c.shape(0))}));
    return true;
}

// Cast of input 0 to `target` (Cast's `to`, CastLike's second input type).
bool addCast(NodeContext& c, DType target)
{
    const DType from = c.dtype(0);
    auto numeric = [](DType t) {
        return t == DType::Float16 || t == DType::BFloat16 || dispatchType(t, [](auto) {});
    };
    if (!numeric(from) || !numeric(target))
        c.fail("cast from ", dtypeName(from), " to ", dtypeName(target), " is not supported");
    const int src = c.plainInput(0);
    const int dst = c.output(0, target, c.shape(0));
    c.addFn({src}, {dst}, [=](Program& p) {
        const int64_t n = p.slot(src).numel();
        const std::byte* in = static_cast<const std::byte*>(p.slot(src).data());
        std::byte* out = static_cast<std::byte*>(p.slot(dst).data());
        for (int64_t i = 0; i < n; ++i) {
            double v = 0;
            if (from == DType::Float16)
                v = halfToFloat(reinterpret_cast<const uint16_t*>(in)[i]);
            else if (from == DType::BFloat16)
                v = bfloat16ToFloat(reinterpret_cast<const uint16_t*>(in)[i]);
            else
                dispatchType(from, [&](auto tag) {
                    using T = decltype(tag);
                    v = double(reinterpret_cast<const T*>(in)[i]);
                });
            if (target == DType::Float16) {
                reinterpret_cast<uint16_t*>(out)[i] = floatToHalf(float(v));
            } else if (target == DType::BFloat16) {
                const float f = float(v);
                uint32_t bits;
                std::memcpy(&bits, &f, 4);
                bits += 0x7FFF + ((bits >> 16) & 1); // round to nearest even
                reinterpret_cast<uint16_t*>(out)[i] = uint16_t(bits >> 16);
            } else {
                dispatchType(target, [&](auto tag) {
                    using T = decltype(tag);
                    if constexpr (std::is_same_v<T, bool>)
                        reinterpret_cast<T*>(out)[i] = v != 0;
                    else if constexpr (std::is_integral_v<T>)
                        reinterpret_cast<T*>(out)[i] = std::isfinite(v) ? T(int64_t(v)) : T(0);
                    else
                        reinterpret_cast<T*>(out)[i] = T(v);
                });
            }
        }
    });
    return true;
}

bool buildCast(NodeContext& c)
{
    const int to = int(c.node.attrInt("to", 0));
    if (!isKnownDType(to))
        c.fail("unknown target type ", to);
    return addCast(c, DType(to));
}

bool buildCastLike(NodeContext& c) { return addCast(c, c.dtype(1)); }

const bool shapeOpsRegistered = [] {
    registerOp("Reshape", buildReshape);
    registerOp("Flatten", buildFlatten);
    registerOp("Squeeze", buildSqueeze);
    registerOp("Unsqueeze", buildUnsqueeze);
    registerOp("Identity", buildIdentity);
    registerOp("Dropout", buildIdentity);
    registerOp("Shape", buildShape);
    registerOp("Constant", buildConstant);
    registerOp("ConstantOfShape", buildConstantOfShape);
    registerOp("Range", buildRange);
    registerOp("Cast", buildCast);
    registerOp("CastLike", buildCastLike);
    registerOp("Size", buildSize);
    return true;
}();

} // namespace
} // namespace qs::rt
