import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { syntheticRgba } from '#codecs/testing/synthetic-frames.js';
import { freePort } from '#cluster';
import { ServiceStack } from '#scripts/lib/stack.js';
import { selfSignedCertificate, tempDir } from './support.js';
import { remoteClient, setupXpraClients, xpraEncode, xpraKitDir, type XpraClients } from './xpra-support.js';

/**
 * The listener bound beyond loopback: Xpra's challenge with an API key as the password, and TLS
 * (`ssl://`) on the same port, with the real clients.
 */
const kit = xpraKitDir();
const describeXpra = kit ? describe : describe.skip;
const KEY = 'acme-xpra-key-0123456789';

describeXpra('Xpra listener beyond loopback (real Xpra clients)', () => {
  let stack: ServiceStack;
  let clients: XpraClients;
  let port: number;
  const dir = tempDir('encoder-xpra-auth-');
  const picture = join(dir.path, 'picture.png');
  const passwordFile = join(dir.path, 'password.txt');
  const certFile = join(dir.path, 'cert.pem');
  const keyFile = join(dir.path, 'key.pem');

  beforeAll(async () => {
    writeFileSync(
      picture,
      await sharp(syntheticRgba(64, 48, 0, false), { raw: { width: 64, height: 48, channels: 4 } })
        .png()
        .toBuffer(),
    );
    writeFileSync(passwordFile, KEY);
    await selfSignedCertificate(keyFile, certFile);
    clients = await setupXpraClients(kit as string);
    port = await freePort();
    stack = await ServiceStack.start({
      dataDir: join(dir.path, 'redis'),
      env: {
        XPRA_BIND: `0.0.0.0:${port}`,
        API_KEYS: `acme:${KEY}`,
        XPRA_TLS_CERT_FILE: certFile,
        XPRA_TLS_KEY_FILE: keyFile,
      },
      workers: [{ name: 'xpra-auth-node' }],
    });
  }, 600_000);

  afterAll(async () => {
    await stack?.stop();
    dir.remove();
  });

  function outDir(name: string): string {
    const path = join(dir.path, name);
    mkdirSync(path);
    return path;
  }

  it('refuses a client without a password, and one with a wrong key', async () => {
    // The client's exit status does not tell (it exits 0 on a server's disconnect): its output and file do.
    const attempt = (uri: string, cwd: string) =>
      xpraEncode(clients, uri, picture, 'webp', cwd).then(
        ({ stderr }) => stderr,
        (error: { stderr?: string }) => error.stderr ?? '',
      );
    const none = outDir('none');
    expect(await attempt(`tcp://127.0.0.1:${port}/`, none)).toMatch(/authentication required/);
    const wrong = outDir('wrong');
    expect(await attempt(`tcp://user:not-the-key-0123456789@127.0.0.1:${port}/`, wrong)).toMatch(
      /authentication failed/,
    );
    expect(existsSync(join(none, 'picture.webp')) || existsSync(join(wrong, 'picture.webp'))).toBe(false);
  });

  it('serves a client that answers with the key (password file, or in the URI)', async () => {
    const fromFile = outDir('file');
    await xpraEncode(clients, `tcp://127.0.0.1:${port}/`, picture, 'webp', fromFile, [
      `--password-file=${passwordFile}`,
    ]);
    expect((await sharp(join(fromFile, 'picture.webp')).metadata()).format).toBe('webp');
    const fromUri = outDir('uri');
    await xpraEncode(clients, `tcp://user:${KEY}@127.0.0.1:${port}/`, picture, 'jpeg', fromUri);
    expect((await sharp(join(fromUri, 'picture.jpeg')).metadata()).format).toBe('jpeg');
  });

  it('serves ssl:// on the same port', async () => {
    const tls = outDir('tls');
    await xpraEncode(clients, `ssl://127.0.0.1:${port}/`, picture, 'png', tls, [
      `--password-file=${passwordFile}`,
      `--ssl-ca-certs=${certFile}`,
    ]);
    expect((await sharp(join(tls, 'picture.png')).metadata()).format).toBe('png');
  });

  it("Xpra's remote encoder module cannot answer a challenge: it is refused, and so gets no encoder", async () => {
    const result = await remoteClient(clients, [
      '--uri',
      `tcp://127.0.0.1:${port}/`,
      '--frames',
      '1',
      '--ready-timeout',
      '3',
    ]);
    expect(result.error).toMatch(/no BGRX spec/);
    expect(result.encodings).toEqual([]);
    expect(stack.logsOf('api').join('\n')).toMatch(/cannot answer a password challenge/);
  });
});
