"""Account signals: SQL aggregations (DuckDB) of request features over a window.

One row per account. Every signal is oriented so that *higher is more suspicious*; what each
one means as evidence only becomes a probability after calibration on benign traffic
(``scoring.py``). Embedding signals (dispersion, effective rank, MMD to the benign
reference) come from :mod:`.embedding_signals` and are joined in by the detector.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .features import BOOL_FEATURES
from .pacing import timing_columns

__all__ = [
    "COUNT_SIGNALS",
    "EVAL_LICENCES",
    "EVAL_RUN_SIGNALS",
    "OPTIONAL_SIGNALS",
    "SHARE_SIGNALS",
    "SIGNAL_DESCRIPTIONS",
    "TEXT_SIGNALS",
    "account_signals",
    "permitted_signals",
]

#: licences under which benchmark and judge traffic is the permitted use, not a violation
EVAL_LICENCES = frozenset({"evaluation-permitted", "evaluation", "eval", "research-evaluation"})
#: signals of how an evaluation harness runs (scripted runs of one template per benchmark;
#: log-probabilities to score multiple-choice items, as lm-evaluation-harness does; several
#: samples per item for pass@k): the permitted use of an evaluation licence, so they carry no
#: evidence against an account under one (:func:`permitted_signals`). Unlike the benchmark and
#: judge shares they stay defined: they describe the benign population the detector is
#: calibrated on.
EVAL_RUN_SIGNALS = frozenset({
    "rate_per_active_hour", "timing_regularity", "peak_rate", "pacing_mix", "hour_entropy",
    "template_reuse", "near_dup_reuse", "suffix_reuse", "share_logprobs", "share_multi_n",
})
#: licences under which identity / system-prompt probing is permitted (red teams)
REDTEAM_LICENCES = frozenset({"redteam-permitted", "redteam", "red-team"})

SHARE_SIGNALS = tuple("share_" + f[2:] for f in BOOL_FEATURES)

#: a request that follows the account's previous one this closely was sent by a program
#: (a person reads an answer before asking again)
MACHINE_GAP_S = 5.0
#: ... in a run of at least this many such requests
MACHINE_RUN = 5
#: placeholder density is shrunk towards one per thousand words with a prior worth a thousand
#: words, so that a handful of requests full of template slots is not extreme evidence
_PRIOR_PLACEHOLDERS = 1
_PRIOR_WORDS = 1000
#: window for the peak request count
PEAK_WINDOW_MIN = 5
#: a benchmark set counts towards an account's breadth (and is named in its findings) from
#: this many matched requests on
BREADTH_MIN_HITS = 3

#: shares scored as binomial counts (``k`` of ``n`` requests), not as plain values
COUNT_SIGNALS = (*(s for s in SHARE_SIGNALS if s != "share_multiturn"), "pacing_mix")

SIGNAL_DESCRIPTIONS: dict[str, str] = {
    "volume": "log10 requests in the window",
    "rate_per_active_hour": "log10 requests per hour with any activity",
    "timing_regularity": "-ln(coefficient of variation of inter-arrival gaps): machine pacing",
    "peak_rate": f"log10 of the most requests in any {PEAK_WINDOW_MIN}-minute window",
    "pacing_mix": "share of the account's minority pacing mode: requests sent by a program "
    f"(runs of >= {MACHINE_RUN} requests < {MACHINE_GAP_S:g} s apart) inside human-paced "
    "traffic, or the "
    "reverse; a second traffic source hidden in a product's traffic",
    "hour_entropy": "entropy (bits) of the hour-of-day histogram: round-the-clock activity",
    "night_share": "share of requests between 00:00 and 06:00 in the account's region hours (UTC)",
    "template_reuse": "1 - distinct template prefixes / requests",
    "near_dup_reuse": "1 - distinct MinHash fingerprints / requests",
    "suffix_reuse": "1 - distinct template suffixes / requests",
    "harvest_ratio": "median completion/prompt token ratio",
    "completion_tokens": "log10 mean completion tokens",
    "placeholder_density": "placeholder tokens per word (desensitisation), shrunk towards "
    "1 per 1,000 words with a 1,000-word prior",
    "share_cot": "share of requests eliciting chain-of-thought",
    "share_dataset": "share of requests asking for training-data formats",
    "share_judge": "share of LLM-as-judge / pairwise comparison requests",
    "share_identity": "share of identity / system-prompt probes",
    "share_agent": "share of tool-use / agent-trace requests",
    "share_desens": "share of desensitised requests (placeholders, hashed identifiers)",
    "share_bench": "share of requests carrying benchmark items",
    "bench_breadth": "number of distinct benchmark sets (GSM8K, MMLU, HumanEval, ...) with "
    f">= {BREADTH_MIN_HITS} matched requests outside an evaluation licence: a product's users "
    "paste problems of its own domain, a model evaluation or a harvest runs a battery",
    "share_multiturn": "share of multi-turn requests (lower is more suspicious: 1 - share)",
    "share_logprobs": "share of requests asking for logprobs",
    "share_multi_n": "share of requests asking for n > 1 choices",
    "licence_use_mismatch": "share of evaluation-type traffic (benchmarks, judging) outside "
    "an evaluation licence",
    "region_mismatch": "share of requests from outside the licence's home region",
    "reseller_channel": "1 when the account comes through a reseller channel",
}

#: the signals computed here from text / metadata (embedding signals are added later)
TEXT_SIGNALS = (
    "volume", "rate_per_active_hour", "timing_regularity", "peak_rate", "pacing_mix",
    "hour_entropy", "template_reuse",
    "near_dup_reuse", "suffix_reuse", "harvest_ratio", "completion_tokens",
    "placeholder_density", *SHARE_SIGNALS, "bench_breadth", "licence_use_mismatch",
    "region_mismatch", "reseller_channel",
)
#: signals computed but not scored unless asked for (``DistillationDetector(signals=...)``):
#: benchmark breadth is an integer that a benign product can exceed by one or two sets over
#: a small reference (education sites draw on GSM8K, MMLU's mathematics and AIME); with the
#: 160-account reference of the held-out ``mixers`` scenario it made education accounts the
#: most suspicious benign ones (docs/detection.md)
OPTIONAL_SIGNALS = ("bench_breadth",)

_EXAMPLES = 5


def _sql_list(values: frozenset[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values)) + ")"


def _share_sql() -> str:
    parts = []
    for f in BOOL_FEATURES:
        name = "share_" + f[2:]
        if f == "f_multiturn":
            parts.append(f"1.0 - avg(CAST({f} AS DOUBLE)) AS {name}")
        elif f in ("f_bench", "f_judge"):
            parts.append(
                f"CASE WHEN lower(coalesce(mode(lic), '')) IN {_sql_list(EVAL_LICENCES)} THEN 0.0 "
                f"ELSE avg(CAST({f} AS DOUBLE)) END AS {name}"
            )
        elif f == "f_identity":
            parts.append(
                f"CASE WHEN lower(coalesce(mode(lic), '')) IN {_sql_list(REDTEAM_LICENCES)} THEN 0.0 "
                f"ELSE avg(CAST({f} AS DOUBLE)) END AS {name}"
            )
        else:
            parts.append(f"avg(CAST({f} AS DOUBLE)) AS {name}")
        parts.append(
            f"count(*) FILTER (WHERE {f}) AS n_{f[2:]}"
        )
        if f != "f_multiturn":
            parts.append(
                f"(list(event_id ORDER BY ts, event_id) FILTER (WHERE {f}))[1:{_EXAMPLES}] "
                f"AS ex_{f[2:]}"
            )
    return ",\n".join(parts)


_SIGNAL_SQL = f"""
WITH f AS (
    -- gap_us, in_window and machine come with the features (pacing.timing_columns)
    SELECT feats.*, coalesce(acc.licence, feats.licence) AS lic,
           coalesce(acc.channel, feats.channel) AS chan, acc.home_region AS home
    FROM feats LEFT JOIN acc ON feats.org_id = acc.org_id
),
hours AS (
    SELECT org_id, count(DISTINCT date_trunc('hour', ts)) AS active_hours FROM f GROUP BY org_id
),
bench_sets AS (
    SELECT org_id, count(*) AS n_sets, list(bench_set ORDER BY bench_set) AS sets FROM (
        SELECT org_id, bench_set FROM feats WHERE f_bench AND bench_set >= 0
        GROUP BY org_id, bench_set HAVING count(*) >= {BREADTH_MIN_HITS}
    ) GROUP BY org_id
)
SELECT
    f.org_id AS org_id,
    count(*) AS n_requests,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    mode(lic) AS licence,
    mode(chan) AS channel,
    log10(count(*)) AS volume,
    log10(count(*) / any_value(hours.active_hours)) AS rate_per_active_hour,
    CASE WHEN count(gap_us) >= 5 AND avg(gap_us) > 0
         THEN -ln(coalesce(stddev_pop(gap_us), 0) / avg(gap_us) + 0.01) END AS timing_regularity,
    log10(max(in_window)) AS peak_rate,
    least(count(*) FILTER (WHERE machine), count(*) FILTER (WHERE NOT machine))
        / count(*) AS pacing_mix,
    entropy(hour(ts)) AS hour_entropy,
    1.0 - count(DISTINCT tpl_prefix) / count(*) AS template_reuse,
    1.0 - count(DISTINCT fp_a) / count(*) AS near_dup_reuse,
    1.0 - count(DISTINCT tpl_suffix) / count(*) AS suffix_reuse,
    median(out_in_ratio) FILTER (WHERE completion_tokens IS NOT NULL) AS harvest_ratio,
    log10(1 + avg(completion_tokens)) AS completion_tokens,
    (sum(placeholders) + {_PRIOR_PLACEHOLDERS}) / (sum(words) + {_PRIOR_WORDS}) AS placeholder_density,
    {_share_sql()},
    CASE WHEN lower(coalesce(mode(lic), '')) IN {_sql_list(EVAL_LICENCES)} THEN 0.0
         ELSE CAST(coalesce(any_value(bench_sets.n_sets), 0) AS DOUBLE) END AS bench_breadth,
    any_value(bench_sets.sets) AS bench_sets,
    CASE WHEN lower(coalesce(mode(lic), '')) IN {_sql_list(EVAL_LICENCES)} THEN 0.0
         ELSE avg(CAST(f_bench OR f_judge AS DOUBLE)) END AS licence_use_mismatch,
    CASE WHEN any_value(home) IS NULL THEN 0.0
         ELSE avg(CAST(region IS NOT NULL AND region <> home AS DOUBLE)) END
        AS region_mismatch,
    CAST(coalesce(mode(chan), '') LIKE 'reseller%' AS DOUBLE) AS reseller_channel
FROM f JOIN hours ON f.org_id = hours.org_id
    LEFT JOIN bench_sets ON f.org_id = bench_sets.org_id
GROUP BY f.org_id
ORDER BY f.org_id
"""

_ACC_COLUMNS = {
    "org_id": pa.string(),
    "licence": pa.string(),
    "channel": pa.string(),
    "home_region": pa.string(),
}


def _accounts_view(accounts: pa.Table | None) -> pa.Table:
    """The accounts columns the signals use; missing columns read as nulls."""
    if accounts is None:
        return pa.table({k: pa.array([], t) for k, t in _ACC_COLUMNS.items()})
    if "org_id" not in accounts.column_names:
        raise ValueError(
            "accounts table has no org_id column; pass the dataset's accounts.parquet "
            "(columns org_id, licence, channel, home_region, ...)"
        )
    cols = {}
    for k, t in _ACC_COLUMNS.items():
        if k in accounts.column_names:
            cols[k] = accounts.column(k).cast(t)
        else:
            cols[k] = pa.nulls(accounts.num_rows, t)
    table = pa.table(cols)
    # one row per account: a repeated org_id would multiply its requests in the join
    seen: set[str] = set()
    keep = []
    for i, org in enumerate(table.column("org_id").to_pylist()):
        if org not in seen:
            seen.add(org)
            keep.append(i)
    if len(keep) < table.num_rows:
        table = table.take(pa.array(keep, pa.int64()))
    return table


def account_signals(
    features: pa.Table,
    accounts: pa.Table | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """Aggregate request features into one row of signals per account.

    Columns: ``org_id``, ``n_requests``, ``first_ts``, ``last_ts``, ``licence``,
    ``channel``, the signals of :data:`TEXT_SIGNALS`, per-feature counts ``n_<feature>``,
    example event ids ``ex_<feature>`` and ``bench_sets``, the labels of the benchmark sets
    counted in ``bench_breadth`` (evidence for findings).
    """
    own = con is None
    con = con or duckdb.connect()
    timing = timing_columns(
        features.column("org_id"), features.column("ts"), features.column("event_id"),
        window_us=PEAK_WINDOW_MIN * 60_000_000, gap_limit_us=int(MACHINE_GAP_S * 1e6),
        min_run=MACHINE_RUN,
    )
    for name, column in timing.items():
        features = features.append_column(name, column)
    try:
        con.register("feats", features)
        con.register("acc", _accounts_view(accounts))
        out = con.sql(_SIGNAL_SQL).to_arrow_table()
        con.unregister("feats")
        con.unregister("acc")
    finally:
        if own:
            con.close()
    return out


def signal_matrix(signals: pa.Table, names: tuple[str, ...]) -> np.ndarray:
    """The named signal columns as a float matrix (NaN where a signal is undefined)."""
    cols = []
    for name in names:
        if name in signals.column_names:
            cols.append(
                signals.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy(
                    zero_copy_only=False
                )
            )
        else:
            cols.append(np.full(signals.num_rows, np.nan))
    if not cols:
        return np.zeros((signals.num_rows, 0))
    return np.column_stack(cols)


def permitted_signals(signals: pa.Table, names: Sequence[str]) -> np.ndarray:
    """Per account (row of ``signals``) and signal of ``names``: whether the account's licence
    permits what the signal measures (:data:`EVAL_RUN_SIGNALS` under :data:`EVAL_LICENCES`).
    Such a signal is undefined when the account is scored (no evidence either way: left out
    of the combination, like a signal without enough requests); its value stays, for the
    findings."""
    out = np.zeros((signals.num_rows, len(names)), dtype=bool)
    cols = [j for j, name in enumerate(names) if name in EVAL_RUN_SIGNALS]
    if not cols or "licence" not in signals.column_names or signals.num_rows == 0:
        return out
    lic = pc.utf8_lower(signals.column("licence").cast(pa.string()))
    evaluating = pc.fill_null(
        pc.is_in(lic, value_set=pa.array(sorted(EVAL_LICENCES))), False
    ).to_numpy(zero_copy_only=False)
    out[np.ix_(evaluating, cols)] = True
    return out
