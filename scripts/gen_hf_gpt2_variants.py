"""Tiny GPT-2 checkpoints for the config options the public fixture does not exercise, with
transformers' logits and loss: writes test/fixtures/hf_gpt2_variants/<name>/ (save_pretrained
output) and <name>/expected.json. Run: /path/to/python scripts/gen_hf_gpt2_variants.py
(needs torch, transformers, safetensors; not part of npm test)."""
import json, os, sys
import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'hf_gpt2_variants')
BASE = dict(vocab_size=61, n_positions=24, n_embd=32, n_layer=3, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, initializer_range=0.3, bos_token_id=0, eos_token_id=0)
VARIANTS = {
    # scores / (layer_idx + 1), exact-erf GELU, an explicit feed-forward width
    'inverse_layer_idx_gelu': dict(scale_attn_by_inverse_layer_idx=True, activation_function='gelu', n_inner=48),
    # no 1/sqrt(D) scaling, ReLU, an untied head stored as lm_head.weight
    'unscaled_relu_untied': dict(scale_attn_weights=False, activation_function='relu', tie_word_embeddings=False),
    # gelu_pytorch_tanh, bfloat16 weights on disk
    'tanh_bf16': dict(activation_function='gelu_pytorch_tanh'),
}

for name, extra in VARIANTS.items():
    torch.manual_seed(1000 + len(name))
    config = GPT2Config(**BASE, **extra)
    model = GPT2LMHeadModel(config).eval()
    out = os.path.join(ROOT, name)
    dtype = torch.bfloat16 if name.endswith('bf16') else torch.float32
    model.to(dtype).save_pretrained(out, safe_serialization=True)
    # Reference values from the weights as stored (bf16 widened exactly), in float64.
    ref = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float64).eval()
    ids = torch.tensor([[(7 * i + 3) % config.vocab_size for i in range(20)], [(5 * i + 1) % config.vocab_size for i in range(20)]])
    labels = ids.clone()
    labels[1, :4] = -100
    with torch.no_grad():
        r = ref(ids, labels=labels)
    json.dump({
        'generator': 'scripts/gen_hf_gpt2_variants.py', 'config': extra, 'dtype': str(dtype).replace('torch.', ''),
        'input_ids': ids.tolist(), 'labels': labels.tolist(),
        'logits': [round(v, 7) for v in r.logits.reshape(-1).tolist()], 'loss': r.loss.item(),
        'note': 'logits and loss of the float64 model built from the stored weights',
    }, open(os.path.join(out, 'expected.json'), 'w'))
    print(name, 'loss', r.loss.item(), file=sys.stderr)
