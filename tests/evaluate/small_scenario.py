"""The small scenario the evaluation tests simulate (about 90 accounts, two days)."""

SMALL = """
name: small-eval
seed: 5
days: 2
reference_fraction: 0.2
benign:
  - {persona: chat_app, count: 40, volume_per_day: {median: 5, sigma: 0.5}}
  - {persona: support_bot, count: 10, volume_per_day: {median: 8, sigma: 0.5}}
  - {persona: translation_pipeline, count: 3, volume_per_day: {median: 30, sigma: 0.2}}
  - {persona: evaluation_lab, count: 3, volume_per_day: {median: 30, sigma: 0.2}}
  - {persona: education, count: 14, volume_per_day: {median: 5, sigma: 0.5}}
attackers:
  - {strategy: harvester, count: 2, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: rival_evaluator, count: 2, volume_per_day: {median: 40, sigma: 0.1}}
hydras:
  - {strategy: dataset_formatter, size: 6, reseller: r1, volume_per_day: {median: 5, sigma: 0.1}}
  - {strategy: cot_extractor, size: 5, reseller: r2, volume_per_day: {median: 5, sigma: 0.1}}
mixers:
  - {host: chat_app, strategy: harvester, fractions: [0.5, 0.1], count: 2,
     volume_per_day: {median: 40, sigma: 0.1}}
"""
