"""Identifiability: can the answers be told apart by who said them?

Each answer is held out in turn and given to the nearest class centroid (cosine similarity),
its own class's centroid recomputed without it; the share given to the right class is the
leave-one-out accuracy. Against it stand chance (the majority class's share, the best a
classifier ignoring the vectors can do, and 1/k) and a permutation test: the labels shuffled
``B`` times and the whole procedure rerun, p = (1 + #{shuffled >= observed}) / (B + 1).

Vectors are centred and L2-normalised first: on their grand mean, or, given ``blocks``, on
each block's mean, and the labels are then shuffled only within blocks. A block holds answers
made alike by something other than who gave them: one stage and round of one run (the same
question, the same transcript so far). Left in, that shared content counts against each
answer: held out, its own class lacks its stage while every other class has it, and accuracy
falls below chance. Centring uses no label, so it leaks nothing into the held-out answer; it
also removes the offset every answer shares (large in a model's residual stream). A class with
fewer than two usable answers, and an answer alone in its block, have nothing to be held out
against: they are left out, and said so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from council.records.run import Turn

PERMUTATIONS = 1000
METHOD = (
    "leave-one-out nearest centroid, cosine on centred L2-normalised vectors; "
    "permutation p-value (labels shuffled)"
)
BLOCKED = (
    "leave-one-out nearest centroid, cosine on L2-normalised vectors centred within each "
    "block (one stage and round of one run); permutation p-value (labels shuffled within "
    "blocks)"
)
INTERVAL = (
    "Wilson score 95% interval (treats held-out predictions as independent, which they are "
    "not quite: read it as a little narrow; the p-value does not rely on it)"
)
SMALL_PER_CLASS = 5  # fewer answers per class than this: the test has little power
_BATCH = 50  # permutations evaluated at once: bounds memory at a few _BATCH * n * k floats
_EPS = 1e-12

Matrix = npt.NDArray[np.floating[Any]]
Indices = npt.NDArray[np.intp]


@dataclass
class Identifiability:
    """How well the answers' vectors identify who gave them.

    ``chance`` is the majority class's share of the evaluated answers; ``uniform_chance`` is
    1/k; ``null_mean`` is the mean accuracy over the shuffled labellings, the chance level of
    this very procedure (leave-one-out can fall below 1/k on pure noise). ``confusion[i][j]``
    counts answers of ``classes[i]`` given to ``classes[j]``."""

    source: str  # embeddings | activations
    detail: str  # what the vectors are: the embedder, or the layer's residual means
    samples: int  # answers evaluated
    of: str = "label"  # what the classes are: seat, persona, model, persona on MODEL
    classes: list[str] = field(default_factory=list)  # evaluated, in first-seen order
    counts: dict[str, int] = field(default_factory=dict)  # every class's answers
    excluded: list[str] = field(default_factory=list)  # classes with under two usable answers
    alone: int = 0  # answers left out because no other answer shared their block
    blocks: int = 0  # blocks evaluated (1: no blocks given)
    accuracy: float | None = None
    balanced_accuracy: float | None = None  # mean of per-class recall
    correct: int = 0
    ci95: list[float] | None = None
    chance: float | None = None
    uniform_chance: float | None = None
    null_mean: float | None = None
    p_value: float | None = None
    permutations: int = 0
    relabellings: float | None = None  # distinct labellings a shuffle can draw
    p_floor: float | None = None  # the smallest p-value the design allows
    confusion: list[list[int]] = field(default_factory=list)
    method: str = METHOD
    interval_method: str = INTERVAL
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _r(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _gram(vectors: Matrix, blocks: Indices) -> Matrix:
    """Dot products of the vectors centred on their block's mean and L2-normalised: all the
    procedure needs, at n x n whatever the vectors' width."""
    sums = np.zeros((int(blocks.max()) + 1, vectors.shape[1]))
    np.add.at(sums, blocks, vectors)
    X = vectors - (sums / np.bincount(blocks)[:, None])[blocks]
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(norms < _EPS, 1.0, norms)
    gram: Matrix = X @ X.T
    return gram


def _loo_predictions(G: Matrix, labels: Indices, k: int) -> Indices:
    """Predicted class of every answer, held out, for each labelling (rows of ``labels``,
    shape (B, n)), from the Gram matrix ``G`` of the prepared vectors: the class whose
    centroid is nearest in cosine, its own class's centroid recomputed without the answer."""
    onehot = (labels[..., None] == np.arange(k)).astype(np.float64)  # (B, n, k)
    dots = G @ onehot  # (B, n, k): x_i . S_j, S_j the class's sum (cosine ignores the count)
    sq = np.einsum("bnk,bnk->bk", onehot, dots)  # |S_j|^2
    similarity = dots / np.sqrt(np.maximum(sq, _EPS))[:, None, :]
    own = np.take_along_axis(dots, labels[..., None], axis=2)[..., 0]  # x_i . S_own
    own_sq = np.take_along_axis(sq, labels, axis=1)  # |S_own|^2
    self_sq = np.diagonal(G)
    rest = np.sqrt(np.maximum(own_sq - 2 * own + self_sq, 0.0))  # |S_own - x_i|
    held_out = np.where(rest > _EPS, (own - self_sq) / np.maximum(rest, _EPS), 0.0)
    np.put_along_axis(similarity, labels[..., None], held_out[..., None], axis=2)
    predicted: Indices = similarity.argmax(axis=2)
    return predicted


def _permuted(
    G: Matrix, y: Indices, blocks: Indices, k: int, permutations: int, seed: int
) -> npt.NDArray[np.float64]:
    """Held-out accuracy under ``permutations`` shufflings of ``y`` within ``blocks``."""
    rng = np.random.default_rng(seed)
    accuracies = np.empty(permutations)
    slots = np.argsort(blocks, kind="stable")  # each block's positions, blocks in order
    for start in range(0, permutations, _BATCH):
        size = min(_BATCH, permutations - start)
        # Sorting by block, then by a random key, orders each block's positions at random.
        draws = np.argsort(blocks + rng.random((size, len(y))), axis=1)
        shuffled = np.empty((size, len(y)), dtype=np.intp)
        shuffled[:, slots] = y[draws]
        predicted = _loo_predictions(G, shuffled, k)
        accuracies[start : start + size] = (predicted == shuffled).mean(axis=1)
    return accuracies


def _wilson(correct: int, n: int, z: float = 1.959964) -> list[float]:
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _profiles(y: Indices, blocks: Indices, k: int) -> Any:
    """Each class's number of answers in each block: (k, blocks)."""
    counts = np.zeros((k, int(blocks.max()) + 1), dtype=int)
    np.add.at(counts, (y, blocks), 1)
    return counts


def _log_relabellings(profiles: Any) -> float:
    """log of the product over blocks of n_b! / prod(c!): how many distinct labellings a
    shuffle within blocks can draw."""
    log = sum(math.lgamma(n + 1) for n in profiles.sum(axis=0).tolist())
    return float(log - sum(math.lgamma(c + 1) for c in profiles.ravel().tolist()))


def _p_floor(profiles: Any) -> float:
    """The smallest p-value the permutation test can reach: the share of labellings that score
    as the true one because they only rename classes with the same count in every block."""
    same = Counter(tuple(row) for row in profiles.tolist())
    renamings = sum(math.lgamma(m + 1) for m in same.values())
    return float(math.exp(min(0.0, renamings - _log_relabellings(profiles))))


def _usable(labels: list[str], blocks: list[int]) -> tuple[list[int], list[str], int]:
    """The answers that can be held out, the classes left out (under two usable answers), and
    how many answers of the other classes were left out for being alone in their block."""
    keep = list(range(len(labels)))
    while True:
        per_class = Counter(labels[i] for i in keep)
        per_block = Counter(blocks[i] for i in keep)
        kept = [i for i in keep if per_class[labels[i]] >= 2 and per_block[blocks[i]] >= 2]
        if kept == keep:
            break
        keep = kept
    used = {labels[i] for i in keep}
    excluded = [name for name in dict.fromkeys(labels) if name not in used]
    alone = sum(1 for label in labels if label in used) - len(keep)
    return keep, excluded, alone


def _notes(result: Identifiability, sizes: Sequence[int], B: int) -> list[str]:
    notes = []
    if result.excluded:
        notes.append(
            f"left out (under two usable answers, nothing to hold one out against): "
            f"{', '.join(result.excluded)}"
        )
    if result.alone:
        notes.append(f"{result.alone} answers left out: no other answer shared their stage")
    if sizes and min(sizes) < SMALL_PER_CLASS:
        notes.append(
            f"few answers per class (as few as {min(sizes)}): a coarse accuracy and a weak test "
            "(a high p-value is no evidence that they are alike)"
        )
    if B and result.p_floor is not None and result.p_floor > 1 / (B + 1):
        notes.append(
            f"so few answers that even a perfect score has a p-value of about "
            f"{result.p_floor:.2g} (the shuffles that only rename classes score alike)"
        )
    return notes


def identifiability(
    vectors: Any,
    labels: Sequence[str],
    *,
    blocks: Sequence[Hashable] | None = None,
    of: str = "label",
    source: str = "embeddings",
    detail: str = "",
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> Identifiability:
    """Leave-one-out nearest-centroid accuracy of ``labels`` from ``vectors`` (one row per
    answer), with chance levels, a seeded permutation p-value and the confusion matrix;
    ``blocks`` (one per answer) centres and shuffles within blocks. Too few answers give a
    result whose ``note`` says why, never an exception."""
    X = np.asarray(vectors, dtype=np.float64)
    names = [str(label) for label in labels]
    if (
        X.ndim != 2
        or X.shape[0] != len(names)
        or (blocks is not None and len(blocks) != len(names))
    ):
        raise ValueError(f"{len(names)} labels for vectors of shape {X.shape}")
    block_index: dict[Hashable, int] = {}
    block_of = [block_index.setdefault(b, len(block_index)) for b in blocks or [0] * len(names)]
    keep, excluded, alone = _usable(names, block_of)
    result = Identifiability(source, detail, 0, of, counts=dict(Counter(names)))
    result.excluded, result.alone = excluded, alone
    result.method = METHOD if blocks is None else BLOCKED
    classes = list(dict.fromkeys(names[i] for i in keep))
    if len(classes) < 2:
        result.note = f"needs two classes with two usable answers each; has {len(classes)}"
        if excluded:
            result.note += (
                f" (left out: {', '.join(excluded)}; more rounds, or an experiment pooling "
                "runs, give more answers)"
            )
        return result
    if not np.isfinite(X[keep]).all():
        result.note = "some vectors hold non-finite values: not measured"
        return result
    index = {name: i for i, name in enumerate(classes)}
    y = np.array([index[names[i]] for i in keep], dtype=np.intp)
    kept_blocks = np.unique([block_of[i] for i in keep], return_inverse=True)[1].astype(np.intp)
    result.classes = classes
    _score(result, _gram(X[keep], kept_blocks), y, kept_blocks, permutations, seed)
    return result


def _score(
    result: Identifiability, G: Matrix, y: Indices, blocks: Indices, permutations: int, seed: int
) -> None:
    """Fill ``result`` with the held-out accuracy of ``y`` (from the Gram matrix ``G``), its
    chance levels and permutation p-value."""
    n, k = len(y), len(result.classes)
    predicted = _loo_predictions(G, y[None, :], k)[0]
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y, predicted), 1)
    correct = int(np.trace(confusion))
    sizes = confusion.sum(axis=1)
    profiles = _profiles(y, blocks, k)
    result.samples, result.correct, result.confusion = n, correct, confusion.tolist()
    result.blocks = int(blocks.max()) + 1
    result.accuracy = _r(correct / n)
    result.balanced_accuracy = _r(float(np.mean(np.diag(confusion) / sizes)))
    result.ci95 = [round(v, 4) for v in _wilson(correct, n)]
    result.chance, result.uniform_chance = _r(sizes.max() / n), _r(1 / k)
    result.relabellings = _r(math.exp(min(_log_relabellings(profiles), 700.0)))
    result.p_floor = _r(_p_floor(profiles))
    if permutations > 0:
        null = _permuted(G, y, blocks, k, permutations, seed)
        exceed = int(np.sum(null >= correct / n - 1e-9))  # ties count against the observed
        result.p_value = _r((1 + exceed) / (permutations + 1))
        result.null_mean, result.permutations = _r(float(null.mean())), permutations
    result.note = "; ".join(_notes(result, sizes.tolist(), permutations)) or None


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


def _stage(turn: Turn) -> tuple[str, str, int]:
    """A turn's block: answers of one stage and round of one run share its question and what
    the seats had read so far."""
    return (turn.run_id, turn.stage, turn.round)


def turn_identifiability(
    turns: Sequence[Turn],
    embeddings: Any,
    label: Callable[[Turn], str],
    *,
    of: str,
    embedder: str,
    seed: int = 0,
) -> list[Identifiability]:
    """Identifiability of ``label`` (``of``: what it names, seat or persona) over usable
    ``turns``, each stage and round of each run a block: from their reply ``embeddings`` (one
    row per turn, by ``embedder``), and from their activations where some recorded them. Where
    the turns come from several models, the model is told apart too, and ``label`` within each
    model that holds two of them: a persona told apart across models may be its model."""
    if not turns:
        return []
    labels, blocks = [label(t) for t in turns], [_stage(t) for t in turns]
    options: dict[str, Any] = {"of": of, "detail": embedder, "seed": seed}
    results = [identifiability(embeddings, labels, blocks=blocks, **options)]
    recorded, vectors, detail, why = activation_vectors(turns)
    if recorded:
        measured = identifiability(
            vectors, [label(t) for t in recorded], blocks=[_stage(t) for t in recorded],
            of=of, source="activations", detail=detail, seed=seed,
        )  # fmt: skip
        measured.note = "; ".join(x for x in (measured.note, why) if x) or None
        results.append(measured)
    models = list(dict.fromkeys(t.model for t in turns))
    if len(models) < 2:
        return results
    confound = f"answers come from {len(models)} models: {of} and model are told apart together"
    for result in results:
        result.note = "; ".join(x for x in (result.note, confound) if x)
    X, by_model = np.asarray(embeddings), [t.model for t in turns]
    results.append(identifiability(X, by_model, blocks=blocks, **{**options, "of": "model"}))
    for model in models:
        rows = [i for i, m in enumerate(by_model) if m == model]
        if len({labels[i] for i in rows}) >= 2:
            within = [labels[i] for i in rows], [blocks[i] for i in rows]
            name = {**options, "of": f"{of} on {model}"}
            results.append(identifiability(X[rows], within[0], blocks=within[1], **name))
    return results
