"""``distillwarden watermark detect|attribute`` on files, JSONL, stdin and the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import PreTrainedTokenizerFast
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.config import Settings
from distillwarden.watermark.config import WatermarkConfig, derive_account_key
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor

from .synthetic import synthetic_generate

runner = CliRunner()
WORDS = [f"w{i}" for i in range(500)]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tok")
    core = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="w0"))
    core.pre_tokenizer = WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="w0").save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def cfg(tok_dir: Path) -> WatermarkConfig:
    tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    return WatermarkConfig.for_tokenizer(tok)


def _marked_text(cfg: WatermarkConfig, key: bytes, n: int = 300, seed: int = 5) -> str:
    ids = synthetic_generate(
        500, 1, n, processor=AccountWatermarkLogitsProcessor(cfg, key), seed=seed
    )[0, 4:]
    return " ".join(WORDS[i] for i in ids.tolist())


def _settings_file(tmp_path: Path, settings: Settings) -> Path:
    p = tmp_path / "settings.yaml"
    p.write_text(yaml.safe_dump({"data_dir": str(settings.data_dir), "secret": settings.secret}))
    return p


def test_detect_file_and_json_output(tmp_path: Path, tok_dir: Path, cfg: WatermarkConfig) -> None:
    key = derive_account_key(b"s", "a")
    (tmp_path / "k.hex").write_text(key.hex())
    (tmp_path / "t.txt").write_text(_marked_text(cfg, key))
    args = ["watermark", "detect", str(tmp_path / "t.txt"), "--key-file", str(tmp_path / "k.hex")]
    r = runner.invoke(app, [*args, "--tokenizer", str(tok_dir), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["verdict"] == "watermarked" and out["log10_p"] < -10
    assert out["scored_tokens"] > 250
    other = derive_account_key(b"s", "b")
    (tmp_path / "k2.hex").write_text(other.hex())
    args[-1] = str(tmp_path / "k2.hex")
    r2 = runner.invoke(app, [*args, "--tokenizer", str(tok_dir), "--scan"])
    assert r2.exit_code == 0, r2.output
    assert "no watermark detected" in r2.stdout


def test_jsonl_corpus_with_field_and_stdin(
    tmp_path: Path, tok_dir: Path, cfg: WatermarkConfig
) -> None:
    key = derive_account_key(b"s", "a")
    (tmp_path / "k.hex").write_text(key.hex())
    rows = [
        {"choices": [{"message": {"content": _marked_text(cfg, key, 80, seed=s)}}]}
        for s in range(4)
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{}\n")
    r = runner.invoke(
        app,
        [
            "watermark",
            "detect",
            str(tmp_path / "c.jsonl"),
            "--field",
            "choices.0.message.content",
            "--key-file",
            str(tmp_path / "k.hex"),
            "--tokenizer",
            str(tok_dir),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["texts"] == 4 and out["verdict"] == "watermarked"
    short = runner.invoke(
        app,
        [
            "watermark",
            "detect",
            "-",
            "--key-file",
            str(tmp_path / "k.hex"),
            "--tokenizer",
            str(tok_dir),
            "--json",
        ],
        input="w1 w2 w3 w4 w5",
    )
    assert short.exit_code == 0, short.output
    s = json.loads(short.stdout)
    assert s["verdict"] == "not_enough_evidence" and s["tokens_needed"] > s["scored_tokens"]


def test_bad_inputs_give_clear_errors(tmp_path: Path, tok_dir: Path, cfg: WatermarkConfig) -> None:
    (tmp_path / "k.hex").write_text(derive_account_key(b"s", "a").hex())
    (tmp_path / "bin.dat").write_bytes(b"\x7fELF\x00\x01\x02" * 10)
    base = ["--key-file", str(tmp_path / "k.hex"), "--tokenizer", str(tok_dir)]
    r = runner.invoke(app, ["watermark", "detect", str(tmp_path / "bin.dat"), *base])
    assert r.exit_code == 2 and "binary" in r.stderr
    (tmp_path / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    r = runner.invoke(app, ["watermark", "detect", str(tmp_path / "latin.txt"), *base])
    assert r.exit_code == 2 and "not UTF-8" in r.stderr
    (tmp_path / "bad.jsonl").write_text('{"text": "w1 w2"}\n{oops\n')
    r = runner.invoke(app, ["watermark", "detect", str(tmp_path / "bad.jsonl"), *base])
    assert r.exit_code == 2 and "bad.jsonl:2" in r.stderr
    r = runner.invoke(app, ["watermark", "detect", str(tmp_path / "missing.txt"), *base])
    assert r.exit_code == 2 and "no such file" in r.stderr
    (tmp_path / "t.txt").write_text("w1 w2 w3")
    foreign = WatermarkConfig(vocab_size=500, tokenizer_name="gpt2", tokenizer_sha256="ab" * 32)
    r = runner.invoke(
        app, ["watermark", "detect", str(tmp_path / "t.txt"), *base, "--config", foreign.to_json()]
    )
    assert r.exit_code == 2 and "tokenizer" in r.stderr
    (tmp_path / "short.key").write_text("abcd")
    r = runner.invoke(
        app,
        [
            "watermark",
            "detect",
            str(tmp_path / "t.txt"),
            "--key-file",
            str(tmp_path / "short.key"),
            "--tokenizer",
            str(tok_dir),
        ],
    )
    assert r.exit_code == 2 and "32-byte" in r.stderr
    r = runner.invoke(
        app, ["watermark", "detect", str(tmp_path / "t.txt"), "--tokenizer", str(tok_dir)]
    )
    assert r.exit_code == 2 and "--account" in r.stderr


def test_unknown_account_and_attribution_from_store(
    tmp_path: Path, tok_dir: Path, cfg: WatermarkConfig, tmp_settings: Settings, session_factory
) -> None:
    from distillwarden.store import services
    from distillwarden.store.db import session_scope

    with session_scope(session_factory) as s:
        for i in range(30):
            services.create_org(s, name=f"Org {i}", org_id=f"org-{i}", actor="test")
        services.set_licence(s, "org-7", watermark={"delta": 3.0}, actor="test", reason="t")
    settings_path = _settings_file(tmp_path, tmp_settings)
    strong = cfg.with_settings({"delta": 3.0})
    text = _marked_text(strong, derive_account_key(tmp_settings.secret_bytes(), "org-7"), 200)
    (tmp_path / "leak.txt").write_text(text)
    common = ["--tokenizer", str(tok_dir), "--settings", str(settings_path)]
    r = runner.invoke(
        app, ["watermark", "detect", str(tmp_path / "leak.txt"), "--account", "nope", *common]
    )
    assert r.exit_code == 2 and "unknown organization" in r.stderr
    r = runner.invoke(
        app,
        [
            "watermark",
            "detect",
            str(tmp_path / "leak.txt"),
            "--account",
            "org-7",
            *common,
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["verdict"] == "watermarked"
    r = runner.invoke(
        app,
        ["watermark", "attribute", str(tmp_path / "leak.txt"), "--from-store", *common, "--json"],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["attributed"] == ["org-7"] and out["candidates"] == 30
    (tmp_path / "accts.txt").write_text("# candidates\norg-1\norg-7\norg-9\n")
    r = runner.invoke(
        app,
        [
            "watermark",
            "attribute",
            str(tmp_path / "leak.txt"),
            "--accounts",
            str(tmp_path / "accts.txt"),
            *common,
            "--config",
            strong.to_json(),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "org-7" in r.stdout and "yes" in r.stdout


def test_lexical_apply_and_detect(tmp_path: Path) -> None:
    from .test_lexical import _alpaca_outputs

    (tmp_path / "k.hex").write_text(derive_account_key(b"s", "lex").hex())
    (tmp_path / "plain.txt").write_text("\n\n".join(_alpaca_outputs(30)))
    r = runner.invoke(
        app,
        [
            "watermark",
            "apply-lexical",
            str(tmp_path / "plain.txt"),
            "--key-file",
            str(tmp_path / "k.hex"),
        ],
    )
    assert r.exit_code == 0, r.output
    (tmp_path / "marked.txt").write_text(r.stdout)
    det = ["watermark", "detect", "--lexical", "--key-file", str(tmp_path / "k.hex"), "--json"]
    marked = json.loads(
        runner.invoke(app, [*det[:2], str(tmp_path / "marked.txt"), *det[2:]]).stdout
    )
    plain = json.loads(runner.invoke(app, [*det[:2], str(tmp_path / "plain.txt"), *det[2:]]).stdout)
    assert marked["verdict"] == "watermarked" and marked["matches"] == marked["sites"]
    assert plain["verdict"] == "no_watermark"


def test_config_command_writes_version_2_with_length_neutrality(tok_dir: Path) -> None:
    r = runner.invoke(app, ["watermark", "config", "--tokenizer", str(tok_dir)])
    assert r.exit_code == 0, r.output
    cfg = WatermarkConfig.from_json(r.output)
    assert cfg.version == 2 and cfg.length_neutral and cfg.special_token_ids == (0,)  # unk
    r = runner.invoke(
        app, ["watermark", "config", "--tokenizer", str(tok_dir), "--no-length-neutral"]
    )
    assert r.exit_code == 0 and not WatermarkConfig.from_json(r.output).length_neutral
