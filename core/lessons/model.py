"""What a lesson file says, once read and checked: the lesson, its steps and their questions."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The views a step can show (show:), each answering one kind of question; the page and the report
# draw them the same way (core.reports.figures).
VIEWS = {
    "runs": "the step's runs compared: loss curves and final test MSE",
    "answer": "the experiment's answer: the metric against each factor (a search: its history)",
    "reconstructions": "the same test images reconstructed by every run",
    "noise-sweep": "reconstruction error as the input noise rises, every run",
    "latent-raw": "the test codes' first two coordinates (click the plane to decode a spot)",
    "latent-pca": "the test codes projected by PCA, coloured by class",
    "latent-tsne": "the test codes projected by t-SNE, coloured by class",
    "generate": "images decoded from random codes (a VAE's prior; a Gaussian fitted to an AE's codes)",
    "wrong-label": "a conditional model decoding one image of each class with every label",
    "classifier": "a classifier on the frozen encoder: accuracy and confusion matrix",
    "anomaly": "ROC of the reconstruction error as an anomaly score for the held-out classes",
}
QUESTION_KINDS = ("text", "choice", "number")
# What an expected answer can be computed from: each variant's value of one of these.
METRICS = {
    "test_mse": "test MSE", "test_mae": "test MAE", "val_loss": "validation loss", "train_loss": "train loss",
    "gap": "gap between validation and train loss", "seconds": "training time", "epochs": "epochs trained",
    "probe_accuracy": "classifier accuracy", "noisy_mse": "MSE on noisy test images (noise 0.5)",
}
BEST = ("lowest", "highest")
MAX_ANSWER_CHARS = 5000  # one answer box
MAX_NAME_CHARS = 80  # the student's name on a hand-in


@dataclass(frozen=True)
class Expectation:
    """A question's answer computed from the step's own runs: the run with the lowest (or highest)
    `metric`, answered by its value of `factor` (a dotted config path), or by its label."""

    metric: str
    best: str  # lowest | highest
    factor: str = ""

    def describe(self) -> str:
        what = self.factor.partition(".")[2].replace("_", " ") if self.factor else "run"
        return f"the {what} with the {self.best} {METRICS[self.metric]}"


@dataclass
class Question:
    key: str  # where its answer is kept: the question's id, else s<step>q<n>
    ask: str  # Markdown
    kind: str = "text"
    choices: list[str] = field(default_factory=list)
    expect: Expectation | None = None
    line: int = 0


@dataclass
class Step:
    number: int  # 1, 2, ... in the file's order
    title: str
    text: str  # Markdown, as the teacher wrote it (the step block taken out)
    line: int  # of its heading, in the file
    run: str = ""  # what the step trains, in the CLI's syntax (experiment/search options)
    use: int | None = None  # an earlier step whose runs this one shows (instead of training)
    show: list[str] = field(default_factory=list)
    look_for: str = ""
    questions: list[Question] = field(default_factory=list)

    @property
    def source(self) -> int | None:
        """The step whose runs this step shows: its own when it trains, else the one it uses."""
        return self.number if self.run else self.use


@dataclass
class Lesson:
    name: str  # the file's stem: what URLs, the CLI and the answer files use
    path: Path
    title: str
    goal: str
    dataset: str  # the dataset the homework asked for
    folder: str = ""  # dataset folder: the folder as the app names it (data/styles)
    data: str = ""  # the named dataset's options, in the CLI's syntax (--limit 12000)
    fallback: str = "digits"  # the built-in dataset used when the named one is not on the server
    fallback_data: str = ""  # the fallback's options
    intro: str = ""  # Markdown before the first step
    steps: list[Step] = field(default_factory=list)

    def step(self, number: int) -> Step:
        return self.steps[number - 1]

    def questions(self) -> list[Question]:
        return [q for step in self.steps for q in step.questions]


@dataclass(frozen=True)
class LessonProblem:
    """A lesson file that cannot be used, in one sentence naming the file, the line or field,
    and what to write instead."""

    path: Path
    name: str
    message: str
