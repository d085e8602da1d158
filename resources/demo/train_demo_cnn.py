#!/usr/bin/python3
"""Build the QuantStudio bundled demo: a small Fashion-MNIST CNN and a 1000-image data slice.

Role: this script is the single, reproducible source of everything in resources/demo/
except README.md's prose. It

  * reads Fashion-MNIST from the Debian package (gzipped IDX files),
  * trains a small residual CNN (Conv+BN+ReLU, stride-2 convs, residual Add, GAP, Linear),
  * exports it to ONNX (opset 13) keeping BatchNormalization as separate nodes, so the
    studio's own BN folding / quantization passes have something to work on,
  * stores mean/std, accuracies and class names as ONNX metadata_props,
  * writes the first 1000 test images/labels as gzipped IDX files, and
  * writes the PyTorch logits on that slice (fashion1k-logits.npy) as an independent
    reference for the C++ runtime tests.

Run with Debian's interpreter (python3-torch, python3-onnx, python3-numpy):

    /usr/bin/python3 resources/demo/train_demo_cnn.py

Everything is seeded and single-process; torch uses 2 threads.
"""

import gzip
import os
import struct
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------- config
DATA_DIR = "/usr/share/datasets/fashion-mnist"
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

SEED = 0
EPOCHS = 10
BATCH = 128
MAX_LR = 0.01
WEIGHT_DECAY = 5e-4
SLICE = 1000
OPSET = 13

ONNX_PATH = os.path.join(OUT_DIR, "fashion_cnn.onnx")
SLICE_IMAGES = os.path.join(OUT_DIR, "fashion1k-images-idx3-ubyte.gz")
SLICE_LABELS = os.path.join(OUT_DIR, "fashion1k-labels-idx1-ubyte.gz")
SLICE_LOGITS = os.path.join(OUT_DIR, "fashion1k-logits.npy")
DATASET_NAME = "Fashion-MNIST (Debian dataset-fashion-mnist)"
# Fashion-MNIST's labels 0..9 (Xiao et al. 2017), shown by the studio instead of indices.
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


# --------------------------------------------------------------------------- IDX I/O
def read_idx(path):
    """Read a gzipped IDX file into a uint8 numpy array (big-endian header)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: unsupported IDX header (dtype 0x{dtype_code:02x})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def write_idx(path, arr):
    """Write a uint8 array as a gzipped IDX file; gzip mtime=0 for byte-identical output."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header)
            f.write(arr.tobytes())


# --------------------------------------------------------------------------- model
class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """conv-bn-relu-conv-bn, add the skip connection, then relu."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + x)


class FashionCNN(nn.Module):
    """28x28x1 -> 28x28x16 -> 14x14x32 (+res) -> 7x7x64 (+res) -> GAP -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBNReLU(1, 16)
        self.down1 = ConvBNReLU(16, 32, stride=2)
        self.res1 = ResidualBlock(32)
        self.down2 = ConvBNReLU(32, 64, stride=2)
        self.res2 = ResidualBlock(64)
        self.pool = nn.AdaptiveAvgPool2d(1)  # exported as GlobalAveragePool
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, 10)          # exported as Gemm

    def forward(self, x):
        x = self.stem(x)
        x = self.res1(self.down1(x))
        x = self.res2(self.down2(x))
        return self.fc(self.flatten(self.pool(x)))


# --------------------------------------------------------------------------- helpers
def augment(x, gen):
    """Random horizontal flip and random shift (pad 2 + 28x28 crop), per batch, on tensors."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    x = F.pad(x, (2, 2, 2, 2))
    return x[:, :, dy:dy + 28, dx:dx + 28]


@torch.no_grad()
def predict_logits(model, x, batch=1000):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def top1(logits, labels):
    return (logits.argmax(1) == labels).float().mean().item()


def materialize_identity_initializers(m):
    """Replace `Identity(initializer)` nodes by real initializers.

    torch's exporter deduplicates bit-identical parameters (e.g. untouched BN stats)
    and re-creates the duplicates via Identity nodes; we want every parameter stored
    as its own initializer.
    """
    inits = {t.name: t for t in m.graph.initializer}
    keep = []
    for node in m.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)


def export_onnx(model, path):
    """Export with BatchNormalization kept as separate inference-form nodes.

    In torch's default EVAL export, an ONNX peephole pass folds BN into the preceding
    Conv. TrainingMode.PRESERVE skips that pass; with the model in eval() each BN is
    exported in inference form (single output, running stats as initializers).
    do_constant_folding=False keeps weights as plain initializers.
    """
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
        export_params=True,
        keep_initializers_as_inputs=False,
    )


# --------------------------------------------------------------------------- main
def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(SEED)

    train_x = read_idx(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz"))
    train_y = read_idx(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz"))
    test_x = read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))
    test_y = read_idx(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)

    # Normalisation statistics from the training set, pixels scaled to [0, 1].
    scaled = train_x.astype(np.float64) / 255.0
    mean = round(float(scaled.mean()), 4)
    std = round(float(scaled.std()), 4)
    print(f"mean={mean:.4f} std={std:.4f}")

    def to_tensor(imgs):
        x = torch.from_numpy(imgs.astype(np.float32) / 255.0)
        return ((x - mean) / std).unsqueeze(1)

    xtr, ytr = to_tensor(train_x), torch.from_numpy(train_y.astype(np.int64))
    xte, yte = to_tensor(test_x), torch.from_numpy(test_y.astype(np.int64))

    model = FashionCNN()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}")

    steps_per_epoch = (len(xtr) + BATCH - 1) // BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=MAX_LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=MAX_LR, epochs=EPOCHS, steps_per_epoch=steps_per_epoch)

    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total_loss = 0.0
        for i in range(0, len(xtr), BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = augment(xtr[idx], gen), ytr[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
        acc = top1(predict_logits(model, xte), yte)
        print(f"epoch {epoch + 1}/{EPOCHS}: loss {total_loss / len(xtr):.4f} "
              f"test top1 {acc:.4f} ({time.time() - t0:.0f}s)", flush=True)
    train_seconds = time.time() - t0
    print(f"training wall time: {train_seconds:.1f}s")

    # Final evaluation (eval mode, same normalisation).
    test_logits = predict_logits(model, xte)
    test_top1 = top1(test_logits, yte)
    slice_logits = predict_logits(model, xte[:SLICE])
    slice_top1 = top1(slice_logits, yte[:SLICE])
    print(f"test top1 (10k): {test_top1:.4f}  slice top1 ({SLICE}): {slice_top1:.4f}")

    # ONNX export + metadata.
    export_onnx(model, ONNX_PATH)
    m = onnx.load(ONNX_PATH)
    materialize_identity_initializers(m)
    m.doc_string = ("QuantStudio demo: small residual CNN for Fashion-MNIST 28x28 grayscale. "
                    "Input: (x/255 - mean)/std, NCHW float32. Output: 10 class logits.")
    m.producer_name = "QuantStudio train_demo_cnn.py (pytorch " + torch.__version__ + ")"
    meta = {
        "quantstudio.mean": f"{mean:.4f}",
        "quantstudio.std": f"{std:.4f}",
        "quantstudio.test_top1": f"{test_top1:.4f}",
        "quantstudio.slice_top1": f"{slice_top1:.4f}",
        "quantstudio.dataset": DATASET_NAME,
        "quantstudio.classes": ",".join(CLASS_NAMES),
    }
    del m.metadata_props[:]
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, ONNX_PATH)

    ops = {}
    for node in m.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    print("ONNX ops:", ops)
    bns = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    if not bns or any(len(n.output) != 1 for n in bns):
        sys.exit("export error: BatchNormalization nodes missing or not in inference form")
    if "Constant" in ops:
        print("warning: graph contains Constant nodes")

    # Data slice + reference logits.
    write_idx(SLICE_IMAGES, test_x[:SLICE])
    write_idx(SLICE_LABELS, test_y[:SLICE])
    np.save(SLICE_LOGITS, slice_logits.numpy().astype(np.float32), allow_pickle=False)

    for p in (ONNX_PATH, SLICE_IMAGES, SLICE_LABELS, SLICE_LOGITS):
        print(f"wrote {os.path.relpath(p, OUT_DIR)} ({os.path.getsize(p)} bytes)")


if __name__ == "__main__":
    main()
