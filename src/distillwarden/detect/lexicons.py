"""Lexicons for the request features, as RE2 regular expressions over lower-cased text.

Each lexicon covers a phenomenon broadly (many phrasings, several languages where it is
cheap) rather than any one tool's wording: a keyword hit is only evidence after the account
signal built on it is calibrated against benign traffic (see ``scoring.py``). Patterns are
RE2 (DuckDB's engine): no look-arounds, no back-references.
"""

from __future__ import annotations

__all__ = ["DESENS_NOTE", "LEXICONS", "PLACEHOLDER_PATTERN", "TEMPLATE_SLOT_PATTERN"]


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
    r"ステップバイステップ|段階的に|思考過程|<think",
    r"(?:ton|votre) raisonnement|étapes intermédiaires|(?:montre|montrez) (?:ton|votre) (?:travail|démarche)",
    r"denkprozess|zwischenschritt|lösungsweg",
    r"(?:tu|su) razonamiento|pasos intermedios|muestra (?:tu|el) (?:trabajo|proceso|desarrollo)",
    r"考えた過程|順を追って|推論過程|途中の(?:計算|式|過程)|考え方",
    r"推导过程|解题过程|详细步骤|思路",
    r"ход (?:рассуждений|мысли|решения)|промежуточн",
    r"raciocínio|passo a passo|ragionamento|passo dopo passo|단계별|추론 과정|풀이 과정",
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
    r"datos sintéticos|ejemplos de entrenamiento|données synthétiques|trainingsbeispiel|feinabstimmung|обучающ\w* выборк|дообучени",
    r"学習データ|ファインチューニング|合成データ|微调|指令数据|问答对|학습 데이터|dados de treinamento|dati di addestramento|conjunto de dados",
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
    r"evalúa|puntuación|laquelle est (?:la )?meilleure|évalue|bewerte",
    r"比較して|どちらが(?:優れ|良い)|評価して|採点|оцени|哪个更好|比较(?:以下|这)|어느 (?:답변|응답)이|avalie|valuta|vergleiche",
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
    r"date limite de tes connaissances|quel modèle|welches (?:sprach)?modell|wie viele parameter|системный промпт|какая (?:ты )?модель",
    r"どの会社|モデル名|システムプロンプト|系统提示|什么模型|哪个模型|qué modelo|cuál es tu modelo|que modelo você|quale modello|어떤 모델|무슨 모델|시스템 프롬프트|instruções iniciais",
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
    r"调用(?:以下)?(?:工具|函数)|函数调用|工具调用|llamarías|llamadas? a (?:la |las )?funci|quelle fonction|appel de fonction|l'outil utilisé|funktionsaufruf|tool-aufruf|tools? zur verfügung|траектори\w* агента|вызов функции|関数呼び出し|ツール定義|함수 호출|chamada de função|chiamata di funzione",
)

# Placeholders that stand for removed personal or company data (desensitisation): entity
# tags (bracketed, in angle brackets as anonymisation tools write them, numbered, with a
# qualifier: [EMPLOYEE_NAME], <PHONE_NUMBER>, [ADDRESS REDACTED], [USER_ID: ████]), inline
# redaction notes, character masks (****, XXXX, ████, 138****5678, user_####, 张**, ○○),
# surrogate identifiers (hex digests, cust-8e1b0c4d, TKN_000481) and pseudonyms (Company X,
# Patient 2). A tag is not taken where it indexes code (``row[customer_id]``): the character
# before its bracket must not be part of an identifier (so a tag that opens the text is not
# taken either: Arrow's regex count restarts its search after each match, where ``^`` would
# match again).
_PII = (
    r"(?:redacted|removed|masked|anonymi[sz]ed|pseudonymi[sz]ed|withheld|omitted|hidden|"
    r"deleted|scrubbed|censored|confidential|private|pii|phi|"
    r"names?|full[ _]?name|first[ _]?name|last[ _]?name|surname|given[ _]?name|username|"
    r"handle|person|people|per|nrp|customer|client|user|employee|staff|patient|member|"
    r"student|pupil|learner|applicant|candidate|participant|claimant|caller|agent|tenant|"
    r"landlord|owner|contact|recipient|sender|manager|mgr|supervisor|colleague|coworker|"
    r"doctor|physician|nurse|prescriber|teacher|plaintiff|defendant|complainant|"
    r"respondent|witness|victim|suspect|lawyer|attorney|beneficiary|insured|policyholder|"
    r"borrower|lender|spouse|partner|guest|passenger|driver|technician|buyer|seller|"
    r"merchant|company|org|organi[sz]ation|firm|employer|brand|product|vendor|supplier|"
    r"bank|school|hospital|clinic|pharmacy|facility|building|property|branch|store|"
    r"email|e-mail|mail|phone|telephone|tel|mobile|fax|address|street|zip|postcode|"
    r"postal[ _]?code|city|town|state|province|region|country|location|loc|gpe|place|date|"
    r"date[ _]?time|time|dob|birth[ _]?date|birthday|age|ssn|us[ _]?ssn|nin|sin|"
    r"national[ _]?id|id|ids|account|acct|iban|iban[ _]?code|card|credit[ _]?card|cc|"
    r"routing|swift|tax[ _]?id|vat|passport|licen[cs]e|plate|vehicle|url|ip|ip[ _]?address|"
    r"number|no|amount|salary|dept|department|title|job[ _]?title|signature|gender|"
    r"nationality|mrn|policy|claim|order|invoice|ticket|case|credentials|password|misc|"
    r"nom|prénom|prenom|adresse|ville|date de naissance|téléphone|ort|stadt|straße|"
    r"bestellnummer|kundennummer|telefonnummer|geburtsdatum|nombre|apellidos?|cuenta|dni|"
    r"ciudad|dirección|teléfono|cognome|comune|numero|indirizzo|nome|idade|cidade|"
    r"endereço|telefone|cpf|фамилия|имя|адрес|телефон|"
    r"\p{Han}{0,4}(?:姓名|名字|名称|部门|电话|手机号?|地址|公司|单位|客户|联系人|身份证号?|"
    r"账号|金额|分数|日期|氏名|名前|電話番号|住所|会社名?|部署)|이름|성명|전화번호|주소|회사|부서)"
)
#: words that say a value was taken out
_GONE = (r"(?:redacted|removed|masked|hidden|withheld|omitted|deleted|anonymi[sz]ed|"
         r"geschwärzt|entfernt|supprimée?|masqué|ocult[oa]|oscurat[oa])")
#: a tag's qualifier: a word joined by ``_`` or ``-`` (``EMPLOYEE_NAME``), or a kind of data
#: itself (``CUSTOMER ID``, ``PHONE NUMBER``); not "your name" (a template's own slot)
_QUALIFIER = r"(?:[a-z]+[_-]|" + _PII + r" ){0,2}"
PLACEHOLDER_PATTERN = _any(
    # a bracketed tag: qualifiers, a kind of personal or company data, an index or a word
    # saying it was taken out, a masked value after a colon
    r"[^a-z0-9_][\[【〔［]{1,2}\s*" + _QUALIFIER + _PII
    + r"(?:[ _-]?\d+|[ _-][a-z]\b|[ _-]" + _GONE + r")?(?:\s*[:：]\s*[^\]】〕］\n]{0,24})?"
    + r"\s*[\]】〕］]",
    # a tag in angle brackets as anonymisation tools write them (``<PERSON>``,
    # ``<PHONE_NUMBER>``, ``<LOCATION_2>``): an HTML element is a single plain word
    r"<(?:redacted|name|person|per|org|organi[sz]ation|company|loc|location|email|phone|"
    r"address|date|id|pii|misc|gpe)(?:[ _-]?\d+)?>",
    r"<{1,2}(?:[a-z]+_){0,2}" + _PII + r"(?:_(?:\d+|[a-z]+)|\d+)>|<{1,2}(?:[a-z]+_){1,2}"
    + _PII + r">",
    r"[＜〈]\s*" + _PII + r"\s*[＞〉]",
    r"\((?:[a-z]+ )?(?:redacted|removed|masked|anonymi[sz]ed|withheld|omitted|deleted|"
    r"censored|scrubbed|changed)\)|\((?:pseudonyms?|fictitious names?|not (?:his|her|their) "
    r"real names?)\)",
    r"\{\{\s*[a-z_][a-z0-9_\.]*\s*\}\}",
    r"\b(?:person|company|org|customer|user|entity|name|product|brand|location|city)_(?:\d+|[a-z])\b",
    r"\b(?:company|person|customer|entity|party|vendor|client) [a-z]\b(?:,| and| or|\.)",
    r"\b(?:patient|customer|client|employee|member|student|applicant|claimant|caller|"
    r"tenant|subject|individual|witness|respondent) #?\d{1,4}\b",
    r"\b[a-z0-9]+_(?:redacted|masked|removed|anonymi[sz]ed|hidden)\b",
    r"\bx{2,}\b",
    r"\*{3,}",
    r"\d\*{2,}\d",
    r"[*x#]{2}[/.-][*x#]{2}[/.-]",
    r"[^\p{Han}*][\p{Han}\p{Hangul}]\*{1,2}|[\p{Han}\p{Hangul}]?＊{1,}",
    r"\b[a-z](?:氏|씨|先生|女士|小姐)|某[甲乙丙丁戊]",
    r"█+|▇+|▓{2,}|■{3,}|•{3,}|●{3,}",
    r"[○〇◯△]{2,}|×{2,}",
    r"[a-z0-9_]#{3,}|#{3,}[-0-9]",
    r"\b[0-9a-f]{32}\b|\b[0-9a-f]{40}\b|\b[0-9a-f]{64}\b",
    r"\b(?:anon|user|id|hash)[-_][0-9a-f]{6,}\b",
    r"[a-z]{2}[-_](?:[0-9]+[a-f]|[a-f]+[0-9])[0-9a-f]{2,}\b",
    r"\b(?:tkn|tok|token|pii|ent|entity|pseudo|surrogate|ref)[-_]\d{2,}\b",
    r"<insert [a-z ]{2,24}>",
)

# A statement that the text was anonymised, masked or de-identified before it was sent.
DESENS_NOTE = _any(
    r"(?:anonymi[sz]ed|pseudonymi[sz]ed|de-?identified|masked|redacted|scrubbed|sanitized|"
    r"sanitised|desensiti[sz]ed) (?:data|input|inputs|text|records?|transcripts?|logs?|"
    r"tickets?|version|copy|dataset|information|emails?|notes?|conversations?|chats?|"
    r"excerpt|extract|handles|identifiers|ids|names)",
    r"(?:data|input|inputs|text|records?|information|pii|phi|identifiers|names|details|"
    r"fields|values|entities) (?:has|have|had|were|was|are|is) (?:been )?(?:fully |already |"
    r"partially )?(?:anonymi[sz]ed|pseudonymi[sz]ed|de-?identified|masked|redacted|"
    r"scrubbed|stripped|removed|replaced|sanitized|sanitised|desensiti[sz]ed|obfuscated|"
    r"tokeni[sz]ed|changed|hidden)",
    r"(?:identifiers|personal data|personal details|pii|names) (?:removed|redacted|masked|"
    r"changed|anonymi[sz]ed|pseudonymi[sz]ed)",
    r"pre-?anonymi[sz]ed|\bpii[- ](?:removed|scrubbed|stripped|masked|redacted|free)",
    r"脱敏|去标识|已匿名|匿名化|化名|マスキング|仮名|비식별|익명화|마스킹|가명",
    r"anonymisiert|pseudonymisiert|geschwärzt|anonymisé|pseudonymisé|caviardé|anonimizad|"
    r"seudonimizad|enmascarad|se han ocultado|datos personales (?:han sido |fueron )?ocultad|"
    r"anonimizzat|pseudonimizzat|oscurat|обезличен|анонимизирован|изменен",
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


# Word-level cues: how people phrase these requests in their own words. A regular expression
# with word gaps ("show ... reasoning") multiplies the states of the one automaton that scans
# every window, so these are matched by a compiled word pass instead (:mod:`.cues`): words
# are maximal runs of ASCII letters, digits, apostrophes and non-ASCII bytes; a clause ends
# at ``. ! ? ;`` or a line break.

#: a word or two-word phrase that is a hit by itself, per lexicon
CUE_PHRASES: dict[str, tuple[str, ...]] = {
    "cot": (
        "by line", "by clause", "by piece", "by stage", "step at", "stage at",
        "worked solution", "worked solutions", "subproblems", "sub problems", "thought process",
        "reasoning trace", "scratchpad", "scratch work", "show work",
    ),
    "dataset": (
        "each entry", "each record", "each row", "each sample", "each pair", "per line",
        "per record", "paired with", "split field", "target output", "target sql",
        "gold answer", "gold answers", "sentiment labels", "intent labels", "bio tags",
        "assistant messages", "jsonl", "model training",
    ),
    "judge": (
        "likert", "pairwise", "letter grade", "point scale", "reference answer", "reward model",
    ),
    "identity": (
        "system prompt", "system message", "hidden prompt", "hidden instructions",
        "initial instructions", "initial prompt", "original instructions",
        "developer instructions", "developer message", "secret prompt", "identify yourself",
        "training cutoff", "knowledge cutoff", "training cut", "knowledge cut", "model family",
    ),
    "agent": (
        "tool call", "tool calls", "function call", "function calls", "function calling",
        "call arguments", "call payload", "function name", "action log", "action trajectory",
        "agent trajectory", "browsing agent", "coding agent", "autonomous agent", "web agent",
        "available tools", "mcp tools", "can call", "function schema", "tool schema",
    ),
}

_SHOW = (
    "show", "shows", "showing", "explain", "explains", "explaining", "give", "giving",
    "include", "including", "reveal", "expose", "narrate", "articulate", "outline", "display",
    "present", "detail", "trace", "justify", "make", "tell", "see", "follow", "share", "put",
    "document", "describe", "print", "output", "keep", "list", "state", "demonstrate",
    "elaborate", "provide", "write", "lay", "spell", "walk", "break", "go", "goes", "going",
    "dump", "talk", "walks", "lays", "spells", "reveals", "exposes",
)
_CANDIDATES = (
    "answer", "answers", "answr", "response", "responses", "reply", "replies", "output",
    "outputs", "completion", "completions", "candidate", "candidates", "generation",
    "generations", "summary", "summaries", "translation", "translations", "transcript", "turn",
    "generated",
)

#: ``(lexicon, left words, right words, most words between, either order)``: a clause in
#: which a left word is followed, at most that many words on, by a right word is a hit
CUE_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], int, bool], ...] = (
    # "walk me through your derivation", "lay out the full thought process"
    ("cot", _SHOW, (
        "reasoning", "rationale", "thought", "thoughts", "thinking", "logic", "derivation",
        "derivations", "deliberation", "working", "workings", "justification", "inference",
        "inferences", "calculation", "calculations", "arithmetic", "intermediate",
    ), 4, False),
    # "not just the final answer", "rather than only the number"
    ("cot", ("not just", "not only", "not simply", "dont just", "don't just", "rather than",
             "instead of"),
     ("answer", "result", "figure", "number", "letter", "conclusion", "verdict", "value",
      "label", "score"), 3, False),
    # "how you arrived at it"
    ("cot", ("how",), (
        "arrived", "arrive", "derived", "derive", "reached", "figured", "checked", "reason",
        "reasoned", "solved", "computed", "calculated", "concluded",
    ), 3, False),
    # "every algebra step", "each discounting step"
    ("cot", ("each", "every"), ("step", "steps"), 2, False),
    # "the reasoning visible", "rationale first"
    ("cot", ("reasoning", "rationale", "thinking", "calculation", "calculations", "derivation",
             "working", "workings"), ("visible", "shown", "explicit", "first"), 3, False),
    # "your full chain of reasoning"
    ("cot", ("chain",), ("reasoning", "thought", "thoughts", "logic"), 1, False),
    # "rank these replies", "which response is better"
    ("judge", (
        "rate", "rating", "score", "scoring", "grade", "grading", "rank", "ranking", "judge",
        "judging", "evaluate", "evaluating", "assess", "assessing", "compare", "comparing",
        "critique", "audit", "review", "check", "pick", "choose", "select", "decide",
        "determine", "prefer",
    ), _CANDIDATES, 5, False),
    # "response B does a better job", "the second reply is preferred"
    ("judge", tuple(c for c in _CANDIDATES if c not in ("output", "outputs", "generated")),
     ("better", "best", "worse", "preferred", "wins", "winner"), 5, False),
    # "the two completions", "these five replies"
    ("judge", ("two", "both", "these", "three", "four", "five", "several", "following",
               "multiple", "pair"),
     ("answers", "responses", "replies", "outputs", "completions", "candidates", "summaries",
      "generations"), 2, False),
    # "act as a strict grader"
    ("judge", ("you", "act", "as", "acting"),
     ("grader", "judge", "evaluator", "rater", "reviewer", "annotator"), 3, False),
    # "score each 1-5", "on a scale from 0 to 3"
    ("judge", ("score", "scores", "scoring", "scale", "rate", "rating", "grade", "mark",
               "points"), ("0", "1"), 3, False),
    # "pass / borderline / fail", "declare a winner or a tie"
    ("judge", ("pass", "winner"), ("fail", "borderline", "tie"), 2, False),
    # "response B", "reply X"
    ("judge", ("response", "answer", "reply", "output", "completion", "summary", "candidate"),
     ("b", "x", "y"), 1, False),
    # "your weights", "the architecture you run on"
    ("identity", ("you", "your", "ur", "yourself", "yours"), (
        "llm", "architecture", "checkpoint", "weights", "cutoff", "internals", "parameters",
        "underlying", "configured",
    ), 3, True),
    # "your model name", "your version string"
    ("identity", ("your", "ur"), ("model name", "model version", "model id", "version string"),
     1, False),
    # "the model behind you", "which LLM powers this", "what model served this request"
    ("identity", ("model", "llm", "vendor", "provider"),
     ("served", "serving", "powers", "behind", "answering"), 2, False),
    # "the assistant was configured with", "repeat everything above"
    ("identity", ("assistant", "bot", "chatbot", "repeat"),
     ("configured", "instructed", "prompted", "above", "verbatim"), 3, False),
    # "which company trained you", "who made you"
    ("identity", ("who", "which", "what", "company", "whose"), (
        "made you", "built you", "created you", "trained you", "developed you",
        "designed you", "programmed you", "made u", "provider", "creator", "developer",
        "maker",
    ), 3, False),
    # "what model are you", "which version are you"
    ("identity", ("model", "llm", "version", "checkpoint", "architecture"),
     ("are you", "you are"), 2, False),
    # "what were you told", "your training data"
    ("identity", ("were you", "you were", "your training", "your knowledge"),
     ("told", "instructed", "configured", "given", "prompted", "data", "cutoff", "ends",
      "end", "updated", "trained", "released"), 1, False),
    # "are you Llama under the hood", "is this Gemini"
    ("identity", ("you", "this"), (
        "gpt", "chatgpt", "claude", "llama", "gemini", "mistral", "qwen", "deepseek", "grok",
        "openai", "anthropic",
    ), 3, False),
    # "which tool would you call", "use the search tool"
    ("agent", (
        "call", "calls", "calling", "invoke", "invoking", "use", "using", "run", "hit", "emit",
        "pick", "select", "choose", "which", "route", "fill", "expose", "access",
    ), ("tool", "tools", "schema", "schemas"), 4, False),
    # "invoke the lookup function" (not "use this function": code help says that)
    ("agent", ("call", "calling", "invoke", "invoking", "emit", "route"),
     ("function", "functions"), 3, False),
    # "emit the call", "show each call", "plan the sequence of calls"
    ("agent", ("emit", "output", "produce", "return", "show", "list", "plan", "format", "each",
               "every", "sequence", "series", "chain"),
     ("call", "calls", "invocation", "invocations"), 3, False),
    # "given these tools", "an agent with a bash tool"
    ("agent", ("given", "giving", "available", "exposes", "have", "agent", "agents"),
     ("tools", "tool", "functions", "command", "commands"), 3, False),
    # "pretend you are an agent"
    ("agent", ("as", "pretend", "play", "act"), ("agent",), 3, False),
    # "thought, action, observation"
    ("agent", ("thought", "action", "observation"), ("observation", "action", "thought"), 2,
     True),
    # "generate 200 labelled rows"
    ("dataset", (
        "generate", "create", "produce", "write", "make", "give", "need", "synthesize",
        "synthesise", "compile", "build", "prepare", "convert", "format", "formatted", "output",
    ), ("samples", "rows", "records", "entries", "utterances", "pairs", "triples", "instances",
        "corpus", "dataset", "datasets"), 6, False),
    # "seed data", "reward model data", "synthetic rows"
    ("dataset", (
        "training", "train", "trainig", "finetuning", "finetune", "fine tuning", "sft", "rlhf",
        "dpo", "seed", "labeled", "labelled", "synthetic", "distillation", "preference",
        "reward", "supervised",
    ), ("data", "dataset", "examples", "samples", "set", "corpus", "rows", "records", "pairs",
        "triples", "entries", "conversations", "dialogues", "instances"), 2, False),
    # "formatted for supervised fine-tuning"
    ("dataset", ("for", "of"), ("sft", "rlhf", "dpo", "distillation", "finetuning", "finetune",
                                "fine tuning"), 3, False),
    # "prompt/completion", "input text, target output"
    ("dataset", ("input", "prompt", "instruction", "document", "source", "problem"),
     ("completion", "completions", "target", "paraphrase", "label", "labels"), 2, False),
)
