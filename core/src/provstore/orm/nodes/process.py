"""Process nodes: the record of a calculation or a workflow that ran.

A process node's attributes are frozen once it is stored, except its state keys (``process_state``,
``exit_status``, ``checkpoints``, ... and, for calculation jobs, the scheduler keys): those may change until the
node is sealed, after which nothing may. Incoming links (its inputs) are added before it is stored; outgoing
links (what it created, returned or called) may be added until it is sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from provstore.orm.exceptions import ModificationNotAllowedError
from provstore.orm.links import LinkType
from provstore.orm.nodes.links import NodeLinksManager
from provstore.orm.nodes.node import Node

__all__ = [
    'CalcFunctionNode',
    'CalcJobNode',
    'CalculationNode',
    'ProcessNode',
    'WorkChainNode',
    'WorkFunctionNode',
    'WorkflowNode',
]


class ProcessNode(Node):
    """The record of a process. Store a calculation or workflow subclass, not this class."""

    NODE_TYPE: ClassVar[str] = 'process.ProcessNode.'

    SEALED_KEY: ClassVar[str] = 'sealed'
    CHECKPOINT_KEY: ClassVar[str] = 'checkpoints'
    EXCEPTION_KEY: ClassVar[str] = 'exception'
    EXIT_MESSAGE_KEY: ClassVar[str] = 'exit_message'
    EXIT_STATUS_KEY: ClassVar[str] = 'exit_status'
    PROCESS_PAUSED_KEY: ClassVar[str] = 'paused'
    PROCESS_LABEL_KEY: ClassVar[str] = 'process_label'
    PROCESS_STATE_KEY: ClassVar[str] = 'process_state'
    PROCESS_STATUS_KEY: ClassVar[str] = 'process_status'

    UPDATABLE_ATTRIBUTES: ClassVar[frozenset[str]] = frozenset(
        {
            'sealed',
            'checkpoints',
            'exception',
            'exit_message',
            'exit_status',
            'paused',
            'process_label',
            'process_state',
            'process_status',
        }
    )
    """The attributes that may still change once the node is stored, until it is sealed (as in aiida-core)."""

    def __init__(self, *, process_type: str | None = None, **kwargs: Any) -> None:
        """:param process_type: what ran: an entry point string (``aiida.calculations:core.arithmetic.add``) or a
        class path; other keyword arguments go to :class:`Node`.
        """
        super().__init__(**kwargs)
        self.process_type = process_type

    # -- sealing ----------------------------------------------------------------------------------------------

    @property
    def is_sealed(self) -> bool:
        """Whether the node is sealed: nothing about it may change any more except its extras."""
        return bool(self._attributes.get(self.SEALED_KEY, False))

    def seal(self) -> None:
        """Seal the node (saved at once when it is stored); sealing a sealed node does nothing."""
        if not self.is_sealed:
            self.base.attributes.set(self.SEALED_KEY, True)

    def _check_attributes_mutable(self, keys: Sequence[str]) -> None:
        if self.is_sealed:
            raise ModificationNotAllowedError(
                f'{self!r} is sealed: its attributes are immutable (tried to change {sorted(keys)})'
            )
        if self.is_stored:
            illegal = sorted(set(keys) - self.UPDATABLE_ATTRIBUTES)
            if illegal:
                raise ModificationNotAllowedError(
                    f'{self!r}: the attributes {illegal} of a stored process node are immutable; only its state keys '
                    f'{sorted(self.UPDATABLE_ATTRIBUTES)} may change until it is sealed'
                )

    def _validate_incoming_link(self, source: Node, link_type: LinkType) -> None:
        if self.is_sealed:
            raise ModificationNotAllowedError(f'{self!r} is sealed: no link may be added to it')
        if self.is_stored:
            raise ModificationNotAllowedError(
                f'{self!r} is stored: the inputs of a process node are linked before it is stored'
            )

    def _validate_outgoing_link(self, target: Node, link_type: LinkType) -> None:
        if self.is_sealed:
            raise ModificationNotAllowedError(f'{self!r} is sealed: no link may be added from it')

    # -- calls ------------------------------------------------------------------------------------------------

    @property
    def called(self) -> list[ProcessNode]:
        """The processes this one called (``call_calc`` and ``call_work`` links out)."""
        links = self.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK))
        return [node for node in links.all_nodes() if isinstance(node, ProcessNode)]

    @property
    def called_descendants(self) -> list[ProcessNode]:
        """The processes this one called, each followed by those it called, and so on down."""
        found: list[ProcessNode] = []
        for child in self.called:
            found.append(child)
            found.extend(child.called_descendants)
        return found

    @property
    def caller(self) -> ProcessNode | None:
        """The process that called this one, or ``None``."""
        first = self.base.links.get_incoming(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).first()
        return first.node if first is not None and isinstance(first.node, ProcessNode) else None

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def process_label(self) -> str | None:
        """The name of the process class that ran."""
        value: str | None = self.base.attributes.get(self.PROCESS_LABEL_KEY, None)
        return value

    def set_process_label(self, label: str) -> None:
        """Set the process label."""
        self.base.attributes.set(self.PROCESS_LABEL_KEY, label)

    @property
    def process_state(self) -> str | None:
        """The state: ``created``, ``waiting``, ``running``, ``finished``, ``excepted`` or ``killed``."""
        value: str | None = self.base.attributes.get(self.PROCESS_STATE_KEY, None)
        return value

    def set_process_state(self, state: str | None) -> None:
        """Set the process state (``None`` removes it)."""
        self._set_or_delete(self.PROCESS_STATE_KEY, state)

    @property
    def process_status(self) -> str | None:
        """A free-form status message."""
        value: str | None = self.base.attributes.get(self.PROCESS_STATUS_KEY, None)
        return value

    def set_process_status(self, status: str | None) -> None:
        """Set the status message (``None`` removes it)."""
        self._set_or_delete(self.PROCESS_STATUS_KEY, status)

    @property
    def exit_status(self) -> int | None:
        """The exit status: 0 for success."""
        value: int | None = self.base.attributes.get(self.EXIT_STATUS_KEY, None)
        return value

    def set_exit_status(self, status: int | None) -> None:
        """Set the exit status (``None`` removes it)."""
        if status is not None and not isinstance(status, int):
            raise TypeError(f'an exit status must be an int, got {type(status).__name__}')
        self._set_or_delete(self.EXIT_STATUS_KEY, status)

    @property
    def exit_message(self) -> str | None:
        """The message that goes with the exit status."""
        value: str | None = self.base.attributes.get(self.EXIT_MESSAGE_KEY, None)
        return value

    def set_exit_message(self, message: str | None) -> None:
        """Set the exit message (``None`` removes it)."""
        self._set_or_delete(self.EXIT_MESSAGE_KEY, message)

    @property
    def is_finished_ok(self) -> bool:
        """Whether the process finished with exit status 0."""
        return self.process_state == 'finished' and self.exit_status == 0

    def _set_or_delete(self, key: str, value: Any) -> None:
        if value is None:
            if key in self.base.attributes:
                self.base.attributes.delete(key)
            return
        self.base.attributes.set(key, value)


class CalculationNode(ProcessNode):
    """A calculation: creates data from data (``input_calc`` links in, ``create`` links out)."""

    NODE_TYPE: ClassVar[str] = 'process.calculation.CalculationNode.'

    @property
    def inputs(self) -> NodeLinksManager:
        """Its inputs (``input_calc`` links in) by label: ``calculation.inputs.structure``."""
        return NodeLinksManager(self, LinkType.INPUT_CALC, incoming=True)

    @property
    def outputs(self) -> NodeLinksManager:
        """What it created (``create`` links out) by label: ``calculation.outputs.result``."""
        return NodeLinksManager(self, LinkType.CREATE, incoming=False)


class CalcJobNode(CalculationNode):
    """A calculation run as a job on a computer; its scheduler state keys stay mutable until it is sealed."""

    NODE_TYPE: ClassVar[str] = 'process.calculation.calcjob.CalcJobNode.'

    UPDATABLE_ATTRIBUTES: ClassVar[frozenset[str]] = ProcessNode.UPDATABLE_ATTRIBUTES | {
        'state',
        'imported',
        'remote_workdir',
        'retrieve_list',
        'retrieve_temporary_list',
        'job_id',
        'scheduler_state',
        'scheduler_lastchecktime',
        'last_job_info',
        'detailed_job_info',
    }

    @property
    def job_id(self) -> str | None:
        """The id the scheduler gave the job."""
        value: str | None = self.base.attributes.get('job_id', None)
        return value

    def set_job_id(self, job_id: int | str) -> None:
        """Set the scheduler's job id (kept as a string)."""
        self.base.attributes.set('job_id', str(job_id))

    @property
    def remote_workdir(self) -> str | None:
        """The job's working directory on the computer."""
        value: str | None = self.base.attributes.get('remote_workdir', None)
        return value

    def set_remote_workdir(self, path: str) -> None:
        """Set the job's working directory on the computer."""
        self.base.attributes.set('remote_workdir', path)

    def set_scheduler_state(self, state: str) -> None:
        """Set the scheduler's state of the job."""
        self.base.attributes.set('scheduler_state', state)


class CalcFunctionNode(CalculationNode):
    """A calculation run as a Python function."""

    NODE_TYPE: ClassVar[str] = 'process.calculation.calcfunction.CalcFunctionNode.'


class WorkflowNode(ProcessNode):
    """A workflow: calls calculations and workflows, returns data (``call_*`` and ``return`` links out)."""

    NODE_TYPE: ClassVar[str] = 'process.workflow.WorkflowNode.'

    @property
    def inputs(self) -> NodeLinksManager:
        """Its inputs (``input_work`` links in) by label: ``workflow.inputs.structure``."""
        return NodeLinksManager(self, LinkType.INPUT_WORK, incoming=True)

    @property
    def outputs(self) -> NodeLinksManager:
        """What it returned (``return`` links out) by label: ``workflow.outputs.result``."""
        return NodeLinksManager(self, LinkType.RETURN, incoming=False)


class WorkChainNode(WorkflowNode):
    """A workflow run as a work chain."""

    NODE_TYPE: ClassVar[str] = 'process.workflow.workchain.WorkChainNode.'


class WorkFunctionNode(WorkflowNode):
    """A workflow run as a Python function."""

    NODE_TYPE: ClassVar[str] = 'process.workflow.workfunction.WorkFunctionNode.'
