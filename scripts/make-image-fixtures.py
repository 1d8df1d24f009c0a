#!/usr/bin/env python3
"""Regenerates the test fixtures of the Imaging target (Tests/ImagingTests/Fixtures).

Run from the repository root with a venv that has Pillow:

    python3 -m venv .venv-images && .venv-images/bin/pip install pillow
    .venv-images/bin/python scripts/make-image-fixtures.py

Writes Tests/ImagingTests/Fixtures/: image files, a `.rgba` reference for each
(raw 8-bit RGBA rows, as Pillow decodes the file), and manifest.json describing
them. PNG and GIF files that Pillow cannot write (every bit depth, Adam7, partial
GIF frames) come from the small writers below; Pillow still decodes every one of
them for the reference. Two cases use libjpeg-turbo's cjpeg when it is installed
(4:4:0 sampling and an Adobe RGB JPEG); without it they are left as they are.

Also writes .bench/photo-3000x2000-420.jpg (not committed) for `imaging-bench`.
"""

import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from PIL import Image, ImageDraw, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures")
BENCH = os.path.join(ROOT, ".bench")
manifest = []


# --- source pictures -------------------------------------------------------

def picture(w, h, seed, alpha=False):
    """A deterministic test picture: gradients, hard-edged shapes and a little noise."""
    rnd = random.Random(seed)
    im = Image.new("RGBA", (w, h))
    px = []
    for y in range(h):
        for x in range(w):
            r = (x * 255) // max(1, w - 1)
            g = (y * 255) // max(1, h - 1)
            b = ((x + y) * 7 + rnd.randrange(24)) % 256
            a = 255 if not alpha else (x * 37 + y * 91) % 256
            px.append((r, g, b, a))
    im.putdata(px)
    d = ImageDraw.Draw(im)
    d.ellipse((w // 5, h // 5, w * 3 // 4, h * 3 // 4), fill=(250, 30, 60, 255 if not alpha else 180))
    d.rectangle((w // 2, 0, w // 2 + max(1, w // 8), h), fill=(20, 40, 230, 255 if not alpha else 0))
    d.line((0, h - 1, w - 1, 0), fill=(255, 255, 255, 255), width=1)
    return im


def save_reference(name, im, kind):
    rgba = im.convert("RGBA")
    with open(os.path.join(OUT, name + ".rgba"), "wb") as f:
        f.write(rgba.tobytes())
    manifest.append({
        "file": name, "reference": name + ".rgba",
        "width": rgba.width, "height": rgba.height, "kind": kind,
    })


def check_size(path):
    size = os.path.getsize(path)
    assert size < 20_000, f"{path} is {size} bytes"


# --- a PNG writer for every colour type, depth, filter and Adam7 --------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows, bpp, first_filter):
    """Filters packed rows, cycling through all five filter types."""
    out, prior = bytearray(), bytes(len(rows[0])) if rows else b""
    for i, row in enumerate(rows):
        ft = (first_filter + i) % 5
        line = bytearray()
        for j, v in enumerate(row):
            a = row[j - bpp] if j >= bpp else 0
            b = prior[j]
            c = prior[j - bpp] if j >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ft]
            line.append((v - pred) & 0xFF)
        out.append(ft)
        out += line
        prior = row
    return bytes(out)


def write_png(path, pixels, w, h, color_type, depth, palette=None, trns=None, interlace=False, idat_size=64):
    """pixels[y][x] is a tuple of samples in the file's own precision."""
    ch = CHANNELS[color_type]
    bpp = max(1, ch * depth // 8)
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for n, (x0, y0, dx, dy) in enumerate(passes):
        rows = []
        for y in range(y0, h, dy):
            samples = []
            for x in range(x0, w, dx):
                samples.extend(pixels[y][x])
            if samples:
                rows.append(pack_row(samples, depth))
        if rows:
            raw += filter_rows(rows, bpp, n)
    data = zlib.compress(raw, 9)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    png += chunk(b"tEXt", b"Comment\x00ancillary chunk the decoder skips")
    if palette is not None:
        png += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    for i in range(0, len(data), idat_size):
        png += chunk(b"IDAT", data[i:i + idat_size])
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def png_case(name, w, h, color_type, depth, interlace=False, with_trns=False, seed=1, own_reference=False):
    """Writes one PNG; the reference is Pillow's decode unless own_reference (Pillow clips 16-bit grey)."""
    src = picture(w, h, seed, alpha=color_type in (4, 6))
    maxv = (1 << depth) - 1
    palette = trns = None
    pixels = []
    for y in range(h):
        row = []
        for x in range(w):
            r, g, b, a = src.getpixel((x, y))
            if color_type == 0:
                v = (r * 3 + g * 5 + b * 2) // 10
                row.append((v * 257 if depth == 16 else v * maxv // 255,))
            elif color_type == 2:
                row.append(tuple(c * 257 if depth == 16 else c for c in (r, g, b)))
            elif color_type == 3:
                row.append(((x * 3 + y * 5) % (maxv + 1),))
            elif color_type == 4:
                v = (r * 3 + g * 5 + b * 2) // 10
                row.append(tuple(c * 257 if depth == 16 else c for c in (v, a)))
            else:
                row.append(tuple(c * 257 if depth == 16 else c for c in (r, g, b, a)))
        pixels.append(row)
    if color_type == 3:
        rnd = random.Random(seed)
        palette = [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(maxv + 1)]
        if with_trns:
            trns = bytes([0, 128] + [255] * 3 + [64])[: maxv + 1]
    elif with_trns and color_type == 0:
        key = pixels[0][0][0]
        trns = struct.pack(">H", key)
    elif with_trns and color_type == 2:
        trns = struct.pack(">HHH", *pixels[h // 2][w // 2])
    path = os.path.join(OUT, name + ".png")
    write_png(path, pixels, w, h, color_type, depth, palette, trns, interlace)
    check_size(path)
    pillow = Image.open(path).convert("RGBA")
    if own_reference:
        # 16-bit greyscale: the expected value is the sample's high byte.
        ref = Image.new("RGBA", (w, h))
        ref.putdata([(p[0] >> 8,) * 3 + (255,) for row in pixels for p in row])
        save_reference(name + ".png", ref, "exact")
    else:
        save_reference(name + ".png", pillow, "exact")


# --- a GIF writer for partial frames and both versions -------------------------

def lzw_literals(indices, min_code_size):
    """Valid GIF LZW that never lets the table grow: a clear code every few literals."""
    clear = 1 << min_code_size
    size = min_code_size + 1
    limit = (1 << size) - clear - 3
    codes = []
    for i, v in enumerate(indices):
        if i % limit == 0:
            codes.append(clear)
        codes.append(v)
    codes.append(clear + 1)
    out, acc, bits = bytearray(), 0, 0
    for c in codes:
        acc |= c << bits
        bits += size
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc)
    return bytes(out)


def write_gif(path, screen, frame_box, indices, colors, version=b"GIF89a", local=False,
              transparent=None, interlace=False):
    sw, sh = screen
    left, top, fw, fh = frame_box
    bits = max(1, (len(colors) - 1).bit_length())
    table = b"".join(bytes(c) for c in colors) + b"\x00\x00\x00" * ((1 << bits) - len(colors))
    out = version + struct.pack("<HHBBB", sw, sh, 0 if local else 0x80 | (bits - 1), 0, 0)
    if not local:
        out += table
    if transparent is not None:
        out += b"\x21\xF9\x04" + bytes([1]) + struct.pack("<H", 0) + bytes([transparent]) + b"\x00"
    out += b"\x21\xFE" + bytes([5]) + b"hello" + b"\x00"  # comment extension, skipped
    flags = (0x80 | (bits - 1) if local else 0) | (0x40 if interlace else 0)
    out += b"\x2C" + struct.pack("<HHHHB", left, top, fw, fh, flags)
    if local:
        out += table
    rows = [indices[y * fw:(y + 1) * fw] for y in range(fh)]
    if interlace:
        order = list(range(0, fh, 8)) + list(range(4, fh, 8)) + list(range(2, fh, 4)) + list(range(1, fh, 2))
        rows = [rows[y] for y in order]
    flat = [i for row in rows for i in row]
    min_code = max(2, bits)
    data = lzw_literals(flat, min_code)
    out += bytes([min_code])
    for i in range(0, len(data), 255):
        part = data[i:i + 255]
        out += bytes([len(part)]) + part
    out += b"\x00\x3B"
    with open(path, "wb") as f:
        f.write(out)


def gif_case(name, screen, frame_box, ncolors, **kw):
    rnd = random.Random(len(name))
    colors = [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(ncolors)]
    _, _, fw, fh = frame_box
    indices = [(x * 3 + y * 7 + (x * y) % 5) % ncolors for y in range(fh) for x in range(fw)]
    path = os.path.join(OUT, name + ".gif")
    write_gif(path, screen, frame_box, indices, colors, **kw)
    check_size(path)
    save_reference(name + ".gif", Image.open(path), "exact")


# --- JPEG -----------------------------------------------------------------------

def jpeg_case(name, im, kind="jpeg", transpose=False, **save):
    path = os.path.join(OUT, name + ".jpg")
    im.save(path, "JPEG", **save)
    check_size(path)
    decoded = Image.open(path)
    if transpose:
        decoded = ImageOps.exif_transpose(decoded)
    save_reference(name + ".jpg", decoded, kind)
    return path


def cjpeg_case(name, im, args):
    if not shutil.which("cjpeg"):
        print(f"cjpeg not found: keeping {name} as it is")
        if os.path.exists(os.path.join(OUT, name + ".jpg")):
            manifest.append(next(m for m in old_manifest if m["file"] == name + ".jpg"))
        return
    path = os.path.join(OUT, name + ".jpg")
    with tempfile.NamedTemporaryFile(suffix=".ppm") as ppm:
        im.convert("RGB").save(ppm.name, "PPM")
        subprocess.run(["cjpeg", *args, "-outfile", path, ppm.name], check=True)
    check_size(path)
    save_reference(name + ".jpg", Image.open(path), "jpeg")


def main():
    global old_manifest
    os.makedirs(OUT, exist_ok=True)
    old_path = os.path.join(OUT, "manifest.json")
    old_manifest = json.load(open(old_path)) if os.path.exists(old_path) else []

    # PNG: every colour type and depth, Adam7, tRNS, odd sizes.
    png_case("gray1-17x9", 17, 9, 0, 1)
    png_case("gray2-33x65-interlaced", 33, 65, 0, 2, interlace=True)
    png_case("gray4-17x9", 17, 9, 0, 4)
    png_case("gray8-33x65-trns", 33, 65, 0, 8, with_trns=True)
    png_case("gray16-17x9", 17, 9, 0, 16, own_reference=True)
    png_case("gray16-33x65-interlaced", 33, 65, 0, 16, interlace=True, own_reference=True)
    png_case("rgb8-33x65", 33, 65, 2, 8)
    png_case("rgb8-17x9-trns", 17, 9, 2, 8, with_trns=True)
    png_case("rgb8-33x65-interlaced", 33, 65, 2, 8, interlace=True)
    png_case("rgb16-17x9", 17, 9, 2, 16)
    png_case("palette1-17x9", 17, 9, 3, 1)
    png_case("palette2-33x65-trns", 33, 65, 3, 2, with_trns=True)
    png_case("palette4-17x9", 17, 9, 3, 4)
    png_case("palette8-33x65-trns", 33, 65, 3, 8, with_trns=True)
    png_case("palette8-17x9-interlaced", 17, 9, 3, 8, interlace=True, with_trns=True)
    png_case("graya8-33x65", 33, 65, 4, 8)
    png_case("graya16-17x9-interlaced", 17, 9, 4, 16, interlace=True)
    png_case("rgba8-33x65", 33, 65, 6, 8)
    png_case("rgba8-33x65-interlaced", 33, 65, 6, 8, interlace=True)
    png_case("rgba16-17x9", 17, 9, 6, 16)
    png_case("rgba16-33x65-interlaced", 33, 65, 6, 16, interlace=True)
    png_case("rgba8-1x1", 1, 1, 6, 8)
    png_case("rgb8-1x1-interlaced", 1, 1, 2, 8, interlace=True)
    pil_png = os.path.join(OUT, "pillow-rgba-48x32.png")
    picture(48, 32, 7, alpha=True).save(pil_png)
    save_reference("pillow-rgba-48x32.png", Image.open(pil_png), "exact")

    # JPEG: subsamplings, greyscale, restarts, progressive, EXIF orientation, odd sizes.
    photo = picture(64, 48, 3).convert("RGB")
    jpeg_case("ycc444-64x48", photo, quality=90, subsampling=0)
    jpeg_case("ycc422-64x48", photo, quality=90, subsampling=1)
    jpeg_case("ycc420-64x48", photo, quality=90, subsampling=2)
    jpeg_case("ycc420-17x9", picture(17, 9, 4).convert("RGB"), quality=85, subsampling=2)
    jpeg_case("ycc420-33x65", picture(33, 65, 5).convert("RGB"), quality=85, subsampling=2)
    jpeg_case("ycc422-33x65", picture(33, 65, 5).convert("RGB"), quality=85, subsampling=1)
    jpeg_case("ycc420-1x1", Image.new("RGB", (1, 1), (200, 100, 50)), quality=90)
    jpeg_case("gray-64x48", photo.convert("L"), quality=90)
    jpeg_case("gray-17x9", picture(17, 9, 6).convert("L"), quality=90)
    jpeg_case("ycc420-restart-64x48", photo, quality=90, subsampling=2, restart_marker_blocks=3)
    jpeg_case("ycc444-restart-rows-64x48", photo, quality=90, subsampling=0, restart_marker_rows=1)
    jpeg_case("progressive-420-64x48", photo, quality=90, subsampling=2, progressive=True)
    jpeg_case("progressive-444-33x65", picture(33, 65, 8).convert("RGB"), quality=85, subsampling=0, progressive=True)
    jpeg_case("progressive-gray-64x48", photo.convert("L"), quality=90, progressive=True)
    jpeg_case("progressive-restart-64x48", photo, quality=90, progressive=True, restart_marker_blocks=2)
    jpeg_case("optimized-420-64x48", photo, quality=75, subsampling=2, optimize=True)
    # SOF1 (extended sequential, Huffman) is laid out exactly like SOF0; relabel a baseline file.
    base = open(os.path.join(OUT, "ycc420-64x48.jpg"), "rb").read()
    sof = base.index(b"\xFF\xC0")
    path = os.path.join(OUT, "extended-sof1-64x48.jpg")
    with open(path, "wb") as f:
        f.write(base[:sof] + b"\xFF\xC1" + base[sof + 2:])
    save_reference("extended-sof1-64x48.jpg", Image.open(path), "jpeg")
    rotated = picture(40, 24, 9).convert("RGB")
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        jpeg_case(f"exif-orientation{orientation}-40x24", rotated, transpose=True,
                  quality=90, subsampling=2, exif=exif.tobytes())
    cjpeg_case("ycc440-64x48", photo, ["-quality", "90", "-sample", "1x2,1x1,1x1"])
    cjpeg_case("adobe-rgb-33x65", picture(33, 65, 10), ["-quality", "90", "-rgb"])
    cjpeg_case("sof1-16bit-quant-64x48", photo, ["-quality", "2"])

    # GIF: Pillow's encoder (real LZW, interlaced, transparency) and the writer above.
    pal = picture(64, 48, 11, alpha=True)
    q = pal.convert("RGB").quantize(colors=31)
    mask = [1 if a < 128 else 0 for a in pal.getchannel("A").tobytes()]
    q.putdata([31 if m else v for m, v in zip(mask, q.tobytes())])
    path = os.path.join(OUT, "pillow-transparent-interlaced-64x48.gif")
    q.save(path, transparency=31, interlace=True)
    check_size(path)
    save_reference("pillow-transparent-interlaced-64x48.gif", Image.open(path), "exact")
    gif_case("gif87a-17x9", (17, 9), (0, 0, 17, 9), 16, version=b"GIF87a")
    gif_case("partial-frame-local-table-33x21", (33, 21), (5, 3, 20, 17), 7, local=True,
             transparent=2, interlace=True)
    gif_case("interlaced-33x65", (33, 65), (0, 0, 33, 65), 200, interlace=True)
    gif_case("gif-1x1", (1, 1), (0, 0, 1, 1), 2)

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")

    # Not committed: a large photo-like JPEG for the benchmark.
    os.makedirs(BENCH, exist_ok=True)
    big = Image.radial_gradient("L").resize((3000, 2000))
    noise = Image.effect_noise((3000, 2000), 40)
    rgb = Image.merge("RGB", (big, noise, Image.linear_gradient("L").resize((3000, 2000))))
    ImageDraw.Draw(rgb).ellipse((600, 300, 2400, 1700), outline=(255, 220, 0), width=40)
    rgb.save(os.path.join(BENCH, "photo-3000x2000-420.jpg"), quality=85, subsampling=2)
    print(f"{len(manifest)} fixtures written to {OUT}")


if __name__ == "__main__":
    main()
