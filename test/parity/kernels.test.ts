// Every case of the fixture set (FERRO_FIXTURES, default test/fixtures/public) on
// every backend (FERRO_BACKEND restricts), each its own test named `<case> [<backend>]`.
// Then again on native and wasm with uninitialised outputs poisoned: storage from
// allocUninit (ops' `output`, which skips the zero-fill) holds NaN / junk, so an op whose
// kernel does not write every element of its output fails its case instead of passing on a
// buffer that happened to be zero.
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { NativeBackend } from '../../ts/backend/native.js';
import type { WasmBackend } from '../../ts/backend/wasm.js';
import { describeEachBackend, getBackend, selectedBackends } from '../helpers/backends.js';
import { loadFixtures } from '../helpers/fixtures.js';
import { HANDLERS } from './cases.js';
import { MODEL_HANDLERS } from './models.js';

const fx = loadFixtures();
const handlers = { ...HANDLERS, ...MODEL_HANDLERS };

describeEachBackend('parity', (ctx) => {
  for (const c of fx.cases) {
    it(`${c.name} [${ctx.name}]`, async () => {
      const handler = handlers[c.op];
      if (!handler) throw new Error(`no parity handler for op '${c.op}' (case ${c.name})`);
      await handler({ backend: ctx.backend, fx, c });
    });
  }
});

for (const name of selectedBackends().filter((n) => n !== 'reference')) {
  describe(`parity, uninitialised outputs poisoned [${name}]`, () => {
    let backend: NativeBackend | WasmBackend;
    beforeAll(async () => {
      backend = (await getBackend(name)) as NativeBackend | WasmBackend;
      backend.setPoisonUninitialised(true);
    });
    afterAll(() => backend.setPoisonUninitialised(false));
    for (const c of fx.cases) {
      it(`${c.name} [${name}, poisoned]`, async () => {
        await handlers[c.op]!({ backend, fx, c });
      });
    }
  });
}
