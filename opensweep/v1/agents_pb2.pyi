from opensweep.v1 import sweeps_pb2 as _sweeps_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NoRunReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NO_RUN_REASON_UNSPECIFIED: _ClassVar[NoRunReason]
    NO_RUN_REASON_WAIT: _ClassVar[NoRunReason]
    NO_RUN_REASON_SWEEP_DONE: _ClassVar[NoRunReason]
NO_RUN_REASON_UNSPECIFIED: NoRunReason
NO_RUN_REASON_WAIT: NoRunReason
NO_RUN_REASON_SWEEP_DONE: NoRunReason

class RegisterAgentRequest(_message.Message):
    __slots__ = ("sweep_id", "hostname", "pid")
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    hostname: str
    pid: int
    def __init__(self, sweep_id: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class RegisterAgentResponse(_message.Message):
    __slots__ = ("agent_id", "heartbeat_interval_seconds", "heartbeat_timeout_seconds", "sweep")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    heartbeat_interval_seconds: float
    heartbeat_timeout_seconds: float
    sweep: _sweeps_pb2.Sweep
    def __init__(self, agent_id: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[float] = ..., heartbeat_timeout_seconds: _Optional[float] = ..., sweep: _Optional[_Union[_sweeps_pb2.Sweep, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("agent_id", "running_run_ids")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    running_run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., running_run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RequestRun(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("running_run_ids",)
    RUNNING_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    running_run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, running_run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MetricsBatch(_message.Message):
    __slots__ = ("run_id", "records")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    records: _containers.RepeatedCompositeFieldContainer[_sweeps_pb2.MetricRecord]
    def __init__(self, run_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[_sweeps_pb2.MetricRecord, _Mapping]]] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("run_id", "pid")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    pid: int
    def __init__(self, run_id: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class RunEnded(_message.Message):
    __slots__ = ("run_id", "state", "exit_code", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: _sweeps_pb2.RunState
    exit_code: int
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[_Union[_sweeps_pb2.RunState, str]] = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("hello", "request_run", "heartbeat", "metrics", "run_started", "run_ended", "goodbye")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RUN_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RUN_STARTED_FIELD_NUMBER: _ClassVar[int]
    RUN_ENDED_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    request_run: RequestRun
    heartbeat: Heartbeat
    metrics: MetricsBatch
    run_started: RunStarted
    run_ended: RunEnded
    goodbye: Goodbye
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., request_run: _Optional[_Union[RequestRun, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., metrics: _Optional[_Union[MetricsBatch, _Mapping]] = ..., run_started: _Optional[_Union[RunStarted, _Mapping]] = ..., run_ended: _Optional[_Union[RunEnded, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("heartbeat_interval_seconds",)
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_seconds: float
    def __init__(self, heartbeat_interval_seconds: _Optional[float] = ...) -> None: ...

class RunAssignment(_message.Message):
    __slots__ = ("run_id", "sweep_id", "config_json", "program", "command")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    sweep_id: str
    config_json: str
    program: str
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_id: _Optional[str] = ..., sweep_id: _Optional[str] = ..., config_json: _Optional[str] = ..., program: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class NoRun(_message.Message):
    __slots__ = ("reason", "retry_after_seconds", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: NoRunReason
    retry_after_seconds: float
    detail: str
    def __init__(self, reason: _Optional[_Union[NoRunReason, str]] = ..., retry_after_seconds: _Optional[float] = ..., detail: _Optional[str] = ...) -> None: ...

class StopRun(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("run_id", "metrics_through_seq", "run_ended")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_THROUGH_SEQ_FIELD_NUMBER: _ClassVar[int]
    RUN_ENDED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    metrics_through_seq: int
    run_ended: bool
    def __init__(self, run_id: _Optional[str] = ..., metrics_through_seq: _Optional[int] = ..., run_ended: _Optional[bool] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("welcome", "run", "no_run", "stop_run", "ack")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    NO_RUN_FIELD_NUMBER: _ClassVar[int]
    STOP_RUN_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    run: RunAssignment
    no_run: NoRun
    stop_run: StopRun
    ack: Ack
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., run: _Optional[_Union[RunAssignment, _Mapping]] = ..., no_run: _Optional[_Union[NoRun, _Mapping]] = ..., stop_run: _Optional[_Union[StopRun, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ...) -> None: ...
