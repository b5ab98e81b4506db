import type { Codec, NodeRecord, PixelFormat, VideoCodec } from '#contracts';
import type { XpraDict, XpraValue } from '#xpra';

/** Xpra's encoding names for the codecs the cluster has (h265 is our hevc). */
const XPRA_NAMES: Record<Codec, string> = {
  png: 'png',
  jpeg: 'jpeg',
  webp: 'webp',
  avif: 'avif',
  h264: 'h264',
  hevc: 'h265',
  vp8: 'vp8',
  vp9: 'vp9',
  av1: 'av1',
};

/** What an Xpra client may ask for, mapped to the codec that does it. */
const FROM_XPRA: Record<string, Codec> = {
  ...Object.fromEntries(Object.entries(XPRA_NAMES).map(([codec, name]) => [name, codec as Codec])),
  'png/L': 'png',
  'png/P': 'png',
  jpg: 'jpeg',
};

export function xpraEncodingName(codec: Codec): string {
  return XPRA_NAMES[codec];
}

export function codecForXpra(encoding: string): Codec | null {
  return Object.hasOwn(FROM_XPRA, encoding) ? FROM_XPRA[encoding] : null;
}

/** Xpra's pixel formats (the packed ones it sends) and ours. */
const PIXEL_FORMATS: Record<string, PixelFormat> = {
  BGRX: 'bgrx',
  BGRA: 'bgra',
  RGBX: 'rgbx',
  RGBA: 'rgba',
  RGB: 'rgb',
  BGR: 'bgr',
};

export function pixelFormatForXpra(format: string): PixelFormat | null {
  return Object.hasOwn(PIXEL_FORMATS, format) ? PIXEL_FORMATS[format] : null;
}

/** The formats a video context takes: those Xpra's screen capture gives. */
export const CONTEXT_PIXEL_FORMATS = ['BGRX', 'BGRA', 'RGBX', 'RGBA'] as const;

interface VideoTraits {
  /** Even sizes only (4:2:0 subsampling in pairs of samples). */
  evenOnly: boolean;
  sizeEfficiency: number;
  quality: number;
  speed: number;
}

const VIDEO_TRAITS: Record<VideoCodec, VideoTraits> = {
  h264: { evenOnly: true, sizeEfficiency: 60, quality: 60, speed: 60 },
  hevc: { evenOnly: true, sizeEfficiency: 80, quality: 60, speed: 30 },
  vp8: { evenOnly: false, sizeEfficiency: 50, quality: 50, speed: 50 },
  vp9: { evenOnly: false, sizeEfficiency: 70, quality: 60, speed: 20 },
  av1: { evenOnly: false, sizeEfficiency: 90, quality: 60, speed: 20 },
};

/** Xpra's remote module keeps only these (XPRA_REMOTE_ENCODINGS); h265 and av1 are offered for newer ones. */
const CONTEXT_CODECS: readonly VideoCodec[] = ['h264', 'vp8', 'vp9', 'hevc', 'av1'];

/** Live encoder contexts the cluster can still open: each node's free live capacity, summed. */
export function freeLiveContexts(nodes: NodeRecord[]): number {
  let free = 0;
  for (const node of nodes) {
    if (node.liveCapacity === undefined) continue;
    free += Math.max(0, node.liveCapacity - (node.liveStreams ?? 0));
  }
  return free;
}

/** The codecs of live nodes, for one-shot encodes (any node) and for video contexts. */
export function clusterCodecs(nodes: NodeRecord[]): Set<Codec> {
  return new Set(nodes.flatMap((node) => node.codecs));
}

/**
 * One spec per codec and pixel format, as Xpra's VideoSpec takes them. Costs are from the Xpra host's
 * side: the encoding costs it no CPU or GPU (cpu_cost, gpu_cost low), a context costs a process start
 * on a node (setup_cost), and `max_instances` is what the cluster can open now.
 */
function videoSpec(codec: VideoCodec, format: string, maxInstances: number, maxEdge: number): XpraDict {
  const traits = VIDEO_TRAITS[codec];
  const mask = traits.evenOnly ? 0xfffe : 0xffff;
  return {
    codec_type: 'cluster',
    input_colorspace: format,
    output_colorspaces: ['YUV420P'],
    quality: traits.quality,
    speed: traits.speed,
    size_efficiency: traits.sizeEfficiency,
    setup_cost: 40,
    cpu_cost: 5,
    gpu_cost: 0,
    min_w: traits.evenOnly ? 2 : 1,
    min_h: traits.evenOnly ? 2 : 1,
    max_w: maxEdge,
    max_h: maxEdge,
    can_scale: false,
    score_boost: 0,
    width_mask: mask,
    height_mask: mask,
    max_instances: maxInstances,
    encoding: XPRA_NAMES[codec],
    has_lossless_mode: false,
    full_range: false,
  };
}

export interface EncodingsOptions {
  /** Whether video contexts are served (the `video` specs are offered only then). */
  contexts: boolean;
  maxEdge: number;
}

/** The `encodings` packet's body: what the live cluster can encode now. */
export function encodingsCaps(nodes: NodeRecord[], options: EncodingsOptions): XpraDict {
  const codecs = clusterCodecs(nodes);
  const core = [...codecs].map((codec) => XPRA_NAMES[codec]);
  const video: XpraDict = {};
  const free = freeLiveContexts(nodes);
  if (options.contexts && free > 0) {
    for (const codec of CONTEXT_CODECS) {
      if (!codecs.has(codec)) continue;
      const byFormat: XpraDict = {};
      for (const format of CONTEXT_PIXEL_FORMATS)
        byFormat[format] = [videoSpec(codec, format, free, options.maxEdge)] as XpraValue[];
      video[XPRA_NAMES[codec]] = byFormat;
    }
  }
  return {
    encodings: { core, '': core, 'min-quality': 1, 'min-speed': 1 },
    video,
  };
}
