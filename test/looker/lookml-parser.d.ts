// lookml-parser ships no types; this covers the one entry point the LookML checks use.
declare module "lookml-parser" {
  interface ParseFilesOptions {
    cwd?: string;
    source?: string | { path: string; content: string }[];
    console?: { log(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void };
    transformations?: { applyExtensionsRefinements?: boolean; removeAbstract?: boolean };
    fileOutput?: "by-name" | "array" | "by-type" | "none";
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Parsed = Record<string, any>;
  const lookmlParser: {
    parse(text: string): Parsed;
    parseFiles(options: ParseFilesOptions): Promise<Parsed>;
  };
  export default lookmlParser;
}
