"""The one exception tree of qfrun; only ``cli.py`` renders it.

::

    QfrunError                      exit_code  what
    ├── PipelineError               3          the pipeline file cannot be used (every issue, sorted)
    │   └── PipelineSyntaxError     3          YAML syntax, duplicate keys, size/encoding limits
    ├── StateError                  4          state file unreadable / corrupt / newer / changed / unwritable
    │   └── StateLockedError        4          another qfrun holds the state lock
    ├── PlatformError               5          the platform could not do what was asked
    │   ├── PlatformUnavailable     5          connect failure or timeout
    │   ├── PlatformAuthError       5          401 / 403, bad or missing credentials
    │   ├── PlatformNotFound        5          404 or the platform's "no such resource" code
    │   ├── PlatformRateLimited     5          QPS limits, still refused after retries
    │   │   └── PlatformQueueFull   5          too many queued tasks, still so after waiting
    │   ├── PlatformServerError     5          5xx or the platform's "server busy" codes
    │   ├── PlatformStatusError     5          any other refusal (4xx, error_code in the body)
    │   └── PlatformProtocolError   5          a response that is not the documented shape
    ├── RunFailedError              1          the run finished and at least one stage failed
    ├── UsageError                  2          the command line asks for something impossible
    └── InterruptedRun              130        Ctrl-C; the state is saved and a re-run resumes

Inside qfrun, raised and handled within one layer (never shown as themselves), with what each becomes::

    Exception                       module                  becomes
    ├── StageError                  errors                  the stage's failure, recorded by the executor
    ├── StageWaiting                errors                  the stage waiting for people; exit 75
    ├── PathRefused                 files                   a PipelineError issue or an InputError
    ├── ExpressionError             pipeline.expr           a PipelineError issue or an InputError
    │   ├── UnsetVariable           pipeline.expr           the same, naming the variable
    │   └── NotKnownYet             pipeline.expr           a plan's "known after a stage runs"
    ├── _AliasBomb                  pipeline.yamlio         a PipelineSyntaxError
    ├── _Unsupported                pipeline.expr_quick     Jinja2 reads or evaluates the expression
    ├── InputError                  run.inputs              the stage's action "invalid"
    ├── Interrupted                 run.context             InterruptedRun, the stage left to resume
    ├── RegistryError               stages.registry         an import error: a programming mistake
    ├── SheetError                  stages.scoresheet       a StageError that lists the sheet's problems
    ├── _Mismatch                   stages.fields           a StageError naming the stage and the field
    ├── WireError                   platform.wire.fields    a PlatformProtocolError
    ├── AmbiguousCreate             platform.http           a lookup by task name, else its PlatformError
    ├── _Retry                      platform.bos            another try, else its PlatformError
    ├── SignatureRefused            platform.auth           the local platform's 401 with BCE's code
    ├── ApiError                    local.api_common        the local platform's error answer
    ├── ChatError                   local.api_services      a chat service's error answer
    ├── ReplicaUnreachable          local.replica_http      a chat's 503 naming the replica
    │   └── ReplicaProtocolError    local.replica_http      the same, naming what was wrong
    ├── _StaleConnection            local.replica_http      the chat sent again on a new connection
    ├── BosError                    local.bos_store         the BOS emulation's error answer
    ├── BadLine                     local.api_dataset_import  a dataset import's ImportFailed reason
    ├── BodyTooLarge                local.bodies            a 413 answer
    ├── JobSetupError               local.jobspec           the task's failure reason
    ├── RequestError                local.engine.serve      a replica's OpenAI-style error answer
    ├── ClientGone                  local.engine.serve      the chat dropped; a 499 nobody reads
    ├── _DeployError                local.services          the service's failure message
    ├── WarmUnavailable             local.warm              the job started as a process of its own
    └── StoreError                  local.rows              the local platform refusing to start
        └── DuplicateName           local.rows              the task of that name, returned again
    ValueError
    ├── BenchmarkError              benchmarks              the evaluate stage's failure naming the file
    ├── TooLarge                    pipeline.expr_limits    an ExpressionError
    ├── BadJson                     local.bodies            a 400 answer
    ├── BatchInputError             local.batch_io          the batch inference task's failure reason
    ├── ExportFileError             platform.eval_export_file  a PlatformStatusError naming the export
    └── ChatLimitError              local.chat_limits       a chat service's 400 answer
    AssertionError
    └── SdkFailed                   testing.sdk_oracle      a failed test (the SDK's own process failed)
    StateError (above)
    └── _JournalAhead               state.file              one more read of the state, else a StateError

A run that ends with a stage waiting for people (manual scores) and none failed exits 75 (``StageWaiting``).

Every ``str(error)`` is a complete sentence a user can act on; it never contains a credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a file, printed the way ruff and mypy print them."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        if self.column <= 0:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Issue:
    """One problem found in a pipeline file, at a location."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def _position(issue: Issue) -> tuple[str, int, int, str]:
    where = issue.location
    return where.path, where.line, where.column, issue.message


class QfrunError(Exception):
    """Base of every error qfrun reports to a user."""

    exit_code: int = 70


class PipelineError(QfrunError):
    """The pipeline file cannot be used; carries every issue found, sorted by position.

    One class for schema, reference, cycle, expression and file issues alike: validation reports them all at
    once, so no single one of them names the error.
    """

    exit_code = 3

    def __init__(self, issues: Iterable[Issue]) -> None:
        # A key of plain values: the dataclasses' own ordering is the same, but a Python call per comparison
        # made 77,000 issues (a 1 MB file of unknown names) take seconds to sort.
        self.issues: tuple[Issue, ...] = tuple(sorted(set(issues), key=_position))
        super().__init__("\n".join(str(issue) for issue in self.issues))

    @classmethod
    def at(cls, location: Location, message: str) -> PipelineError:
        return cls([Issue(location, message)])


class PipelineSyntaxError(PipelineError):
    """The file is not readable YAML of an acceptable size and encoding."""


class StateError(QfrunError):
    """The state file cannot be read, trusted or written."""

    exit_code = 4


class StateLockedError(StateError):
    """Another process holds the lock of a state file."""


class PlatformError(QfrunError):
    """A platform request failed; carries the request coordinates but never a credential."""

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        method: str = "",
        path: str = "",
        status: int | None = None,
        request_id: str | None = None,
        code: str | int | None = None,
    ) -> None:
        self.message = message
        self.platform = platform
        self.method = method
        self.path = path
        self.status = status
        self.request_id = request_id
        self.code = code
        super().__init__(self._render())

    def _render(self) -> str:
        # Shape: "platform URL: METHOD PATH -> STATUS: message (request id R)." Never headers or keys.
        head = " ".join(part for part in (self.method, self.path) if part)
        if self.status is not None:
            head = f"{head} -> {self.status}" if head else f"status {self.status}"
        text = f"{head}: {self.message}" if head else self.message
        if self.platform:
            text = f"platform {self.platform}: {text}"
        text = text.rstrip(".")
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text + "."


class PlatformUnavailable(PlatformError):
    """The platform could not be reached, or did not answer in time."""


class PlatformAuthError(PlatformError):
    """The platform refused the credentials (401/403)."""


class PlatformNotFound(PlatformError):
    """The platform has no such resource."""


class PlatformRateLimited(PlatformError):
    """The platform kept refusing for rate limits after every retry."""


class PlatformQueueFull(PlatformRateLimited):
    """The account runs as many tasks of a kind as it may (TaskRunningNumberExceedLimit: 20 batch
    inference tasks [B1]); a create waits for one to end instead of failing."""


class PlatformServerError(PlatformError):
    """The platform failed on its side (5xx, server busy)."""


class PlatformStatusError(PlatformError):
    """The platform refused the request for another reason."""


class PlatformProtocolError(PlatformError):
    """The platform answered with something that is not the documented shape."""


class RunFailedError(QfrunError):
    """The run finished and at least one stage failed."""

    exit_code = 1


class StageError(Exception):
    """A stage cannot complete: raised inside stage code, recorded as that stage's failure.

    Not a QfrunError: the executor catches it per stage and the run goes on (or stops) by policy.
    """


class StageWaiting(Exception):
    """A stage's task waits for people (a manual evaluation's scores): the stage is recorded as waiting with
    this message ("waiting for scores in FILE"), and the next run re-attaches to the same task.

    Not a failure: the run ends with ``WAITING_EXIT_CODE`` once nothing else can run.
    """


WAITING_EXIT_CODE = 75  # sysexits' EX_TEMPFAIL: not done yet; run again once people have scored


class UsageError(QfrunError):
    """The command line asks for something impossible (an unknown stage in ``--select``, ...)."""

    exit_code = 2


class InterruptedRun(QfrunError):
    """The user stopped the run (Ctrl-C); the state file is saved and re-running resumes."""

    exit_code = 130
