import type { PixelFormat } from '../../../contracts/src/index.js';

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

/** The scene in canonical RGBA order (alpha 255 except the overlay). */
export function syntheticRgba(
  width: number,
  height: number,
  frameIndex = 0,
  translucentOverlay = true,
): Buffer {
  const rgba = Buffer.alloc(width * height * 4);
  const set = (x: number, y: number, r: number, g: number, b: number, a = 255) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (y * width + x) * 4;
    rgba[i] = r;
    rgba[i + 1] = g;
    rgba[i + 2] = b;
    rgba[i + 3] = a;
  };
  const fillRect = (x0: number, y0: number, w: number, h: number, r: number, g: number, b: number) => {
    for (let y = Math.max(0, y0); y < Math.min(height, y0 + h); y++) {
      for (let x = Math.max(0, x0); x < Math.min(width, x0 + w); x++) set(x, y, r, g, b);
    }
  };

  // Wallpaper: a smooth two-axis gradient.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      set(x, y, 40 + Math.round((150 * x) / width), 60 + Math.round((100 * y) / height), 140, 255);
    }
  }

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
          for (let gx = 0; gx < glyphWidth; gx++) {
            const stroke =
              (pattern & 1 && gx === 0) ||
              (pattern & 2 && gy === 0) ||
              (pattern & 4 && gx === glyphWidth - 1) ||
              (pattern & 8 && gy === 3);
            if (stroke && top + gy > win.y + titleHeight) set(x + gx, top + gy, 20, 20, 24);
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
  const noise = mulberry32(99);
  for (let p = 0; p < pixels; p++) {
    const s = p * 4;
    const d = p * traits.bytesPerPixel;
    const [r, g, b, a] = [rgba[s], rgba[s + 1], rgba[s + 2], rgba[s + 3]];
    out[d] = traits.blueFirst ? b : r;
    out[d + 1] = g;
    out[d + 2] = traits.blueFirst ? r : b;
    if (traits.bytesPerPixel === 4) out[d + 3] = traits.alpha ? a : Math.floor(noise() * 256);
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
