// The browser entry: the wasm bundle only (bundlers pick it through the "browser" condition).
export * from './api.js';
export { init, type BrowserInitOptions } from './backend/init_browser.js';
