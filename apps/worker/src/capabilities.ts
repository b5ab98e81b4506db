import type { Codec } from '../../../libs/contracts/src/index.js';
import {
  codecOfImplementation,
  configureSharp,
  probeEncoders,
  registryFromCapabilities,
  threadsPerJob,
} from '../../../libs/codecs/src/index.js';
import type { NodeCapabilities } from './encoder-node.js';
import type { NodeConfig } from './node-config.js';

/**
 * What this node will encode: the codecs it proved by encoding a tiny frame (hardware encoders included,
 * preferred on gpu nodes), cut down by --codecs. Probed once, at start.
 */
export async function loadCapabilities(config: NodeConfig): Promise<NodeCapabilities> {
  configureSharp({ concurrency: config.concurrency });
  const probed = await probeEncoders({
    preferHardware: config.pool === 'gpu',
    ...(config.codecs ? { codecs: config.codecs } : {}),
  });
  const registry = registryFromCapabilities(probed, { threads: threadsPerJob(config.concurrency) });
  const hardwareCodecs = probed.hardware
    .map((implementation) => codecOfImplementation(implementation))
    .filter((codec): codec is NonNullable<typeof codec> => codec !== null);
  const codecs = probed.codecs;
  return {
    codecs,
    hardware: probed.hardware,
    gpuCodecs: config.softwareGpu ? codecs : [...new Set<Codec>(hardwareCodecs)],
    encoderFor: (codec) => (registry.has(codec) ? registry.get(codec) : undefined),
  };
}
