// Minifies src/m.js into dist/m.js (or into --outdir DIR) and prints its raw and gzip -9 sizes.
// The staleness test runs this with --outdir and compares the result with the committed file.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const flag = process.argv.indexOf('--outdir');
const outdir = flag > -1 ? process.argv[flag + 1] : join(here, 'dist');
const outfile = join(outdir, 'm.js');

await esbuild.build({
  entryPoints: [join(here, 'src', 'm.js')],
  outfile,
  minify: true,
  target: 'es2017',
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
});

const built = readFileSync(outfile);
// Measured with the gzip command, as docs/tracker.md and the size test measure every tracker.
const gzipped = execFileSync('gzip', ['-9', '-n', '-c'], { input: built }).length;
console.log(`${outfile}: ${built.length} bytes, ${gzipped} bytes gzip -9`);
