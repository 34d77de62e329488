// @ts-check
// Run-time helper of the generated validators: ajv-formats' checks for the formats that are
// functions rather than regular expressions (date-time, uri, …). Re-exported from here so
// generated code imports only @kv-envelope/ts, and this import resolves from wherever the package
// is installed (its own ajv-formats dependency), whatever ajv the consumer's project has, if any.
import m from "ajv-formats/dist/formats.js";
export default m;
