// The portable shared core, for AssemblyScript importers (the filter): `import { … } from "../shared"`.
// Node code imports shared/node.ts instead, which loads the portable runtime first.
export * from "./sketch";
export * from "./series";
export * from "./bytes";
export * from "./wire";
