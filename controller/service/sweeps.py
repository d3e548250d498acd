"""SweepService: create and steer sweeps, read runs, metrics and the audit log.

Reads answer from the folded State, after waiting until everything folded is durable, and say
at which sequence number they looked (``log_seq``); writes reply once their events are durable.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import grpc.aio

from controller.service.controller import Controller, InvalidRequestError
from controller.service.convert import metric_record_views, run_view, sweep_view
from controller.service.errors import rpc
from opensweep.v1 import sweeps_pb2, sweeps_pb2_grpc

log = logging.getLogger("opensweep.sweeps")

FOLLOW_POLL_SECONDS = 1.0
"""How often a following ReadEvents stream checks for shutdown while the log is quiet."""


MAX_ID_CHARS = 128
MAX_METRICS_PER_REPLY = 20_000
"""GetRunMetrics pages: a client asks again from the last seq + 1 until it gets nothing."""


def _required(value: str, name: str) -> str:
    if not value:
        raise InvalidRequestError(f"{name} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidRequestError(f"{name} is {len(value)} characters long; ids are at most "
                                  f"{MAX_ID_CHARS}")
    return value


class SweepServicer(sweeps_pb2_grpc.SweepServiceServicer):
    def __init__(self, controller: Controller, shutdown: asyncio.Event) -> None:
        self.controller = controller
        self.shutdown = shutdown

    async def _sweep_reply(self, sweep_id: str) -> sweeps_pb2.Sweep:
        state = self.controller.state
        view = sweep_view(state.sweep(sweep_id), state.seq)
        await self.controller.store.wait_durable(view.log_seq)
        return view

    @rpc
    async def CreateSweep(self, request: sweeps_pb2.CreateSweepRequest,
                          context: grpc.aio.ServicerContext) -> sweeps_pb2.CreateSweepResponse:
        sweep = await self.controller.create_sweep(request.config, request.seed)
        return sweeps_pb2.CreateSweepResponse(sweep=await self._sweep_reply(sweep.id))

    @rpc
    async def GetSweep(self, request: sweeps_pb2.GetSweepRequest,
                       context: grpc.aio.ServicerContext) -> sweeps_pb2.Sweep:
        return await self._sweep_reply(_required(request.sweep_id, "sweep_id"))

    @rpc
    async def ListSweeps(self, request: sweeps_pb2.ListSweepsRequest,
                         context: grpc.aio.ServicerContext) -> sweeps_pb2.ListSweepsResponse:
        state = self.controller.state
        seq = state.seq
        sweeps = sorted(state.sweeps.values(), key=lambda s: (s.created_at, s.id))
        reply = sweeps_pb2.ListSweepsResponse(sweeps=[sweep_view(s, seq) for s in sweeps],
                                              log_seq=seq)
        await self.controller.store.wait_durable(seq)
        return reply

    @rpc
    async def PauseSweep(self, request: sweeps_pb2.SweepCommandRequest,
                         context: grpc.aio.ServicerContext) -> sweeps_pb2.Sweep:
        sweep = await self.controller.pause(_required(request.sweep_id, "sweep_id"))
        return await self._sweep_reply(sweep.id)

    @rpc
    async def ResumeSweep(self, request: sweeps_pb2.SweepCommandRequest,
                          context: grpc.aio.ServicerContext) -> sweeps_pb2.Sweep:
        sweep = await self.controller.resume(_required(request.sweep_id, "sweep_id"))
        return await self._sweep_reply(sweep.id)

    @rpc
    async def StopSweep(self, request: sweeps_pb2.SweepCommandRequest,
                        context: grpc.aio.ServicerContext) -> sweeps_pb2.Sweep:
        sweep = await self.controller.stop(_required(request.sweep_id, "sweep_id"))
        return await self._sweep_reply(sweep.id)

    @rpc
    async def CancelSweep(self, request: sweeps_pb2.SweepCommandRequest,
                          context: grpc.aio.ServicerContext) -> sweeps_pb2.Sweep:
        sweep = await self.controller.cancel(_required(request.sweep_id, "sweep_id"))
        return await self._sweep_reply(sweep.id)

    @rpc
    async def ListRuns(self, request: sweeps_pb2.ListRunsRequest,
                       context: grpc.aio.ServicerContext) -> sweeps_pb2.ListRunsResponse:
        state = self.controller.state
        sweep = state.sweep(_required(request.sweep_id, "sweep_id"))
        seq = state.seq
        reply = sweeps_pb2.ListRunsResponse(
            runs=[run_view(state.runs[r], seq) for r in sweep.run_ids], log_seq=seq)
        await self.controller.store.wait_durable(seq)
        return reply

    @rpc
    async def GetRun(self, request: sweeps_pb2.GetRunRequest,
                     context: grpc.aio.ServicerContext) -> sweeps_pb2.Run:
        state = self.controller.state
        view = run_view(state.run(_required(request.run_id, "run_id")), state.seq)
        await self.controller.store.wait_durable(view.log_seq)
        return view

    @rpc
    async def GetRunMetrics(self, request: sweeps_pb2.GetRunMetricsRequest,
                            context: grpc.aio.ServicerContext
                            ) -> sweeps_pb2.GetRunMetricsResponse:
        run_id = _required(request.run_id, "run_id")
        if request.from_seq < 0:
            raise InvalidRequestError(f"from_seq must be >= 0 (got {request.from_seq})")
        records = await self.controller.run_metrics(run_id, request.from_seq,
                                                    MAX_METRICS_PER_REPLY)
        return sweeps_pb2.GetRunMetricsResponse(records=metric_record_views(records))

    @rpc
    async def ReadEvents(self, request: sweeps_pb2.ReadEventsRequest,
                         context: grpc.aio.ServicerContext) -> None:
        store = self.controller.store
        if request.after_seq < 0:
            raise InvalidRequestError(f"after_seq must be >= 0 (got {request.after_seq})")
        if request.sweep_id:
            # NOT_FOUND for an unknown sweep
            self.controller.state.sweep(_required(request.sweep_id, "sweep_id"))
        after = request.after_seq
        while True:
            rows = await store.read_rows(after, request.sweep_id or None)
            for row in rows:
                await context.write(sweeps_pb2.Event(
                    seq=row.seq, type=row.type, version=row.version, time=row.time,
                    sweep_id=row.sweep_id, data_json=row.data))
                after = row.seq
            if rows:
                continue
            if not request.follow or self.shutdown.is_set():
                return
            # Rows of other sweeps may lie between; jump to the durable end for the wait.
            waiting_from = max(after, store.durable_seq) if request.sweep_id else after
            await store.wait_for_more(waiting_from, FOLLOW_POLL_SECONDS)
