// Types of scripts/build-collector.mjs, for the TypeScript that imports it (tests).
export declare const COLLECTOR_OUT: string;
export declare function buildCollector(options?: { quiet?: boolean }): Promise<void>;
