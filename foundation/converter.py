"""The one data converter of the engine: Temporal's pydantic converter, with its type adapters shared.

Why not `temporalio.contrib.pydantic.pydantic_data_converter` as it is: the worker makes a new
payload converter for every workflow run (in the sandbox), and each one starts with an empty cache of
pydantic `TypeAdapter`s, so every new run rebuilt the schema of `SubscriptionInput` and of each
activity result it decoded (about a tenth of a billing worker's CPU in `billing bench`). Here every
payload converter uses one JSON converter, whose cache lives as long as the process. The wire format
is exactly pydantic's, so a client or replayer using Temporal's own pydantic converter reads the
same payloads.

Sharing is safe: the contracts crossing the boundary (`foundation.contracts`) are passed through the
sandbox, so a type hint is the same object in every run; `functools.lru_cache` and pydantic's
validators are thread-safe.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import CompositePayloadConverter, DataConverter, DefaultPayloadConverter, JSONPlainPayloadConverter

_SHARED_JSON = PydanticJSONPlainPayloadConverter(max_cached_type_adapters=1024)


class BillingPayloadConverter(CompositePayloadConverter):
    """Temporal's default encodings, with JSON done by pydantic through the shared converter."""

    def __init__(self) -> None:
        super().__init__(
            *(_SHARED_JSON if isinstance(c, JSONPlainPayloadConverter) else c for c in DefaultPayloadConverter.default_encoding_payload_converters)
        )


data_converter = DataConverter(payload_converter_class=BillingPayloadConverter)
