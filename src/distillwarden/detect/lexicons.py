"""Lexicons for the request features, as RE2 regular expressions over lower-cased text.

Each lexicon covers a phenomenon broadly (many phrasings, several languages where it is
cheap) rather than any one tool's wording: a keyword hit is only evidence after the account
signal built on it is calibrated against benign traffic (see ``scoring.py``). Patterns are
RE2 (DuckDB's engine): no look-arounds, no back-references.
"""

from __future__ import annotations

__all__ = ["LEXICONS", "PLACEHOLDER_PATTERN", "TEMPLATE_SLOT_PATTERN"]


def _any(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


# Asking the model to expose its reasoning: the raw material of reasoning distillation.
COT = _any(
    r"step[- ]by[- ]step",
    r"chain[- ]of[- ]thought",
    r"\bcot\b",
    r"show (?:me )?(?:all )?(?:your|the|each|every) (?:full |complete |detailed |intermediate )?(?:work|working|reasoning|steps|thinking|thought process|derivation|calculations?)",
    r"explain (?:your|the|each|every) (?:reasoning|steps?|thought process|logic|derivation)",
    r"(?:think|reason) (?:carefully|aloud|out loud|through (?:this|it|the problem)|it through|before (?:you )?answer)",
    r"let'?s think",
    r"walk (?:me )?through (?:your|the) (?:reasoning|logic|thought process|solution|steps)",
    r"(?:full|complete|detailed|explicit|internal) (?:reasoning|rationale|thought process|derivation|reasoning trace|thinking)",
    r"reasoning (?:trace|chain|process|steps)",
    r"<think>|</think>|<reasoning>|<scratchpad>",
    r"scratch ?pad",
    r"before (?:giving|stating|writing) (?:the|your) (?:final )?answer",
    r"(?:justify|rationalize) (?:each|every|your) (?:step|answer)",
    r"逐步|一步一步|分步|思考过程|推理过程|详细推理|请给出推理",
    r"paso a paso|razonamiento|muestra tu trabajo",
    r"étape par étape|raisonnement détaillé",
    r"schritt für schritt|gedankengang",
    r"шаг за шагом|рассуждени",
    r"ステップバイステップ|段階的に|思考過程",
)

# Asking for training data: instruction/response pairs, JSONL, N diverse examples.
DATASET = _any(
    r"\bjsonl\b|json lines|ndjson",
    r"instruction[- /_]+(?:response|output|answer|completion)",
    r"(?:prompt|input|question|query)[- /_]+(?:completion|response|output|answer) pairs?",
    r"(?:q&a|qa|question[- ]answer) pairs",
    r"(?:generate|create|produce|write|give me|list|synthesi[sz]e) (?:me )?(?:a list of )?(?:\d+|a few|several|many|dozens of|hundreds of|ten|twenty|fifty|one hundred) (?:more |new |additional )?(?:diverse|different|varied|unique|distinct|realistic|high[- ]quality|synthetic)",
    r"(?:training|fine[- ]?tuning|finetuning|sft|instruction[- ]tuning|rlhf|preference|distillation) (?:data|dataset|examples|samples|corpus|set)",
    r"synthetic (?:data|dataset|examples|conversations|dialogues)",
    r"(?:build|create|generate|augment|expand) (?:a |the |my )?(?:training )?dataset",
    r"\{\s*\"(?:instruction|input|output|prompt|completion|question|answer|response|messages|chosen|rejected)\"\s*:",
    r"(?:alpaca|sharegpt|openai fine-?tuning|chatml) format",
    r"each (?:example|sample|item|entry|pair|line) (?:should|must) (?:be|contain|include|have)",
    r"one (?:json )?(?:object|example|record) per line",
    r"(?:chosen|rejected)[ /_]+(?:response|answer)",
    r"生成\s*\d*\s*(?:条|个|組|组)|训练数据|数据集|指令[-/ ]?(?:回答|响应)",
    r"datos de entrenamiento|conjunto de datos|genera \d+ (?:ejemplos|pares)",
    r"données d'entraînement|jeu de données|génère \d+ (?:exemples|paires)",
    r"trainingsdaten|datensatz|erzeuge \d+ (?:beispiele|paare)",
    r"обучающ(?:ие|их) данн|датасет|набор данных",
)

# Using the model as a grader or judge: rival-model evaluation.
JUDGE = _any(
    r"(?:which|what) (?:of the (?:two|following) )?(?:response|answer|output|completion|reply|assistant|model)s? (?:is|was) (?:better|best|more helpful|preferred|superior)",
    r"compare (?:the )?(?:two|these|both|following|pair of) (?:responses|answers|outputs|completions|replies|models|assistants)",
    r"(?:response|answer|output|assistant|model|completion) [a1] (?:and|vs\.?|versus|or) (?:response|answer|output|assistant|model|completion) [b2]",
    r"\[\[a\]\]|\[\[b\]\]|\[\[a>b\]\]|\[\[b>a\]\]|\[\[a=b\]\]",
    r"(?:impartial|fair|strict|expert) (?:judge|grader|evaluator|referee)",
    r"act as (?:a|an) (?:judge|grader|evaluator|rater|annotator)",
    r"(?:rate|score|grade|evaluate|assess) (?:the |this |each |following )?(?:response|answer|output|completion|reply|assistant'?s? answer)s? (?:on|from|with|using|between|out of|for)",
    r"(?:on a scale|score) (?:of|from) (?:1|0|one) to (?:5|10|100|five|ten)",
    r"(?:win|tie|lose)(?:/| or )(?:tie|loss|lose|win)",
    r"pairwise (?:comparison|preference|judg)",
    r"reference answer",
    r"(?:rating|score|verdict): ?\[\[",
    r"哪个回答更好|评分|作为(?:评委|裁判)",
    r"cuál respuesta es mejor|actúa como juez",
    r"quelle réponse est (?:la )?meilleure|agis comme (?:un )?juge",
    r"welche antwort ist besser|als (?:richter|bewerter)",
    r"какой ответ лучше|оцени ответ",
)

# Asking the model about itself: identity, provenance, system prompt.
IDENTITY = _any(
    r"(?:which|what) (?:ai |language |llm |large language )?model (?:are you|is this|am i (?:talking|speaking|chatting) (?:to|with)|powers you|do you use|are you based on|version)",
    r"who (?:trained|created|made|built|developed|designed|owns|programmed) you",
    r"(?:what|which) (?:company|organization|lab|team) (?:trained|created|made|built|developed|is behind) you",
    r"what(?:'s| is) your (?:model )?(?:name|version|architecture|parameter count|knowledge cut-?off|training cut-?off|training data)",
    r"(?:your|the) (?:knowledge|training) cut-?off",
    r"are you (?:gpt|chatgpt|claude|llama|gemini|bard|mistral|qwen|deepseek|grok|an? (?:openai|anthropic|google|meta) model)",
    r"how many parameters (?:do )?you have",
    r"(?:repeat|print|reveal|show|output|tell me) (?:me )?(?:your|the) (?:system|initial|hidden|original) (?:prompt|instructions|message)",
    r"(?:ignore|disregard) (?:all )?(?:the )?(?:previous|prior|above) instructions",
    r"你是(?:谁|什么模型|哪个模型)|哪(?:个|家)公司(?:训练|开发)",
    r"qué modelo eres|quién te (?:entrenó|creó)",
    r"quel modèle es-tu|qui t'a (?:entraîné|créé)",
    r"welches modell bist du|wer hat dich (?:trainiert|entwickelt)",
    r"какая ты модель|кто тебя (?:обучил|создал)",
)

# Requests for agent / tool-use traces (in the text; the ``has_tools`` column covers the API).
AGENT = _any(
    r"tool[- _]?(?:call|use|usage|invocation)s?",
    r"function[- _]?call(?:s|ing)?",
    r"agent (?:trace|trajectory|trajectories|transcript|log|rollout)s?",
    r"(?:trajectory|trajectories|rollouts?) (?:of|for|from) (?:an? )?(?:agent|assistant)",
    r"\bthought:.{0,400}\baction:",
    r"\baction input:",
    r"\bobservation:",
    r"\breact (?:format|style|agent|loop|prompt)",
    r"<tool_call>|<function_call>|\"tool_calls\"|\"function_call\"",
)

# Placeholders that stand for removed personal or company data (desensitisation).
PLACEHOLDER_PATTERN = _any(
    r"\[(?:redacted|removed|masked|anonymi[sz]ed|name|full[ _]name|first[ _]name|last[ _]name|person|customer|client|user|employee|patient|company|org|organi[sz]ation|brand|product|email|e-mail|phone|address|city|country|location|date|dob|ssn|id|account|url|ip|number|amount)(?:[ _-]?\d+|[ _-]?[a-z])?\]",
    r"<(?:redacted|name|person|per|org|organi[sz]ation|company|loc|location|email|phone|address|date|id|pii|misc|gpe)(?:[ _-]?\d+)?>",
    r"\{\{\s*[a-z_][a-z0-9_\.]*\s*\}\}",
    r"\b(?:person|company|org|customer|user|entity|name|product|brand|location|city)_(?:\d+|[a-z])\b",
    r"\b(?:company|person|customer|entity|party|vendor|client) [a-z]\b(?:,| and| or|\.)",
    r"\bx{3,}\b",
    r"\*{3,}",
    r"█+|▇+",
    r"\b[0-9a-f]{32}\b|\b[0-9a-f]{40}\b|\b[0-9a-f]{64}\b",
    r"\b(?:anon|user|id|hash)[-_][0-9a-f]{6,}\b",
)

# What varies between fills of a template: collapsed before fingerprinting.
TEMPLATE_SLOT_PATTERN = _any(
    r"\"[^\"\n]{0,200}\"",
    r"“[^”\n]{0,200}”",
    r"'[^'\n]{2,200}'",
    r"`[^`\n]{0,200}`",
    PLACEHOLDER_PATTERN,
    r"[0-9]+(?:[.,][0-9]+)*",
)

#: name -> pattern; each yields a boolean request feature ``f_<name>``.
LEXICONS: dict[str, str] = {
    "cot": COT,
    "dataset": DATASET,
    "judge": JUDGE,
    "identity": IDENTITY,
    "agent": AGENT,
}
