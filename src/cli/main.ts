#!/usr/bin/env node
// embmap command line: dispatches to one module per command under commands/.
import { parseArgs, UsageError, type Command } from './command';
import { applyCommand } from './commands/apply';
import { benchCommand } from './commands/bench';
import { demoCommand } from './commands/demo';
import { doctorCommand } from './commands/doctor';
import { experimentCommand } from './commands/experiment';
import { extractCommand } from './commands/extract';
import { fitCommand } from './commands/fit';
import { importCommand } from './commands/import';
import { inspectCommand } from './commands/inspect';
import { serveCommand } from './commands/serve';
import { VERSION } from '../version';

const commands: Command[] = [
  demoCommand, doctorCommand, importCommand, extractCommand, fitCommand, applyCommand, inspectCommand,
  experimentCommand, serveCommand, benchCommand,
];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: embmap <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'embmap <command> --help shows a command\'s usage.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`embmap ${VERSION}\n`);
    return 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`embmap: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help')) {
    process.stdout.write(`usage: ${cmd.usage}\n`);
    return 0;
  }
  try {
    await cmd.run(parseArgs(rest, cmd.flags, cmd.usage));
    return 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`embmap ${name}: ${msg}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
