import { CODECS, isVideoCodec, type Codec, type ImageCodec, type VideoCodec } from '#contracts';
import {
  codecOfImplementation,
  configureSharp,
  probeEncoders,
  registryFromCapabilities,
  threadsPerJob,
  type EncoderCapabilities,
} from '#codecs';
import type { NodeCapabilities } from './encoder-node.js';
import type { NodeConfig } from './node-config.js';
import { SyntheticImageEncoder } from './synthetic-encoder.js';

/** A synthetic node asked for image codecs only has nothing to probe. */
const NOTHING_PROBED: EncoderCapabilities = {
  codecs: [],
  hardware: [],
  encoders: {},
  fallbacks: {},
  results: [],
  ffmpeg: { available: false, encoders: [] },
};

/**
 * What this node will encode: the codecs it proved by encoding a tiny frame (hardware encoders included,
 * preferred on gpu nodes), cut down by --codecs. Probed once, at start. With --synthetic-cost-ms (test
 * only), every image codec wanted is a SyntheticImageEncoder instead, and only video codecs are probed.
 */
export async function loadCapabilities(config: NodeConfig): Promise<NodeCapabilities> {
  configureSharp({ concurrency: config.concurrency });
  const costMs = config.syntheticCostMs;
  const wanted: readonly Codec[] = config.codecs ?? CODECS;
  const synthetic = new Map<Codec, SyntheticImageEncoder>();
  if (costMs !== null) {
    for (const codec of wanted.filter((codec): codec is ImageCodec => !isVideoCodec(codec))) {
      synthetic.set(codec, new SyntheticImageEncoder(codec, costMs));
    }
  }
  const toProbe: readonly Codec[] | null =
    costMs === null ? config.codecs : wanted.filter((codec): codec is VideoCodec => isVideoCodec(codec));
  const probed =
    toProbe?.length === 0
      ? NOTHING_PROBED
      : await probeEncoders({
          preferHardware: config.pool === 'gpu',
          ...(toProbe ? { codecs: toProbe } : {}),
        });
  const registry = registryFromCapabilities(probed, { threads: threadsPerJob(config.concurrency) });
  const hardwareCodecs = probed.hardware
    .map((implementation) => codecOfImplementation(implementation))
    .filter((codec): codec is NonNullable<typeof codec> => codec !== null);
  const codecs = [...synthetic.keys(), ...probed.codecs];
  return {
    codecs,
    hardware: probed.hardware,
    gpuCodecs: config.softwareGpu ? codecs : [...new Set<Codec>(hardwareCodecs)],
    encoderFor: (codec) => synthetic.get(codec) ?? (registry.has(codec) ? registry.get(codec) : undefined),
  };
}
