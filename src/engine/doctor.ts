// What `embmap doctor` reports: the backends, their libraries, selected kernels and threads.
import * as os from 'node:os';
import { Engine, type BackendInfo } from './engine';

export interface DoctorReport {
  node: string;
  platform: string;
  cpu: string;
  cores: number;
  defaultBackend: string;
  backends: BackendInfo[];
  cuda: { available: boolean; reason: string };
  /** cpu-blas: whether a BLAS/LAPACK library loaded (the backends' `library` says which). */
  blas: { available: boolean; reason: string };
}

export function doctor(): DoctorReport {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.arch()} ${os.release()}`,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    defaultBackend: Engine.get().name,
    backends: Engine.available(),
    cuda: Engine.cudaStatus(),
    blas: Engine.blasStatus(),
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `embmap doctor`,
    `  node      ${r.node} on ${r.platform}`,
    `  cpu       ${r.cpu} (${r.cores} cores)`,
    `  default   ${r.defaultBackend}${process.env.EMBMAP_BACKEND ? ' (from EMBMAP_BACKEND)' : ''}`,
  ];
  for (const b of r.backends) {
    lines.push(`  backend   ${b.name}`);
    lines.push(`    library ${b.library}`);
    lines.push(`    kernel  ${b.kernel}${b.reason ? ` (${b.reason})` : ''}`);
    lines.push(`    threads ${b.threads}`);
    if (b.name === 'cuda') lines.push(`    precision ${b.precision}`);
  }
  if (!r.cuda.available) {
    lines.push(`  cuda      unavailable, the CPU backend runs: ${r.cuda.reason}`);
  }
  if (!r.blas.available) {
    lines.push(`  cpu-blas  unavailable: ${r.blas.reason}`);
  }
  return lines.join('\n');
}
