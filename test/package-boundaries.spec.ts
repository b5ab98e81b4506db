import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The monorepo's packages are the projects of nest-cli.json (apps/<name>, libs/<name>), and they reach
 * each other only by name: the package.json "imports" (`#contracts`, `#cluster/keys.js`, ...), which Node
 * resolves in dist/ and TypeScript maps back to the sources. test/, bench/ and scripts/ import the
 * packages the same way. A relative import stays inside its own package.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIRS = ['apps', 'libs', 'test', 'bench', 'scripts'];
const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bunstable_mockModule\s*\(\s*)(['"])(\.{1,2}\/[^'"\n]*)\1/g;

interface NestProject {
  type: 'application' | 'library';
  root: string;
  sourceRoot: string;
  entryFile: string;
}
const nestCli = JSON.parse(readFileSync(join(ROOT, 'nest-cli.json'), 'utf8')) as {
  projects: Record<string, NestProject>;
};
const projects = Object.entries(nestCli.projects);
const imports = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { imports: Record<string, string> }
).imports;

/** The project root a repo-relative path lies in, else its top folder (test, bench, scripts). */
function packageOf(path: string): string {
  const project = projects.find(([, p]) => path.startsWith(`${p.root}/`));
  return project ? project[1].root : path.split('/')[0];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

describe('package boundaries', () => {
  it('nest-cli.json lists every app and lib, with roots and entry files that exist', () => {
    const onDisk = ['apps', 'libs'].flatMap((top) =>
      readdirSync(join(ROOT, top), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => `${top}/${entry.name}`),
    );
    expect(projects.map(([, p]) => p.root).sort()).toEqual(onDisk.sort());
    for (const [name, project] of projects) {
      expect({ name, root: project.root }).toEqual({
        name,
        root: `${project.type === 'library' ? 'libs' : 'apps'}/${name}`,
      });
      expect({ name, sourceRoot: project.sourceRoot }).toEqual({ name, sourceRoot: `${project.root}/src` });
      expect({ name, entryFile: project.entryFile }).toEqual({
        name,
        entryFile: project.type === 'library' ? 'index' : 'main',
      });
      expect(existsSync(join(ROOT, project.sourceRoot, `${project.entryFile}.ts`))).toBe(true);
    }
  });

  it('package.json "imports" names every project: #lib for its index, #lib/* and #app/* for its files', () => {
    const expected: Record<string, string> = {};
    for (const [name, project] of projects) {
      if (project.type === 'library')
        expected[`#${name}`] = `./dist/${project.sourceRoot}/${project.entryFile}.js`;
      expected[`#${name}/*`] = `./dist/${project.sourceRoot}/*`;
    }
    expect(imports).toMatchObject(expected);
    for (const target of Object.values(imports)) {
      const source = target
        .replace(/^\.\/dist\//, '')
        .replace(/\*$/, '')
        .replace(/\.js$/, '.ts');
      expect({ target, exists: existsSync(join(ROOT, source)) }).toEqual({ target, exists: true });
    }
  });

  it('no relative import leaves its package (use the #name of package.json "imports")', () => {
    const leaving: string[] = [];
    for (const file of SOURCE_DIRS.flatMap((dir) => sourceFiles(join(ROOT, dir)))) {
      const from = relative(ROOT, file).split(sep).join('/');
      for (const [, , specifier] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
        const target = posix.normalize(posix.join(dirname(from), specifier));
        if (packageOf(target) !== packageOf(from)) leaving.push(`${from}: ${specifier}`);
      }
    }
    expect(leaving).toEqual([]);
  });
});
