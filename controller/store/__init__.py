"""The controller's persistence: the append-only event log (see :mod:`.eventlog`)."""

from controller.store.eventlog import (
    EventStore,
    StoredEvent,
    StoredRow,
    StoreError,
    StoreFailedError,
)

__all__ = ["EventStore", "StoreError", "StoreFailedError", "StoredEvent", "StoredRow"]
