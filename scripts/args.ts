// Command-line parsing shared by every meshlook command: node's parseArgs plus the two behaviours each
// command owes its user, `--help` printing the usage (exit 0) and a bad option printing the reason and the
// usage (exit 2), instead of a stack trace.
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommandLine<O extends Options>(usage: string, options: O, argv = process.argv.slice(2), allowPositionals = false) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals, strict: true });
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed as unknown as { values: { [K in keyof O]: O[K] extends { type: "boolean" } ? boolean | undefined : string | undefined }; positionals: string[] };
}

/** A number in (min, max], or the reason and the usage and exit 2. */
export function numberOption(usage: string, name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n <= min || n > max) {
    console.error(`--${name}: must be a number in (${min}, ${max}], got "${raw}"\n${usage}`);
    process.exit(2);
  }
  return n;
}
