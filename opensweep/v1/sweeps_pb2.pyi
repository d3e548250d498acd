from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SweepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SWEEP_STATE_UNSPECIFIED: _ClassVar[SweepState]
    SWEEP_STATE_RUNNING: _ClassVar[SweepState]
    SWEEP_STATE_PAUSED: _ClassVar[SweepState]
    SWEEP_STATE_FINISHED: _ClassVar[SweepState]
    SWEEP_STATE_STOPPED: _ClassVar[SweepState]
    SWEEP_STATE_CANCELLED: _ClassVar[SweepState]

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_FINISHED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CRASHED: _ClassVar[RunState]
    RUN_STATE_STOPPED: _ClassVar[RunState]
SWEEP_STATE_UNSPECIFIED: SweepState
SWEEP_STATE_RUNNING: SweepState
SWEEP_STATE_PAUSED: SweepState
SWEEP_STATE_FINISHED: SweepState
SWEEP_STATE_STOPPED: SweepState
SWEEP_STATE_CANCELLED: SweepState
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_FINISHED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CRASHED: RunState
RUN_STATE_STOPPED: RunState

class RunCounts(_message.Message):
    __slots__ = ("running", "finished", "failed", "crashed", "stopped")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CRASHED_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    running: int
    finished: int
    failed: int
    crashed: int
    stopped: int
    def __init__(self, running: _Optional[int] = ..., finished: _Optional[int] = ..., failed: _Optional[int] = ..., crashed: _Optional[int] = ..., stopped: _Optional[int] = ...) -> None: ...

class Sweep(_message.Message):
    __slots__ = ("id", "state", "method", "name", "config_json", "expected_run_count", "run_counts", "metric_name", "metric_goal", "best_run_id", "best_metric", "created_at", "state_reason", "warnings", "log_seq", "seed")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_GOAL_FIELD_NUMBER: _ClassVar[int]
    BEST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_METRIC_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: SweepState
    method: str
    name: str
    config_json: str
    expected_run_count: int
    run_counts: RunCounts
    metric_name: str
    metric_goal: str
    best_run_id: str
    best_metric: float
    created_at: float
    state_reason: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    log_seq: int
    seed: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[SweepState, str]] = ..., method: _Optional[str] = ..., name: _Optional[str] = ..., config_json: _Optional[str] = ..., expected_run_count: _Optional[int] = ..., run_counts: _Optional[_Union[RunCounts, _Mapping]] = ..., metric_name: _Optional[str] = ..., metric_goal: _Optional[str] = ..., best_run_id: _Optional[str] = ..., best_metric: _Optional[float] = ..., created_at: _Optional[float] = ..., state_reason: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., log_seq: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class MetricRecord(_message.Message):
    __slots__ = ("seq", "step", "values", "time")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    seq: int
    step: int
    values: _containers.ScalarMap[str, float]
    time: float
    def __init__(self, seq: _Optional[int] = ..., step: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ..., time: _Optional[float] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "sweep_id", "state", "config_json", "agent_id", "grid_index", "summary", "best_metric", "metric_count", "reason", "exit_code", "created_at", "ended_at", "log_seq", "suggestion_seed", "stop_reason")
    class SummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_INDEX_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    BEST_METRIC_FIELD_NUMBER: _ClassVar[int]
    METRIC_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_SEED_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    sweep_id: str
    state: RunState
    config_json: str
    agent_id: str
    grid_index: int
    summary: _containers.ScalarMap[str, float]
    best_metric: float
    metric_count: int
    reason: str
    exit_code: int
    created_at: float
    ended_at: float
    log_seq: int
    suggestion_seed: int
    stop_reason: str
    def __init__(self, id: _Optional[str] = ..., sweep_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., config_json: _Optional[str] = ..., agent_id: _Optional[str] = ..., grid_index: _Optional[int] = ..., summary: _Optional[_Mapping[str, float]] = ..., best_metric: _Optional[float] = ..., metric_count: _Optional[int] = ..., reason: _Optional[str] = ..., exit_code: _Optional[int] = ..., created_at: _Optional[float] = ..., ended_at: _Optional[float] = ..., log_seq: _Optional[int] = ..., suggestion_seed: _Optional[int] = ..., stop_reason: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("seq", "type", "version", "time", "sweep_id", "data_json")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    seq: int
    type: str
    version: int
    time: float
    sweep_id: str
    data_json: str
    def __init__(self, seq: _Optional[int] = ..., type: _Optional[str] = ..., version: _Optional[int] = ..., time: _Optional[float] = ..., sweep_id: _Optional[str] = ..., data_json: _Optional[str] = ...) -> None: ...

class CreateSweepRequest(_message.Message):
    __slots__ = ("config", "seed")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    config: str
    seed: int
    def __init__(self, config: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class CreateSweepResponse(_message.Message):
    __slots__ = ("sweep",)
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    sweep: Sweep
    def __init__(self, sweep: _Optional[_Union[Sweep, _Mapping]] = ...) -> None: ...

class GetSweepRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class ListSweepsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSweepsResponse(_message.Message):
    __slots__ = ("sweeps", "log_seq")
    SWEEPS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    sweeps: _containers.RepeatedCompositeFieldContainer[Sweep]
    log_seq: int
    def __init__(self, sweeps: _Optional[_Iterable[_Union[Sweep, _Mapping]]] = ..., log_seq: _Optional[int] = ...) -> None: ...

class SweepCommandRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("sweep_id",)
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    sweep_id: str
    def __init__(self, sweep_id: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "log_seq")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    log_seq: int
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., log_seq: _Optional[int] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunMetricsRequest(_message.Message):
    __slots__ = ("run_id", "from_seq")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    from_seq: int
    def __init__(self, run_id: _Optional[str] = ..., from_seq: _Optional[int] = ...) -> None: ...

class GetRunMetricsResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[MetricRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[MetricRecord, _Mapping]]] = ...) -> None: ...

class ReadEventsRequest(_message.Message):
    __slots__ = ("after_seq", "sweep_id", "follow")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    SWEEP_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    sweep_id: str
    follow: bool
    def __init__(self, after_seq: _Optional[int] = ..., sweep_id: _Optional[str] = ..., follow: _Optional[bool] = ...) -> None: ...
