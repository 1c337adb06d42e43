"""Lesson files for the tests: a tiny lesson that trains in seconds on the built-in digits, and
writing lesson files into a folder the app reads through AE_LAB_LESSON_DIRS."""
from __future__ import annotations

from pathlib import Path

# Two training steps of two 1-epoch runs each on the digits, a step that uses the first one's runs
# with a classifier, and every kind of question.
TINY_LESSON = """---
title: Tiny latent lesson
goal: Two code sizes on the digits, quickly.
dataset: digits
---
An introduction with **bold** and a [link](https://example.org).

## Two code sizes

Train two runs.

```step
run: --grid model.latent=2,8 --model conv-small --epochs 2
show: [runs, answer, reconstructions, latent-raw]
look_for: The larger code reconstructs better.
questions:
  - ask: Which code size gives the lowest test MSE?
    kind: choice
    choices: [2, 8]
    expect: {lowest: test_mse, factor: model.latent}
  - ask: What did you see?
  - ask: How many runs did this step train?
    kind: number
```

## Classifiers

```step
use: 1
show: classifier
questions:
  - ask: Which code size classifies best?
    kind: choice
    choices: [2, 8]
    expect: {highest: probe_accuracy, factor: model.latent}
```

## Dropout

```step
run: --grid model.dropout=0,0.5 --latent 4 --model conv-small --epochs 1
show: [noise-sweep, generate]
```
"""


def write_lesson(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    return path
