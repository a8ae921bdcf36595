// Decode worker (worker_threads): decodes a batch of image files once each (the views of one image
// share its decoding), applies each one's view, preprocesses every image for every requested input
// spec straight into that spec's batch buffer (transferred in and back, never copied), and packs
// the decoded images to the front so a failed one leaves no hole.
import { parentPort } from 'node:worker_threads';
import { decodeImage, inputSize, preprocessInto } from '../images/preprocess';
import type { DecodedImage, InputSpec } from '../images/types';
import { type ViewParams, applyView } from '../images/views';

export interface DecodeRequest {
  id: number;
  files: string[];
  specs: InputSpec[];
  /** One per spec, each files.length * inputSize(spec) float32 values. */
  buffers: ArrayBuffer[];
  /** Images of more pixels are refused before decoding (default MAX_PIXELS); per request, as one pool serves a cluster worker's jobs of any run. */
  maxPixels?: number;
  /** Per file: the augmentation applied to its decoded image (null: none). */
  views?: (ViewParams | null)[];
}

export interface DecodeReply {
  id: number;
  buffers: ArrayBuffer[];
  /** Indices into files of the images written, in order: row k of each buffer is image kept[k]. */
  kept: number[];
  failures: { index: number; reason: string }[];
}

// Images in flight per batch: one decoding in libvips while the thread normalises another.
const IN_FLIGHT = 2;

async function decodeBatch(req: DecodeRequest): Promise<DecodeReply> {
  const outs = req.buffers.map((b) => new Float32Array(b));
  const sizes = req.specs.map(inputSize);
  const ok = new Array<boolean>(req.files.length).fill(false);
  const failures: DecodeReply['failures'] = [];
  // Views of one image sit side by side in a batch: each file is decoded once per batch, and its
  // pixels are let go after its last use (a batch of large plain images is never held at once).
  const decoded = new Map<string, Promise<DecodedImage>>();
  const uses = new Map<string, number>();
  for (const f of req.files) uses.set(f, (uses.get(f) ?? 0) + 1);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < req.files.length; i = next++) {
      const file = req.files[i];
      try {
        if (!decoded.has(file)) decoded.set(file, decodeImage(file, req.maxPixels));
        const pending = decoded.get(file)!;
        const left = uses.get(file)! - 1;
        uses.set(file, left);
        if (left === 0) decoded.delete(file);
        const view = req.views?.[i];
        const image = view ? applyView(await pending, view) : await pending;
        for (let s = 0; s < req.specs.length; s++) await preprocessInto(image, req.specs[s], outs[s], i * sizes[s]);
        ok[i] = true;
      } catch (err) {
        const message = (err as Error)?.message ?? String(err);
        failures.push({ index: i, reason: message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, req.files.length) }, lane));
  const kept: number[] = [];
  ok.forEach((good, i) => {
    if (!good) return;
    const k = kept.push(i) - 1;
    if (k !== i) outs.forEach((o, s) => o.copyWithin(k * sizes[s], i * sizes[s], (i + 1) * sizes[s]));
  });
  failures.sort((a, b) => a.index - b.index);
  return { id: req.id, buffers: req.buffers, kept, failures };
}

parentPort!.on('message', (req: DecodeRequest) => {
  decodeBatch(req).then(
    (reply) => parentPort!.postMessage(reply, reply.buffers),
    // Only a bug reaches here (per-image errors are caught above): report it rather than hang.
    (err) => parentPort!.postMessage({ id: req.id, error: String((err as Error)?.stack ?? err) }),
  );
});
