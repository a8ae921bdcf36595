// ONNX Runtime sessions: execution-provider choice (CPU, CUDA when this install has it) with a
// clear error when the requested one cannot load, and a probe run that learns output shapes the
// graph does not declare.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { optional } from '../core/optional';
import { type Provider, type RuntimeOptions, checkRuntimeOptions } from './session-options';

export type { Ort };

/** onnxruntime-node (an optional peer dependency), loaded on first use. */
export function ort(): typeof Ort {
  return optional<typeof Ort>('onnxruntime-node', 'running ONNX models');
}

export interface OpenedSession {
  session: Ort.InferenceSession;
  /** The execution provider the session was created with. */
  provider: Provider;
  /** Why CUDA was not used when device was 'auto'. */
  fallback?: string;
}

/** A session over the serialized model `bytes`; `where` names the model in errors. */
export async function openSession(bytes: Uint8Array, where: string, options: RuntimeOptions = {}): Promise<OpenedSession> {
  checkRuntimeOptions('options', options);
  const device = options.device ?? 'cpu';
  const base: Ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    // Warnings (e.g. shape merges on exposed outputs) are noise to a CLI user; errors still show.
    logSeverityLevel: 3,
    // Idle intra-op threads sleep instead of spinning: the decode workers need those cycles.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
  };
  if (device !== 'cpu') {
    // Checked first: a failed load makes ONNX Runtime log an error line of its own before throwing.
    const missing = cudaMissing();
    if (missing && device === 'auto') return { ...(await createCpu(bytes, where, base)), fallback: missing };
    try {
      if (missing) throw new Error(missing);
      const session = await ort().InferenceSession.create(bytes, {
        ...base,
        executionProviders: ['cuda'],
        ...(device === 'auto' ? { logSeverityLevel: 4 } : {}),
      });
      return { session, provider: 'cuda' };
    } catch (err) {
      const why = cudaProblem(err);
      if (device === 'cuda') {
        throw new Error(`${where}: device 'cuda': the CUDA execution provider could not be loaded (${why}); its binaries are not in the npm package: fetch them with \`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install\` (network access, an NVIDIA GPU with CUDA 12 and cuDNN 9; this project's allowScripts skips them), or choose device 'cpu' or 'auto'`);
      }
      const opened = await createCpu(bytes, where, base);
      return { ...opened, fallback: why };
    }
  }
  return createCpu(bytes, where, base);
}

async function createCpu(bytes: Uint8Array, where: string, options: Ort.InferenceSession.SessionOptions): Promise<OpenedSession> {
  try {
    return { session: await ort().InferenceSession.create(bytes, { ...options, executionProviders: ['cpu'] }), provider: 'cpu' };
  } catch (err) {
    throw new Error(`${where}: ONNX Runtime could not load the model: ${(err as Error).message}`);
  }
}

/** Why the CUDA provider cannot load, when its library is absent beside the ONNX Runtime binding. */
function cudaMissing(): string | undefined {
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const dir = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return fs.existsSync(path.join(dir, lib)) ? undefined : `its libraries are not installed (no ${lib} in ${dir})`;
}

function cudaProblem(err: unknown): string {
  const msg = (err as Error)?.message ?? String(err);
  if (/shared library|cannot open shared object|providers_shared/i.test(msg)) return 'its libraries are not installed';
  return msg.split('\n')[0];
}

/**
 * Runs one all-zero image through the session and returns the dims of each of `outputs`: the shapes
 * of tensors whose declaration the graph leaves out (typical for exposed intermediates).
 */
export async function probeOutputDims(session: Ort.InferenceSession, input: string, inputDims: readonly number[], outputs: readonly string[]): Promise<number[][]> {
  const dims = [1, ...inputDims.slice(1)];
  const feed = new (ort().Tensor)('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  const result = await session.run({ [input]: feed }, [...outputs]);
  return outputs.map((name) => [...result[name].dims]);
}
