"""The emulator's deliberately simple models and their metrics (pure Python, no numpy).

Classification is naive Bayes, regression is ridge regression; see "The model" in
docs/emulator.md. Both explain a prediction by per-column contributions, used for the
reasons of ``ar`` inference and for feature importance.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .tabular import STRING, Table, parse_cell

BINARY, MULTI, REGRESSION = "binary_classification", "multi_classification", "regression"
RIDGE_LAMBDA = 1.0
ONE_HOT_LEVELS = 10
_PROBABILITY_FLOOR = 1e-15
_CACHED_CELLS = 100_000

Row = Mapping[str, str]


def _round(value: float) -> float:
    return round(value, 6)


@dataclass
class Prediction:
    """One scored row: a label and class probabilities (classification) or a value (regression),
    plus how much each column pushed the result (positive: towards it)."""

    label: str = ""
    value: float = 0.0
    probabilities: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)


class Model(ABC):
    """A trained model; ``features`` are the columns it reads (every column but the target)."""

    algorithm: str

    def __init__(self, target_type: str, features: list[str], kinds: dict[str, int]) -> None:
        self.target_type = target_type
        self.features = features
        self.kinds = kinds

    @abstractmethod
    def predict(self, row: Row) -> Prediction:
        """Score one row (missing or unreadable cells are treated as missing)."""

    def check_input(self, table: Table) -> None:
        """Refuse rows to score that this model cannot use (a time-series model needs its time
        column); ``features`` missing from the header are refused by the caller.

        :raises ValueError: saying what is wrong.
        """
        del table  # other models read any rows that have their features

    def output_header(self, with_label: bool = True) -> list[str]:
        """Columns that :meth:`output_cells` fills: ``prediction`` and the probabilities."""
        header = ["prediction"] if with_label or self.target_type == REGRESSION else []
        return header + self._probability_columns()

    def output_cells(self, prediction: Prediction, with_label: bool = True) -> list[str]:
        if self.target_type == REGRESSION:
            return [repr(_round(prediction.value))]
        cells = [prediction.label] if with_label else []
        return cells + [repr(_round(prediction.probabilities[label])) for label in self._probability_labels()]

    def _probability_columns(self) -> list[str]:
        if self.target_type == BINARY:
            return ["probability"]
        return [f"probability_{label}" for label in self._probability_labels()]

    def _probability_labels(self) -> list[str]:
        return []


def _mean_variance(values: Sequence[float]) -> tuple[float, float]:
    mean = math.fsum(values) / len(values)
    return mean, math.fsum((value - mean) ** 2 for value in values) / len(values)


class NaiveBayes(Model):
    """Gaussian likelihoods for numeric and date columns, Laplace-smoothed frequencies for strings.

    For binary classification ``classes[0]`` is the positive value.
    """

    algorithm = "naive_bayes"

    def __init__(
        self,
        table: Table,
        features: list[str],
        labels: Sequence[str],
        classes: list[str],
        *,
        target_type: str,
        balanced: bool,
    ) -> None:
        super().__init__(target_type, features, {name: table.kind(name) for name in features})
        self.classes = classes
        class_counts = Counter(labels)
        self.log_prior = [
            -math.log(len(classes)) if balanced else math.log(class_counts[label] / len(labels)) for label in classes
        ]
        self.gaussians: dict[str, list[tuple[float, float]]] = {}
        self.frequencies: dict[str, tuple[list[Counter[str]], list[int], int]] = {}
        # Inference scores one row per request, thousands a second (benchmark P4): a cell's
        # likelihoods are computed once. Bounded: numeric cells rarely repeat.
        self._likelihoods: dict[tuple[str, str], list[float] | None] = {}
        for name in features:
            if self.kinds[name] == STRING:
                self._fit_string(name, table.cells(name), labels)
            else:
                self._fit_numeric(name, table.numbers(name), labels)

    def _fit_numeric(self, name: str, values: list[float | None], labels: Sequence[str]) -> None:
        present = [value for value in values if value is not None]
        if not present:
            return
        overall_mean, overall_variance = _mean_variance(present)
        smoothing = 1e-9 * overall_variance + 1e-12
        stats: list[tuple[float, float]] = []
        for label in self.classes:
            group = [v for v, y in zip(values, labels, strict=True) if y == label and v is not None]
            mean, variance = _mean_variance(group) if group else (overall_mean, overall_variance)
            stats.append((mean, variance + smoothing))
        self.gaussians[name] = stats

    def _fit_string(self, name: str, cells: list[str], labels: Sequence[str]) -> None:
        per_class = [Counter[str]() for _ in self.classes]
        position = {label: index for index, label in enumerate(self.classes)}
        for cell, label in zip(cells, labels, strict=True):
            if cell:
                per_class[position[label]][cell] += 1
        totals = [sum(counts.values()) for counts in per_class]
        distinct = len(set().union(*per_class))
        self.frequencies[name] = (per_class, totals, distinct)

    def _log_likelihoods(self, name: str, cell: str) -> list[float] | None:
        key = (name, cell)
        if key not in self._likelihoods:
            if len(self._likelihoods) >= _CACHED_CELLS:
                self._likelihoods.clear()
            self._likelihoods[key] = self._compute_log_likelihoods(name, cell)
        return self._likelihoods[key]

    def _compute_log_likelihoods(self, name: str, cell: str) -> list[float] | None:
        if not cell:
            return None
        if name in self.frequencies:
            per_class, totals, distinct = self.frequencies[name]
            return [
                math.log((counts[cell] + 1) / (total + distinct + 1))
                for counts, total in zip(per_class, totals, strict=True)
            ]
        value = parse_cell(cell, self.kinds[name])
        if value is None or name not in self.gaussians:
            return None
        return [
            -0.5 * math.log(2 * math.pi * variance) - (value - mean) ** 2 / (2 * variance)
            for mean, variance in self.gaussians[name]
        ]

    def predict(self, row: Row) -> Prediction:
        scores = list(self.log_prior)
        per_feature: dict[str, list[float]] = {}
        for name in self.features:
            likelihoods = self._log_likelihoods(name, row.get(name, ""))
            if likelihoods is not None:
                per_feature[name] = likelihoods
                scores = [score + ll for score, ll in zip(scores, likelihoods, strict=True)]
        top = max(scores)
        weights = [math.exp(score - top) for score in scores]
        total = math.fsum(weights)
        best = scores.index(top)
        others = len(self.classes) - 1
        contributions = {name: ll[best] - (math.fsum(ll) - ll[best]) / others for name, ll in per_feature.items()}
        return Prediction(
            label=self.classes[best],
            probabilities={label: w / total for label, w in zip(self.classes, weights, strict=True)},
            contributions=contributions,
        )

    def _probability_labels(self) -> list[str]:
        return self.classes[:1] if self.target_type == BINARY else self.classes


@dataclass(frozen=True)
class _Term:
    """One column of the ridge design matrix: a standardised numeric column or a one-hot level."""

    column: str
    level: str | None
    mean: float
    scale: float
    center: float

    def value(self, cell: str, kind: int) -> float:
        if self.level is not None:
            return (1.0 if cell == self.level else 0.0) - self.center
        number = parse_cell(cell, kind)
        return 0.0 if number is None else (number - self.mean) / self.scale


def _solve_symmetric(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve ``matrix @ x = vector`` for a symmetric positive definite matrix (Cholesky)."""
    size = len(vector)
    lower = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1):
            partial = matrix[i][j] - math.fsum(lower[i][k] * lower[j][k] for k in range(j))
            lower[i][j] = math.sqrt(partial) if i == j else partial / lower[j][j]
    forward = [0.0] * size
    for i in range(size):
        forward[i] = (vector[i] - math.fsum(lower[i][k] * forward[k] for k in range(i))) / lower[i][i]
    solution = [0.0] * size
    for i in reversed(range(size)):
        rest = math.fsum(lower[k][i] * solution[k] for k in range(i + 1, size))
        solution[i] = (forward[i] - rest) / lower[i][i]
    return solution


class Ridge(Model):
    """Ridge regression (lambda 1, intercept not penalised) on standardised numeric columns plus
    one-hot encodings of the most frequent values of each string column, solved exactly."""

    algorithm = "ridge_regression"

    def __init__(self, table: Table, features: list[str], targets: Sequence[float]) -> None:
        super().__init__(REGRESSION, features, {name: table.kind(name) for name in features})
        self.terms = [term for name in features for term in self._terms(table, name)]
        kinds = [self.kinds[term.column] for term in self.terms]
        positions = [table.index(term.column) for term in self.terms]
        design = [
            [term.value(row[position], kind) for row in table.rows]
            for term, kind, position in zip(self.terms, kinds, positions, strict=True)
        ]
        self.intercept = math.fsum(targets) / len(targets)
        residual = [target - self.intercept for target in targets]
        gram = [[0.0] * len(design) for _ in design]
        for i, column in enumerate(design):
            for j in range(i + 1):
                gram[i][j] = gram[j][i] = sum(map(operator.mul, column, design[j]))
            gram[i][i] += RIDGE_LAMBDA
        moments = [sum(map(operator.mul, column, residual)) for column in design]
        self.weights = _solve_symmetric(gram, moments) if design else []

    @staticmethod
    def _terms(table: Table, name: str) -> list[_Term]:
        if table.kind(name) == STRING:
            cells = table.cells(name)
            return [
                _Term(name, level, 0.0, 1.0, count / len(cells))
                for level, count in Counter(cell for cell in cells if cell).most_common(ONE_HOT_LEVELS)
            ]
        present = [value for value in table.numbers(name) if value is not None]
        if len(present) < 2:
            return []
        mean, variance = _mean_variance(present)
        return [_Term(name, None, mean, math.sqrt(variance), 0.0)] if variance > 0 else []

    def predict(self, row: Row) -> Prediction:
        contributions = dict.fromkeys(self.features, 0.0)
        for term, weight in zip(self.terms, self.weights, strict=True):
            contributions[term.column] += weight * term.value(row.get(term.column, ""), self.kinds[term.column])
        return Prediction(value=self.intercept + math.fsum(contributions.values()), contributions=contributions)


# Metrics ---------------------------------------------------------------------------------------


def _clip(probability: float) -> float:
    return min(max(probability, _PROBABILITY_FLOOR), 1 - _PROBABILITY_FLOOR)


def _auc(actual: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half); ``None`` with a single class."""
    positives = sum(actual)
    negatives = len(actual) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        average_rank = (start + end) / 2 + 1
        rank_sum += average_rank * sum(actual[order[k]] for k in range(start, end + 1))
        start = end + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _precision_recall(actual: Sequence[str], predicted: Sequence[str], label: str) -> tuple[float, float]:
    true_positive = sum(1 for a, p in zip(actual, predicted, strict=True) if a == p == label)
    predicted_count = sum(1 for p in predicted if p == label)
    actual_count = sum(1 for a in actual if a == label)
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / actual_count if actual_count else 0.0
    return precision, recall


def classification_metrics(
    actual: Sequence[str], predictions: Sequence[Prediction], positive: str | None
) -> dict[str, float | None]:
    """Binary metrics when ``positive`` is given, multi-class metrics otherwise."""
    predicted = [prediction.label for prediction in predictions]
    accuracy = sum(1 for a, p in zip(actual, predicted, strict=True) if a == p) / len(actual)
    log_loss = -math.fsum(
        math.log(_clip(prediction.probabilities.get(label, 0.0)))
        for label, prediction in zip(actual, predictions, strict=True)
    ) / len(actual)
    if positive is None:
        labels = sorted(set(actual) | set(predicted))
        f1_scores = [_f1(*_precision_recall(actual, predicted, label)) for label in labels]
        return {"accuracy": accuracy, "macro_f1": math.fsum(f1_scores) / len(labels), "log_loss": log_loss}
    precision, recall = _precision_recall(actual, predicted, positive)
    scores = [prediction.probabilities.get(positive, 0.0) for prediction in predictions]
    return {
        "accuracy": accuracy,
        "auc": _auc([label == positive for label in actual], scores),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "log_loss": log_loss,
    }


def regression_metrics(actual: Sequence[float], predictions: Sequence[Prediction]) -> dict[str, float | None]:
    errors = [prediction.value - value for value, prediction in zip(actual, predictions, strict=True)]
    mean = math.fsum(actual) / len(actual)
    total = math.fsum((value - mean) ** 2 for value in actual)
    squared = math.fsum(error * error for error in errors)
    return {
        "rmse": math.sqrt(squared / len(actual)),
        "mae": math.fsum(abs(error) for error in errors) / len(actual),
        "r2": 1 - squared / total if total > 0 else None,
    }


def importance(features: Sequence[str], predictions: Sequence[Prediction]) -> dict[str, float]:
    """Mean absolute contribution of each column over the given predictions, as shares of 1.

    Measured on evaluation rows, so that a column that only identifies training rows (an id)
    does not look important.
    """
    totals = {name: math.fsum(abs(p.contributions.get(name, 0.0)) for p in predictions) for name in features}
    grand_total = math.fsum(totals.values())
    return {name: total / grand_total if grand_total > 0 else 0.0 for name, total in totals.items()}


def rounded(metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    return {name: None if value is None else _round(value) for name, value in metrics.items()}
