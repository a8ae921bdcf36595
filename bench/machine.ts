// The machine a benchmark ran on, and its theoretical float32 peak.
import * as fs from 'node:fs';
import * as os from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  mhz: number;
  flags: string[];
  memoryGiB: number;
  node: string;
  os: string;
  /** cores x clock x FMA units x float32 lanes x 2 flops; see peakNote. */
  peakGflopsF32: number;
  peakNote: string;
}

export function describeMachine(): Machine {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = (/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/);
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.speed ?? 0);
  const cores = os.cpus().length;
  const lanes = flags.includes('avx512f') ? 16 : flags.includes('avx2') ? 8 : 4;
  // Server cores with AVX-512 (Skylake-SP Gold/Platinum onwards, Sapphire/Emerald Rapids) issue
  // two 512-bit FMAs per cycle (ports 0 and 5); AVX2 cores two 256-bit FMAs.
  const fmaUnits = 2;
  const peak = (cores * mhz * fmaUnits * lanes * 2) / 1000;
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores,
    mhz,
    flags: flags.filter((f) => /^(avx512f|avx512_bf16|avx512_fp16|amx_tile|avx2|fma)$/.test(f)),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    peakGflopsF32: Math.round(peak * 10) / 10,
    peakNote: `${cores} cores x ${(mhz / 1000).toFixed(2)} GHz x ${fmaUnits} FMA units x ${lanes} float32 lanes x 2 flops (base clock as reported by the VM; turbo may exceed it)`,
  };
}
