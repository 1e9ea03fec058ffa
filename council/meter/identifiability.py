"""Identifiability: can the answers be told apart by who said them?

A nearest-centroid classifier is scored on answers it never saw, and what is held out is a
whole unit of the design, never one answer beside its kin: with ``groups`` (runs), one run at
a time; within a single run, one ``block`` (stage and round) at a time, which measures how
consistently a seat speaks across the run's stages (anything a seat keeps through a run counts,
persona or not); with neither, one answer at a time, honest only for independent answers.

Whatever the classifier uses comes from the training answers alone. Each answer is centred on
the mean of the training answers of its block key (keyed across runs: question, stage and
round, so other runs of the same question supply the centre; else the training mean) and
L2-normalised; a class's centroid sums its training answers; cosine picks the nearest. The
procedure this replaced centred with the held-out answer in its block and kept its other stages
in training: on pure noise it scored 0.55 for 4 personas. Labels enter only at the centroids,
so each held-out unit reduces its training answers to per-(unit, class) sums, and a relabelling
that renames classes within units costs no pass over the vectors.

The headline is balanced accuracy (mean recall over classes; chance 1/k whatever the class
sizes), plain accuracy beside it. Its interval is clustered by held-out unit: a t interval on
the delete-one-unit jackknife (a run's answers share their fate, so they are no independent
trials). The p-value reruns everything under relabellings that respect the design: in each
held-out unit one permutation of the class names present, applied to all its answers (a seat
keeps one label across its stages); p = (1 + #{shuffled >= observed}) / (B + 1). Too few units
or classes give a result whose ``note`` says why, never an exception.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from council.meter.binary import wilson
from council.records.run import Turn

PERMUTATIONS = 1000
# What each kind of held-out unit is called, the classifier, and how the shuffles relabel.
HOLD_OUT = {
    "run": ("run", "leave-one-run-out", "class names permuted consistently within each run"),
    "stage": ("block", "leave-one-block-out (stage and round) within one run",
              "class names permuted consistently within each block"),
    "answer": ("answer", "leave-one-answer-out (answers taken as independent)",
               "labels shuffled across answers"),
}  # fmt: skip
PREPARATION = (
    "nearest centroid by cosine, each answer centred on the mean of the training answers of "
    "its block (else of all training answers) and L2-normalised, centroids from training "
    "answers only; balanced accuracy"
)
INTERVAL = (
    "t interval ({df} df) on the delete-one-{unit} jackknife standard error of balanced "
    "accuracy (clustered by {unit}; held-out predictions fixed, so the classifier's own "
    "variability is left out and the interval runs a little narrow)"
)
FLAT = (
    "Wilson score interval with the {folds} held-out {unit}s as trials (every {unit} scored "
    "alike, so the jackknife has no spread to go on)"
)
SMALL_PER_CLASS = 5  # fewer answers per class than this: the test has little power
FEW_UNITS = 10  # fewer held-out units than this: the t interval has few df and is wide
_CELLS = 2_000_000  # labellings x pairs x classes scored at once: bounds memory
_EPS = 1e-12

Matrix = npt.NDArray[np.floating[Any]]
Indices = npt.NDArray[np.intp]


@dataclass
class Identifiability:
    """How well the answers' vectors identify who gave them.

    ``balanced_accuracy`` (mean recall over classes) is the headline, its chance level
    ``uniform_chance`` = 1/k; ``accuracy`` is the plain share right, its chance level ``chance``
    the majority class's share. ``ci95`` is the interval of balanced accuracy, ``null_mean``
    the mean balanced accuracy over the relabellings (this very procedure's chance level).
    ``held_out`` says what was held out in turn (run, stage or answer), ``folds`` how many.
    ``confusion[i][j]`` counts answers of ``classes[i]`` given to ``classes[j]``."""

    source: str  # embeddings | activations
    detail: str  # what the vectors are: the embedder, or the layer's residual means
    samples: int  # answers evaluated
    of: str = "label"  # what the classes are: seat, persona, model, persona on MODEL
    classes: list[str] = field(default_factory=list)  # evaluated, in first-seen order
    counts: dict[str, int] = field(default_factory=dict)  # every class's answers
    excluded: list[str] = field(default_factory=list)  # classes in under two held-out units
    held_out: str | None = None  # run | stage | answer
    groups: int = 0  # runs among the evaluated answers (1: one run, or none given)
    blocks: int = 0  # block keys among them (centring; 1: no blocks given)
    folds: int = 0  # units held out in turn
    accuracy: float | None = None
    balanced_accuracy: float | None = None  # mean of per-class recall: the headline
    correct: int = 0
    ci95: list[float] | None = None  # of balanced accuracy
    chance: float | None = None
    uniform_chance: float | None = None
    null_mean: float | None = None
    p_value: float | None = None
    permutations: int = 0
    relabellings: float | None = None  # distinct labellings a shuffle can draw
    p_floor: float | None = None  # the smallest p-value the design allows
    confusion: list[list[int]] = field(default_factory=list)
    method: str = ""
    interval_method: str = ""
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Design:
    """The evaluated answers sorted by (unit, class) pair, so that a unit's answers and a
    pair's are contiguous: vectors, class, held-out unit, centring key, pair, where each pair
    starts, and the blocks' sums and counts over all answers (a fold subtracts its own)."""

    X: Matrix
    y: Indices
    fold: Indices
    key: Indices
    pair: Indices
    pair_fold: Indices
    pair_class: Indices
    k: int
    folds: int
    starts: Indices
    key_sums: Matrix
    key_counts: Indices


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _codes(values: Sequence[Hashable]) -> Indices:
    index: dict[Hashable, int] = {}
    return np.array([index.setdefault(v, len(index)) for v in values], dtype=np.intp)


def _design(X: Matrix, y: Indices, fold: Indices, key: Indices, k: int) -> _Design:
    fold = _codes(fold.tolist())
    order = np.lexsort((y, fold))
    X, y, fold, key = X[order], y[order], fold[order], key[order]
    pairs, pair = np.unique(fold * k + y, return_inverse=True)  # sorted, as the rows are
    starts = np.flatnonzero(np.diff(pair, prepend=-1))
    sums = np.zeros((int(key.max()) + 1, X.shape[1]))
    np.add.at(sums, key, X)
    return _Design(
        X,
        y,
        fold,
        key,
        pair.astype(np.intp),
        pairs // k,
        pairs % k,
        k,
        int(fold.max()) + 1,
        starts,
        sums,
        np.bincount(key),
    )


def _unit_rows(X: Matrix) -> Matrix:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out: Matrix = X / np.where(norms < _EPS, 1.0, norms)
    return out


def _fold(d: _Design, j: int) -> tuple[Matrix, Matrix, Indices, Indices]:
    """Hold unit ``j`` out: the training (unit, class) pairs' sums of prepared vectors, the
    held-out answers' prepared vectors, which pairs and which answers. Centring uses training
    answers only, so nothing held out shapes what it is compared with."""
    lo, hi = np.searchsorted(d.fold, [j, j + 1])  # the unit's answers
    train = np.r_[0:lo, hi : len(d.y)]
    Xt, kt, kh = d.X[train], d.key[train], d.key[lo:hi]
    held = np.zeros_like(d.key_sums)
    np.add.at(held, kh, d.X[lo:hi])
    seen = d.key_counts - np.bincount(kh, minlength=len(d.key_counts))
    means = (d.key_sums - held) / np.maximum(seen, 1)[:, None]
    Zt = _unit_rows(Xt - means[kt])
    centre = np.where((seen[kh] > 0)[:, None], means[kh], Xt.mean(axis=0))
    first, last = np.searchsorted(d.pair_fold, [j, j + 1])  # the unit's pairs
    pairs = np.r_[0:first, last : len(d.pair_fold)]
    A = np.add.reduceat(Zt, d.starts[pairs] - np.where(pairs >= last, hi - lo, 0), axis=0)
    return A, _unit_rows(d.X[lo:hi] - centre), pairs.astype(np.intp), np.arange(lo, hi)


def _nearest(A: Matrix, Zh: Matrix, P: Matrix | None, classes: Indices, k: int) -> Indices:
    """Predicted classes of the held-out answers ``Zh`` under each labelling of the training
    pairs (rows of ``classes``): a class's centroid is the sum of its pairs' sums ``A``, built
    outright when the vectors are narrow, else scored through the pairs' Gram matrix ``P``
    (its dots with an answer a sum over pairs, its squared norm a quadratic form)."""
    B, pairs = classes.shape
    W = (classes.T[:, :, None] == np.arange(k)).astype(np.float64).reshape(pairs, B * k)
    if P is None:
        centroids = W.T @ A  # (B * k, width)
        dots = (Zh @ centroids.T).reshape(-1, B, k)  # (held out, B, k)
        norms = np.linalg.norm(centroids, axis=1).reshape(B, k)
    else:
        dots = (Zh @ A.T @ W).reshape(-1, B, k)
        norms = np.sqrt(np.maximum(np.sum(W * (P @ W), axis=0), 0.0)).reshape(B, k)
    dots = np.swapaxes(dots, 0, 1)  # (B, held out, k)
    similarity = np.where(
        norms[:, None, :] > _EPS, dots / np.maximum(norms, _EPS)[:, None, :], -np.inf
    )
    predicted: Indices = similarity.argmax(axis=2)
    return predicted


def _predictions(d: _Design, labellings: Indices) -> Indices:
    """Every answer's held-out prediction under each labelling of the pairs (rows)."""
    predicted = np.empty((len(labellings), len(d.y)), dtype=np.intp)
    for j in range(d.folds):
        A, Zh, pairs, rows = _fold(d, j)
        P = A @ A.T if A.shape[1] > len(pairs) else None
        step = max(1, _CELLS // (len(pairs) * d.k))
        for s in range(0, len(labellings), step):
            chunk = labellings[s : s + step][:, pairs]
            predicted[s : s + step][:, rows] = _nearest(A, Zh, P, chunk, d.k)
    return predicted


def _balanced(truth: Indices, predicted: Indices, k: int) -> npt.NDArray[np.float64]:
    """Balanced accuracy of each row: the mean over classes of the share of a class's answers
    given to it (every class keeps answers under every relabelling used here)."""
    recalls = [
        ((truth == c) & (predicted == c)).sum(axis=1) / np.maximum((truth == c).sum(axis=1), 1)
        for c in range(k)
    ]
    out: npt.NDArray[np.float64] = np.mean(recalls, axis=0)
    return out


def _shuffles(d: _Design, held_out: str, permutations: int, seed: int) -> Indices:
    """Relabellings of the pairs that respect the design: per held-out unit, one permutation
    of the class names present (a seat keeps one label across its stages); answers held out
    singly are exchangeable, so their labels are shuffled across all answers."""
    rng = np.random.default_rng(seed)
    if held_out == "answer":  # one pair per answer
        order = np.argsort(rng.random((permutations, len(d.pair_class))), axis=1)
        shuffled: Indices = d.pair_class[order]
        return shuffled
    shuffled = np.empty((permutations, len(d.pair_class)), dtype=np.intp)
    for unit in range(d.folds):
        pairs = np.flatnonzero(d.pair_fold == unit)
        order = np.argsort(rng.random((permutations, len(pairs))), axis=1)
        shuffled[:, pairs] = d.pair_class[pairs][order]
    return shuffled


def _counting(d: _Design, held_out: str) -> tuple[float, float]:
    """log of the distinct labellings a shuffle can draw, and log of how many of them merely
    rename classes alike in the design (same count, or present in the same units), which score
    as the true labelling does: their share is the smallest p-value the design allows."""
    if held_out == "answer":
        counts = np.bincount(d.y, minlength=d.k)
        log = math.lgamma(len(d.y) + 1) - sum(math.lgamma(c + 1) for c in counts.tolist())
        profiles = [(c,) for c in counts.tolist()]
    else:
        presence = np.zeros((d.k, d.folds), dtype=bool)
        presence[d.pair_class, d.pair_fold] = True
        log = sum(math.lgamma(m + 1) for m in presence.sum(axis=0).tolist())
        profiles = [tuple(row) for row in presence.tolist()]
    renamings = sum(math.lgamma(m + 1) for m in Counter(profiles).values())
    return float(log), float(renamings)


def _interval(
    d: _Design, predicted: Indices, headline: float, held_out: str
) -> tuple[list[float], str]:
    """Balanced accuracy's interval clustered by held-out unit: the delete-one-unit jackknife
    (a unit's answers share a fate, so they are not independent trials) with a t quantile on
    units - 1 df, which widens it honestly when the runs are few."""
    F, unit = d.folds, HOLD_OUT[held_out][0]
    seen, right = np.zeros((F, d.k)), np.zeros((F, d.k))
    np.add.at(seen, (d.fold, d.y), 1)
    np.add.at(right, (d.fold, d.y), (predicted == d.y).astype(float))
    # Deleting one unit leaves every class some answers: each is in two units or more.
    loo = ((right.sum(0) - right) / np.maximum(seen.sum(0) - seen, 1)).mean(axis=1)
    se = math.sqrt((F - 1) / F * float(np.sum((loo - loo.mean()) ** 2)))
    if se < 1e-9:
        return list(wilson(headline * F, F)), FLAT.format(folds=F, unit=unit)
    half = float(stats.t.ppf(0.975, F - 1)) * se
    bounds = [max(0.0, headline - half), min(1.0, headline + half)]
    return bounds, INTERVAL.format(df=F - 1, unit=unit)


def _units(
    labels: list[str], groups: Sequence[Hashable] | None, blocks: Sequence[Hashable] | None
) -> tuple[str, Indices, list[int], list[str]]:
    """What is held out (runs where there are two or more, else blocks, else answers), each
    answer's unit, the answers whose class is in two units or more (one that is not is never
    both trained on and held out), and the classes left out."""
    if groups is not None and len(set(groups)) >= 2:
        held_out, units = "run", _codes(groups)
    elif blocks is not None:
        held_out, units = "stage", _codes(blocks)
    else:
        held_out, units = "answer", np.arange(len(labels), dtype=np.intp)
    found: dict[str, set[int]] = {}
    for label, unit in zip(labels, units.tolist(), strict=True):
        found.setdefault(label, set()).add(unit)
    keep = [i for i, label in enumerate(labels) if len(found[label]) >= 2]
    return held_out, units, keep, [name for name, seen in found.items() if len(seen) < 2]


def identifiability(
    vectors: Any,
    labels: Sequence[str],
    *,
    groups: Sequence[Hashable] | None = None,
    blocks: Sequence[Hashable] | None = None,
    of: str = "label",
    source: str = "embeddings",
    detail: str = "",
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Identifiability:
    """Held-out nearest-centroid balanced accuracy of ``labels`` from ``vectors`` (one row per
    answer), its run-clustered interval, chance levels, a seeded permutation p-value and the
    confusion matrix. ``groups`` (one per answer: its run) are held out whole; ``blocks`` (one
    per answer, keyed across runs: question, stage, round) centre; with a single group the
    blocks are held out instead; with neither, single answers (each shuffle then costs a pass
    per answer: meant for a few hundred). Too little data gives a ``note`` saying why."""
    X = np.asarray(vectors, dtype=np.float64)
    names = [str(label) for label in labels]
    n = len(names)
    if X.ndim != 2 or any(len(s) != n for s in (X, groups, blocks) if s is not None):
        raise ValueError(f"{n} labels for vectors of shape {X.shape}")
    held_out, folds, keep, excluded = _units(names, groups, blocks)
    result = Identifiability(source, detail, 0, of, counts=dict(Counter(names)))
    result.excluded, result.held_out = excluded, held_out
    result.method = f"{HOLD_OUT[held_out][1]} {PREPARATION}"
    classes = list(dict.fromkeys(names[i] for i in keep))
    if len(classes) < 2:
        unit, left = HOLD_OUT[held_out][0], f" (left out: {', '.join(excluded)})" * bool(excluded)
        result.note = f"needs two classes each in two held-out {unit}s; has {len(classes)}{left}"
        return result
    if not np.isfinite(X[keep]).all():
        result.note = "some vectors hold non-finite values: not measured"
        return result
    index = {name: i for i, name in enumerate(classes)}
    y = np.array([index[names[i]] for i in keep], dtype=np.intp)
    key = _codes([blocks[i] for i in keep]) if blocks is not None else np.zeros(len(keep), np.intp)
    d = _design(X[keep], y, folds[keep], key, len(classes))
    result.classes, result.blocks, result.folds = classes, int(key.max()) + 1, d.folds
    result.groups = len({groups[i] for i in keep}) if groups is not None else 1
    _score(result, d, permutations, seed)
    return result


def _score(result: Identifiability, d: _Design, permutations: int, seed: int) -> None:
    """Fill ``result`` from the held-out predictions of the true labelling and, in the same
    pass over units, of the relabellings."""
    assert result.held_out is not None
    n, k = len(d.y), d.k
    labellings = d.pair_class[None, :]
    if permutations > 0:
        shuffled = _shuffles(d, result.held_out, permutations, seed)
        labellings = np.vstack([labellings, shuffled])
    predicted = _predictions(d, labellings)
    balanced = _balanced(labellings[:, d.pair], predicted, k)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (d.y, predicted[0]), 1)
    sizes = confusion.sum(axis=1)
    result.samples, result.correct = n, int(np.trace(confusion))
    result.confusion = confusion.tolist()
    result.accuracy, result.balanced_accuracy = _r(result.correct / n), _r(float(balanced[0]))
    interval, result.interval_method = _interval(
        d, predicted[0], float(balanced[0]), result.held_out
    )
    result.ci95 = [round(v, 4) for v in interval]
    result.chance, result.uniform_chance = _r(sizes.max() / n), _r(1 / k)
    log, renamings = _counting(d, result.held_out)
    result.relabellings = _r(math.exp(min(log, 700.0)))
    result.p_floor = _r(math.exp(min(0.0, renamings - log)))
    if permutations > 0:
        null = balanced[1:]
        exceed = int(np.sum(null >= balanced[0] - 1e-9))  # ties count against the observed
        result.p_value = _r((1 + exceed) / (permutations + 1))
        result.null_mean, result.permutations = _r(float(null.mean())), permutations
        result.method += (
            f"; permutation p-value on it ({HOLD_OUT[result.held_out][2]}, rerun whole)"
        )
    result.note = "; ".join(_notes(result, sizes.tolist(), permutations)) or None


def _notes(result: Identifiability, sizes: Sequence[int], B: int) -> list[str]:
    unit, folds, floor = HOLD_OUT[result.held_out or "answer"][0], result.folds, result.p_floor
    candidates = [
        (
            bool(result.excluded),
            f"left out (in under two held-out {unit}s, so never both "
            f"trained on and held out): {', '.join(result.excluded)}",
        ),
        (
            result.held_out == "stage",
            "no second run to hold out: each block (stage and round) "
            f"held out in turn, so this measures how consistently a {result.of} speaks from one "
            "block to the next (anything a seat keeps through the run counts, persona or not); "
            "pool runs to measure the persona",
        ),
        (
            result.held_out != "answer" and folds < FEW_UNITS,
            f"only {folds} {unit}s held out: "
            f"the interval rests on {folds - 1} degrees of freedom and is wide",
        ),
        (
            min(sizes) < SMALL_PER_CLASS,
            f"few answers per class (as few as {min(sizes)}): a "
            "coarse accuracy and a weak test (a high p-value is no evidence that they are alike)",
        ),
        (
            bool(B) and floor is not None and floor > 1 / (B + 1),
            "so few answers that even a "
            f"perfect score has a p-value of about {floor or 0:.2g} (the shuffles that only "
            "rename classes score alike)",
        ),
    ]
    return [text for applies, text in candidates if applies]


def activation_vectors(turns: Sequence[Turn]) -> tuple[list[Turn], Any, str, str | None]:
    """The turns that recorded activations at one common layer, their residual means there,
    what the vectors are, and what was left out. The layer is the assistant axis's where one
    was recorded (the layer the persona research reads), else the first recorded layer; a
    turn without that layer, or of another hidden size, is left out."""
    recorded = [t for t in turns if t.activations is not None and t.activations.layers]
    if not recorded:
        return [], None, "", None
    axis_layers = Counter(
        t.activations.axis_layer for t in recorded if t.activations and t.activations.axis_layer
    )
    first_layers = Counter(t.activations.layers[0] for t in recorded if t.activations)
    layer = (axis_layers or first_layers).most_common(1)[0][0]
    rows: list[tuple[Turn, list[float]]] = []
    for turn in recorded:
        assert turn.activations is not None
        if layer in turn.activations.layers:
            rows.append((turn, turn.activations.means[turn.activations.layers.index(layer)]))
    width = Counter(len(v) for _, v in rows).most_common(1)[0][0]
    kept = [(t, v) for t, v in rows if len(v) == width]
    skipped = len(recorded) - len(kept)
    why = f"{skipped} recorded turns lack layer {layer} at width {width}" if skipped else None
    detail = f"mean residual stream at layer {layer} ({width} wide)"
    return [t for t, _ in kept], np.array([v for _, v in kept]), detail, why


def _design_of(turns: Sequence[Turn], questions: Mapping[str, str] | None) -> dict[str, Any]:
    """A turn's run (held out whole) and its block (question, stage, round): every run of one
    question shares its blocks, so other runs supply the centre. Without ``questions`` the
    block is the stage and round over all runs."""
    asked = questions or {}
    return {
        "groups": [t.run_id for t in turns],
        "blocks": [(asked.get(t.run_id, ""), t.stage, t.round) for t in turns],
    }


def turn_identifiability(
    turns: Sequence[Turn],
    embeddings: Any,
    label: Callable[[Turn], str],
    *,
    of: str,
    embedder: str,
    seed: int = 0,
    questions: Mapping[str, str] | None = None,
) -> list[Identifiability]:
    """Identifiability of ``label`` (``of``: what it names, seat or persona) over usable
    ``turns``, each run held out whole (one run: each stage and round), blocks keyed by
    question (``questions``: run id to question), stage and round: from their reply
    ``embeddings`` (one row per turn, by ``embedder``), and from their activations where some
    recorded them. Where the turns come from several models, the model is told apart too, and
    ``label`` within each model that holds two of them: a persona told apart across models may
    be its model."""
    if not turns:
        return []
    labels, design = [label(t) for t in turns], _design_of(turns, questions)
    options: dict[str, Any] = {"of": of, "detail": embedder, "seed": seed}
    results = [identifiability(embeddings, labels, **design, **options)]
    recorded, vectors, detail, why = activation_vectors(turns)
    if recorded:
        measured = identifiability(
            vectors,
            [label(t) for t in recorded],
            **_design_of(recorded, questions),
            of=of,
            source="activations",
            detail=detail,
            seed=seed,
        )
        measured.note = "; ".join(x for x in (measured.note, why) if x) or None
        results.append(measured)
    models = list(dict.fromkeys(t.model for t in turns))
    if len(models) < 2:
        return results
    confound = f"answers come from {len(models)} models: {of} and model are told apart together"
    for result in results:
        result.note = "; ".join(x for x in (result.note, confound) if x)
    X, by_model = np.asarray(embeddings), [t.model for t in turns]
    results.append(identifiability(X, by_model, **design, **{**options, "of": "model"}))
    for model in models:
        rows = [i for i, m in enumerate(by_model) if m == model]
        if len({labels[i] for i in rows}) >= 2:
            within: dict[str, Any] = {k: [v[i] for i in rows] for k, v in design.items()}
            name = {**options, "of": f"{of} on {model}"}
            results.append(identifiability(X[rows], [labels[i] for i in rows], **within, **name))
    return results
