"""What the OpenAPI document adds to what Litestar derives from the handlers' types.

A handler that returns a struct gets its 200 answer's schema from the return type; Litestar
gives that answer no examples, so ``DocumentedOperation`` attaches the route's from
``examples.SUCCESS_EXAMPLES`` (keyed by operation id). Other answers (304, 4xx, 5xx, a 202)
are declared on the route with ``ResponseSpec``. Money is an exact ``Decimal`` that the service
writes as a JSON number (``replies.render``): ``DecimalAsNumber`` documents it so (Litestar's
default is a string).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from litestar.openapi.spec import OpenAPIResponse, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins import OpenAPISchemaPlugin

from pricing_service.api.examples import SUCCESS_EXAMPLES

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


class DecimalAsNumber(OpenAPISchemaPlugin):
    """A ``Decimal`` field is a JSON number on the wire (exact: parse it as a decimal)."""

    @staticmethod
    def is_plugin_supported_type(value: object) -> bool:
        return value is Decimal

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        return Schema(type=OpenAPIType.NUMBER)


@dataclass
class DocumentedOperation(Operation):
    """An operation whose derived success answer carries the route's examples."""

    def __post_init__(self) -> None:
        examples = SUCCESS_EXAMPLES.get(self.operation_id or "")
        success = (self.responses or {}).get("200")
        if not examples or not isinstance(success, OpenAPIResponse):
            return
        name = (self.operation_id or "").lower()
        for media in (success.content or {}).values():
            if media.examples is not None:
                continue  # declared on the route (ResponseSpec) already
            media.examples = {
                example.id or f"{name}-example-{index}": example
                for index, example in enumerate(examples, 1)
            }


@dataclass
class OptionalBodyOperation(DocumentedOperation):
    """An operation whose request body may be left out (Litestar marks every body required)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False
