"""``arbiter models``: install and list the local models (GGUF files run in process by the ``local:`` provider)."""

from __future__ import annotations

import typer

from arbiter._cli_common import JSON, err, fail, print_json
from wrapper.exceptions import ModelConfigurationError
from wrapper.model_catalog import DEFAULT_ALIAS
from wrapper.model_store import ModelPullError, PullProgress, PullResult, list_models, models_dir, pull

__all__ = ["ensure_model", "models_app"]

models_app = typer.Typer(help="Install and list local models.", no_args_is_help=True)

_MB = 1024 * 1024


@models_app.command("pull")
def models_pull(
    alias: str = typer.Argument(DEFAULT_ALIAS, help="The model to install (see `arbiter models list`)."),
    as_json: bool = JSON,
) -> None:
    """Install a local model into ARBITER_MODELS_DIR (a no-op when it is there and intact)."""
    try:
        result = ensure_model(alias, quiet=as_json)
    except (ModelConfigurationError, ModelPullError) as exc:
        fail(str(exc))
    if as_json:
        print_json({"alias": alias, "path": str(result.path), "installed_now": result.installed_now})
    else:
        typer.echo(str(result.path))


@models_app.command("list")
def models_list(as_json: bool = JSON) -> None:
    """List the installable models and which are installed."""
    models = list_models()
    if as_json:
        print_json(
            [
                {
                    "alias": m.entry.alias,
                    "installed": m.installed,
                    "path": str(m.path),
                    "size": m.entry.size,
                    "sha256": m.entry.sha256,
                    "default": m.entry.alias == DEFAULT_ALIAS,
                }
                for m in models
            ]
        )
        return
    typer.echo(f"models directory: {models_dir()}")
    for m in models:
        state = "installed" if m.installed else f"not installed (arbiter models pull {m.entry.alias})"
        default = " (default)" if m.entry.alias == DEFAULT_ALIAS else ""
        typer.echo(f"  {m.entry.alias:<20} {m.entry.size / _MB:>6.0f} MB  {state}{default}")
        typer.echo(f"  {'':<20} {m.entry.description}")


def ensure_model(alias: str, *, quiet: bool = False) -> PullResult:
    """Install ``alias`` if it is missing, showing progress on standard error unless ``quiet``.

    Raises:
        ModelConfigurationError: the alias is unknown.
        ModelPullError: the installation failed.
    """
    started = [False]

    def show(progress: PullProgress) -> None:
        if quiet:
            return
        if progress.stage == "done" and not started[0]:
            return  # already installed: nothing to say
        if not started[0]:
            started[0] = True
            err.print(
                f"installing {progress.alias} ({progress.total_bytes / _MB:.0f} MB in {progress.parts} parts) "
                f"into {models_dir()}",
                highlight=False,
            )
        if progress.stage == "download":
            percent = 100 * progress.done_bytes / max(progress.total_bytes, 1)
            err.print(
                f"  part {progress.part}/{progress.parts}  {progress.done_bytes / _MB:>6.0f} MB  {percent:5.1f}%",
                highlight=False,
            )
        elif progress.stage == "verify":
            err.print("  checking the SHA-256", highlight=False)

    result = pull(alias, progress=show)
    if result.installed_now and not quiet:
        err.print(f"installed {alias} in {result.seconds:.0f} s: {result.path}", highlight=False)
    return result
