// @ts-check
// Run-time helper of the generated validators: the error class of $async schemas.
// Re-exported here so generated code imports only @kv-envelope/ts: this import resolves from
// wherever the package is installed (its own ajv dependency), whatever ajv the project has.
import m from "ajv/dist/runtime/validation_error.js";
export default m;
