"""The review app: ``railpm review`` serves the pages and receives engineers' feedback.

Pages are rendered on the server from the same builders and templates as the static report. Feedback comes
in two ways, both validated by one pydantic model and stored through ``railpm.feedback`` (append-only):

- ``POST /feedback``: the HTML forms on a vehicle page (redirects back to the page, or shows the page again
  with the error and a 4xx status);
- ``POST /api/feedback``: JSON, answering 201 with the stored entry or 4xx with a message per field.

Bound to loopback by default and without accounts: whoever can reach the port can record feedback, so the
app refuses cross-site form posts (a foreign ``Origin``), oversized bodies and anything that is not plain
text; Jinja escapes everything it prints.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Literal, Optional
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.review import data, pages
from railpm.review.data import LayerMissing

MAX_BODY_BYTES = 8 * 1024
"""A feedback entry is a few short fields; anything bigger is refused before it is read."""
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&#?\w+;|javascript:", re.IGNORECASE)


class FeedbackIn(BaseModel):
    """One engineer's entry on a prediction: confirm / dismiss (with a reason), or an inspection finding.

    This checks what the web adds (types, sizes, plain text); the domain rules (a dismissal needs a reason,
    a finding its day, the prediction must exist) are ``railpm.feedback``'s, applied when it is stored.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal[contracts.FEEDBACK_KINDS]  # type: ignore[valid-type]
    vehicle_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    component: Literal[contracts.COMPONENTS]  # type: ignore[valid-type]
    recorded_by: str = Field(min_length=1, max_length=80)
    scored_day: Optional[date] = None
    model_version: Optional[str] = Field(None, max_length=80, pattern=r"^[A-Za-z0-9._:/-]*$")
    finding: Optional[Literal[contracts.INSPECTION_FINDINGS]] = None  # type: ignore[valid-type]
    inspected_on: Optional[date] = None
    reason: Optional[str] = Field(None, max_length=500)

    @field_validator("*", mode="before")
    @classmethod
    def blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("recorded_by", "reason")
    @classmethod
    def plain_text(cls, value: str | None) -> str | None:
        if value is not None and MARKUP.search(value):
            raise ValueError("must be plain text (no HTML markup, entities or script)")
        if value is not None and any(ord(ch) < 32 and ch not in "\t" for ch in value):
            raise ValueError("must be a single line of text")
        return value



def validation_messages(exc: ValidationError) -> list[str]:
    """``field: message`` lines a person can act on (the rejected value itself is never echoed)."""
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__")
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        out.append(f"{where}: {message}" if where else message)
    return out


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, by header or while streaming."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _too_large(send, self.limit)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge()
            return message

        try:
            return await self.app(scope, limited, send)
        except _BodyTooLarge:
            return await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": [f"request body larger than {limit} bytes"]}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings) -> FastAPI:
    """The review app over ``settings``' data layers."""
    env = pages.environment()
    site = pages.Site(static=False)
    # No Swagger UI: it loads scripts from a CDN, and the app must work without any external URL.
    app = FastAPI(title="railpm review", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    def review_data() -> pages.ReviewData:
        return pages.ReviewData(settings)

    def html(name: str, page: pages.Page, status: int = 200, **extra) -> HTMLResponse:
        return HTMLResponse(pages.render(env, page, site, current=name, **extra), status_code=status)

    def error_page(status: int, title: str, message: str) -> HTMLResponse:
        return html("", pages.Page("error.html", title, {"message": message}), status)

    for spec in pages.FLEET_PAGES:
        def endpoint(name=spec.name, build=spec.build) -> HTMLResponse:
            return html(name, build(review_data()))

        app.add_api_route(spec.route, endpoint, methods=["GET"], response_class=HTMLResponse, name=spec.name)

    @app.get("/vehicles/{vehicle_number}", response_class=HTMLResponse, name="vehicle")
    def vehicle(vehicle_number: str, recorded: str | None = None) -> HTMLResponse:
        try:
            page = pages.vehicle_page(review_data(), vehicle_number)
        except pages.VehicleNotFound as exc:
            return error_page(404, "Vehicle not found", str(exc))
        flash = f"Feedback recorded ({recorded})." if recorded and re.fullmatch(r"[A-Za-z0-9-]{1,64}", recorded) else None
        return html("vehicles", page, flash=flash, findings=contracts.INSPECTION_FINDINGS)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.headers.get("host")

    async def store(entry: FeedbackIn) -> dict:
        """Storing reads the registry and predictions and writes a file: keep it off the event loop."""
        return await run_in_threadpool(store_feedback, settings, entry)

    @app.post("/api/feedback", status_code=201)
    async def api_feedback(request: Request) -> JSONResponse:
        if not same_origin(request):
            return JSONResponse({"detail": ["cross-site request refused"]}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"detail": ["send the entry as application/json"]}, status_code=415)
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"detail": [f"malformed JSON: {exc}"]}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"detail": ["the body must be a JSON object"]}, status_code=422)
        try:
            entry = FeedbackIn.model_validate(payload)
            stored = await store(entry)
        except ValidationError as exc:
            return JSONResponse({"detail": validation_messages(exc)}, status_code=422)
        except RailpmError as exc:
            return JSONResponse({"detail": [str(exc)]}, status_code=422)
        return JSONResponse(_jsonable(stored), status_code=201)

    @app.post("/feedback")
    async def form_feedback(request: Request) -> Response:
        if not same_origin(request):
            return error_page(403, "Refused", "cross-site form post refused")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return error_page(415, "Unsupported form", "the feedback form is sent as application/x-www-form-urlencoded")
        form = await request.form(max_files=0, max_fields=20)
        values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        if len(values) != len(form.multi_items()) or len(set(form.keys())) != len(form.multi_items()):
            return error_page(400, "Malformed form", "each field once, as text")
        vehicle_number = values.get("vehicle_number", "")
        try:
            entry = FeedbackIn.model_validate(values)
            stored = await store(entry)
        except (ValidationError, RailpmError) as exc:
            message = "; ".join(validation_messages(exc)) if isinstance(exc, ValidationError) else str(exc)
            try:
                page = await run_in_threadpool(pages.vehicle_page, review_data(), vehicle_number)
            except (pages.VehicleNotFound, LayerMissing, ValueError):
                return error_page(422, "Feedback not recorded", message)
            return html("vehicles", page, status=422, error=f"Feedback not recorded: {message}",
                        findings=contracts.INSPECTION_FINDINGS)
        target = site.vehicle(entry.vehicle_number)
        return RedirectResponse(f"{target}?recorded={quote(str(stored.get('feedback_id', '')))}#feedback", status_code=303)

    @app.exception_handler(404)
    async def not_found(request: Request, exc) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": ["not found"]}, status_code=404)
        return error_page(404, "Not found", f"no page at {request.url.path}")

    return app


def store_feedback(settings: Settings, entry: FeedbackIn) -> dict:
    """Append the entry through ``railpm.feedback`` (which checks it against the registry and the predictions)."""
    import pyarrow.parquet as pq

    from railpm import feedback

    try:
        vehicles = data.read_vehicles(settings.lake_dir)
    except LayerMissing as exc:
        raise BadInputError(f"feedback cannot be checked: {exc}", rule="vehicle_registry") from exc
    predictions = None
    if entry.kind in contracts.FEEDBACK_DECISIONS and entry.scored_day is not None:
        try:
            predictions = data.read_predictions_on(settings.predictions_dir, entry.vehicle_number, entry.scored_day)
        except LayerMissing:
            predictions = None
    path = feedback.record_feedback(
        feedback.Feedback(**entry.model_dump()), feedback.feedback_dir_of(settings.lake_dir), vehicles, predictions=predictions
    )
    return pq.read_table(path).to_pylist()[0]


def _jsonable(entry: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in entry.items()}
