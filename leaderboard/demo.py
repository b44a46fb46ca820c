"""``vreid demo``: the whole toolkit on synthetic sports footage, in minutes on a laptop CPU.

Stages, each skipping what an earlier run of the demo already did: render footage (``builders.synth``), build a
dataset from it (``builders.build``), caption every tracklet from the footage's attribute sheets (template
captioner), compare CG-CLIP with the baselines (``leaderboard.compare``), write the leaderboard and the HTML report.

Each model trains with its own reference recipe (its augmentation, frame sampling, epoch, solver and schedule),
shrunk the same way for all: tiny models (2-layer, 64-wide ViTs; a one-block-per-stage ResNet) from random weights
on 128×64 clips, 4 identities per batch, with a learning rate fit for training from scratch rather than each
recipe's fine-tuning one. Their numbers
show the pipeline works end to end and sit well above the chance level the demo prints beside them; they say
nothing about how the full-size models compare.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leaderboard.collect import RunExtras, caption_audits
from leaderboard.compare import CompareResult, canonical_models, compare_models
from leaderboard.report import write_leaderboard
from leaderboard.tables import Leaderboard, build_leaderboards
from leaderboard.visrank import read_visrank, write_visrank
from vreid_bench.data import VideoReIDDataset
from vreid_bench.engine.config import RunOptions
from vreid_bench.errors import ConfigError
from vreid_bench.protocol import Protocol, get_protocol
from vreid_bench.recipe import check_shared_keys

DEMO_MODELS = ("cgclip", "tfclip", "clipreid", "clip-tap", "resnet-tap")
DATASET_NAME = "sports-demo"  # not "sportsvreid": the paper's numbers on SportsVReID must never be matched to it
# Changes to every model's recipe: tiny models from random weights at 128×64, a from-scratch learning rate, a
# short warm-up, no steps, and 4 identities per batch (the footage has 20 training identities: CLIP-ReID's 16 per
# batch would make one step an epoch).
HARDEST_DRAWN = 3  # ranked lists drawn per model for the report: its lowest-AP queries
DEMO_SETS = (
    "model.backbone=tiny", "input.height=128", "input.width=64", "optimizer.lr=1e-3", "schedule.warmup_epochs=1",
    "schedule.milestones=[]", "sampler.ids_per_batch=4",
)
# Settings of one model, added when it takes part: CLIP-ReID's prompt stage shortened to match the short training.
DEMO_MODEL_SETS = {"clipreid": ("stages.prompts.epochs=10",)}

Announce = Callable[[str], None]


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults finish in under ten minutes on two CPU cores."""

    out: Path = Path("demo")
    models: tuple[str, ...] = DEMO_MODELS
    epochs: int = 15
    videos: int = 4  # half train, half test
    frames: int = 200
    people: int = 10
    width: int = 640
    height: int = 360
    fps: int = 25  # the builder drops one second between pseudo-cameras, so fewer frames per second need fewer frames
    seed: int = 0
    synth_workers: int | None = None  # processes rendering footage (default: one per core)
    build_workers: int = 2
    sets: tuple[str, ...] = DEMO_SETS
    device: str = "auto"
    # torch threads while training: tiny tensors gain little from more, and threads that share their cores with
    # other work slow down several-fold; None leaves torch's setting alone.
    threads: int | None = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs {self.epochs} is invalid; the demo needs at least 1 epoch")
        if self.videos < 2:
            raise ConfigError(f"--videos {self.videos} is too few; the demo needs 2 (one to train, one to test)")

    @property
    def footage_dir(self) -> Path:
        return self.out / "footage"

    @property
    def dataset_dir(self) -> Path:
        return self.out / DATASET_NAME

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def report_path(self) -> Path:
        return self.out / "report.html"

    @property
    def leaderboard_paths(self) -> tuple[Path, Path]:
        return self.out / "leaderboard.md", self.out / "leaderboard.csv"

    def recipe_sets(self) -> list[str]:
        """The changes every model's reference recipe gets (model settings go to the models that have them)."""
        per_model = [item for model in canonical_models(self.models) for item in DEMO_MODEL_SETS.get(model, ())]
        sets = [*self.sets, *per_model, f"epochs={self.epochs}"]
        check_shared_keys(canonical_models(self.models), "sports", None, sets)
        return sets


@dataclass(frozen=True)
class StageTime:
    name: str
    seconds: float
    detail: str


@dataclass(frozen=True)
class ChanceLevel:
    """mAP and R1 of random features under the demo's protocol: the floor a trained model must clear."""

    mAP: float
    rank1: float


@dataclass(frozen=True)
class DemoResult:
    dataset_dir: Path
    runs_dir: Path
    report_path: Path
    compare: CompareResult
    boards: list[Leaderboard]
    chance: ChanceLevel
    stages: list[StageTime] = field(default_factory=list)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the body with ``count`` torch threads, then restore the previous setting."""
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _stage(name: str, stages: list[StageTime], announce: Announce) -> Iterator[list[str]]:
    """Time a stage; the body appends a one-line summary of what it did."""
    announce(name)
    detail: list[str] = []
    start = time.perf_counter()
    yield detail
    seconds = time.perf_counter() - start
    stages.append(StageTime(name, seconds, "; ".join(detail)))
    announce(f"  {'; '.join(detail)} ({seconds:.1f} s)")


def chance_level(dataset: VideoReIDDataset, protocol: Protocol, draws: int = 20, seed: int = 0) -> ChanceLevel:
    """Mean mAP / R1 over ``draws`` rankings by random features: what a model that learned nothing scores."""
    from vreid_bench.evaluation import evaluate_features

    rng = np.random.default_rng(seed)
    results = [evaluate_features(rng.standard_normal((len(dataset.query), 32)),  # (Q, 32) random features
                                 rng.standard_normal((len(dataset.gallery), 32)), dataset.query, dataset.gallery,
                                 protocol) for _ in range(draws)]
    return ChanceLevel(float(np.mean([r.mAP for r in results])), float(np.mean([r.cmc[0] for r in results])))


def demonstration_note(boards: list[Leaderboard]) -> str:
    """What the demo's table is and is not, with the number of queries it rests on."""
    queries = [board.significance.queries for board in boards if board.significance is not None]
    count = f"{max(queries)} queries" if queries and max(queries) else "a few queries"
    return (f"A pipeline demonstration, not a ranking of the methods: tiny models trained from random weights on "
            f"synthetic footage, scored on {count}; the intervals show how little such a table can tell apart.")


def run_demo(config: DemoConfig = DemoConfig(), announce: Announce | None = None) -> DemoResult:
    """Run (or finish) every stage of the demo under ``config.out``; see the module docstring."""
    from builders.build import build_dataset
    from builders.captions import caption_dataset, create_captioner
    from builders.captions.audit import audit_captions, write_audit
    from builders.synth import generate
    from vreid_bench.datasets import load

    say = announce or (lambda line: None)
    sets = config.recipe_sets()  # checked before minutes are spent on footage
    stages: list[StageTime] = []
    with _stage("1/5 synthetic sports footage", stages, say) as detail:
        footage = generate("sports", config.footage_dir, videos=config.videos, frames=config.frames,
                           people=config.people, seed=config.seed, width=config.width, height=config.height,
                           fps=config.fps, progress=config.progress, workers=config.synth_workers)
        detail.append(f"{len(footage.sequences)} videos of {config.frames} frames in {config.footage_dir}")
    with _stage("2/5 dataset", stages, say) as detail:
        built = build_dataset("sports", config.footage_dir, config.dataset_dir, name=DATASET_NAME,
                              workers=config.build_workers, progress=config.progress)
        detail.append(f"{built.counts['identities_train']} training identities, {built.counts['tracklets_query']} "
                      f"queries, {built.counts['tracklets_gallery']} gallery tracklets; built {len(built.built)} "
                      f"videos, reused {len(built.reused)}")
    with _stage("3/5 captions", stages, say) as detail:
        captions = caption_dataset(config.dataset_dir, create_captioner("template"), progress=config.progress)
        audit = audit_captions(load(str(config.dataset_dir), captions="none"), similarity="tokens")
        write_audit(audit)
        distinct = sum(row.confusers == 0 for row in audit.identities)
        detail.append(f"captioned {captions.captioned}, already captioned {captions.cached}; audit: {distinct} of "
                      f"{len(audit.identities)} identities told apart by their captions")
    dataset = load(str(config.dataset_dir))
    protocol = get_protocol(dataset.default_protocol)
    with _stage("4/5 compare", stages, say) as detail, warnings.catch_warnings(), torch_threads(config.threads):
        warnings.filterwarnings("ignore", message=".*starts from random initialisation")  # what the demo asks for
        compared = compare_models(config.models, dataset, protocol, config.runs_dir, sets=sets, pretrained="none",
                                  options=RunOptions(workers=0, device=config.device), progress=config.progress,
                                  announce=lambda line: say(f"  {line}"))
        counts = {status: sum(o.status == status for o in compared.outcomes)
                  for status in ("trained", "resumed", "skipped", "failed")}
        detail.append(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    with _stage("5/5 leaderboard and report", stages, say) as detail:
        boards = build_leaderboards(compared.frame())
        chance = chance_level(dataset, protocol)
        floor = f"chance level (random features): mAP {100 * chance.mAP:.1f}, R1 {100 * chance.rank1:.1f}"
        notes = [demonstration_note(boards), f"{floor}."]
        ranked = []
        for outcome in compared.outcomes:
            if outcome.metrics:
                write_visrank(outcome.run_dir, queries=HARDEST_DRAWN, worst=True, top=8, progress=False)
                ranked.extend((str(folder), index) for folder, index in read_visrank(outcome.run_dir))
        extras = RunExtras(caption_audits=caption_audits((o.metrics or {}).get("captions") for o in compared.outcomes),
                           ranked_lists=tuple(ranked))
        write_leaderboard(config.report_path, boards, "html", sources=[str(config.runs_dir)], notes=notes,
                          extras=extras)
        for path, fmt in zip(config.leaderboard_paths, ("md", "csv")):
            write_leaderboard(path, boards, fmt, sources=[str(config.runs_dir)], notes=notes)
        detail.append(floor)
    return DemoResult(config.dataset_dir, config.runs_dir, config.report_path, compared, boards, chance, stages)
