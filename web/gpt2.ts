// The GPT-2 page (gpt2.html): loads a Hugging Face checkpoint folder from a URL with
// models.GPT2LMHeadModel.fromPretrained (fetch; model.safetensors streamed into wasm memory
// tensor by tensor), tokenizes with the checkpoint's tokenizer.json and generates with the KV
// cache on the main thread. The query string presets the form and runs it once:
// ?model=<folder URL or owner/name>&prompt=...&tokens=16&mode=greedy|sample. The default checkpoint is the
// tiny random GPT-2 of the test fixtures, which the build copies into models/tiny-gpt2/.
import { generate, init, models } from 'ferroformer';

const DEFAULT_MODEL = './models/tiny-gpt2/';
const DEFAULT_PROMPT = 'The hammer does the talking';
const HUB_NAME = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

const $ = <T extends HTMLElement = HTMLElement>(selector: string): T => {
  const element = document.querySelector<T>(selector);
  if (element === null) throw new Error(`gpt2 demo: ${selector} is missing from the page`);
  return element;
};
const show = (testid: string, value: string): void => {
  $(`[data-testid=${testid}]`).textContent = value;
};

const ready = init();
let loaded: { url: string; model: models.GPT2LMHeadModel } | null = null;

async function load(url: string): Promise<models.GPT2LMHeadModel> {
  if (loaded?.url === url) return loaded.model;
  loaded?.model.dispose();
  loaded = null;
  await ready;
  show('gpt2-status', 'loading');
  const mib = (n: number): string => (n / (1 << 20)).toFixed(1);
  // 'owner/name' goes to the Hub (https://huggingface.co/<owner>/<name>/resolve/main/);
  // anything else is a folder URL, relative to this page.
  const source = HUB_NAME.test(url) ? url : new URL(url, location.href).href;
  const model = await models.GPT2LMHeadModel.fromPretrained(source, {
    onProgress: (done, total) => show('gpt2-loaded', total === null ? `${mib(done)} MiB` : `${mib(done)} / ${mib(total)} MiB`),
  });
  const params = [...model.parameters()].reduce((n, p) => n + p.size, 0);
  show('gpt2-params', params.toLocaleString('en'));
  // What loading allocated besides the weights: at most one copy of the largest tensor.
  show('gpt2-load-stats', JSON.stringify(model.loadStats));
  loaded = { url, model };
  return model;
}

async function run(): Promise<void> {
  const url = $<HTMLInputElement>('#gpt2-model').value.trim();
  const prompt = $<HTMLTextAreaElement>('#gpt2-prompt').value;
  const maxTokens = Number($<HTMLInputElement>('#gpt2-tokens').value);
  const mode = $<HTMLSelectElement>('#gpt2-mode').value;
  $<HTMLButtonElement>('#gpt2-run').disabled = true;
  try {
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new RangeError(`new tokens must be a positive integer, got ${maxTokens}`);
    const model = await load(url);
    const tok = model.tokenizer();
    const ids = tok.encode(prompt);
    if (ids.length === 0) throw new RangeError('the prompt must not be empty');
    // Positions beyond n_positions have no embedding.
    const budget = Math.min(maxTokens, model.config.n_positions - ids.length);
    if (budget < 1) throw new RangeError(`the prompt has ${ids.length} tokens; the model sees ${model.config.n_positions} at most`);
    show('gpt2-status', 'generating');
    show('gpt2-prompt-text', prompt);
    show('gpt2-prompt-ids', JSON.stringify(ids));
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint first
    const started = performance.now();
    const options = { maxTokens: budget, eosId: tok.eosTokenId, useCache: true };
    const [hyp] = mode === 'sample'
      ? generate.sample(model, [ids], { ...options, temperature: 0.8, topK: 40, seed: 1 })
      : generate.greedy(model, [ids], options);
    const seconds = (performance.now() - started) / 1000;
    show('gpt2-ids', JSON.stringify(hyp!.tokens));
    show('gpt2-text', tok.decode(hyp!.tokens));
    show('gpt2-speed', (hyp!.tokens.length / seconds).toFixed(1));
    $('#gpt2-detail').textContent = `${mode}, ${hyp!.tokens.length} tokens in ${seconds.toFixed(2)} s on the wasm backend`;
    show('gpt2-status', 'done');
  } catch (e) {
    show('gpt2-status', 'error');
    $('#gpt2-detail').textContent = `${(e as Error).name}: ${(e as Error).message}`;
    console.error(e);
  } finally {
    $<HTMLButtonElement>('#gpt2-run').disabled = false;
  }
}

const query = new URLSearchParams(location.search);
$<HTMLInputElement>('#gpt2-model').value = query.get('model') ?? DEFAULT_MODEL;
$<HTMLTextAreaElement>('#gpt2-prompt').value = query.get('prompt') ?? DEFAULT_PROMPT;
$<HTMLInputElement>('#gpt2-tokens').value = query.get('tokens') ?? '16';
$<HTMLSelectElement>('#gpt2-mode').value = query.get('mode') === 'sample' ? 'sample' : 'greedy';
$('#gpt2-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void run();
});
void run();
