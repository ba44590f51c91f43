"""Writes smollm2_token_ids.json: token ids of sample texts as llama.cpp tokenizes them
with SmolLM2-135M-Instruct.Q4_1.gguf. The Rust tokenizer is tested against this file.

Run once: pip install llama-cpp-python; python3 make_smollm2_token_ids.py MODEL.gguf
"""

import json
import sys

import llama_cpp

TEXTS = [
    "Hello world",
    " leading space and  two  spaces",
    "The year 2024 had 366 days, not 365.",
    "Prices: $1,234.56 or €99 (about 3.5%).",
    "line one\nline two\n\n\tindented",
    "naïve café, Straße, 東京, emoji 🚀✨",
    "def add(a, b):\n    return a + b  # sum\n",
    "don't, I'll, we're, they've, she'd",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "URLs like https://example.com/path?q=1&x=2 and e-mail a.b@c.org",
]

llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
cases = [
    {"text": text, "ids": llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)}
    for text in TEXTS
]
source = f"llama.cpp via llama-cpp-python {llama_cpp.__version__}"
lines = [json.dumps(case, ensure_ascii=False) for case in cases]
with open("smollm2_token_ids.json", "w", encoding="utf-8") as out:
    out.write('{"tokenizer": ' + json.dumps(source) + ',\n "cases": [\n  ')
    out.write(",\n  ".join(lines))
    out.write("\n ]\n}\n")
