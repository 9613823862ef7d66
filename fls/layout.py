"""Where each pipeline stage writes, and which cells the current params ask for.

dvc.yaml and the report must agree on output paths; keeping the path rules in one place (and the
grid lists that drive dvc.yaml's ``matrix:`` stages) lets the report look up exactly the cells the
params ask for. Directories left on disk by an older, larger grid are therefore never mixed in, and
a cell that was not run shows up as missing instead of silently shrinking an average.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fls.config import ConfigError
from fls.games import GAMES, get_game
from fls.models import ARCHS
from fls.variants import parse_variant

INFINITE_GAME = "BreakoutInfinite"  # evaluation-only variant of Breakout (docs/environments.md, "BreakoutInfinite")
REFERENCE_METHODS = ("uniform", "center_bias")  # model-free saliency baselines
POSTHOC_METHODS = ("perturbation", "gradient")  # post-hoc saliency of a trained network


@dataclass
class GridConfig:
    """The ``grid`` section of params.yaml: the axes of the matrix stages in dvc.yaml.

    ``score_archs``/``score_games`` are separate lists (not filters of ``archs``/``games``) because a
    DVC matrix cannot skip combinations: every cell of every matrix must be a valid run.
    """

    archs: list[str] = field(default_factory=list)  # run on every game in ``games`` with every seed
    games: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)  # every consumer stage (evaluate, score, report) reads these
    # Where each seed's runs/<arch>/<game>/<seed> comes from: the `train` stages (train_seeds) or the
    # `import_authors` stages (import_seeds: the authors' released weights, docs/authors_models.md). DVC
    # cannot branch on a param, but an empty matrix list makes no stages, so the two lists are the switch.
    # None (only when built in code, every profile spells both out): every seed not imported is trained.
    train_seeds: list[int] | None = None
    import_seeds: list[int] = field(default_factory=list)
    infinite_archs: list[str] = field(default_factory=list)  # Breakout models also evaluated on BreakoutInfinite
    score_archs: list[str] = field(default_factory=list)  # attention archs scored against Atari-HEAD
    score_games: list[str] = field(default_factory=list)  # games with Atari-HEAD data (no BeamRider)
    reference_methods: list[str] = field(default_factory=lambda: list(REFERENCE_METHODS))
    posthoc_methods: list[str] = field(default_factory=lambda: list(POSTHOC_METHODS))
    posthoc_archs: list[str] = field(default_factory=lambda: ["nature_cnn"])
    # "<alignment>-<protocol>" variants of Table 4 (score_corrected stages, fls.variants)
    score_variants: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Reject a grid whose matrix stages would ask for runs no stage produces (one line per problem)."""
        def need(name: str, values: list, universe, what: str) -> None:
            bad = [v for v in values if v not in universe]
            if bad:
                raise ConfigError(f"grid: field '{name}': {bad} not {what} (expected a subset of {sorted(universe)})")

        for name in ("archs", "infinite_archs", "score_archs", "posthoc_archs"):
            need(name, getattr(self, name), ARCHS, "known architectures")
        need("games", self.games, GAMES, "known games")
        for name in ("infinite_archs", "score_archs", "posthoc_archs"):
            need(name, getattr(self, name), set(self.archs), "in grid.archs (they need trained runs)")
        need("score_games", self.score_games, set(self.games), "in grid.games (they need trained runs)")
        no_head = [g for g in self.score_games if get_game(g).atari_head is None]
        if no_head:
            raise ConfigError(f"grid: field 'score_games': {no_head} have no Atari-HEAD data")
        no_att = [a for a in self.score_archs if not ARCHS[a].has_attention]
        if no_att:
            raise ConfigError(f"grid: field 'score_archs': {no_att} have no attention map to score")
        if self.infinite_archs and "Breakout" not in self.games:
            raise ConfigError("grid: field 'infinite_archs' needs Breakout in grid.games (it evaluates Breakout runs)")
        need("reference_methods", self.reference_methods, REFERENCE_METHODS, "model-free reference methods")
        need("posthoc_methods", self.posthoc_methods, POSTHOC_METHODS, "post-hoc methods")
        if not self.seeds:
            raise ConfigError("grid: field 'seeds' must list at least one seed")
        self._check_seed_sources()
        for v in self.score_variants:
            try:
                parse_variant(v)
            except ValueError as exc:
                raise ConfigError(f"grid: field 'score_variants': {exc}") from None
        for name in ("archs", "games", "seeds", "infinite_archs", "score_archs", "score_games", "score_variants",
                     "train_seeds", "import_seeds"):
            values = getattr(self, name) or []
            if len(set(values)) != len(values):
                raise ConfigError(f"grid: field '{name}' lists a value twice: {values}")

    @property
    def trained_seeds(self) -> list[int]:
        """Seeds whose runs the `train` stages make."""
        if self.train_seeds is not None:
            return list(self.train_seeds)
        return [s for s in self.seeds if s not in set(self.import_seeds)]

    def _check_seed_sources(self) -> None:
        """Each seed of ``seeds`` has exactly one producer: otherwise DVC sees two stages writing one run
        (train_seeds and import_seeds overlap) or a consumer stage whose model.pt nothing writes."""
        trained, imported = self.trained_seeds, list(self.import_seeds)
        for name, values in (("train_seeds", trained), ("import_seeds", imported)):
            extra = [s for s in values if s not in self.seeds]
            if extra:
                raise ConfigError(f"grid: field '{name}': {extra} not in grid.seeds (each seed of train_seeds / "
                                  "import_seeds must be one of grid.seeds)")
        both = [s for s in self.seeds if s in trained and s in imported]
        if both:
            raise ConfigError(f"grid: seeds {both} are in both 'train_seeds' and 'import_seeds' (each seed of "
                              "grid.seeds must be in exactly one of them)")
        neither = [s for s in self.seeds if s not in trained and s not in imported]
        if neither:
            raise ConfigError(f"grid: seeds {neither} are in neither 'train_seeds' nor 'import_seeds' (each seed of "
                              "grid.seeds must be in exactly one of them)")


@dataclass(frozen=True)
class Layout:
    """Output paths of every stage below the pipeline's root folders."""

    runs: Path = Path("runs")
    evals: Path = Path("evals")
    scores: Path = Path("scores")

    def run_dir(self, arch: str, game: str, seed: int) -> Path:
        return self.runs / arch / game / str(seed)

    def eval_dir(self, game: str, arch: str, seed: int) -> Path:
        """``game`` may be BreakoutInfinite (the Breakout run evaluated on the patched game)."""
        return self.evals / game / arch / str(seed)

    def score_dir(self, method: str, arch: str, game: str, seed: int) -> Path:
        """Model-based saliency: ``attention`` (the model's own map) or a post-hoc method."""
        return self.scores / method / arch / game / str(seed)

    def reference_dir(self, method: str, game: str) -> Path:
        """Model-free reference maps (uniform, center bias): one score per game."""
        return self.scores / method / game
