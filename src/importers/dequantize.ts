// Weight decoding shared by the importers: affine-quantised integers (per tensor or per channel)
// and IEEE half floats to float32.
import { halfToFloat } from '../onnx/tensor';

export function halfsToFloat(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, halfToFloat);
}

/**
 * value = (q - zeroPoint[k]) * scale[k], where k is the index along `axis` of `shape` (one scale
 * for per-tensor quantisation).
 */
export function dequantize(
  q: ArrayLike<number>, shape: readonly number[], scale: ArrayLike<number>, zeroPoint: ArrayLike<number>, axis: number,
): Float32Array {
  const out = new Float32Array(q.length);
  if (scale.length === 1) {
    const s = scale[0], z = zeroPoint[0] ?? 0;
    for (let i = 0; i < q.length; i++) out[i] = (q[i] - z) * s;
    return out;
  }
  // Elements of one channel repeat every `inner` values, cycling through `scale.length` channels.
  let inner = 1;
  for (let a = axis + 1; a < shape.length; a++) inner *= shape[a];
  for (let i = 0; i < q.length; i++) {
    const k = Math.floor(i / inner) % scale.length;
    out[i] = (q[i] - (zeroPoint[k] ?? 0)) * scale[k];
  }
  return out;
}
