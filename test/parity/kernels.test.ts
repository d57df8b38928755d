// Every case of the fixture set (FERRO_FIXTURES, default ../shared/fixtures/public) on
// every backend (FERRO_BACKEND restricts), each its own test named `<case> [<backend>]`.
import { it } from 'vitest';
import { describeEachBackend } from '../helpers/backends.js';
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
