#!/usr/bin/env python3
"""Writes the seed models of fuzz_runtime (tests/fuzz/corpus/fuzz_runtime/seed-*.onnx):
small multi-operator models, one per family of kernels, as ONNX text protos encoded
with protoc. Usage: tests/fuzz/make_runtime_seeds.py (needs protoc and onnx.proto)."""
import math
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(here, "corpus", "fuzz_runtime")
proto_dir = "/usr/include"
FLOAT, UINT8, INT8, INT64, BOOL = 1, 2, 3, 7, 9


def values(n, seed):
    return [round(math.sin(seed * 1.7 + i * 0.9) * 0.8, 4) for i in range(n)]


def tensor(name, dims, data, dtype=FLOAT):
    field = {FLOAT: "float_data", INT64: "int64_data"}.get(dtype, "int32_data")
    body = " ".join(f"dims: {d}" for d in dims)
    body += f" data_type: {dtype} " + " ".join(f"{field}: {v}" for v in data)
    return f'initializer {{ name: "{name}" {body} }}'


def value_info(kind, name, dtype, dims):
    shape = "" if dims is None else "shape { " + " ".join(
        f'dim {{ dim_param: "{d}" }}' if isinstance(d, str) else f"dim {{ dim_value: {d} }}" for d in dims) + " }"
    return f'{kind} {{ name: "{name}" type {{ tensor_type {{ elem_type: {dtype} {shape} }} }} }}'


def attr(name, v):
    if isinstance(v, str):
        return f'attribute {{ name: "{name}" s: "{v}" type: STRING }}'
    if isinstance(v, float):
        return f'attribute {{ name: "{name}" f: {v} type: FLOAT }}'
    if isinstance(v, list):
        return f'attribute {{ name: "{name}" ' + " ".join(f"ints: {i}" for i in v) + " type: INTS }"
    return f'attribute {{ name: "{name}" i: {v} type: INT }}'


def node(op, ins, outs, **attrs):
    s = f'node {{ op_type: "{op}" name: "{outs[0]}" '
    s += " ".join(f'input: "{i}"' for i in ins) + " " + " ".join(f'output: "{o}"' for o in outs)
    return s + " " + " ".join(attr(k, v) for k, v in attrs.items()) + " }"


def model(name, opset, parts):
    return f'ir_version: 8 opset_import {{ domain: "" version: {opset} }} graph {{ name: "{name}" ' + " ".join(parts) + " }"


seeds = {
    "conv_bn_relu_pool_gemm": model("cnn", 13, [
        value_info("input", "x", FLOAT, ["N", 2, 6, 6]),
        tensor("w", [3, 2, 3, 3], values(54, 1)), tensor("b", [3], values(3, 2)),
        tensor("s", [3], [1.0, 0.5, 2.0]), tensor("bb", [3], values(3, 3)), tensor("m", [3], values(3, 4)),
        tensor("v", [3], [1.0, 0.25, 4.0]),
        tensor("fw", [4, 27], values(108, 5)), tensor("fb", [4], values(4, 6)),
        node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
        node("Relu", ["n"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p"], ["f"]),
        node("Gemm", ["f", "fw", "fb"], ["g"], transB=1),
        node("Softmax", ["g"], ["y"], axis=1),
        value_info("output", "y", FLOAT, None)]),
    "convtranspose_dilated_clip": model("deconv", 13, [
        value_info("input", "x", FLOAT, [1, 2, 3, 3]),
        tensor("w", [2, 3, 2, 2], values(24, 7)), tensor("lo", [], [-0.5]), tensor("hi", [], [0.5]),
        node("ConvTranspose", ["x", "w"], ["t"], strides=[2, 2], dilations=[2, 2], pads=[0, 1, 0, 1]),
        node("Clip", ["t", "lo", "hi"], ["y"]),
        value_info("output", "y", FLOAT, None)]),
    "resize_cubic_avgpool": model("resize", 13, [
        value_info("input", "x", FLOAT, [1, 1, 3, 4]),
        tensor("roi", [0], []), tensor("scales", [4], [1.0, 1.0, 2.0, 1.5]),
        node("Resize", ["x", "roi", "scales"], ["r"], mode="cubic", exclude_outside=1),
        node("AveragePool", ["r"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        value_info("output", "y", FLOAT, None)]),
    "embedding_matmul_layernorm": model("lm", 17, [
        value_info("input", "ids", INT64, ["N", 3]),
        tensor("emb", [5, 4], values(20, 8)), tensor("w", [4, 4], values(16, 9)),
        tensor("g", [4], [1.0, 2.0, 0.5, 1.0]), tensor("be", [4], values(4, 10)),
        node("Gather", ["emb", "ids"], ["e"]),
        node("MatMul", ["e", "w"], ["m"]),
        node("LayerNormalization", ["m", "g", "be"], ["l"], axis=-1),
        node("ReduceMean", ["l"], ["y"], axes=[1], keepdims=0),
        value_info("output", "y", FLOAT, None)]),
    "clip_int8_add": model("ints", 13, [
        value_info("input", "x", INT8, [2, 4]),
        tensor("lo", [], [-2], INT8), tensor("hi", [], [3], INT8),
        node("Clip", ["x", "lo", "hi"], ["c"]),
        node("Cast", ["c"], ["f"], to=FLOAT),
        node("Add", ["f", "f"], ["y"]),
        value_info("output", "y", FLOAT, None)]),
    "slice_concat_transpose": model("move", 13, [
        value_info("input", "x", FLOAT, [2, 3, 4]),
        tensor("st", [1], [1], INT64), tensor("en", [1], [3], INT64), tensor("ax", [1], [2], INT64),
        tensor("shape", [2], [2, -1], INT64),
        node("Slice", ["x", "st", "en", "ax"], ["s"]),
        node("Concat", ["s", "x"], ["c"], axis=2),
        node("Transpose", ["c"], ["t"], perm=[2, 0, 1]),
        node("Reshape", ["t", "shape"], ["y"]),
        value_info("output", "y", FLOAT, None)]),
    "pad_sigmoid_mul": model("pad", 13, [
        value_info("input", "x", FLOAT, [2, 3]),
        tensor("pads", [4], [0, 1, 1, 2], INT64),
        node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        node("Sigmoid", ["p"], ["s"]),
        node("Mul", ["s", "p"], ["y"]),
        value_info("output", "y", FLOAT, None)]),
    "where_expand_reduce": model("logic", 13, [
        value_info("input", "x", FLOAT, [3, 1]),
        tensor("shape", [2], [3, 4], INT64), tensor("zero", [], [0.0]),
        node("Expand", ["x", "shape"], ["e"]),
        node("Greater", ["e", "zero"], ["g"]),
        node("Neg", ["e"], ["n"]),
        node("Where", ["g", "e", "n"], ["w"]),
        node("ReduceSum", ["w"], ["y"], keepdims=1),
        value_info("output", "y", FLOAT, None)]),
}

for name, text in seeds.items():
    path = os.path.join(out_dir, f"seed-{name}.onnx")
    with open(path, "wb") as f:
        subprocess.run(["protoc", f"--proto_path={proto_dir}", "--encode=onnx.ModelProto", "onnx/onnx.proto"],
                       input=text.encode(), stdout=f, check=True)
    print(path, os.path.getsize(path), "bytes", file=sys.stderr)
