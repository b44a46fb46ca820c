"""Dataset registry and the one entry point, :func:`load`.

Each dataset lives in its own module exposing ``load(root, **options) -> VideoReIDDataset``; the registry names
it by import string so nothing is imported until it is used. The registry is open: :func:`register_dataset`
adds a dataset from code (``register_dataset("mine", load_mine, folder="mine")`` or as a decorator on the
loader), and an installed package adds one through the ``vreid.datasets`` entry-point group
(:mod:`vreid_bench.registry`). A loader is called as ``loader(root, **options)``, ``root`` being the data root
(``$VREID_DATA`` or ``--root``); it returns a :class:`~vreid_bench.data.VideoReIDDataset`.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vreid_bench.data import VideoReIDDataset
from vreid_bench.errors import ConfigError, DatasetNotFoundError, UnknownNameError
from vreid_bench.registry import Registry


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Any  # a function, or "module:function"
    summary: str
    folder: str  # the folder name under the data root
    aliases: tuple[str, ...] = ()
    options: str = ""
    how_to_get: str = ""


BUILTIN_DATASETS: tuple[DatasetEntry, ...] = (
    DatasetEntry(
        "mars", "vreid_bench.datasets.mars:load", "MARS: 1,261 ids, 6 cameras, 20,478 tracklets",
        "mars", options="none (default protocol all-tracklets; mars-official for the official AP)",
        how_to_get="download MARS (bbox_train.zip, bbox_test.zip and the info/ folder of the MARS-evaluation "
        "code) and unpack them into <root>/mars/",
    ),
    DatasetEntry(
        "ilidsvid", "vreid_bench.datasets.ilidsvid:load", "iLIDS-VID: 300 ids, 2 cameras, 600 tracklets",
        "ilids-vid", aliases=("ilids-vid", "ilids"), options="split=0..9",
        how_to_get="download iLIDS-VID.tar and unpack it into <root>/ilids-vid/ (train-test people splits/ "
        "holds the 10 splits)",
    ),
    DatasetEntry(
        "prid2011", "vreid_bench.datasets.prid2011:load", "PRID-2011: 200 ids in both cameras (178 used)",
        "prid2011", aliases=("prid", "prid-2011"), options="split=0..9",
        how_to_get="download prid_2011.zip and unpack it into <root>/prid2011/, with splits_prid2011.json",
    ),
    DatasetEntry(
        "dukemtmcvidreid", "vreid_bench.datasets.dukemtmcvidreid:load",
        "DukeMTMC-VideoReID: 1,404 ids (+408 distractors), 8 cameras, 4,832 tracklets",
        "dukemtmc-vidreid", aliases=("duke", "dukev", "dukemtmc-videoreid", "dukemtmc-vidreid"),
        how_to_get="unpack DukeMTMC-VideoReID.zip into <root>/dukemtmc-vidreid/",
    ),
    DatasetEntry(
        "lsvid", "vreid_bench.datasets.lsvid:load", "LS-VID: 3,772 ids, 15 cameras, 14,943 tracklets",
        "LS-VID", aliases=("ls-vid",),
        how_to_get="request LS-VID from its authors and unpack it into <root>/LS-VID/",
    ),
    DatasetEntry(
        "sportsvreid", "vreid_bench.datasets.toolkit:load", "sports footage built by `vreid build sports`",
        "sportsvreid", aliases=("sports",),
        how_to_get="build it: `vreid build sports --mot-root SPORTSMOT_DIR` (or `--videos ...`); "
        "`vreid synth sports --out DIR` makes synthetic footage to try it on",
    ),
    DatasetEntry(
        "dancevreid", "vreid_bench.datasets.toolkit:load", "dance footage built by `vreid build dance`",
        "dancevreid", aliases=("dance",),
        how_to_get="build it: `vreid build dance --mot-root DANCETRACK_DIR` (or `--videos ...`); "
        "`vreid synth dance --out DIR` makes synthetic footage to try it on",
    ),
)


DATASETS: Registry[DatasetEntry] = Registry("dataset", "vreid.datasets", BUILTIN_DATASETS, lambda entry: entry.name,
                                             aliases_of=lambda entry: entry.aliases)
TOOLKIT_LOADER = "vreid_bench.datasets.toolkit:load"


def register_dataset(name: str, loader: Any = None, summary: str = "", folder: str | None = None,
                     aliases: tuple[str, ...] = (), options: str = "", how_to_get: str = "") -> Any:
    """Add dataset ``name`` (``register_dataset("mine", load_mine)``, or ``@register_dataset("mine")`` on the
    loader); ``folder`` is where it sits under the data root (default: its name). A taken name or alias is a
    :class:`ConfigError`."""

    def register(function: Any) -> Any:
        DATASETS.add(DatasetEntry(name, function, summary, folder or name, tuple(aliases), options,
                                  how_to_get or f"put it at <root>/{folder or name}/"))
        return function

    return register(loader) if loader is not None else register


def data_root() -> Path:
    """Where datasets live unless a root is given: ``$VREID_DATA``, default ``./data``."""
    return Path(os.environ.get("VREID_DATA", "data"))


def get_entry(name: str) -> DatasetEntry:
    try:
        return DATASETS.get(name)
    except UnknownNameError:
        names = ", ".join(DATASETS.names())
        raise UnknownNameError(f"unknown dataset {name!r}: use one of {names}, or the path of a dataset "
                               "directory") from None


def _call(loader: Any, root: Path, **options: object) -> VideoReIDDataset:
    if isinstance(loader, str):
        module_name, func_name = loader.split(":")
        function = getattr(importlib.import_module(module_name), func_name)
    else:
        function, module_name = loader, getattr(loader, "__module__", "loader")
    accepted = list(inspect.signature(function).parameters)[1:]
    unknown = sorted(set(options) - set(accepted))
    if "split" in unknown:
        raise ConfigError(f"{module_name.rsplit('.', 1)[-1]}: unknown option 'split': this dataset has a single "
                          "split; leave out --split (iLIDS-VID and PRID-2011 have 10)")
    if unknown:
        raise ConfigError(
            f"{module_name.rsplit('.', 1)[-1]}: unknown option {unknown[0]!r}; it takes {', '.join(accepted) or 'none'}"
        )
    return function(root, **options)


def is_toolkit_dataset(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def load(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
         captions: str = "current", captions_dir: str | os.PathLike[str] | None = None,
         **options: object) -> VideoReIDDataset:
    """Load a registered dataset by name, or a toolkit dataset directory by path, with its captions.

    ``root`` is the dataset's own folder or the folder that holds it (default ``$VREID_DATA``). ``captions``
    selects the captions its training tracklets carry and ``captions_dir`` moves their store
    (:func:`vreid_bench.captions.attach_captions`); ``options`` go to the dataset's loader (``split=3``).
    """
    from vreid_bench.captions import attach_captions

    return attach_captions(_load(name_or_path, root, **options), captions, captions_dir)


def _load(name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None,
          **options: object) -> VideoReIDDataset:
    path = Path(name_or_path)
    if is_toolkit_dataset(path):
        return _call(TOOLKIT_LOADER, path, **options)
    try:
        entry = get_entry(str(name_or_path))
    except UnknownNameError:
        if path.exists():
            raise DatasetNotFoundError(
                f"{path} is not a vreid dataset directory (no manifest.json): build one with `vreid build`, "
                "or give a registered dataset name (`vreid datasets` lists them)"
            ) from None
        raise
    base = Path(root) if root is not None else data_root()
    if entry.loader == TOOLKIT_LOADER:
        target = base if is_toolkit_dataset(base) else base / entry.folder
        if not is_toolkit_dataset(target):
            raise DatasetNotFoundError(
                f"dataset {entry.name!r} is not built yet (no {target / 'manifest.json'}): {entry.how_to_get}"
            )
        return _call(entry.loader, target, **options)
    return _call(entry.loader, base, **options)


FAMILIES = {"sportsvreid": "sports", "dancevreid": "dance"}


def dataset_family(name_or_path: str | os.PathLike[str]) -> str | None:
    """The benchmark a dataset name or directory belongs to (``mars``, ``ilidsvid`` ..., ``sports``, ``dance``),
    without loading it: the per-dataset section of a recipe that applies."""
    path = Path(name_or_path)
    if is_toolkit_dataset(path):
        import json

        try:
            return json.loads((path / "manifest.json").read_text()).get("kind")
        except (OSError, ValueError):
            return None
    entry = get_entry(str(name_or_path))
    return FAMILIES.get(entry.name, entry.name)


def has_pseudo_cameras(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether a dataset's cameras are time segments of single videos (every build), without loading it."""
    path = Path(name_or_path)
    if is_toolkit_dataset(path):
        import json

        try:
            return bool(json.loads((path / "manifest.json").read_text()).get("pseudo_cameras", True))
        except (OSError, ValueError):
            return True
    return get_entry(str(name_or_path)).loader == TOOLKIT_LOADER


def find_dataset_dir(root: str | os.PathLike[str], folder: str, marker: str, entry_name: str) -> Path:
    """Resolve ``root`` that is either the dataset folder itself (it holds ``marker``) or its parent."""
    root = Path(root)
    for candidate in (root, root / folder):
        if (candidate / marker).exists():
            return candidate
    how = get_entry(entry_name).how_to_get
    raise DatasetNotFoundError(
        f"{entry_name}: expected {marker} in {root} or {root / folder}; {how}"
    )


__all__ = ["DATASETS", "DatasetEntry", "data_root", "dataset_family", "find_dataset_dir", "get_entry",
           "has_pseudo_cameras", "load", "register_dataset"]
