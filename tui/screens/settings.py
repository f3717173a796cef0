"""Settings: the system prompt (saving creates a new version; its history is listed with
how many answers each version produced), sampling, and the model.

Sampling options apply to the next answer; a new model loads in a worker while the app
stays usable, and the conversation carries over. Values live in the store's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static, TextArea

from tui import services
from tui.widgets.nav_bar import NavBar
from tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from agent.llm.runtime import SamplingOptions
    from tui.host import Host

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
FIELDS: tuple[tuple[str, str, Literal["number", "integer"], str], ...] = (
    ("temperature", "Temperature", "number", "0 = always the most likely word"),
    ("top_p", "Top p", "number", "nucleus sampling, 0–1"),
    ("max_tokens", "Max tokens", "integer", "answer length limit"),
    ("seed", "Seed", "integer", "empty = random"),
)


@dataclass
class Loaded:
    """What the screen shows, read from the store in a worker."""

    prompt_version: int
    prompt_text: str
    prompt_history: list[dict[str, Any]]
    options: SamplingOptions
    model: str | None
    local_models: list[str]


class SettingsScreen(Screen[None]):
    """One form; ctrl+s saves whatever changed."""

    CSS_PATH = "settings.tcss"
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "revert", "Revert")]

    def __init__(self) -> None:
        super().__init__()
        self.loaded: Loaded | None = None

    @property
    def hearth(self) -> Host:
        return cast("Host", self.app)

    def compose(self) -> ComposeResult:
        yield NavBar("settings")
        with VerticalScroll(id="form", can_focus=False, disabled=True):
            yield Label("System prompt", classes="section-title", id="prompt-title")
            yield TextArea(id="system-prompt", soft_wrap=True)
            yield Static("", id="prompt-history", classes="hint", markup=False)
            yield Label("Sampling", classes="section-title")
            with Grid(id="sampling"):
                for key, label, kind, hint in FIELDS:
                    yield Label(label)
                    yield Input(id=key, type=kind, placeholder=hint)
            yield Label("Model", classes="section-title")
            yield Input(id="model", placeholder="empty = the bundled SmolLM2-135M-Instruct, "
                        "or a path to an mlx-lm folder")
            yield Static("", id="models", classes="hint", markup=False)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, group="settings", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        app = self.hearth
        try:
            version, text = app.store.active_system_prompt()
            options = app.chat.options if app.chat is not None else (
                app.options or services.sampling(app.store))
            loaded = Loaded(version, text, app.store.system_prompts(), options,
                            services.model_choice(app.store), services.local_models())
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.call_from_thread(self._show, loaded)

    def _show(self, loaded: Loaded) -> None:
        """Fill the form (it stays disabled until then, so no typing is overwritten)."""
        form = self.query_one("#form")
        if form.disabled:
            form.disabled = False
            self.query_one("#system-prompt", TextArea).focus()
        self.loaded = loaded
        self.query_one("#prompt-title", Label).update(
            f"System prompt (version {loaded.prompt_version}; saving makes a new version)")
        self.query_one("#system-prompt", TextArea).load_text(loaded.prompt_text)
        self.query_one("#prompt-history", Static).update(history_text(loaded.prompt_history))
        for key, *_ in FIELDS:
            value = getattr(loaded.options, key)
            self.query_one(f"#{key}", Input).value = "" if value is None else str(value)
        self.query_one("#model", Input).value = loaded.model or ""
        models = ", ".join(loaded.local_models) or "none converted yet"
        self.query_one("#models", Static).update(f"Converted models in the cache: {models}")

    def action_revert(self) -> None:
        if self.loaded is not None:
            self._show(self.loaded)

    def _form(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, label, kind, _ in FIELDS:
            raw = self.query_one(f"#{key}", Input).value.strip()
            if not raw:
                values[key] = None
                continue
            try:
                values[key] = int(raw) if kind == "integer" else float(raw)
            except ValueError:
                raise ValueError(f"{label} must be a number") from None
        return values

    def action_save(self) -> None:
        if self.loaded is None:
            return
        try:
            values = self._form()
            options = _options(self.loaded.options, values)
        except ValueError as exc:
            self.notify(f"{exc}; fix it and save again.", severity="error")
            return
        prompt = self.query_one("#system-prompt", TextArea).text.strip()
        model = self.query_one("#model", Input).value.strip() or None
        self.save(prompt, options, model)

    @work(thread=True, group="settings-write", exit_on_error=False)
    def save(self, prompt: str, options: SamplingOptions, model: str | None) -> None:
        app, loaded = self.hearth, self.loaded
        assert loaded is not None
        notes = []
        try:
            if prompt and prompt != loaded.prompt_text.strip():
                version = app.store.add_system_prompt(prompt)
                notes.append(f"system prompt version {version}")
            services.save_sampling(app.store, options)
            notes.append("sampling")
            if model != loaded.model:
                services.save_model_choice(app.store, model)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(app.report, exc)
            return
        app.call_from_thread(self._saved, options, model != loaded.model, model, notes)

    def _saved(self, options: SamplingOptions, new_model: bool, model: str | None,
               notes: list[str]) -> None:
        self.hearth.options = options
        if self.hearth.chat is not None:
            self.hearth.chat.options = options
        if new_model:
            notes.append(f"model {model or 'bundled'} (loading now)")
            self.hearth.reload_model(model)
        self.notify("Saved " + ", ".join(notes) + ".")
        self.load()


def history_text(rows: list[dict[str, Any]]) -> str:
    """One line per version, newest first: active mark, version, answers, start of text
    (`hearth prompts activate N` switches back to one; `hearth prompts list` has dates)."""
    lines = ["History (`hearth prompts activate N` switches back):"]
    for row in reversed(rows):
        flat = _CONTROL.sub("", " ".join(str(row["text"]).split()))
        flat = flat if len(flat) <= 60 else flat[:59] + "…"
        mark = "●" if row["active"] else " "
        lines.append(f"{mark} v{row['version']}  {row['answers']} answers  {flat}")
    return "\n".join(lines)


def _options(current: SamplingOptions, values: dict[str, Any]) -> SamplingOptions:
    """`current` with the form's values; raises ValueError with what is out of range."""

    temperature = values["temperature"] if values["temperature"] is not None else current.temperature
    top_p = values["top_p"] if values["top_p"] is not None else current.top_p
    max_tokens = values["max_tokens"] if values["max_tokens"] is not None else current.max_tokens
    if temperature < 0:
        raise ValueError("Temperature must be 0 or more")
    if not 0 < top_p <= 1:
        raise ValueError("Top p must be above 0 and at most 1")
    if max_tokens < 1:
        raise ValueError("Max tokens must be at least 1")
    return replace(current, temperature=float(temperature), top_p=float(top_p),
                   max_tokens=int(max_tokens), seed=values["seed"])
