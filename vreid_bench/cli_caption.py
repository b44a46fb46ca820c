"""Caption commands: ``vreid caption`` (caption or import reviewed captions) and ``vreid show`` (contact sheet)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vreid_bench.errors import ConfigError


def caption(
    dataset_dir: Path = typer.Argument(..., help="A dataset directory made by `vreid build`."),
    captioner: Optional[str] = typer.Option(
        None, "--captioner",
        help="Captioner: template (default, from attribute sheets), mllm (microsoft/Phi-4-multimodal-instruct), "
             "or any transformers image-text-to-text model id (org/name) or local model folder."),
    hallucination: Optional[float] = typer.Option(None, "--hallucination",
                                                  help="Template captioner: fraction of attributes made wrong (0..1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Captioner seed (sentence forms, hallucinations)."),
    device: Optional[str] = typer.Option(None, "--device",
                                         help="Model captioners: auto (GPU when present), cpu, cuda or cuda:N."),
    dtype: Optional[str] = typer.Option(None, "--dtype",
                                        help="Model captioners: auto (bfloat16 on GPU, float32 on CPU), float32, "
                                             "bfloat16 or float16."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens",
                                                 help="Model captioners: longest caption in tokens (default 64)."),
    frames: Optional[int] = typer.Option(None, "--frames",
                                         help="Model captioners: evenly spaced frames shown per tracklet (default 4)."),
    trust_remote_code: Optional[bool] = typer.Option(
        None, "--trust-remote-code/--no-trust-remote-code",
        help="Model captioners: run the model's own code from its folder (default: on for Phi-4-multimodal only)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Tracklets per captioner call."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recaption tracklets already captioned this way."),
    import_file: Optional[Path] = typer.Option(None, "--import",
                                               help="Reviewed captions (.jsonl or .csv: tracklet_id, caption)."),
) -> None:
    """Caption every tracklet of a dataset, or import reviewed captions."""
    from builders.captions import caption_dataset, create_captioner, import_captions
    from vreid_bench.cli import console

    given: tuple[tuple[str, str, object], ...] = (  # (flag, captioner option, value)
        ("--hallucination", "hallucination", hallucination), ("--seed", "seed", seed), ("--device", "device", device),
        ("--dtype", "dtype", dtype), ("--max-new-tokens", "max_new_tokens", max_new_tokens),
        ("--frames", "frames", frames), ("--trust-remote-code", "trust_remote_code", trust_remote_code),
    )
    if import_file is not None:
        conflicting = [flag for flag, _, value in (("--captioner", "", captioner), *given) if value is not None]
        conflicting += ["--overwrite"] if overwrite else []
        if conflicting:
            raise ConfigError(f"--import takes reviewed captions as they are, so {', '.join(conflicting)} "
                              "does not apply; give either a captioner or --import")
        imported = import_captions(dataset_dir, import_file)
        _note_repair(imported.dropped_torn_line)
        console.print(f"imported {imported.imported} reviewed captions ({imported.total} tracklets in the dataset)")
        return

    options = {key: value for _, key, value in given if value is not None}
    chosen = create_captioner(captioner or "template", **options)
    summary = caption_dataset(dataset_dir, chosen, batch_size=batch_size, overwrite=overwrite)
    _note_repair(summary.dropped_torn_line)
    console.print(f"captioned {summary.captioned}, cached {summary.cached}, total {summary.total} "
                  f"(captioner {summary.captioner}, prompt {summary.prompt_id})")


def _note_repair(dropped_torn_line: bool) -> None:
    from vreid_bench.cli import err_console

    if dropped_torn_line:
        err_console.print("note: the last line of captions.jsonl was torn (an interrupted write); it was dropped "
                          "and the file repaired")


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
    app.command("caption")(caption)
    app.command("show")(show)
