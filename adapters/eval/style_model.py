"""A tiny model that answers in two styles, for measuring learning from use.

A random tiny model never opens an answer with the simulated user's liked word, so the user
accepts nothing and neither supervised nor preference training has anything to learn from.
`two_style_model` builds a 2-layer Llama (hidden 64, the bundled SmolLM2 tokenizer) and
pre-trains all its weights, briefly on CPU, to answer Hearth's own prompt layout (system prompt,
primer, one accepted example, the question; `agent.llm.prompt.assemble`) with a short answer that
opens with `liked` in `liked_share` of the cases and with `disliked` otherwise, independently of
the question and of the example's style. Sampled at temperature 1 it then pleases a
`StyleRater(liked)` about `liked_share` of the time: a base rate that training can raise.
Nothing here is used by the assistant itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from adapters.eval.simulated_user import CONTENT, HELD_OUT, QUESTIONS

CONFIG = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 49152,
          "max_position_embeddings": 2048, "tie_word_embeddings": True}


@dataclass(frozen=True)
class _Example:
    prompt_messages: list[dict[str, str]]
    target: str


def styled(opener: str, question: str) -> str:
    """The answer to `question` in the style that opens with `opener`."""
    return f"{opener}, {CONTENT.get(question, 'I think so.')}"


def random_model(folder: Path, seed: int = 0) -> Path:
    """A random tiny Llama with the real SmolLM2 tokenizer, saved as an mlx-lm folder."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    from agent.llm import convert
    from agent.llm.gguf_tokenizer import save_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _, meta = cast("tuple[Any, dict[str, Any]]",
                   mx.load(str(convert.bundled_gguf()), return_metadata=True))
    save_tokenizer(meta, folder)
    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(CONFIG))
    mx.eval(model.parameters())
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


def _rows(tokenizer: Any, system_prompt: str, liked: str, disliked: str, liked_share: float,
          n: int, rng: Any) -> list[tuple[list[int], int]]:
    from agent.llm import prompt

    questions = list(QUESTIONS + HELD_OUT)
    specials = prompt.special_tokens(tokenizer)

    def opener() -> str:
        return liked if rng.random() < liked_share else disliked

    rows = []
    for _ in range(n):
        q = questions[int(rng.integers(len(questions)))]
        examples = []
        if rng.random() < 0.75:  # Chat shows one similar accepted answer once there are some
            other = questions[int(rng.integers(len(questions)))]
            examples = [_Example([{"role": "user", "content": other}], styled(opener(), other))]
        built = prompt.assemble(system_prompt, q, examples=examples, specials=specials)
        head = tokenizer.apply_chat_template(built.messages, add_generation_prompt=True,
                                             return_dict=False)
        full = tokenizer.apply_chat_template(
            [*built.messages, {"role": "assistant", "content": styled(opener(), q)}],
            return_dict=False)
        rows.append((list(full), len(head)))
    return rows


def two_style_model(folder: Path, system_prompt: str, liked: str = "Aye", disliked: str = "Nay",
                    liked_share: float = 0.4, steps: int = 300, batch_size: int = 16,
                    learning_rate: float = 3e-3, seed: int = 0) -> Path:
    """`random_model` pre-trained to open its answers with `liked` in `liked_share` of cases
    (else `disliked`); see the module docstring. Returns the mlx-lm folder (written once: a
    folder already pre-trained with the same styles, share and steps is reused)."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np
    from mlx.utils import tree_flatten

    from adapters.training.batching import PAD_TO, answer_positions
    from adapters.training.preference import sequence_scores
    from agent.llm.weights import load_model

    done = folder / "two_style.json"
    wanted = {"liked": liked, "disliked": disliked, "liked_share": liked_share, "steps": steps}
    try:
        if {k: json.loads(done.read_text()).get(k) for k in wanted} == wanted:
            return folder
    except (OSError, ValueError):
        pass
    random_model(folder, seed)
    model, tokenizer = load_model(folder)  # the runtime's own loader
    rng = np.random.default_rng(seed)
    rows = _rows(tokenizer, system_prompt, liked, disliked, liked_share, steps * batch_size, rng)

    def batch(chunk: list[tuple[list[int], int]]) -> tuple[Any, Any, Any]:
        width = PAD_TO * -(-max(len(t) for t, _ in chunk) // PAD_TO) + 1
        arr = np.zeros((len(chunk), width), np.int32)
        for i, (t, _) in enumerate(chunk):
            arr[i, :len(t)] = t
        idx, mask = answer_positions([(off, len(t)) for t, off in chunk], width)
        return mx.array(arr), mx.array(idx), mx.array(mask)

    def loss(m: Any, tokens: Any, idx: Any, mask: Any) -> Any:
        return -sequence_scores(m, tokens, idx, mask).sum() / mask.sum()

    optimizer = optim.Adam(learning_rate=learning_rate)
    step = nn.value_and_grad(model, loss)
    model.train()
    losses = []
    for s in range(steps):
        value, grads = step(model, *batch(rows[s * batch_size:(s + 1) * batch_size]))
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state, value)
        losses.append(float(value))
    model.eval()
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    done.write_text(json.dumps({**wanted, "first_loss": losses[0], "last_loss": losses[-1]}))
    return folder
