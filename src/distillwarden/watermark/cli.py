"""``distillwarden watermark …``: detect, attribute and configure watermarks.

``--config`` is the watermark config JSON (a string or a file; the licence's settings on the
local model's tokenizer when omitted); ``--settings`` is the installation YAML whose secret
derives account keys (``DISTILLWARDEN_CONFIG`` works too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import WatermarkConfig, WatermarkConfigMismatch, derive_account_key
from .inputs import InputError, TextCorpus, read_corpus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..config import Settings
    from .config import TokenizerLike
    from .detect import AttributionResult, DetectionResult, ScanResult

__all__ = ["register"]

app = typer.Typer(
    help="Account-keyed watermarks: detect, attribute to accounts, make configs.",
    no_args_is_help=True,
)

_out = Console(highlight=False, soft_wrap=False)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

FileArg = Annotated[str, typer.Argument(help="text file, JSONL corpus, or - for stdin")]
ConfigOpt = Annotated[
    str | None, typer.Option("--config", help="watermark config JSON, or a file holding it")
]
SettingsOpt = Annotated[
    Path | None, typer.Option("--settings", "-s", help="installation YAML (for the secret)")
]
TokenizerOpt = Annotated[
    str | None,
    typer.Option("--tokenizer", help="tokenizer folder (default: the local model's tokenizer)"),
]
FieldOpt = Annotated[
    str | None, typer.Option("--field", help="JSONL field holding the text, e.g. choices.0.text")
]
PromptFieldOpt = Annotated[
    str | None,
    typer.Option("--prompt-field", help="JSONL field with the prompt (its windows are excluded)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]


def register(root: typer.Typer) -> None:
    """Mount ``distillwarden watermark``."""
    root.add_typer(app, name="watermark")


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
    )


# --------------------------------------------------------------------------- plumbing


def _settings(path: Path | None) -> Settings:
    from ..config import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc


def _load_tokenizer(spec: str | None) -> TokenizerLike:
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise _fail("transformers is needed to tokenize text: pip install transformers") from exc
    if spec is None:
        from ..upstream.model import ModelUnavailable, convert_local_model

        try:
            with _err.status("loading the local model's tokenizer"):
                folder = convert_local_model()
        except ModelUnavailable as exc:
            raise _fail(f"{exc} (or pass --tokenizer FOLDER)") from exc
        spec = str(folder)
    try:
        return AutoTokenizer.from_pretrained(spec, local_files_only=True)  # type: ignore[no-any-return]
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot load tokenizer {spec!r}: {exc}") from exc


def _config(text: str | None, tokenizer: TokenizerLike) -> WatermarkConfig:
    from .licence import config_for_tokenizer

    if text is None:
        return config_for_tokenizer(tokenizer)
    raw = text
    if not text.lstrip().startswith("{"):
        p = Path(text)
        if not p.is_file():
            raise _fail(f"--config {text!r} is neither JSON nor a readable file")
        raw = p.read_text()
    try:
        cfg = WatermarkConfig.from_json(raw)
        cfg.check(tokenizer)
    except (WatermarkConfigMismatch, ValueError, TypeError) as exc:
        raise _fail(f"watermark config: {exc}") from exc
    return cfg


def _corpus(source: str, field: str | None, prompt_field: str | None) -> TextCorpus:
    try:
        corpus = read_corpus(source, field=field, prompt_field=prompt_field)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    for s in corpus.skipped[:5]:
        _err.print(f"[yellow]skipped[/] {escape(s)}")
    if len(corpus.skipped) > 5:
        _err.print(f"[yellow]skipped[/] {len(corpus.skipped) - 5} more lines")
    return corpus


def _encode_all(tokenizer: TokenizerLike, texts: Sequence[str], what: str) -> list[list[int]]:
    out: list[list[int]] = []
    if len(texts) <= 1:
        return [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    with _progress() as prog:
        task = prog.add_task(f"tokenizing {what}", total=len(texts))
        for t in texts:
            out.append(list(tokenizer.encode(t, add_special_tokens=False)))
            prog.advance(task)
    return out


@contextmanager
def _store_session(settings: Settings) -> Iterator[Session]:
    from ..store.db import make_engine, make_sessionmaker, session_scope

    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            raise _fail(
                f"no store at {path}: create accounts first (`distillwarden org create`) or "
                f"pass --key-file / --accounts"
            )
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def _account_strength(session: Session, org_id: str) -> dict[str, Any]:
    from ..store import services
    from .licence import parse_licence_watermark

    lic = services.active_licence(session, org_id)
    try:
        return dict(parse_licence_watermark(lic.watermark if lic else None).strength)
    except ValueError as exc:
        raise _fail(f"licence of {org_id!r} has invalid watermark settings: {exc}") from exc


def _key_from_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read key file {path}: {exc.strerror}") from exc
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < 16:
        raise _fail(
            f"key file {path} holds {len(key)} bytes; expected a 32-byte key (64 hex digits), "
            f"as written by `distillwarden watermark export-key`"
        )
    return key


# --------------------------------------------------------------------------- output


def _detection_dict(res: DetectionResult) -> dict[str, Any]:
    return {
        "verdict": res.verdict,
        "message": res.message,
        "total_tokens": res.total_tokens,
        "scored_tokens": res.scored_tokens,
        "green_tokens": res.green_tokens,
        "gamma": res.gamma,
        "log10_p": res.log10_p,
        "z_score": res.z_score,
        "alpha": res.alpha,
        "tokens_needed": res.tokens_needed,
    }


def _scan_dict(res: ScanResult, snippet: str) -> dict[str, Any]:
    return {
        "watermarked": res.watermarked,
        "start_token": res.start_token,
        "end_token": res.end_token,
        "scored_tokens": res.scored_tokens,
        "green_tokens": res.green_tokens,
        "windows_tested": res.windows_tested,
        "log10_p_window": res.log10_p_window,
        "log10_p_corrected": res.log10_p_corrected,
        "snippet": snippet,
    }


def _verdict_style(verdict: str) -> str:
    return {"watermarked": "bold red", "no_watermark": "green"}.get(verdict, "yellow")


# --------------------------------------------------------------------------- commands


@app.command()
def detect(
    file: FileArg,
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="account id (key from the secret)")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="file with the 32-byte key in hex")
    ] = None,
    config: ConfigOpt = None,
    tokenizer: TokenizerOpt = None,
    field: FieldOpt = None,
    prompt_field: PromptFieldOpt = None,
    alpha: Annotated[float, typer.Option(help="false-positive rate of the test")] = 1e-3,
    do_scan: Annotated[
        bool, typer.Option("--scan", help="also find the most watermarked passage")
    ] = False,
    lexical: Annotated[
        bool, typer.Option("--lexical", help="test the post-hoc lexical watermark instead")
    ] = False,
    settings: SettingsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Test text for one account's watermark (exact binomial p-value)."""
    from .detect import detect_tokens, scan_tokens

    if (account is None) == (key_file is None):
        raise _fail("pass exactly one of --account ID or --key-file FILE")
    if not 0 < alpha < 1:
        raise _fail("--alpha must lie strictly between 0 and 1")
    corpus = _corpus(file, field, prompt_field)
    if lexical:
        key, label, _ = _resolve_key(account, key_file, settings, None)
        _detect_lexical(corpus, key, label, alpha, as_json)
        return
    tok = _load_tokenizer(tokenizer)
    cfg = _config(config, tok)
    key, label, strength = _resolve_key(account, key_file, settings, tok)
    if strength is not None and config is None:
        cfg = _config_with(tok, strength)
    ids = _encode_all(tok, corpus.texts, "texts")
    prompt_ids = _encode_all(tok, corpus.prompts, "prompts") if corpus.prompts else None
    res = detect_tokens(ids, cfg, key, prompt_ids=prompt_ids, alpha=alpha)
    scan_res = scan_tokens(ids, cfg, key, alpha=alpha) if do_scan else None
    snippet = ""
    if scan_res is not None:
        flat = [t for seq in ids for t in seq]
        decode = getattr(tok, "decode", None)
        if decode is not None:
            snippet = str(decode(flat[scan_res.start_token : scan_res.end_token]))
    if as_json:
        out: dict[str, Any] = {"key": label, "texts": len(corpus.texts), **_detection_dict(res)}
        if scan_res is not None:
            out["scan"] = _scan_dict(scan_res, snippet)
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title=f"watermark detect · {escape(label)}", show_header=False)
    table.add_row("texts", f"{len(corpus.texts):,}")
    table.add_row("tokens", f"{res.total_tokens:,} ({res.scored_tokens:,} distinct pairs scored)")
    pct = 100.0 * res.green_tokens / res.scored_tokens if res.scored_tokens else 0.0
    table.add_row("green", f"{res.green_tokens:,} ({pct:.1f}%, {100 * res.gamma:.1f}% by chance)")
    table.add_row("log10 p", f"{res.log10_p:.2f}")
    table.add_row("verdict", f"[{_verdict_style(res.verdict)}]{escape(res.message)}[/]")
    if scan_res is not None:
        table.add_row(
            "best passage",
            f"tokens {scan_res.start_token:,}-{scan_res.end_token:,}: log10 p "
            f"{scan_res.log10_p_corrected:.2f} after {scan_res.windows_tested:,} windows",
        )
        table.add_row("", escape(snippet[:300]))
    _out.print(table)


def _resolve_key(
    account: str | None, key_file: Path | None, settings: Path | None, tok: TokenizerLike | None
) -> tuple[bytes, str, dict[str, Any] | None]:
    """The key to test, a label for it, and the account licence's strength (if any)."""
    if key_file is not None:
        return _key_from_file(key_file), str(key_file), None
    assert account is not None
    st = _settings(settings)
    from ..store.errors import NotFound
    from ..store.services import get_org

    with _store_session(st) as session:
        try:
            get_org(session, account)
        except NotFound as exc:
            raise _fail(str(exc)) from exc
        strength = _account_strength(session, account) if tok is not None else None
    return derive_account_key(st.secret_bytes(), account), account, strength


def _lexical(key: bytes) -> Any:
    from .lexical import LexicalWatermarker
    from .synonyms import WordNetUnavailable

    try:
        return LexicalWatermarker(key)
    except WordNetUnavailable as exc:
        raise _fail(str(exc)) from exc


def _detect_lexical(
    corpus: TextCorpus, key: bytes, label: str, alpha: float, as_json: bool
) -> None:
    res = _lexical(key).detect(corpus.texts, alpha=alpha)
    if as_json:
        out = {
            "key": label,
            "texts": len(corpus.texts),
            "verdict": res.verdict,
            "message": res.message,
            "words": res.words,
            "sites": res.sites,
            "matches": res.matches,
            "expected_matches": res.expected_matches,
            "log10_p": res.log10_p,
            "alpha": res.alpha,
            "sites_needed": res.sites_needed,
        }
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title=f"lexical watermark detect · {escape(label)}", show_header=False)
    table.add_row("texts", f"{len(corpus.texts):,}")
    table.add_row("words", f"{res.words:,} ({res.sites:,} distinct synonym sites)")
    table.add_row(
        "keyed choices", f"{res.matches:,} (expected {res.expected_matches:.1f} by chance)"
    )
    table.add_row("log10 p", f"{res.log10_p:.2f}")
    table.add_row("verdict", f"[{_verdict_style(res.verdict)}]{escape(res.message)}[/]")
    _out.print(table)


@app.command("apply-lexical")
def apply_lexical(
    file: FileArg,
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="account id (key from the secret)")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="file with the 32-byte key in hex")
    ] = None,
    settings: SettingsOpt = None,
) -> None:
    """Print the text with an account's post-hoc lexical watermark.

    This is what the gateway applies for licences with mode posthoc."""
    if (account is None) == (key_file is None):
        raise _fail("pass exactly one of --account ID or --key-file FILE")
    corpus = _corpus(file, None, None)
    key, _, _ = _resolve_key(account, key_file, settings, None)
    wm = _lexical(key)
    for text in corpus.texts:
        typer.echo(wm.apply(text), nl=False)


def _config_with(tok: TokenizerLike, strength: dict[str, Any]) -> WatermarkConfig:
    from .licence import config_for_tokenizer

    try:
        return config_for_tokenizer(tok, strength)
    except ValueError as exc:
        raise _fail(f"watermark settings {strength}: {exc}") from exc


@app.command()
def attribute(
    file: FileArg,
    accounts: Annotated[
        Path | None, typer.Option("--accounts", help="file with candidate account ids, one a line")
    ] = None,
    from_store: Annotated[
        bool, typer.Option("--from-store", help="every account in the store, with its licence")
    ] = False,
    config: ConfigOpt = None,
    tokenizer: TokenizerOpt = None,
    field: FieldOpt = None,
    prompt_field: PromptFieldOpt = None,
    alpha: Annotated[float, typer.Option(help="family-wise error rate")] = 1e-6,
    method: Annotated[
        str, typer.Option(help="holm (several accounts may have leaked) or bonferroni")
    ] = "holm",
    top: Annotated[int, typer.Option(help="accounts to show")] = 10,
    settings: SettingsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which accounts received this text? Ranked, family-wise error controlled."""
    from .detect import attribute_groups

    if accounts is None and not from_store:
        raise _fail("pass --accounts FILE or --from-store")
    if method not in ("holm", "bonferroni"):
        raise _fail("--method must be holm or bonferroni")
    if not 0 < alpha < 1:
        raise _fail("--alpha must lie strictly between 0 and 1")
    corpus = _corpus(file, field, prompt_field)
    tok = _load_tokenizer(tokenizer)
    base_cfg = _config(config, tok)
    st = _settings(settings)
    secret = st.secret_bytes()
    strength_of: dict[str, dict[str, Any]] = {}
    if from_store:
        from ..store.services import list_orgs

        with _store_session(st) as session:
            for org in list_orgs(session):
                strength_of[org.id] = _account_strength(session, org.id) if config is None else {}
    if accounts is not None:
        try:
            lines = accounts.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read account list {accounts}: {exc}") from exc
        for line in lines:
            a = line.strip()
            if a and not a.startswith("#"):
                strength_of.setdefault(a, {})
    if not strength_of:
        raise _fail("no candidate accounts (the list or the store is empty)")
    grouped: dict[str, tuple[WatermarkConfig, dict[str, bytes]]] = {}
    for acct, strength in strength_of.items():
        cfg = _config_with(tok, strength) if strength else base_cfg
        entry = grouped.setdefault(cfg.to_json(), (cfg, {}))
        entry[1][acct] = derive_account_key(secret, acct)
    ids = _encode_all(tok, corpus.texts, "texts")
    prompt_ids = _encode_all(tok, corpus.prompts, "prompts") if corpus.prompts else None
    meth: Literal["holm", "bonferroni"] = "holm" if method == "holm" else "bonferroni"
    with _progress() as prog:
        task = prog.add_task("scoring account keys", total=len(strength_of))

        def _tick(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        res = attribute_groups(
            ids,
            list(grouped.values()),
            prompt_ids=prompt_ids,
            alpha=alpha,
            method=meth,
            top=top,
            progress=_tick,
        )
    _print_attribution(res, len(corpus.texts), as_json)


def _print_attribution(res: AttributionResult, texts: int, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "verdict": res.verdict,
                    "texts": texts,
                    "total_tokens": res.total_tokens,
                    "scored_tokens": res.scored_tokens,
                    "candidates": res.candidates,
                    "alpha": res.alpha,
                    "method": res.method,
                    "tokens_needed": res.tokens_needed,
                    "attributed": [a.account for a in res.attributed],
                    "ranked": [a.__dict__ for a in res.ranked],
                },
                indent=2,
            )
        )
        return
    table = Table(
        title=(
            f"watermark attribute · {res.candidates:,} candidates · {res.total_tokens:,} tokens "
            f"({res.scored_tokens:,} scored) · FWER {res.alpha:g} ({res.method})"
        )
    )
    for col in ("rank", "account", "green", "log10 p", f"log10 p ({res.method})", "attributed"):
        table.add_column(col, justify="right" if col != "account" else "left")
    for i, a in enumerate(res.ranked, 1):
        adj = a.log10_p_holm if res.method == "holm" else a.log10_p_bonferroni
        table.add_row(
            str(i),
            escape(a.account),
            f"{a.green_tokens:,}",
            f"{a.log10_p:.2f}",
            f"{adj:.2f}",
            "[bold red]yes[/]" if a.attributed else "no",
        )
    _out.print(table)
    if res.verdict == "not_enough_evidence":
        _out.print(
            f"[yellow]not enough evidence:[/] {res.scored_tokens:,} scored tokens; about "
            f"{res.tokens_needed:,} needed at FWER {res.alpha:g} over {res.candidates:,} accounts"
        )
    elif res.verdict == "no_watermark":
        _out.print("[green]no account's watermark is significant at this error rate[/]")


@app.command("export-key")
def export_key(
    account: Annotated[str, typer.Argument(help="account id")],
    settings: SettingsOpt = None,
) -> None:
    """Print an account's watermark key (hex) for `detect --key-file` on another machine.

    The key proves provenance of that account's text only; keep it with the case file."""
    st = _settings(settings)
    typer.echo(derive_account_key(st.secret_bytes(), account).hex())


@app.command("config")
def make_config(
    tokenizer: TokenizerOpt = None,
    gamma: Annotated[float, typer.Option(help="green fraction of the vocabulary")] = 0.25,
    delta: Annotated[float, typer.Option(help="logit bias added to green tokens")] = 2.0,
    context_width: Annotated[int, typer.Option(help="context window h (tokens)")] = 2,
    length_neutral: Annotated[
        bool, typer.Option(help="keep EOS and special tokens at their unbiased probability")
    ] = True,
) -> None:
    """Print the watermark config JSON for a tokenizer (with its self-test vector)."""
    tok = _load_tokenizer(tokenizer)
    try:
        cfg = WatermarkConfig.for_tokenizer(
            tok,
            gamma=gamma,
            delta=delta,
            context_width=context_width,
            length_neutral=length_neutral,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(json.dumps(cfg.to_dict(), indent=2))
