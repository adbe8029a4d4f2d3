// `npm run quarantine -- list | reload [id…]`: the summaries the warehouse refused for good
// (collector/quarantine.ts). `list` prints one line per entry; `reload` queues entries (all, or the
// ids given) for the running collector's next load cycle, which loads them exactly once or puts them
// back with the new reason. Reads the same settings as the collector to find its data directory.
import { loadConfigOrExit } from "./config.ts";
import { quarantineDir } from "./collector.ts";
import { Quarantine } from "./quarantine.ts";

const [command, ...ids] = process.argv.slice(2);
const q = new Quarantine(quarantineDir(loadConfigOrExit()));
if (command === "list") {
  const notes = q.list();
  for (const n of notes) process.stdout.write(`${n.id}\t${n.quarantinedAt}\t${JSON.stringify(n.producerId)}\tseq ${n.seq}\t${n.reason}\t${n.error}\n`);
  process.stderr.write(`${notes.length} quarantined summar${notes.length === 1 ? "y" : "ies"} in ${q.dir}\n`);
} else if (command === "reload") {
  try {
    const queued = q.queueReload(ids);
    process.stdout.write(`${queued.length} queued; the collector loads them in its next load cycle\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
} else {
  process.stderr.write("usage: npm run quarantine -- list | reload [id ...]\n");
  process.exit(2);
}
