#!/usr/bin/python3
"""Scale-model generator: a GPT-style decoder of any size with random weights, as ONNX.

    /usr/bin/python3 bench/memory/make_decoder.py OUT.onnx [--width 768] [--layers 12]
        [--heads 12] [--vocab 50257] [--context 128] [--seed 0] [--external | --inline]

Writes a pre-LayerNorm decoder (GPT-2's layout, untied LM head): token embedding
Gather + learned positions, per layer LayerNormalization -> one [d, 3d] QKV MatMul,
Split, 12 heads of causal attention (Reshape/Transpose, MatMul, scale, additive mask,
Softmax), output projection, residual; LayerNormalization -> [d, 4d] MatMul, erf-GELU,
[4d, d] MatMul, residual; final LayerNormalization and a [d, vocab] LM head. Input
`input_ids` int64 [N, context] (batch symbolic, context fixed), output `logits` float
[N, context, vocab]; opset 17. Weights are N(0, 0.02) from numpy's PCG64 with SEED.

The defaults are the issue's 162M model (d 768, 12 layers, vocabulary 50257, context
128: 162.3M parameters, 649 MB). `--width 2048 --layers 20 --vocab 32000 --heads 16` is
the ~1.1B one. Weights go into OUT.onnx.data (external data, offsets aligned to 64 KiB)
with --external, or when they pass 1.9 GB (protobuf's 2 GiB limit); --inline forces
raw_data. The file is streamed, one tensor in memory at a time, so any size can be
written. Never commit the output: generate into the build folder (run_memory_bench.py
does, into BUILD/bench/memory).

No python3-torch or python3-onnx needed (neither is installed by tools/setup.sh): the
protobuf is written directly by onnx_proto.py; only python3-numpy is used.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_proto as pb  # noqa: E402

ALIGN = 65536
INLINE_LIMIT = 1_900_000_000


def parameter_shapes(d, layers, vocab, context):
    """(name, shape, kind) of every weight in file order; kind: 'w' random, 'g' LayerNorm scale."""
    out = [('wte', [vocab, d], 'w'), ('wpe', [context, d], 'w')]
    for i in range(layers):
        p = f'h{i}.'
        out += [(p + 'ln1.g', [d], 'g'), (p + 'ln1.b', [d], 'w'),
                (p + 'attn.qkv.w', [d, 3 * d], 'w'), (p + 'attn.qkv.b', [3 * d], 'w'),
                (p + 'attn.proj.w', [d, d], 'w'), (p + 'attn.proj.b', [d], 'w'),
                (p + 'ln2.g', [d], 'g'), (p + 'ln2.b', [d], 'w'),
                (p + 'mlp.fc.w', [d, 4 * d], 'w'), (p + 'mlp.fc.b', [4 * d], 'w'),
                (p + 'mlp.proj.w', [4 * d, d], 'w'), (p + 'mlp.proj.b', [d], 'w')]
    out += [('lnf.g', [d], 'g'), ('lnf.b', [d], 'w'), ('lm_head.w', [d, vocab], 'w')]
    return out


def constants(d, heads, context):
    """Small initializers (name, data_type, dims, bytes): shapes, the mask, scalars."""
    mask = np.triu(np.full((context, context), -1e4, np.float32), 1)
    f32 = lambda v: np.float32(v).tobytes()  # noqa: E731
    i64 = lambda v: np.asarray(v, np.int64).tobytes()  # noqa: E731
    return [
        ('positions', pb.INT64, [context], i64(np.arange(context))),
        ('causal_mask', pb.FLOAT, [context, context], mask.tobytes()),
        ('heads_shape', pb.INT64, [4], i64([0, 0, heads, d // heads])),
        ('merge_shape', pb.INT64, [3], i64([0, 0, d])),
        ('qkv_split', pb.INT64, [3], i64([d, d, d])),
        ('attn_scale', pb.FLOAT, [], f32(1 / math.sqrt(d // heads))),
        ('sqrt2', pb.FLOAT, [], f32(math.sqrt(2))),
        ('one', pb.FLOAT, [], f32(1)),
        ('half', pb.FLOAT, [], f32(0.5)),
    ]


def nodes(layers):
    out = []

    def n(op, ins, outs, name, **a):
        out.append(pb.node(op, ins, outs, name, **a))

    n('Gather', ['wte', 'input_ids'], ['tok'], 'embed')
    n('Gather', ['wpe', 'positions'], ['pos'], 'embed_pos')
    n('Add', ['tok', 'pos'], ['x0'], 'embed_add')
    for i in range(layers):
        p, x = f'h{i}.', f'x{i}'
        n('LayerNormalization', [x, p + 'ln1.g', p + 'ln1.b'], [p + 'ln1'], p + 'ln1', axis=-1, epsilon=1e-5)
        n('MatMul', [p + 'ln1', p + 'attn.qkv.w'], [p + 'qkv_mm'], p + 'attn.qkv')
        n('Add', [p + 'qkv_mm', p + 'attn.qkv.b'], [p + 'qkv'], p + 'attn.qkv_bias')
        n('Split', [p + 'qkv', 'qkv_split'], [p + 'q', p + 'k', p + 'v'], p + 'attn.split', axis=2)
        for t, perm in (('q', [0, 2, 1, 3]), ('k', [0, 2, 3, 1]), ('v', [0, 2, 1, 3])):
            n('Reshape', [p + t, 'heads_shape'], [p + t + 'r'], p + 'attn.' + t + '_reshape')
            n('Transpose', [p + t + 'r'], [p + t + 'h'], p + 'attn.' + t + '_transpose', perm=perm)
        n('MatMul', [p + 'qh', p + 'kh'], [p + 'scores'], p + 'attn.scores')
        n('Mul', [p + 'scores', 'attn_scale'], [p + 'scaled'], p + 'attn.scale')
        n('Add', [p + 'scaled', 'causal_mask'], [p + 'masked'], p + 'attn.mask')
        n('Softmax', [p + 'masked'], [p + 'probs'], p + 'attn.softmax', axis=-1)
        n('MatMul', [p + 'probs', p + 'vh'], [p + 'ctx'], p + 'attn.context')
        n('Transpose', [p + 'ctx'], [p + 'ctx_t'], p + 'attn.merge_transpose', perm=[0, 2, 1, 3])
        n('Reshape', [p + 'ctx_t', 'merge_shape'], [p + 'merged'], p + 'attn.merge')
        n('MatMul', [p + 'merged', p + 'attn.proj.w'], [p + 'proj_mm'], p + 'attn.proj')
        n('Add', [p + 'proj_mm', p + 'attn.proj.b'], [p + 'attn_out'], p + 'attn.proj_bias')
        n('Add', [x, p + 'attn_out'], [p + 'res1'], p + 'res1')
        n('LayerNormalization', [p + 'res1', p + 'ln2.g', p + 'ln2.b'], [p + 'ln2'], p + 'ln2', axis=-1,
          epsilon=1e-5)
        n('MatMul', [p + 'ln2', p + 'mlp.fc.w'], [p + 'fc_mm'], p + 'mlp.fc')
        n('Add', [p + 'fc_mm', p + 'mlp.fc.b'], [p + 'fc'], p + 'mlp.fc_bias')
        n('Div', [p + 'fc', 'sqrt2'], [p + 'gelu_div'], p + 'mlp.gelu_div')
        n('Erf', [p + 'gelu_div'], [p + 'gelu_erf'], p + 'mlp.gelu_erf')
        n('Add', [p + 'gelu_erf', 'one'], [p + 'gelu_add'], p + 'mlp.gelu_add')
        n('Mul', [p + 'fc', p + 'gelu_add'], [p + 'gelu_mul'], p + 'mlp.gelu_mul')
        n('Mul', [p + 'gelu_mul', 'half'], [p + 'gelu'], p + 'mlp.gelu_half')
        n('MatMul', [p + 'gelu', p + 'mlp.proj.w'], [p + 'mlp_mm'], p + 'mlp.proj')
        n('Add', [p + 'mlp_mm', p + 'mlp.proj.b'], [p + 'mlp_out'], p + 'mlp.proj_bias')
        n('Add', [p + 'res1', p + 'mlp_out'], [f'x{i + 1}'], p + 'res2')
    n('LayerNormalization', [f'x{layers}', 'lnf.g', 'lnf.b'], ['lnf'], 'lnf', axis=-1, epsilon=1e-5)
    n('MatMul', ['lnf', 'lm_head.w'], ['logits'], 'lm_head')
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out')
    ap.add_argument('--width', type=int, default=768)
    ap.add_argument('--layers', type=int, default=12)
    ap.add_argument('--heads', type=int, default=12)
    ap.add_argument('--vocab', type=int, default=50257)
    ap.add_argument('--context', type=int, default=128)
    ap.add_argument('--seed', type=int, default=0)
    where = ap.add_mutually_exclusive_group()
    where.add_argument('--external', action='store_true', help='weights in OUT.data')
    where.add_argument('--inline', action='store_true', help='weights in the .onnx file (below 2 GiB only)')
    args = ap.parse_args()
    d, L, V, T = args.width, args.layers, args.vocab, args.context
    if min(d, L, V, T, args.heads) < 1 or d % args.heads:
        sys.exit(f'--width {d} must be a positive multiple of --heads {args.heads}; all sizes at least 1')

    params = parameter_shapes(d, L, V, T)
    weight_bytes = sum(4 * math.prod(s) for _, s, _ in params)
    external = args.external or (not args.inline and weight_bytes > INLINE_LIMIT)
    if args.inline and weight_bytes > INLINE_LIMIT:
        sys.exit(f'{weight_bytes} bytes of weights do not fit a protobuf; drop --inline')
    data_path = args.out + '.data'
    location = os.path.basename(data_path)

    # Each weight's TensorProto without its data (external: with offset and length).
    heads, offset = [], 0
    for name, shape, _ in params:
        n = 4 * math.prod(shape)
        if external:
            heads.append(pb.external_tensor(name, pb.FLOAT, shape, location, offset, n))
            offset += (n + ALIGN - 1) // ALIGN * ALIGN
        else:
            heads.append(pb.tensor_header(name, pb.FLOAT, shape) + pb.key(9, n))
    small = b''.join(pb.ser([(5, 2, pb.tensor(*c))]) for c in constants(d, args.heads, T))
    rest = b''.join(pb.ser([(1, 2, x)]) for x in nodes(L)) + small + pb.ser([
        (2, 2, b'decoder'),
        (11, 2, pb.value_info('input_ids', pb.INT64, ['N', T])),
        (12, 2, pb.value_info('logits', pb.FLOAT, ['N', T, V]))])
    graph_len = len(rest)
    for (name, shape, _), h in zip(params, heads):
        body = len(h) + (0 if external else 4 * math.prod(shape))
        graph_len += len(pb.key(5, body)) + body

    rng = np.random.default_rng(args.seed)

    def values(shape, kind):
        w = rng.standard_normal(math.prod(shape), dtype=np.float32) * np.float32(0.02)
        return (w + np.float32(1)) if kind == 'g' else w

    model_head = pb.ser([(1, 0, 8), (2, 2, b'quantstudio make_decoder.py'),
                         (8, 2, pb.ser([(1, 2, b''), (2, 0, 17)]))]) + pb.key(7, graph_len)
    data = open(data_path, 'wb') if external else None
    with open(args.out, 'wb') as f:
        f.write(model_head)
        f.write(rest)
        for (name, shape, kind), h in zip(params, heads):
            w = values(shape, kind).tobytes()
            if external:
                f.write(pb.key(5, len(h)) + h)
                data.write(w)
                data.write(b'\0' * ((-len(w)) % ALIGN))
            else:
                f.write(pb.key(5, len(h) + len(w)) + h)
                f.write(w)
    if data:
        data.close()
    count = sum(math.prod(s) for _, s, _ in params)
    size = os.path.getsize(args.out) + (os.path.getsize(data_path) if external else 0)
    print(f'{args.out}: {count / 1e6:.1f}M parameters (d {d}, {L} layers, {args.heads} heads, vocabulary {V}, '
          f'context {T}), {size / 1e6:.0f} MB{" with external data " + data_path if external else ""}')


if __name__ == '__main__':
    main()
