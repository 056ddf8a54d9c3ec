"""`GET /events?after=<cursor>&limit=`: the outbox as a readable feed, oldest first. A consumer keeps
`next_cursor` and asks again; one that missed deliveries resyncs from its last cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from api import examples as ex
from api.deps import Runtime, current_caller, runtime
from api.errors import ERRORS
from api.fields import MAX_BIGINT, CleanText
from foundation.scopes import Caller
from operations.events import MAX_PAGE, events_after

router = APIRouter(tags=["events"], responses=ERRORS)


class EventOut(BaseModel):
    id: int
    event_id: str
    type: str
    stream: str
    seq: int
    payload: dict[str, Any]
    created_at: datetime | None


class EventPageOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=ex.examples(ex.EVENTS))
    events: list[EventOut]
    next_cursor: int
    has_more: bool


@router.get("/events", response_model=EventPageOut)
def read_events(
    after: int = Query(default=0, ge=0, le=MAX_BIGINT, description="Cursor: the id of the last event already seen (0 = from the start)"),
    limit: int = Query(default=100, ge=1, le=MAX_PAGE),
    stream: CleanText | None = Query(default=None, min_length=1, max_length=200, description="Only one stream, e.g. subscription:<id>"),
    rt: Runtime = Depends(runtime),
    caller: Caller = Depends(current_caller),
) -> EventPageOut:
    """Only the events of the locations the token reaches (the streams of their subscriptions and clients)."""
    page = events_after(rt.engine, after, limit, stream=stream, reach=caller.reach)
    return EventPageOut(events=[EventOut(**event) for event in page.events], next_cursor=page.next_cursor, has_more=page.has_more)
