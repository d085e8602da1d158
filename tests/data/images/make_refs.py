#!/usr/bin/python3
# Regenerates the test images of tests/data/images and their references with Pillow and
# NumPy (Debian's python3-pil, python3-numpy; not a CI dependency): an implementation
# of decoding and of each --preprocess preset independent of core/data.
#   /usr/bin/python3 tests/data/images/make_refs.py
# Presets are computed at the sizes test_image_data.cpp's models fix (fit=model):
#   torchvision 3x16x16  -> Resize(18) (16 * 256 / 224), CenterCrop(16), ToTensor, Normalize
#   paddleocr-rec 3x8x32 -> PaddleOCR's resize_norm_img: height 8, width ceil(8 * w / h)
#                           up to 32, (x/255 - 0.5) / 0.5, zero padding on the right, BGR
#   yolo 3x24x24         -> Ultralytics' LetterBox(24x24): pad 114, /255, RGB
# Resizing is Pillow's Image.resize(BILINEAR), as torchvision's PIL path does.
import math
import os
import struct

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(21)


def picture(w, h):
    """Smooth gradients with some texture, so that resampling has something to average."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * y / max(h - 1, 1)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_bmp32_topdown(path, rgb):
    """32-bit BI_RGB, negative height (top-down): Pillow cannot write this layout."""
    h, w, _ = rgb.shape
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((h, w, 1), 255, np.uint8)], axis=2)
    pixels = bgra.tobytes()
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + len(pixels), 0, 0, 14 + 40)
    dib = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 32, 0, len(pixels), 2835, 2835, 0, 0)
    with open(path, "wb") as f:
        f.write(header + dib + pixels)


def make_images():
    files = {}
    os.makedirs(os.path.join(here, "classes", "ant"), exist_ok=True)
    os.makedirs(os.path.join(here, "classes", "bee"), exist_ok=True)
    os.makedirs(os.path.join(here, "flat"), exist_ok=True)
    p = "classes/ant/photo.jpg"
    Image.fromarray(picture(48, 36)).save(os.path.join(here, p), quality=90)
    files[p] = "jpeg"
    p = "classes/ant/wide.png"
    Image.fromarray(picture(40, 20)).save(os.path.join(here, p))
    files[p] = "png"
    p = "classes/bee/gray.png"
    Image.fromarray(picture(20, 30)[:, :, 1]).save(os.path.join(here, p))
    files[p] = "png"
    p = "classes/bee/palette.bmp"
    Image.fromarray(picture(22, 17)).quantize(colors=32, dither=Image.Dither.NONE).save(os.path.join(here, p))
    files[p] = "bmp"
    p = "flat/rgb24.bmp"
    Image.fromarray(picture(25, 19)).save(os.path.join(here, p))
    files[p] = "bmp"
    p = "flat/topdown32.bmp"
    write_bmp32_topdown(os.path.join(here, p), picture(17, 13))
    files[p] = "bmp"
    with open(os.path.join(here, "list.csv"), "w") as f:
        f.write("path,label\nclasses/bee/gray.png,7\nflat/rgb24.bmp,3\nclasses/ant/photo.jpg,0\n")
    return files


def decoded(path):
    with Image.open(path) as im:
        if path.endswith("topdown32.bmp"):
            assert im.size == (17, 13)
        return im.convert("RGB")


def torchvision(im, size=16, resize=16 * 256 // 224):
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = resize, int(resize * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    im = im.crop((left, top, left + size, top + size))
    x = np.asarray(im, dtype=np.float32) / np.float32(255)
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return x.transpose(2, 0, 1)


def paddleocr_rec(im, img_h=8, img_w=32):
    w, h = im.size
    ratio = w / float(h)
    resized_w = img_w if math.ceil(img_h * ratio) > img_w else int(math.ceil(img_h * ratio))
    x = np.asarray(im.resize((resized_w, img_h), Image.BILINEAR), dtype=np.float32)[:, :, ::-1]  # BGR
    x = x.transpose(2, 0, 1) / 255
    x -= 0.5
    x /= 0.5
    out = np.zeros((3, img_h, img_w), dtype=np.float32)
    out[:, :, :resized_w] = x
    return out


def yolo(im, size=24):
    w, h = im.size
    r = min(size / h, size / w)
    new_unpad = int(round(w * r)), int(round(h * r))
    dw, dh = (size - new_unpad[0]) / 2, (size - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        im = im.resize(new_unpad, Image.BILINEAR)
    top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[top : top + new_unpad[1], left : left + new_unpad[0]] = np.asarray(im)
    return (canvas.astype(np.float32) / 255).transpose(2, 0, 1)


def main():
    files = make_images()
    refs = os.path.join(here, "refs")
    os.makedirs(refs, exist_ok=True)
    for rel in files:
        im = decoded(os.path.join(here, rel))
        stem = rel.replace("/", "_").rsplit(".", 1)[0]
        np.save(os.path.join(refs, stem + ".rgb.npy"), np.asarray(im, dtype=np.uint8))
        for name, fn in (("torchvision", torchvision), ("paddleocr-rec", paddleocr_rec), ("yolo", yolo)):
            np.save(os.path.join(refs, stem + "." + name + ".npy"), np.ascontiguousarray(fn(im), dtype=np.float32))
    # The CLI test's expected input: torchvision over images:classes in dataset order.
    order = sorted(r for r in files if r.startswith("classes/"))
    batch = np.stack([torchvision(decoded(os.path.join(here, r))) for r in order])
    np.save(os.path.join(refs, "classes.torchvision.npy"), batch.astype(np.float32))


if __name__ == "__main__":
    main()
