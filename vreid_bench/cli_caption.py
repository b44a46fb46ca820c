"""Caption commands: ``vreid caption`` (caption, import reviewed captions, list ids), ``vreid caption audit`` and
``vreid show`` (contact sheet)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from vreid_bench.errors import ConfigError

caption_app = typer.Typer(help="Caption a dataset's training tracklets, import reviewed captions, audit them.",
                          invoke_without_command=True, no_args_is_help=True)
DATASET_HELP = "A registered dataset name (mars, ilidsvid ...) or a dataset directory made by `vreid build`."
CAPTIONS_DIR_HELP = ("Folder of caption sidecars (default $VREID_DATA/captions); for a build, moves its "
                     "captions.jsonl there too.")


@caption_app.callback()
def caption(
    context: typer.Context,
    dataset: Optional[str] = typer.Option(None, "--dataset", help=DATASET_HELP),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    split: Optional[int] = typer.Option(None, "--split", help="Split of iLIDS-VID / PRID-2011 whose training "
                                        "tracklets are captioned (default 0)."),
    captions_dir: Optional[Path] = typer.Option(None, "--captions-dir", help=CAPTIONS_DIR_HELP),
    captioner: Optional[str] = typer.Option(
        None, "--captioner",
        help="Captioner: template (default, from attribute sheets), mllm (microsoft/Phi-4-multimodal-instruct), "
             "or any transformers image-text-to-text model id (org/name) or local model folder."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Model captioners: captioning recipe, a name "
                                         "(identity) or a YAML file: prompt, frames, generation."),
    hallucination: Optional[float] = typer.Option(None, "--hallucination",
                                                  help="Template captioner: fraction of attributes made wrong (0..1)."),
    seed: Optional[int] = typer.Option(
        None, "--seed", help="Template captioner seed (sentence forms, hallucinations)."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="Model captioners: auto (GPU when present), cpu, cuda or cuda:N."),
    dtype: Optional[str] = typer.Option(None, "--dtype",
                                        help="Model captioners: auto (bfloat16 on GPU, float32 on CPU), float32, "
                                             "bfloat16 or float16."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens",
                                                 help="Model captioners: longest caption in tokens (the recipe's)."),
    frames: Optional[int] = typer.Option(None, "--frames",
                                         help="Model captioners: frames shown per tracklet (the recipe's)."),
    trust_remote_code: Optional[bool] = typer.Option(
        None, "--trust-remote-code/--no-trust-remote-code",
        help="Model captioners: run the model's own code from its folder (default: on for Phi-4-multimodal only)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Tracklets per captioner call."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recaption tracklets already captioned this way."),
    import_file: Optional[Path] = typer.Option(None, "--import",
                                               help="Reviewed captions (.jsonl or .csv: tracklet_id, caption)."),
    list_ids: bool = typer.Option(False, "--list-ids", help="Print the ids of the tracklets to caption (CSV) and "
                                  "exit: write reviewed captions against them, then --import."),
    include_test: bool = typer.Option(False, "--include-test", help="Also caption (or import) the test tracklets, "
                                      "for the audit only: no run trains on them."),
) -> None:
    """Caption the training tracklets of a dataset, import reviewed captions, or list the tracklet ids.

    `vreid caption audit --help` tells how the captions are audited.
    """
    if context.invoked_subcommand is not None:
        return
    from builders.captions import caption_dataset, caption_target, create_captioner, import_captions
    from builders.captions.base import listed_ids
    from vreid_bench.cli import console

    if dataset is None:
        raise ConfigError("give --dataset: a registered dataset name (mars ...) or a dataset directory")
    given: tuple[tuple[str, str, object], ...] = (  # (flag, captioner option, value)
        ("--hallucination", "hallucination", hallucination), ("--seed", "seed", seed), ("--device", "device", device),
        ("--dtype", "dtype", dtype), ("--max-new-tokens", "max_new_tokens", max_new_tokens),
        ("--frames", "frames", frames), ("--trust-remote-code", "trust_remote_code", trust_remote_code),
        ("--recipe", "recipe", recipe),
    )
    target = caption_target(dataset, root=root, split=split, captions_dir=captions_dir, include_test=include_test)
    if list_ids:
        rows = listed_ids(target)
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if import_file is not None:
        conflicting = [flag for flag, _, value in (("--captioner", "", captioner), *given) if value is not None]
        conflicting += ["--overwrite"] if overwrite else []
        if conflicting:
            raise ConfigError(f"--import takes reviewed captions as they are, so {', '.join(conflicting)} "
                              "does not apply; give either a captioner or --import")
        imported = import_captions(target, import_file)
        _note_repair(imported.dropped_torn_line)
        console.print(f"imported {imported.imported} reviewed captions for {target.describe()}, {imported.total} "
                      f"tracklets; store {imported.store}", highlight=False)
        return

    options = {key: value for _, key, value in given if value is not None}
    chosen = create_captioner(captioner or "template", **options)
    console.print(f"captioning {target.describe()} with {chosen.name} (prompt {chosen.prompt_id})", highlight=False)
    summary = caption_dataset(target, chosen, batch_size=batch_size, overwrite=overwrite,
                              announce=lambda plan: console.print(plan.describe(), highlight=False))
    _note_repair(summary.dropped_torn_line)
    console.print(f"captioned {summary.captioned}, cached {summary.cached}, total {summary.total} "
                  f"(captioner {summary.captioner}, prompt {summary.prompt_id}); store {summary.store}",
                  highlight=False)


def _note_repair(dropped_torn_line: bool) -> None:
    from vreid_bench.cli import err_console

    if dropped_torn_line:
        err_console.print("note: the last line of the caption store was torn (an interrupted write); it was dropped "
                          "and the file repaired")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def audit_tables(result: dict[str, Any]) -> list[Table]:
    """The audit as console tables: summary and distinctiveness, consistency, and the truth where it exists."""
    summary, distinct = result["summary"], result["distinctiveness"]
    overview = Table(title=f"caption audit: {result['dataset']} ({result['selector']} captions)")
    overview.add_column("measure")
    overview.add_column("value", justify="right")
    for name, value in (
        ("captioned tracklets", summary["captioned_tracklets"]),
        ("identities", summary["identities"]),
        ("distinct captions", summary["distinct_captions"]),
        ("words per caption (mean, min-max)",
         f"{summary['words_mean']:.1f} ({summary['words_min']}-{summary['words_max']})"),
        ("tracklets whose caption another identity also has", f"{_percent(summary['shared_share'])} %"),
        ("identities with no confuser (distinct)",
         f"{distinct.get('distinct', 0)} of {distinct['identities']} ({_percent(distinct.get('distinct_share'))} %)"),
        ("confusers per identity (mean, max)",
         f"{distinct.get('mean_confusers', 0):.2f} ({distinct.get('max_confusers', 0)}) of "
         f"{distinct.get('identities_per_scope', 0) - 1:.1f} others per scope"),
        ("similarity", result["similarity"]),
        ("statements against their identity's majority", str(result["contradictions"])),
    ):
        overview.add_row(name, str(value))
    tables = [overview]
    if result["consistency"]:
        checked = Table(title="consistency: statements against the majority of the identity's tracklets")
        for column in ("attribute", "checked", "against", "%"):
            checked.add_column(column, justify="left" if column == "attribute" else "right")
        for slot, counts in result["consistency"].items():
            checked.add_row(slot, str(counts["checked"]), str(counts["against"]),
                            _percent(counts["against"] / counts["checked"]))
        tables.append(checked)
    if result["truth"]:
        truth = Table(title="against the attribute sheets (synthetic footage)")
        for column in ("attribute", "statements", "precision", "recall", "hallucination"):
            truth.add_column(column, justify="left" if column == "attribute" else "right")
        for row in result["truth"]:
            truth.add_row(row["attribute"], str(row["statements"]), _percent(row["precision"]),
                          _percent(row["recall"]), _percent(row["hallucination"]))
        tables.append(truth)
    return tables


@caption_app.command("audit")
def audit(
    dataset: str = typer.Argument(..., help=DATASET_HELP),
    root: Optional[str] = typer.Option(None, "--root", help="Dataset folder, or the folder holding it."),
    split: Optional[int] = typer.Option(None, "--split", help="Split of iLIDS-VID / PRID-2011."),
    captions_dir: Optional[Path] = typer.Option(None, "--captions-dir", help=CAPTIONS_DIR_HELP),
    captions: str = typer.Option("current", "--captions", help="Which captions: current (the latest of each "
                                 "tracklet), a captioner name or a prompt id."),
    similarity: str = typer.Option("auto", "--similarity", help="auto (CLIP text features where weights are at "
                                   "hand, else word overlap), clip or tokens."),
    clip_weights: Optional[str] = typer.Option(None, "--clip-weights", help="CLIP weights for --similarity: a "
                                               "file, or an open_clip tag (openai) where the network allows."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for audit.json, the CSVs and audit.png "
                                       "(default: caption-audit/ beside the caption store)."),
) -> None:
    """Audit captions: length, duplicates, distinctiveness between teammates, consistency within each identity
    and, on synthetic footage, precision, recall and hallucination rate of every attribute."""
    from builders.captions.audit import audit_captions, write_audit
    from vreid_bench.cli import console
    from vreid_bench.datasets import load

    options = {"split": split} if split is not None else {}
    loaded = load(dataset, root=root, captions="none", **options)
    result = audit_captions(loaded, captions, captions_dir, similarity, clip_weights)
    folder = write_audit(result, out)
    for table in audit_tables(result.to_dict()):
        console.print(table)
    console.print(f"audit written to {folder} (audit.json, identities.csv, contradictions.csv, audit.png"
                  f"{', attributes.csv' if result.truth else ''})", highlight=False)


def show(
    dataset_dir: Path = typer.Argument(..., help="A dataset directory made by `vreid build`."),
    out: Path = typer.Option(..., "--out", help="The PNG to write."),
    n: int = typer.Option(8, "--n", help="Number of tracklets (rows)."),
    split: Optional[str] = typer.Option(None, "--split", help="Only this split: train, query or gallery."),
    frames_per_row: int = typer.Option(8, "--frames-per-row", help="Frames shown per tracklet."),
    seed: int = typer.Option(0, "--seed", help="Which tracklets are drawn."),
) -> None:
    """Draw a contact sheet: frames, identity, camera, split and caption of a few tracklets."""
    from builders.contact_sheet import render_contact_sheet
    from vreid_bench.cli import console

    sheet = render_contact_sheet(dataset_dir, out, n=n, frames_per_row=frames_per_row, split=split, seed=seed)
    width, height = sheet.size
    console.print(f"wrote {sheet.path}: {len(sheet.rows)} tracklets, {width}x{height} px")


def register(app: typer.Typer) -> None:
    app.add_typer(caption_app, name="caption")
    app.command("show")(show)
