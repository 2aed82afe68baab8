#!/usr/bin/python3
"""test_email_shots.py - screenshots of every email kind, light and dark, in Debian's chromium.

Usage: test_email_shots.py RENDER_BIN OUTDIR

RENDER_BIN (tests/email_shots/render_emails.c, linked against the gateway's library) writes the
HTML and text part of every kind, rendered by the real templates from fixed sample data, into
OUTDIR. Each HTML part is then opened in headless chromium at 600x1000, once as is and once with
--force-dark-mode (which makes prefers-color-scheme: dark match), and saved as
OUTDIR/KIND-light.png and OUTDIR/KIND-dark.png: the artefacts a person looks at.

What is checked: every kind rendered; every screenshot is a 600x1000 PNG; the page background in
the corner is the layout's light grey in light mode and its near-black in dark mode (the dark
block took effect); nothing was fetched from outside (chromium runs with networking off and the
HTML is searched for http(s) resources). Chromium is run per screenshot under a timeout and its
user-data folder is removed afterwards. No network beyond the local file.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

KINDS = [
    "new_request", "request_received", "unmatched_request", "scheduling_link", "confirmation",
    "trainer_confirmation", "reminder", "close_reminder", "survey", "no_show", "cancellation",
    "session_link", "calendar_reconnect", "sign_in", "test_email",
]
LIGHT_BG = (0xF3, 0xF4, 0xF6)
DARK_BG = (0x0B, 0x0F, 0x14)
WIDTH, HEIGHT = 600, 1000


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("test_email_shots: chromium is not installed (scripts/deps.sh installs it)")


def png_pixel(path, x, y):
    """(width, height, (r, g, b)) of pixel x, y of an 8-bit RGB or RGBA PNG (RFC 2083)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w, h, bpp = 8, b"", 0, 0, 3
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError("PNG of depth %d colour type %d" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    for row in range(y + 1):
        f = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        prev = line
    return w, h, tuple(prev[x * bpp:x * bpp + 3])


def shoot(browser, html, png, dark):
    profile = tempfile.mkdtemp(prefix="email-shots-")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", "--user-data-dir=" + profile,
            "--screenshot=" + png, "--window-size=%d,%d" % (WIDTH, HEIGHT)]
    if dark:
        args.append("--force-dark-mode")
    args.append("file://" + os.path.abspath(html))
    try:
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                       check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: test_email_shots.py RENDER_BIN OUTDIR")
    render, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith((".png", ".html", ".txt")):
            os.remove(os.path.join(out, name))
    subprocess.run([render, out], check=True)
    browser = chromium()
    failures = []
    for kind in KINDS:
        html = os.path.join(out, kind + ".html")
        if not os.path.exists(html):
            failures.append("%s: not rendered" % kind)
            continue
        doc = open(html, encoding="utf-8").read()
        if re.search(r"""(src\s*=|<link|@import|url\()""", doc, re.I):
            failures.append("%s: the HTML loads something" % kind)
        for mode, bg in (("light", LIGHT_BG), ("dark", DARK_BG)):
            png = os.path.join(out, "%s-%s.png" % (kind, mode))
            shoot(browser, html, png, mode == "dark")
            if not os.path.exists(png):
                failures.append("%s: no %s screenshot" % (kind, mode))
                continue
            w, h, corner = png_pixel(png, 2, 2)
            if (w, h) != (WIDTH, HEIGHT):
                failures.append("%s-%s: %dx%d, not %dx%d" % (kind, mode, w, h, WIDTH, HEIGHT))
            if max(abs(p - q) for p, q in zip(corner, bg)) > 8:
                failures.append("%s-%s: background %s, not %s" % (kind, mode, corner, bg))
    for f in failures:
        print("FAIL", f)
    print("email shots: %d kinds, %d screenshots in %s, %d failures"
          % (len(KINDS), 2 * len(KINDS), out, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
