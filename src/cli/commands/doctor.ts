import { doctor, formatDoctor } from '../../engine/doctor';
import type { Command } from '../command';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'print the native backends, their libraries, kernels and threads',
  flags: { json: { type: 'boolean', description: 'print JSON' } },
  run(args) {
    const report = doctor();
    process.stdout.write((args.json ? JSON.stringify(report, null, 2) : formatDoctor(report)) + '\n');
  },
};
