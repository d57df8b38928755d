"""Writes test/fixtures/hf_tokenizer_extra.json: a larger parity set for the Hugging Face
byte-level BPE tokenizer, made by the `tokenizers` library itself.

Two tokenizers are checked:
  * "fixture": the tokenizer.json of test/fixtures/hf_gpt2_public (143 merges);
  * "trained": a byte-level BPE trained here with `tokenizers` on a deterministic multilingual
    text (about 1,500 merges), with two special added tokens, saved with its merges in the
    legacy "left right" string form that older Hub checkpoints (openai-community/gpt2) use.
    Its whole tokenizer.json is embedded in the fixture.

For each tokenizer the fixture holds
  * encode cases: curated hard strings (contractions, emoji ZWJ sequences, flags, skin tones,
    CJK, combining marks, every Unicode space, NEL and BOM, CRLF, leading/trailing spaces and
    newlines, the empty string, special tokens inside text) and seeded random strings, each
    with `tokenizers`' ids and its decode of them (skip_special_tokens True and False);
  * decode cases: seeded random id sequences (many decode to invalid UTF-8) with `tokenizers`'
    decode, both settings.

Lone surrogates are not representable in UTF-8 (Python and `tokenizers` refuse them), so no
string contains one.

Run: /work/torchenv/bin/python scripts/gen_hf_tokenizer_extra.py  (writes the fixture; takes
a few seconds). Not run by the tests.
"""

import json
import random
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = ROOT / "test" / "fixtures" / "hf_gpt2_public"
OUT = ROOT / "test" / "fixtures" / "hf_tokenizer_extra.json"
SEED = 20261129

CURATED = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    " \n ",
    "\t",
    "Hello world",
    " Hello world",
    "Hello world ",
    "Hello  world   ",
    "   leading and trailing   ",
    "\n\nnewlines first\nand last\n\n",
    "line one\r\nline two\r\n",
    "a\u000bb\u000cc",
    "I'm sure it's what they'd've said; we'll see, you're right, I've done it.",
    "I'M LOUD IT'S FINE WE'LL",
    "rock 'n' roll, ''quoted'' and 'single'",
    "don\u2019t (a typographic apostrophe)",
    "numbers 1234567890 3.14159 -42 1e-5 0x1F 1,000,000",
    "\u0661\u0662\u0663 Arabic-Indic digits, \u00b2 superscript, \u00bd half, \u2167 Roman eight",
    "Forge \U0001F525\U0001F528 and \u2692\ufe0f notes",
    "family \U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 and \U0001F3F3\ufe0f\u200d\U0001F308 flag",
    "flags \U0001F1EF\U0001F1F5\U0001F1EB\U0001F1F7\U0001F1FA\U0001F1F8",
    "skin tones \U0001F44D\U0001F3FB\U0001F44D\U0001F3FF \U0001F9D1\U0001F3FD\u200d\U0001F4BB",
    "keycap 1\ufe0f\u20e3 #\ufe0f\u20e3",
    "\u9244\u3068\u706b\uff01\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002",
    "\u4e2d\u6587\u6d4b\u8bd5\uff0c\u6c49\u5b57\u3002",
    "\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8",
    "\u1100\u1161\u11a8 (conjoining jamo)",
    "na\u00efve caf\u00e9 r\u00e9sum\u00e9",
    "nai\u0308ve cafe\u0301 (combining marks)",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dalgo",
    "\u0915\u094d\u0937 \u0939\u093f\u0928\u094d\u0926\u0940 (Devanagari)",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0645\u0646 \u0627\u0644\u064a\u0645\u064a\u0646",
    "\u05e2\u05d1\u05e8\u05d9\u05ea \u200f\u200e marks",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u0420\u0443\u0441\u0441\u043a\u0438\u0439",
    "nbsp\u00a0here, thin\u2009space, em\u2003space, ideographic\u3000space",
    "line\u2028separator\u2029paragraph",
    "NEL\u0085between and\u0085\u0085twice",
    "\ufeffBOM at the start and \ufeff inside",
    "!\ufeff and \ufeff\n and a\ufeff\ufeff b",
    "x\u0085\u0085y and a \u0085b and \n\u0085\n",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "soft\u00adhyphen",
    "<|endoftext|>",
    "before<|endoftext|>after",
    " <|endoftext|> spaced <|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "<|endoftext|",
    "<|pad|> and <|sep|>",
    "<|endoftext|>\n<|pad|>",
    "\u0000 nul and \u0001 controls \u007f del",
    "tabs\t\tand   spaces \t mixed",
    "   ",
    "x" * 200,
    "ab" * 100,
    " " * 50 + "end",
    "mixed\u00e9\U0001F600\u4e2d1a' b",
    "\U00010348 Gothic, \U0001D400 math bold, \U000E0041 tag",
    "\U000F0000 private use \ue000",
    "$100 + 50% = \u20ac\u00a3\u00a5 ~~ ^_^ @#&*",
    "```js\nconst x = 1;\n```",
    # Tokens that are also names on Object.prototype: a vocabulary kept in a plain object
    # would find them on the prototype.
    "__proto__ constructor prototype toString hasOwnProperty valueOf __defineGetter__",
    "x.__proto__=1; a.constructor.prototype",
]
# Trained into the "trained" tokenizer's vocabulary as whole tokens.
PROTOTYPE_WORDS = "__proto__ constructor prototype toString hasOwnProperty valueOf __defineGetter__"

# Pieces random strings are built from: each draw takes a code point from one range.
RANGES = [
    (0x20, 0x7E, 8),  # printable ASCII, weighted heavily
    (0x09, 0x0D, 2),  # \t \n \v \f \r
    (0x00A0, 0x00FF, 2),  # Latin-1 supplement
    (0x0300, 0x036F, 2),  # combining diacritics
    (0x0370, 0x03FF, 1),  # Greek
    (0x0400, 0x04FF, 1),  # Cyrillic
    (0x0600, 0x06FF, 1),  # Arabic
    (0x0900, 0x097F, 1),  # Devanagari
    (0x2000, 0x206F, 2),  # general punctuation incl. spaces, ZWJ, separators
    (0x3000, 0x303F, 1),  # CJK punctuation incl. ideographic space
    (0x4E00, 0x9FFF, 2),  # CJK ideographs
    (0xAC00, 0xD7A3, 1),  # Hangul syllables
    (0xFE00, 0xFE0F, 1),  # variation selectors
    (0x1F300, 0x1FAFF, 3),  # emoji
    (0x1F3FB, 0x1F3FF, 1),  # skin tones
]
EXTRA_CHARS = ["\u0085", "\ufeff", "\u200d", "'", "'s", "'ll", "<|endoftext|>", "<|pad|>", "  ", "\n\n", "0123"]


def random_strings(rng: random.Random, count: int) -> list[str]:
    total_weight = sum(w for _, _, w in RANGES)
    out = []
    for _ in range(count):
        length = rng.randint(0, 40)
        parts = []
        for _ in range(length):
            if rng.random() < 0.08:
                parts.append(rng.choice(EXTRA_CHARS))
                continue
            r = rng.uniform(0, total_weight)
            for lo, hi, w in RANGES:
                if r < w:
                    parts.append(chr(rng.randint(lo, hi)))
                    break
                r -= w
            else:
                parts.append(chr(rng.randint(RANGES[-1][0], RANGES[-1][1])))
        out.append("".join(parts))
    return out


def training_text(rng: random.Random) -> list[str]:
    notes = (ROOT / "data" / "ferrous_notes.txt").read_text(encoding="utf-8")
    lines = notes.splitlines() * 20
    lines += [s for s in CURATED if s] * 30
    lines += random_strings(rng, 3000)
    lines += [PROTOTYPE_WORDS, PROTOTYPE_WORDS.replace(" ", "")] * 200
    rng.shuffle(lines)
    return lines


def train_tokenizer(rng: random.Random) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1800,
        min_frequency=2,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text(rng), trainer=trainer)
    return tok


def with_string_merges(tokenizer_json: str) -> dict:
    """The same tokenizer with merges written as "left right" strings (the legacy form)."""
    doc = json.loads(tokenizer_json)
    doc["model"]["merges"] = [f"{a} {b}" for a, b in doc["model"]["merges"]]
    return doc


def prototype_keys_tokenizer() -> dict:
    """A hand-made byte-level BPE whose vocabulary has the keys `__proto__`, `constructor` and
    `prototype` (a reader keeping it in a plain object would break on them). Its pre-tokenizer
    does not split (use_regex false), so merges cross the underscores."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    merges: list[list[str]] = []

    def bpe(word: str) -> list[str]:
        pieces = list(word)
        ranks = {(a, b): i for i, (a, b) in enumerate(merges)}
        while True:
            pairs = [(ranks[p], i) for i, p in enumerate(zip(pieces, pieces[1:])) if p in ranks]
            if not pairs:
                return pieces
            _, i = min(pairs)
            pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]

    # Each new merge joins the first two pieces the merges so far leave, until one is left.
    for word in ["__proto__", "constructor", "prototype", "hasOwnProperty"]:
        while len(pieces := bpe(word)) > 1:
            merges.append([pieces[0], pieces[1]])
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges},
    }


def cases_for(tok: Tokenizer, strings: list[str], rng: random.Random) -> dict:
    encode = []
    for text in strings:
        ids = tok.encode(text).ids
        encode.append(
            {
                "text": text,
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=True),
                "decoded_with_special": tok.decode(ids, skip_special_tokens=False),
            }
        )
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    decode = []
    for _ in range(200):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(0, 12))]
        decode.append(
            {
                "ids": ids,
                "decoded": tok.decode(ids, skip_special_tokens=True),
                "decoded_with_special": tok.decode(ids, skip_special_tokens=False),
            }
        )
    return {"encode": encode, "decode": decode}


def main() -> None:
    rng = random.Random(SEED)
    strings = CURATED + random_strings(rng, 300)

    fixture_tok = Tokenizer.from_file(str(FIXTURE_DIR / "tokenizer.json"))
    trained = train_tokenizer(rng)
    trained_doc = with_string_merges(trained.to_str())
    # Check the rewritten document is the same tokenizer before embedding it.
    reloaded = Tokenizer.from_str(json.dumps(trained_doc))
    assert all(reloaded.encode(s).ids == trained.encode(s).ids for s in strings)

    proto_doc = prototype_keys_tokenizer()
    proto_tok = Tokenizer.from_str(json.dumps(proto_doc))
    assert len(proto_tok.encode("__proto__").ids) == 1

    out = {
        "generator": "scripts/gen_hf_tokenizer_extra.py",
        "seed": SEED,
        "versions": {"tokenizers": tokenizers.__version__},
        "note": "ids and decodes from the tokenizers library (decode: skip_special_tokens True -> decoded, False -> decoded_with_special)",
        "tokenizers": {
            "fixture": {
                "source": "test/fixtures/hf_gpt2_public/tokenizer.json",
                **cases_for(fixture_tok, strings, rng),
            },
            "trained": {
                "source": "embedded (tokenizer_json); merges in the legacy string form",
                "vocab_size": reloaded.get_vocab_size(with_added_tokens=True),
                "tokenizer_json": trained_doc,
                **cases_for(reloaded, strings, rng),
            },
            "prototype_keys": {
                "source": "embedded (tokenizer_json); hand-made, vocabulary keys __proto__, constructor, prototype",
                "vocab_size": proto_tok.get_vocab_size(with_added_tokens=True),
                "tokenizer_json": proto_doc,
                **cases_for(proto_tok, CURATED, rng),
            },
        },
    }
    OUT.write_text(json.dumps(out, ensure_ascii=True, indent=None, separators=(",", ":")) + "\n", encoding="ascii")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(strings)} strings, vocab {out['tokenizers']['trained']['vocab_size']})")


if __name__ == "__main__":
    main()
