// Generates generated/schema.d.ts (the API's types) from openapi.json, the snapshot of the
// server's OpenAPI document that a Rust test keeps equal to what the server serves. It is
// written only when it changes, outside src/ (which cargo watches to rebuild the console).
import fs from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';

const spec = JSON.parse(fs.readFileSync(new URL('../openapi.json', import.meta.url), 'utf8'));
const ast = await openapiTS(spec, { emptyObjectsUnknown: true });
const code = '// Generated from openapi.json by scripts/gen-api.mjs. Do not edit.\n' + astToString(ast);
const target = new URL('../generated/schema.d.ts', import.meta.url);
fs.mkdirSync(new URL('.', target), { recursive: true });
if (!fs.existsSync(target) || fs.readFileSync(target, 'utf8') !== code) fs.writeFileSync(target, code);
