import type { PixelFormat } from '#contracts';

/**
 * Desktop-like synthetic frames for tests and benchmarks: a gradient wallpaper, flat windows with
 * title bars, text-like high-contrast strokes, and a half-transparent overlay (alpha formats only).
 * Deterministic: the same arguments always give the same bytes. `frameIndex` moves a window and
 * scrolls the text, so consecutive video frames differ the way a desktop does.
 */
export interface SyntheticFrameOptions {
  width: number;
  height: number;
  format: PixelFormat;
  frameIndex?: number;
  /** Put a half-transparent overlay into the alpha channel of rgba/bgra (default true). */
  translucentOverlay?: boolean;
}

/**
 * The scene in canonical RGBA order (alpha 255 except the overlay). Written through a 32-bit view with
 * row fills, not pixel by pixel: tests build dozens of frames, and a slow builder blocks their event
 * loop long enough for pooled keep-alive sockets to die under them (PITFALLS.md, "Sockets and tests").
 */
export function syntheticRgba(
  width: number,
  height: number,
  frameIndex = 0,
  translucentOverlay = true,
): Buffer {
  const rgba = Buffer.alloc(width * height * 4);
  const pixels = new Uint32Array(rgba.buffer, rgba.byteOffset, width * height);
  const fillRect = (x0: number, y0: number, w: number, h: number, r: number, g: number, b: number) => {
    const left = Math.max(0, x0);
    const right = Math.min(width, x0 + w);
    if (left >= right) return;
    const value = packRgba(r, g, b, 255);
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
      pixels.fill(value, y * width + left, y * width + right);
    }
  };

  // Wallpaper: a smooth two-axis gradient.
  const columns = new Uint32Array(width);
  for (let x = 0; x < width; x++) columns[x] = packRgba(40 + Math.round((150 * x) / width), 0, 140, 255);
  for (let y = 0; y < height; y++) {
    const green = (60 + Math.round((100 * y) / height)) << 8;
    const row = y * width;
    for (let x = 0; x < width; x++) pixels[row + x] = columns[x] | green;
  }

  const glyphInk = packRgba(20, 20, 24, 255);
  const even = (v: number) => v - (v % 2);
  const windows = [
    {
      x: even(Math.round(width * 0.06)) + 2 * frameIndex,
      y: even(Math.round(height * 0.1)),
      w: 0.55,
      h: 0.6,
    },
    { x: even(Math.round(width * 0.42)), y: even(Math.round(height * 0.3)), w: 0.5, h: 0.62 },
  ];
  const random = mulberry32(12345);
  windows.forEach((win, index) => {
    const w = even(Math.max(8, Math.round(width * win.w)));
    const h = even(Math.max(8, Math.round(height * win.h)));
    const titleHeight = even(Math.max(4, Math.round(h * 0.12)));
    fillRect(win.x - 2, win.y - 2, w + 4, h + 4, 70, 70, 70); // border
    fillRect(win.x, win.y, w, h, 246, 246, 242); // client area
    if (index === 0) fillRect(win.x, win.y, w, titleHeight, 52, 101, 164);
    else fillRect(win.x, win.y, w, titleHeight, 200, 200, 205);
    // Text: rows of glyph-like strokes, dark on light, scrolled by frameIndex.
    const lineHeight = 8;
    for (let line = 0; win.y + titleHeight + 4 + line * lineHeight + 6 < win.y + h; line++) {
      const top = win.y + titleHeight + 4 + line * lineHeight - (frameIndex % 2) * 2;
      let x = win.x + 4;
      while (x < win.x + w - 8) {
        const glyphWidth = 3 + Math.floor(random() * 3);
        const pattern = Math.floor(random() * 16);
        for (let gy = 0; gy < 6; gy++) {
          const y = top + gy;
          if (y <= win.y + titleHeight || y < 0 || y >= height) continue;
          for (let gx = 0; gx < glyphWidth; gx++) {
            const stroke =
              (pattern & 1 && gx === 0) ||
              (pattern & 2 && gy === 0) ||
              (pattern & 4 && gx === glyphWidth - 1) ||
              (pattern & 8 && gy === 3);
            if (stroke && x + gx >= 0 && x + gx < width) pixels[y * width + x + gx] = glyphInk;
          }
        }
        x += glyphWidth + 1 + (random() < 0.15 ? 4 : 0);
      }
    }
  });

  if (translucentOverlay) {
    const x0 = even(Math.round(width * 0.7));
    const y0 = even(Math.round(height * 0.05));
    for (let y = y0; y < Math.min(height, y0 + Math.max(2, even(Math.round(height * 0.2)))); y++) {
      for (let x = x0; x < Math.min(width, x0 + Math.max(2, even(Math.round(width * 0.25)))); x++) {
        rgba[(y * width + x) * 4 + 3] = 128;
      }
    }
  }
  return rgba;
}

/** One pixel as the little-endian 32-bit word whose bytes are r, g, b, a. */
function packRgba(r: number, g: number, b: number, a: number): number {
  return (r | (g << 8) | (b << 16) | (a << 24)) >>> 0;
}

/**
 * Converts canonical RGBA into any raw pixel format. Padding bytes (rgbx/bgrx) get noise, so tests
 * notice an encoder that reads them as alpha or colour.
 */
export function rgbaToPixelFormat(rgba: Buffer, format: PixelFormat): Buffer {
  // Spelled out here rather than taken from pixel-formats.ts, so tests do not share the code under test.
  const traits = {
    bytesPerPixel: format.length,
    blueFirst: format.startsWith('b'),
    alpha: format.endsWith('a'),
  };
  const pixels = rgba.length / 4;
  const out = Buffer.alloc(pixels * traits.bytesPerPixel);
  if (traits.bytesPerPixel === 4) {
    // Whole pixels as little-endian words: byte 0 is the low byte.
    const source = new Uint32Array(rgba.buffer, rgba.byteOffset, pixels);
    const target = new Uint32Array(out.buffer, out.byteOffset, pixels);
    const noise = mulberry32(99);
    for (let p = 0; p < pixels; p++) {
      const v = source[p];
      const rgb = traits.blueFirst
        ? (v & 0x0000ff00) | ((v & 0xff) << 16) | ((v >>> 16) & 0xff)
        : v & 0x00ffffff;
      const fourth = traits.alpha ? v >>> 24 : Math.floor(noise() * 256);
      target[p] = (rgb | (fourth << 24)) >>> 0;
    }
    return out;
  }
  for (let p = 0, s = 0, d = 0; p < pixels; p++, s += 4, d += 3) {
    out[d] = traits.blueFirst ? rgba[s + 2] : rgba[s];
    out[d + 1] = rgba[s + 1];
    out[d + 2] = traits.blueFirst ? rgba[s] : rgba[s + 2];
  }
  return out;
}

export function syntheticFrame(options: SyntheticFrameOptions): Buffer {
  const { width, height, format, frameIndex = 0, translucentOverlay = true } = options;
  return rgbaToPixelFormat(syntheticRgba(width, height, frameIndex, translucentOverlay), format);
}

/** RGB bytes of canonical RGBA (alpha dropped). */
export function rgbaToRgb(rgba: Buffer): Buffer {
  const out = Buffer.alloc((rgba.length / 4) * 3);
  for (let s = 0, d = 0; s < rgba.length; s += 4, d += 3) {
    out[d] = rgba[s];
    out[d + 1] = rgba[s + 1];
    out[d + 2] = rgba[s + 2];
  }
  return out;
}

/** Small deterministic PRNG (mulberry32), so synthetic frames are reproducible. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
