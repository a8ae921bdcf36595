// A consumer's small HTTP server over embmap's public API (compiled against the package's types
// with strict tsc, no skipLibCheck): it saves and loads a map, serves it through a MicroBatcher,
// and checks what comes back over HTTP against a float64 reference.
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { LinearMap, Matrix, MicroBatcher, doctor } from 'embmap';

const p = 48, q = 24, rows = 64;
const rand = () => Math.random() * 2 - 1;
const W = Float64Array.from({ length: p * q }, rand);
const b = Float64Array.from({ length: q }, rand);
const file = path.join(os.tmpdir(), `consumer-map-${process.pid}.safetensors`);
LinearMap.create(new Matrix(W, p, q), b, { estimator: 'consumer' }).save(file);
const map = LinearMap.load(file);
const batcher = new MicroBatcher(map);

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => (body += c.toString()));
  req.on('end', () => {
    const x = Float32Array.from(JSON.parse(body) as number[]);
    batcher.submit(x, x.length / p).then(
      (y) => res.end(JSON.stringify(Array.from(y))),
      (err: Error) => { res.statusCode = 400; res.end(err.message); },
    );
  });
});

server.listen(0, '127.0.0.1', async () => {
  const { port } = server.address() as { port: number };
  const x = Float32Array.from({ length: rows * p }, rand);
  const r = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: JSON.stringify(Array.from(x)) });
  const y = (await r.json()) as number[];
  let worst = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < q; j++) {
      let ref = b[j];
      for (let k = 0; k < p; k++) ref += x[i * p + k] * W[k * q + j];
      worst = Math.max(worst, Math.abs(y[i * q + j] - ref) / (1 + Math.abs(ref)));
    }
  }
  server.close();
  const backend = doctor().defaultBackend;
  console.log(`consumer: ${rows} vectors ${p} -> ${q} over HTTP on ${backend}, worst relative error vs float64 ${worst.toExponential(2)}`);
  if (!(worst < 1e-5)) process.exit(1);
});
