"""Minimal ONNX protobuf reading and writing for the memory bench (no python3-onnx needed).

Wire format only: varints, length-delimited fields and the few ONNX messages the
scale-model generator (make_decoder.py) and run_memory_bench.py write or edit.
Field numbers are those of onnx.proto (ModelProto, GraphProto, NodeProto, ...).
"""
import struct

# TensorProto.DataType
FLOAT, INT64 = 1, 7


def varint_at(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7f) << s
        s += 7
        if c < 0x80:
            return r, i


def enc(v):
    """Varint of v; negative int64 values as their 10-byte two's complement."""
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        c, v = v & 0x7f, v >> 7
        out.append(c | 0x80 if v else c)
        if not v:
            return bytes(out)


def fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = varint_at(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint_at(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = varint_at(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise SystemExit(f'unexpected protobuf wire type {w}')
        out.append((f, w, v))
    return out


def ser(fs):
    out = bytearray()
    for f, w, v in fs:
        out += enc(f << 3 | w)
        out += enc(v) if w == 0 else (enc(len(v)) + v if w == 2 else v)
    return bytes(out)


def edit(b, field, fn):
    return ser([(f, w, fn(v) if f == field and w == 2 else v) for f, w, v in fields(b)])


# ---- writing: each function returns the serialized message

def _s(x):
    return x.encode() if isinstance(x, str) else x


def attr(name, value):
    """AttributeProto: int, float, string or list of ints."""
    fs = [(1, 2, _s(name))]
    if isinstance(value, bool) or isinstance(value, int):
        fs += [(3, 0, value), (20, 0, 2)]
    elif isinstance(value, float):
        fs += [(2, 5, struct.pack('<f', value)), (20, 0, 1)]
    elif isinstance(value, str):
        fs += [(4, 2, _s(value)), (20, 0, 3)]
    else:
        fs += [(8, 0, v) for v in value] + [(20, 0, 7)]
    return ser(fs)


def node(op, inputs, outputs, name, **attrs):
    fs = [(1, 2, _s(x)) for x in inputs] + [(2, 2, _s(x)) for x in outputs]
    fs += [(3, 2, _s(name)), (4, 2, _s(op))]
    fs += [(5, 2, attr(k, v)) for k, v in attrs.items()]
    return ser(fs)


def value_info(name, elem_type, dims):
    """ValueInfoProto of a tensor; a str in dims is a symbolic dimension."""
    ds = [ser([(2, 2, _s(d))] if isinstance(d, str) else [(1, 0, d)]) for d in dims]
    shape = ser([(1, 2, d) for d in ds])
    tensor_type = ser([(1, 0, elem_type), (2, 2, shape)])
    return ser([(1, 2, _s(name)), (2, 2, ser([(1, 2, tensor_type)]))])


def tensor_header(name, data_type, dims):
    """TensorProto fields before the data: dims, data_type, name."""
    return ser([(1, 0, d) for d in dims] + [(2, 0, data_type), (8, 2, _s(name))])


def tensor(name, data_type, dims, raw):
    """TensorProto with raw_data."""
    return tensor_header(name, data_type, dims) + ser([(9, 2, raw)])


def external_tensor(name, data_type, dims, location, offset, length):
    """TensorProto whose data lies in `location` (data_location EXTERNAL)."""
    kv = [ser([(1, 2, _s(k)), (2, 2, _s(str(v)))]) for k, v in
          (('location', location), ('offset', offset), ('length', length))]
    return tensor_header(name, data_type, dims) + ser([(13, 2, x) for x in kv] + [(14, 0, 1)])


def key(field, length):
    """The key and length of a length-delimited field whose body is written separately."""
    return enc(field << 3 | 2) + enc(length)
