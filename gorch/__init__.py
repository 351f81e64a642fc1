"""gorch: durable, code-first workflows.

A workflow is a plain Python class whose ``definition()`` returns a tree of named statements.
The pure interpreter advances a serialized :class:`State` until every thread is blocked; the
application persists it, delivers events, and can move a stuck thread with :func:`goto`.

Example (load, resume, save)::

    state = loads(row.state, State)
    order = loads(row.data, PizzaOrder)
    handle_callback(CallbackRequest(name="AddToCart"), order, state, payload)
    resume(order, state)
    row.state, row.data = dumps(state), dumps(order)
"""

from gorch.children import Child as Child
from gorch.children import ChildResult as ChildResult
from gorch.children import OnInstance as OnInstance
from gorch.dsl import Break as Break
from gorch.dsl import Case as Case
from gorch.dsl import Continue as Continue
from gorch.dsl import Default as Default
from gorch.dsl import For as For
from gorch.dsl import Go as Go
from gorch.dsl import Handler as Handler
from gorch.dsl import If as If
from gorch.dsl import On as On
from gorch.dsl import Return as Return
from gorch.dsl import S as S
from gorch.dsl import Section as Section
from gorch.dsl import Step as Step
from gorch.dsl import Stmt as Stmt
from gorch.dsl import Switch as Switch
from gorch.dsl import Timeout as Timeout
from gorch.dsl import Wait as Wait
from gorch.dsl import WaitFor as WaitFor
from gorch.engine import AsyncEngine as AsyncEngine
from gorch.engine import AsyncWorker as AsyncWorker
from gorch.engine import BulkFailure as BulkFailure
from gorch.engine import BulkReport as BulkReport
from gorch.engine import Change as Change
from gorch.engine import ChangePage as ChangePage
from gorch.engine import CheckProblem as CheckProblem
from gorch.engine import CheckReport as CheckReport
from gorch.engine import DataPlan as DataPlan
from gorch.engine import Engine as Engine
from gorch.engine import Explanation as Explanation
from gorch.engine import HistoryEntry as HistoryEntry
from gorch.engine import HistoryKind as HistoryKind
from gorch.engine import Instance as Instance
from gorch.engine import Listener as Listener
from gorch.engine import MigrationReport as MigrationReport
from gorch.engine import Page as Page
from gorch.engine import RunningStep as RunningStep
from gorch.engine import RunStatus as RunStatus
from gorch.engine import Schedule as Schedule
from gorch.engine import ThreadWait as ThreadWait
from gorch.engine import Worker as Worker
from gorch.errors import AlreadyExistsError as AlreadyExistsError
from gorch.errors import AmbiguousCallback as AmbiguousCallback
from gorch.errors import BusyError as BusyError
from gorch.errors import CallbackNotFound as CallbackNotFound
from gorch.errors import ConflictError as ConflictError
from gorch.errors import DefinitionError as DefinitionError
from gorch.errors import ErasureError as ErasureError
from gorch.errors import GorchError as GorchError
from gorch.errors import GotoError as GotoError
from gorch.errors import HandlerError as HandlerError
from gorch.errors import IdempotencyKeyError as IdempotencyKeyError
from gorch.errors import InputError as InputError
from gorch.errors import InstanceStatusError as InstanceStatusError
from gorch.errors import MigrationError as MigrationError
from gorch.errors import NoContextError as NoContextError
from gorch.errors import NotFoundError as NotFoundError
from gorch.errors import SerializationError as SerializationError
from gorch.errors import StaleCallback as StaleCallback
from gorch.errors import StateMismatchError as StateMismatchError
from gorch.errors import StepError as StepError
from gorch.errors import StepLimitExceeded as StepLimitExceeded
from gorch.errors import StepTimeoutError as StepTimeoutError
from gorch.errors import StoreError as StoreError
from gorch.errors import StoreUnavailableError as StoreUnavailableError
from gorch.errors import UnreadableInstanceError as UnreadableInstanceError
from gorch.errors import WaitTimeout as WaitTimeout
from gorch.errors import WorkflowFinishedError as WorkflowFinishedError
from gorch.interpreter import GotoPlan as GotoPlan
from gorch.interpreter import Outcome as Outcome
from gorch.interpreter import StepContext as StepContext
from gorch.interpreter import context as context
from gorch.interpreter import goto as goto
from gorch.interpreter import handle_callback as handle_callback
from gorch.interpreter import resume as resume
from gorch.interpreter import run as run
from gorch.interpreter import validate as validate
from gorch.interpreter import waiting_for as waiting_for
from gorch.retry import RetryPolicy as RetryPolicy
from gorch.serde import dumps as dumps
from gorch.serde import loads as loads
from gorch.state import MAIN_THREAD as MAIN_THREAD
from gorch.state import CallbackRequest as CallbackRequest
from gorch.state import CheckpointType as CheckpointType
from gorch.state import EventStatus as EventStatus
from gorch.state import State as State
from gorch.state import Thread as Thread
from gorch.state import ThreadStatus as ThreadStatus
from gorch.state import WaitEvent as WaitEvent
from gorch.state import WorkflowStatus as WorkflowStatus
from gorch.state import new_state as new_state

__version__ = "0.1.0"

__all__ = [
    "MAIN_THREAD",
    "AlreadyExistsError",
    "AmbiguousCallback",
    "AsyncEngine",
    "AsyncWorker",
    "Break",
    "BulkFailure",
    "BulkReport",
    "BusyError",
    "CallbackNotFound",
    "CallbackRequest",
    "Case",
    "Change",
    "ChangePage",
    "CheckProblem",
    "CheckReport",
    "CheckpointType",
    "Child",
    "ChildResult",
    "ConflictError",
    "Continue",
    "DataPlan",
    "Default",
    "DefinitionError",
    "Engine",
    "ErasureError",
    "EventStatus",
    "Explanation",
    "For",
    "Go",
    "GorchError",
    "GotoError",
    "GotoPlan",
    "Handler",
    "HandlerError",
    "HistoryEntry",
    "HistoryKind",
    "IdempotencyKeyError",
    "If",
    "InputError",
    "Instance",
    "InstanceStatusError",
    "Listener",
    "MigrationError",
    "MigrationReport",
    "NoContextError",
    "NotFoundError",
    "On",
    "OnInstance",
    "Outcome",
    "Page",
    "RetryPolicy",
    "Return",
    "RunStatus",
    "RunningStep",
    "S",
    "Schedule",
    "Section",
    "SerializationError",
    "StaleCallback",
    "State",
    "StateMismatchError",
    "Step",
    "StepContext",
    "StepError",
    "StepLimitExceeded",
    "StepTimeoutError",
    "Stmt",
    "StoreError",
    "StoreUnavailableError",
    "Switch",
    "Thread",
    "ThreadStatus",
    "ThreadWait",
    "Timeout",
    "UnreadableInstanceError",
    "Wait",
    "WaitEvent",
    "WaitFor",
    "WaitTimeout",
    "Worker",
    "WorkflowFinishedError",
    "WorkflowStatus",
    "context",
    "dumps",
    "goto",
    "handle_callback",
    "loads",
    "new_state",
    "resume",
    "run",
    "validate",
    "waiting_for",
]
