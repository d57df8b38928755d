// The Node entry: native addon when it loads, wasm otherwise.
export * from './api.js';
export { init, loadBackend } from './backend/init_node.js';
