#!/usr/bin/env node
// embmap command line: dispatches to one module per command under commands/.
import { helpText, parseArgs, synopsis, UsageError, type Command } from './command';
import { applyCommand } from './commands/apply';
import { benchCommand } from './commands/bench';
import { cardCommand } from './commands/card';
import { demoCommand } from './commands/demo';
import { doctorCommand } from './commands/doctor';
import { experimentCommand } from './commands/experiment';
import { extractCommand } from './commands/extract';
import { fitCommand } from './commands/fit';
import { importCommand } from './commands/import';
import { inspectCommand } from './commands/inspect';
import { serveCommand } from './commands/serve';
import { versionCommand } from './commands/version';

export const commands: Command[] = [
  demoCommand, doctorCommand, importCommand, extractCommand, fitCommand, applyCommand, inspectCommand, cardCommand,
  experimentCommand, serveCommand, benchCommand, versionCommand,
];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: embmap <command> [options]',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'embmap <command> --help (or embmap help <command>) shows its options; embmap --version its version.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (!first || first === '--help' || first === '-h' || (first === 'help' && rest.length === 0)) {
    process.stdout.write(help() + '\n');
    return first ? 0 : 1;
  }
  // `help CMD` is `CMD --help`; --version and -V are the version command.
  const [name, argsv] = first === 'help' ? [rest[0], ['--help']] : [first === '--version' || first === '-V' ? 'version' : first, rest];
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`embmap: unknown command '${name}'\n\n${help()}\n`);
    return 2;
  }
  try {
    const args = parseArgs(argsv, cmd.flags);
    if (args.help) {
      process.stdout.write(helpText(cmd) + '\n');
      return 0;
    }
    await cmd.run(args);
    return 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Usage errors end with the usage line (unless the command wrote its own).
    const usage = err instanceof UsageError && !msg.includes('usage: ') ? `\nusage: ${synopsis(cmd)}\n(embmap ${name} --help lists every option)` : '';
    process.stderr.write(`embmap ${name}: ${msg}${usage}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
