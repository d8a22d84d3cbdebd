"""The review app: ``railpm review`` serves the pages and receives engineers' feedback.

Pages are rendered on the server from the same builders and templates as the static report. Feedback comes
in two ways, both validated by one pydantic model and stored through ``railpm.feedback`` (append-only):

- ``POST /feedback``: the HTML forms on a vehicle page (redirects back to the page, or shows the page again
  with the error and a 4xx status);
- ``POST /api/feedback``: JSON, answering 201 with the stored entry or 4xx with a message per field.

Accounts (``railpm.review.accounts``): once one exists, every page asks for a sign-in, and every entry is
signed by the signed-in account (nobody types a name). Without accounts the pages are readable on loopback
only and nothing can be recorded. The session is a signed, HttpOnly, SameSite=strict cookie (Starlette's
``SessionMiddleware``); every form carries the session's CSRF token and a post without it is refused. The
app also refuses cross-site posts (a foreign ``Origin``), oversized bodies and anything that is not plain
text; Jinja escapes everything it prints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading

import pandas as pd
from datetime import date, datetime, timezone
from typing import Literal, Optional
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from railpm import contracts
from railpm.config import Settings
from railpm.errors import BadInputError, RailpmError
from railpm.review import accounts, data, pages
from railpm.review.data import LayerMissing

LOG = logging.getLogger(__name__)
PUBLIC_PATHS = ("/login", "/healthz")
LOOPBACK = ("127.0.0.1", "localhost", "::1")

MAX_BODY_BYTES = 8 * 1024
"""A feedback entry is a few short fields; anything bigger is refused before it is read."""
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?]|&#?\w+;|javascript:", re.IGNORECASE)


class _PlainForm(BaseModel):
    """What every posted entry shares: no unknown field, blanks are missing, free text is plain single-line text."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("reason", check_fields=False)
    @classmethod
    def plain_text(cls, value: str | None) -> str | None:
        if value is not None and MARKUP.search(value):
            raise ValueError("must be plain text (no HTML markup, entities or script)")
        if value is not None and any(ord(ch) < 32 and ch not in "\t" for ch in value):
            raise ValueError("must be a single line of text")
        return value


class FeedbackIn(_PlainForm):
    """One engineer's entry on a prediction: confirm / dismiss (with a reason), or an inspection finding.

    This checks what the web adds (types, sizes, plain text); the domain rules (a dismissal needs a reason,
    a finding its day, the prediction must exist) are ``railpm.feedback``'s, applied when it is stored.
    """

    kind: Literal[(*contracts.FEEDBACK_DECISIONS, "finding")]  # type: ignore[valid-type]
    vehicle_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    component: Literal[contracts.COMPONENTS]  # type: ignore[valid-type]
    scored_day: Optional[date] = None
    model_version: Optional[str] = Field(None, max_length=80, pattern=r"^[A-Za-z0-9._:/-]*$")
    finding: Optional[Literal[contracts.INSPECTION_FINDINGS]] = None  # type: ignore[valid-type]
    inspected_on: Optional[date] = None
    reason: Optional[str] = Field(None, max_length=500)


class AlertStepIn(_PlainForm):
    """One step of an alert's life from the vehicle page: acknowledge, plan (into its inspection), or close."""

    step: Literal["acknowledge", "plan", "close"]
    vehicle_number: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    component: Literal[contracts.COMPONENTS]  # type: ignore[valid-type]
    scored_day: date
    model_version: str = Field(max_length=80, pattern=r"^[A-Za-z0-9._:/-]+$")
    closing: Optional[Literal[(*contracts.INSPECTION_FINDINGS, "dismiss")]] = None  # type: ignore[valid-type]
    inspected_on: Optional[date] = None
    planned_day: Optional[date] = None
    reason: Optional[str] = Field(None, max_length=500)

    def entry(self, plan: "pd.DataFrame | None") -> dict:
        """The feedback entry this step records (closing by a finding or a dismissal: the existing path into training)."""
        base = {"vehicle_number": self.vehicle_number, "component": self.component, "scored_day": self.scored_day,
                "model_version": self.model_version, "reason": self.reason}
        if self.step == "acknowledge":
            return base | {"kind": "acknowledge"}
        if self.step == "plan":
            planned_day, depot = self.planned_day, None
            if plan is not None and len(plan):
                mine = plan[(plan["vehicle_number"] == self.vehicle_number) & (plan["component"] == self.component)
                            & plan["kind"].isin(["inspection", "ride_along"])].sort_values("day")
                if len(mine):
                    planned_day, depot = pd.Timestamp(mine["day"].iloc[0]).date(), str(mine["depot"].iloc[0])
            if planned_day is None:
                raise ValueError(f"planned day: {self.vehicle_number} {self.component.replace('_', ' ')} has no inspection "
                                 "in the latest plan; give the day it will be inspected")
            return base | {"kind": "plan", "planned_day": planned_day, "planned_depot": depot}
        if self.closing is None:
            raise ValueError("how it closed: choose confirmed and replaced, found nothing, or dismissed")
        if self.closing == "dismiss":
            return base | {"kind": "dismiss"}
        base.pop("model_version")
        return base | {"kind": "finding", "finding": self.closing, "inspected_on": self.inspected_on}


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
        except BaseExceptionGroup as group:  # raised through a middleware's task group
            if group.subgroup(_BodyTooLarge) is None:
                raise
            return await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = json.dumps({"detail": [f"request body larger than {limit} bytes"]}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


FIELD_WORDS = {
    "kind": "decision", "vehicle_number": "vehicle", "component": "component", "scored_day": "prediction day",
    "model_version": "model version", "finding": "finding", "inspected_on": "inspection day", "reason": "reason",
    "step": "step", "planned_day": "planned day", "closing": "how it closed", "version": "model version",
}


def in_words(exc: Exception) -> str:
    """What to fix, for a person at a form: the field's name in words and the problem, without codes or repr."""
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            field = next((str(p) for p in error.get("loc", ()) if p != "__root__"), "")
            message = error.get("msg", "invalid").removeprefix("Value error, ")
            if error.get("type") == "extra_forbidden":
                message = "is not a field of this form"
            elif error.get("type") in ("literal_error", "enum"):
                message = "choose one of the offered values"
            parts.append(f"{FIELD_WORDS.get(field, field.replace('_', ' '))}: {message}" if field else message)
        return "; ".join(parts)
    if isinstance(exc, ValueError) and not isinstance(exc, RailpmError):
        return str(exc)
    field, problem = getattr(exc, "field", None), getattr(exc, "problem", None)
    if field and problem:
        return f"{FIELD_WORDS.get(field, field.replace('_', ' '))}: {problem}"
    return str(exc)


WARM_VEHICLES = 200
"""Vehicle pages warmed after the fleet pages: those with an alert on the latest day, riskiest first."""


def warm_pages(settings: Settings, stop: threading.Event | None = None, vehicles: int = WARM_VEHICLES) -> int:
    """Build every fleet page, then the pages of the alerted vehicles, filling the process's caches (query
    results, figures) for the data as it is now; the caches key on the data files, so a pass over unchanged
    data is cheap. Returns the pages built."""
    env, site, built = pages.environment(), pages.Site(static=False), 0
    builds = [(spec.route, spec.build) for spec in pages.FLEET_PAGES]
    try:
        alerts = pages.ReviewData(settings).predictions().frame
        alerted = alerts.loc[alerts["alert"].astype(bool), "vehicle_number"].drop_duplicates().head(vehicles)
        builds += [(f"/vehicles/{v}", lambda review, v=v: pages.vehicle_page(review, v)) for v in alerted]
    except LayerMissing:
        pass
    for route, build in builds:
        if stop is not None and stop.is_set():
            break
        try:
            pages.render(env, build(pages.ReviewData(settings)), site)
            built += 1
        except Exception as exc:  # a page that fails here fails for its reader too, who sees why
            LOG.warning("warming %s failed: %s", route, exc)
    return built


def create_app(settings: Settings, *, host: str = "127.0.0.1", warm: bool = False) -> FastAPI:
    """The review app over ``settings``' data layers, as served on ``host``.

    Refuses to be built for an address other than loopback while no account exists: whoever reached it could
    read the fleet's data and, before accounts, record feedback.
    """
    accounts_path = accounts.accounts_file(settings)
    if host not in LOOPBACK and not any(not a.disabled for a in accounts.read_accounts(accounts_path).values()):
        raise RailpmError(f"the review app listens on {host} only with accounts: add one with `railpm users add` "
                          f"(accounts file {accounts_path}), or listen on 127.0.0.1")
    secure = settings.review.secure_cookies if settings.review.secure_cookies is not None else host not in LOOPBACK
    env = pages.environment()
    site = pages.Site(static=False)
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        """With ``warm``: every fleet page built in the background at start, then every ``warm_every_s``."""
        if warm and settings.review.warm_every_s > 0:
            def loop():
                with contextlib.suppress(OSError, AttributeError):  # Linux: lower this thread's priority only
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
                while not stop.is_set():
                    warm_pages(settings, stop)
                    stop.wait(settings.review.warm_every_s)

            threading.Thread(target=loop, name="warm-review-pages", daemon=True).start()
        yield
        stop.set()

    # No Swagger UI: it loads scripts from a CDN, and the app must work without any external URL.
    app = FastAPI(title="railpm review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    def has_accounts() -> bool:
        return bool(accounts.read_accounts(accounts_path))

    @app.middleware("http")
    async def sign_in_gate(request: Request, call_next):
        """Every page but the sign-in asks for an account once accounts exist; the account rides on the request."""
        account = accounts.current_account(accounts_path, request.session.get("user"))
        if account is None and request.session.get("user"):
            request.session.clear()  # disabled or removed since: signed out at once
        request.state.account = account
        if account is None and request.url.path not in PUBLIC_PATHS and has_accounts():
            if request.method == "GET" and not request.url.path.startswith("/api/"):
                return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            return JSONResponse({"detail": ["sign in first"]}, status_code=401)
        return await call_next(request)

    # Added last, so it runs first: the gate above reads the session it decodes.
    app.add_middleware(SessionMiddleware, secret_key=accounts.session_secret(settings), session_cookie="railpm_review",
                       max_age=int(settings.review.session_hours * 3600), same_site="strict", https_only=secure)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    def review_data(request: Request | None = None) -> pages.ReviewData:
        return pages.ReviewData(settings, params=dict(request.query_params) if request is not None else {})

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return token

    def html(request: Request, name: str, page: pages.Page, status: int = 200, **extra) -> HTMLResponse:
        account = request.state.account
        return HTMLResponse(pages.render(env, page, site, current=name, account=account, csrf_token=csrf_token(request),
                                         may=lambda right: account is not None and accounts.may(account.role, right),
                                         role_names=accounts.ROLE_NAMES, **extra), status_code=status)

    def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return html(request, "", pages.Page("error.html", title, {"message": message}), status)

    for spec in pages.FLEET_PAGES:
        def endpoint(request: Request, name=spec.name, build=spec.build) -> HTMLResponse:
            return html(request, name, build(review_data(request)))

        app.add_api_route(spec.route, endpoint, methods=["GET"], response_class=HTMLResponse, name=spec.name)

    def vehicle_response(request: Request, vehicle_number: str, status: int = 200, **extra) -> HTMLResponse:
        page = pages.vehicle_page(review_data(), vehicle_number)
        return html(request, "vehicles", page, status=status, findings=contracts.INSPECTION_FINDINGS, **extra)

    @app.get("/vehicles/{vehicle_number}", response_class=HTMLResponse, name="vehicle")
    def vehicle(request: Request, vehicle_number: str, recorded: str | None = None) -> HTMLResponse:
        flash = f"Recorded ({recorded})." if recorded and re.fullmatch(r"[A-Za-z0-9-]{1,64}", recorded) else None
        try:
            return vehicle_response(request, vehicle_number, flash=flash)
        except pages.VehicleNotFound as exc:
            return error_page(request, 404, "Vehicle not found", str(exc))

    @app.get("/models/{version}", response_class=HTMLResponse, name="model")
    def model_card(request: Request, version: str) -> HTMLResponse:
        if not re.fullmatch(r"[0-9]{1,9}", version):
            return error_page(request, 404, "Model version not found", f"{version!r} is not a model version number")
        try:
            return html(request, "models", pages.model_card_page(review_data(request), version))
        except pages.VersionNotFound as exc:
            return error_page(request, 404, "Model version not found", str(exc))

    @app.get("/export/{name}.{fmt}", name="export")
    def export(request: Request, name: str, fmt: str) -> Response:
        """A table as the page shows it (same filters, search and sort), every row, as CSV or XLSX."""
        from railpm.review import tables

        if name not in pages.TABLES or fmt not in ("csv", "xlsx"):
            return error_page(request, 404, "Not found", f"no export {name}.{fmt}: tables are {', '.join(pages.TABLES)}")
        review = review_data(request)
        try:
            frame = pages.TABLES[name](review)
        except LayerMissing as exc:
            return error_page(request, 404, "Nothing to export", str(exc))
        rows, _ = tables.query(frame, tables.Query.from_params(request.query_params))
        stamp = f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%MZ}"
        if fmt == "csv":
            body, media = tables.to_csv(rows), "text/csv; charset=utf-8"
        else:
            body, media = tables.to_xlsx(rows, name), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{stamp}.{fmt}"'})

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    # ---- sign-in
    @app.get("/login", response_class=HTMLResponse, name="login")
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return html(request, "", pages.Page("login.html", "Sign in", {"next": _local(next), "accounts": has_accounts()}))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await posted_form(request)
        if isinstance(form, Response):
            return form
        account = await run_in_threadpool(accounts.authenticate, accounts_path, form.get("username", ""), form.get("password", ""))
        target = _local(form.get("next", "/"))
        if account is None:
            return html(request, "", pages.Page("login.html", "Sign in", {
                "next": target, "accounts": has_accounts(), "username": form.get("username", "")}), status=401,
                error="Sign-in failed: user name or password wrong, or the account is disabled.")
        request.session.clear()  # a fresh session (and CSRF token) per sign-in
        request.session["user"] = account.username
        request.session["csrf"] = secrets.token_urlsafe(24)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await posted_form(request)
        if isinstance(form, Response):
            return form
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.headers.get("host")

    async def posted_form(request: Request, right: str | None = None) -> dict | Response:
        """The form's fields once the post passed every check (origin, type, shape, CSRF token, the right)."""
        if not same_origin(request):
            return error_page(request, 403, "Refused", "cross-site form post refused")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return error_page(request, 415, "Unsupported form", "forms are sent as application/x-www-form-urlencoded")
        form = await request.form(max_files=0, max_fields=20)
        values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        if len(values) != len(form.multi_items()) or len(set(form.keys())) != len(form.multi_items()):
            return error_page(request, 400, "Malformed form", "each field once, as text")
        token = values.pop("csrf_token", "")
        expected = request.session.get("csrf")
        if not expected or not secrets.compare_digest(token, expected):
            return error_page(request, 403, "Refused", "the form's security token is missing or out of date: "
                              "reload the page and send the form again")
        if right is not None:
            refusal = refused(request, right)
            if refusal is not None:
                return error_page(request, 403, "Not allowed", refusal)
        return values

    def refused(request: Request, right: str) -> str | None:
        account = request.state.account
        if account is None:
            return ("nothing can be recorded without accounts: an administrator adds them with `railpm users add`"
                    if not has_accounts() else "sign in first")
        if not accounts.may(account.role, right):
            return (f"{account.username} ({accounts.ROLE_NAMES[account.role]}) may not "
                    f"{accounts.RIGHT_NAMES[right]}; that is for the "
                    f"{' or '.join(accounts.ROLE_NAMES[r] for r in accounts.RIGHTS[right])}")
        return None

    async def store(entry: FeedbackIn, account: accounts.Account) -> dict:
        """Storing reads the registry and predictions and writes a file: keep it off the event loop."""
        return await run_in_threadpool(store_feedback, settings, entry, account.signature)

    @app.post("/api/feedback", status_code=201)
    async def api_feedback(request: Request) -> JSONResponse:
        if not same_origin(request):
            return JSONResponse({"detail": ["cross-site request refused"]}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"detail": ["send the entry as application/json"]}, status_code=415)
        expected = request.session.get("csrf")
        if not expected or not secrets.compare_digest(request.headers.get("x-csrf-token", ""), expected):
            return JSONResponse({"detail": ["send the session's CSRF token in the X-CSRF-Token header"]}, status_code=403)
        refusal = refused(request, "feedback")
        if refusal is not None:
            return JSONResponse({"detail": [refusal]}, status_code=403)
        try:
            payload = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"detail": [f"malformed JSON: {exc}"]}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"detail": ["the body must be a JSON object"]}, status_code=422)
        try:
            entry = FeedbackIn.model_validate(payload)
            stored = await store(entry, request.state.account)
        except ValidationError as exc:
            return JSONResponse({"detail": validation_messages(exc)}, status_code=422)
        except RailpmError as exc:
            return JSONResponse({"detail": [str(exc)]}, status_code=422)
        return JSONResponse(_jsonable(stored), status_code=201)

    @app.post("/feedback")
    async def form_feedback(request: Request) -> Response:
        values = await posted_form(request, "feedback")
        if isinstance(values, Response):
            return values
        vehicle_number = values.get("vehicle_number", "")
        try:
            entry = FeedbackIn.model_validate(values)
            stored = await store(entry, request.state.account)
        except (ValidationError, RailpmError) as exc:
            return await rejected(request, vehicle_number, "Not recorded", exc, values)
        target = site.vehicle(entry.vehicle_number)
        return RedirectResponse(f"{target}?recorded={quote(str(stored.get('feedback_id', '')))}#feedback", status_code=303)

    async def rejected(request: Request, vehicle_number: str, title: str, exc: Exception, values: dict) -> Response:
        """The vehicle page again, 422, saying what to fix and keeping what was typed in the form that was sent."""
        message = in_words(exc)
        try:
            return await run_in_threadpool(vehicle_response, request, vehicle_number, 422,
                                           error=f"{title}: {message}", sent=values)
        except (pages.VehicleNotFound, LayerMissing, ValueError):
            return error_page(request, 422, title, message)

    @app.post("/alerts")
    async def alert_step(request: Request) -> Response:
        from railpm.review import plans

        values = await posted_form(request)
        if isinstance(values, Response):
            return values
        right = "feedback" if values.get("closing") == "dismiss" else "alert"
        refusal = refused(request, right)
        if refusal is not None:
            return error_page(request, 403, "Not allowed", refusal)
        vehicle_number = values.get("vehicle_number", "")
        try:
            step = AlertStepIn.model_validate(values)
            plan = None
            if step.step == "plan":
                try:
                    plan = (await run_in_threadpool(plans.read_inspection_plan, settings)).rows
                except LayerMissing:
                    plan = None
            entry = step.entry(plan)
            stored = await run_in_threadpool(store_feedback, settings, entry, request.state.account.signature)
        except (ValidationError, RailpmError, ValueError) as exc:
            return await rejected(request, vehicle_number, "Alert not updated", exc, values)
        target = site.vehicle(step.vehicle_number)
        return RedirectResponse(f"{target}?recorded={quote(str(stored.get('feedback_id', '')))}#predictions", status_code=303)

    @app.post("/plans/inspections/approve")
    async def approve_plan(request: Request) -> Response:
        from railpm.review import plans, signoff

        values = await posted_form(request, "approve_plan")
        if isinstance(values, Response):
            return values
        try:
            folder = plans.latest_plan_folder(settings.plans_dir, "inspection_plan", "inspection_plan")
        except LayerMissing as exc:
            return error_page(request, 404, "No plan", str(exc))
        if values.get("plan") != folder.name:
            return error_page(request, 409, "Plan changed", f"the plan shown was {values.get('plan')!r}; the latest is "
                              f"{folder.name}: reload the page, check it and approve again")
        account = request.state.account
        note = (values.get("note") or "").strip()[:500] or None
        await run_in_threadpool(signoff.approve_plan, folder, approved_by=account.signature, role=account.role, note=note)
        return RedirectResponse(f"{site.url('inspections')}#approvals", status_code=303)

    @app.post("/models/promote")
    async def promote(request: Request) -> Response:
        from railpm.review import signoff

        values = await posted_form(request, "promote_model")
        if isinstance(values, Response):
            return values
        version = values.get("version", "")
        if not re.fullmatch(r"[0-9]{1,9}", version):
            return error_page(request, 422, "Not promoted", "model version: give the version number to promote")
        try:
            await run_in_threadpool(signoff.promote_model, settings.tracking_uri, settings.model.registered_model_name,
                                    version, promoted_by=request.state.account.signature)
        except RailpmError as exc:
            return error_page(request, 422, "Not promoted", in_words(exc))
        return RedirectResponse(site.url("models"), status_code=303)

    @app.exception_handler(404)
    async def not_found(request: Request, exc) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": ["not found"]}, status_code=404)
        request.state.account = getattr(request.state, "account", None)
        return error_page(request, 404, "Not found", f"no page at {request.url.path}")

    return app


def _local(target: str) -> str:
    """Only a path of this app to go back to after signing in (no other site, no scheme-relative URL)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def store_feedback(settings: Settings, entry: FeedbackIn | dict, signed_by: str) -> dict:
    """Append the entry through ``railpm.feedback`` (which checks it against the registry and the predictions)."""
    import pyarrow.parquet as pq

    from railpm import feedback

    try:
        vehicles = data.read_vehicles(settings.lake_dir)
    except LayerMissing as exc:
        raise BadInputError(f"feedback cannot be checked: {exc}", rule="vehicle_registry") from exc
    predictions = None
    kind, scored_day = (entry.kind, entry.scored_day) if isinstance(entry, BaseModel) else (entry["kind"], entry.get("scored_day"))
    vehicle_number = entry.vehicle_number if isinstance(entry, BaseModel) else entry["vehicle_number"]
    if kind in (*contracts.FEEDBACK_DECISIONS, *contracts.ALERT_STEPS) and scored_day is not None:
        try:
            predictions = data.read_predictions_on(settings.predictions_dir, vehicle_number, scored_day)
        except LayerMissing:
            predictions = None
    fields = entry.model_dump() if isinstance(entry, BaseModel) else entry
    path = feedback.record_feedback(
        feedback.Feedback(**fields, recorded_by=signed_by), feedback.feedback_dir_of(settings.lake_dir), vehicles, predictions=predictions
    )
    return pq.read_table(path).to_pylist()[0]


def _jsonable(entry: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in entry.items()}
