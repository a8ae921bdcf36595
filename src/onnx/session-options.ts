// What a caller chooses about ONNX Runtime sessions, apart from runtime.ts so that declarations
// using these types need no onnxruntime-node (an optional peer dependency).
import { assertInteger, assertOneOf } from '../core/validate';

export const DEVICES = ['cpu', 'cuda', 'auto'] as const;
export type Device = (typeof DEVICES)[number];
export type Provider = 'cpu' | 'cuda';

export interface RuntimeOptions {
  /** 'auto' tries CUDA and falls back to the CPU (default 'cpu'). */
  device?: Device;
  /** ONNX Runtime intra-op threads (default: its own choice, the physical cores). */
  threads?: number;
}

export function checkRuntimeOptions(name: string, options: RuntimeOptions): void {
  if (options.device !== undefined) assertOneOf(`${name}.device`, options.device, DEVICES);
  if (options.threads !== undefined) assertInteger(`${name}.threads`, options.threads, 1, 1024);
}
