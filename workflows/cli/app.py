"""The ``ctcd`` command: every command group wired into one Typer app, and the one place errors are reported.

It mirrors the Argo CLI where one exists (``submit``, ``runs get``, ``runs logs``) and kubectl's ``get isvc``,
so that what users learn locally carries over to a cluster.  Each group lives in a module of its own; this
module only names the commands.  Every error a user can act on is a :class:`~workflows.errors.CtcdError`:
:class:`CtcdGroup` prints it (``error:`` and ``hint:``) and exits with its code, so no command catches them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from workflows.cli import data, delivery, feedback, library, models, platform, runs, serving, simulate
from workflows.cli.output import report
from workflows.errors import CtcdError


class CtcdGroup(TyperGroup):
    """Typer's group, with ctcd's errors printed for people instead of raised as tracebacks."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a :class:`CtcdError` becomes its message, its hint and its exit code."""
        try:
            return super().invoke(ctx)
        except CtcdError as exc:
            raise typer.Exit(report(exc)) from exc
        except KeyError as exc:
            from models.contract import UnknownTechnique  # imported only when it is needed: it loads every technique

            if isinstance(exc, UnknownTechnique):
                raise typer.Exit(report(exc)) from exc
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("botocore", "boto3")):  # S3 refused or went away mid-command
                raise typer.Exit(report(s3_error(exc))) from exc
            raise


def s3_error(exc: Exception) -> CtcdError:
    """An S3 failure in a person's words: S3's own code and message, and where to look."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    said = f"{error.get('Code', '')}: {error.get('Message', '')}".strip(": ") or str(exc).splitlines()[0]
    return CtcdError(
        f"S3 refused the request ({said[:300]}); nothing was half-written (each file is one conditional write)",
        hint="`ctcd status` says whether S3 is healthy; a full disk under the state folder is a common cause",
    )


app = typer.Typer(cls=CtcdGroup, help="ctcd: continuous training, continuous delivery on Argo.", no_args_is_help=True)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")


TOP_LEVEL: tuple[Callable[..., None], ...] = (
    platform.up,
    platform.down,
    platform.reset,
    platform.status,
    runs.submit,
    runs.retrain,
    models.models,
    delivery.promote,
    delivery.route,
    delivery.merge,
    delivery.rollback,
    delivery.rollout,
    delivery.history,
    serving.predict,
    feedback.readout,
    feedback.analyze,
    simulate.simulate,
)
for command in TOP_LEVEL:
    app.command()(command)
app.command("compile")(platform.compile_)
app.command("lint")(library.lint)
app.command("apply")(library.apply)

GROUPS: dict[str, tuple[str, dict[str, Callable[..., None]]]] = {
    "runs": (
        "Inspect workflow runs of the local engine.",
        {
            "list": runs.runs_list,
            "get": runs.runs_get,
            "logs": runs.runs_logs,
            "watch": runs.runs_watch,
            "stop": runs.runs_stop,
            "terminate": runs.runs_terminate,
            "suspend": runs.runs_suspend,
            "resume": runs.runs_resume,
            "retry": runs.runs_retry,
            "resubmit": runs.runs_resubmit,
            "delete": runs.runs_delete,
        },
    ),
    "data": (
        "Techniques' datasets in S3: seed sample data, add your own files.",
        {
            "seed": data.data_seed,
            "add": data.data_add,
            "ls": data.data_ls,
            "rm": data.data_rm,
            "example": data.data_example,
        },
    ),
    "template": (
        "Your own WorkflowTemplates and ClusterWorkflowTemplates, like `argo template`.",
        {
            "create": library.template_create,
            "list": library.template_list,
            "get": library.template_get,
            "delete": library.template_delete,
        },
    ),
    "cron": (
        "CronWorkflows and their local scheduler, like `argo cron`.",
        {
            "list": library.cron_list,
            "create": library.cron_create,
            "delete": library.cron_delete,
            "trigger": library.cron_trigger,
            "suspend": library.cron_suspend,
            "resume": library.cron_resume,
        },
    ),
    "handoff": ("Questions handed off to a person, from the prediction log.", {"ls": feedback.handoff_ls}),
    "feedback": ("Labels confirmed in production, back as training data.", {"add": feedback.feedback_add}),
    "get": ("Show serving objects, like `kubectl get`.", {"isvc": serving.get_isvc, "ig": serving.get_ig}),
    "serving": ("Local serving (the stand-in for Argo CD + KServe).", {"wait": serving.serving_wait}),
}
for group_name, (group_help, verbs) in GROUPS.items():
    group = typer.Typer(help=group_help, no_args_is_help=True)
    for verb, command in verbs.items():
        group.command(verb)(command)
    app.add_typer(group, name=group_name)


def main() -> None:
    """Console entry point (``ctcd``): Ctrl-C exits with 130, as a shell expects."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
