// Checkpoint writer (worker_threads): a batch's rows are written at their offsets and fsynced, then
// the progress record is replaced atomically, on this thread, so the fsyncs overlap the next batch's
// inference instead of stalling it. File descriptors are process-wide: the main thread opens them.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { writeFileAtomic } from '../io/atomic';
import { MAX_IO_BYTES } from '../io/binary';

export interface WriteRequest {
  id: number;
  writes: { fd: number; position: number; data: Float32Array }[];
  recordFile: string;
  record: string;
}

export interface WriteReply {
  id: number;
  error?: string;
}

function write(req: WriteRequest): void {
  for (const { fd, position, data } of req.writes) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let off = 0; off < bytes.byteLength; ) {
      off += fs.writeSync(fd, bytes, off, Math.min(bytes.byteLength - off, MAX_IO_BYTES), position + off);
    }
    fs.fsyncSync(fd);
  }
  // Only once the rows are durable may the record count them.
  writeFileAtomic(req.recordFile, [Buffer.from(req.record)]);
}

parentPort!.on('message', (req: WriteRequest) => {
  let reply: WriteReply = { id: req.id };
  try {
    write(req);
  } catch (err) {
    reply = { id: req.id, error: (err as Error)?.message ?? String(err) };
  }
  parentPort!.postMessage(reply);
});
